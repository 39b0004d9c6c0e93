"""The unit of work: pending edits, their flush, commit and rollback.

For each object with edits the session keeps what it needs to send only its own changes:

* a plain field (name, priority, project_id...) keeps the last value the master confirmed, its
  *baseline*; the field is pending while the object's value differs from it. A fresh read moves
  the baseline and keeps the edit; setting the field back to its baseline cancels the edit.
* a collection edited in place (tag sets, metadata dicts) keeps this session's own *intents*
  (the labels it added or removed, the keys it set or deleted) on top of the master's last known
  collection. A fresh read replaces the master's part and keeps the intents, so a label another
  session added or removed meanwhile is neither removed nor put back; an intent the master
  already satisfies is done and dropped.

A request whose outcome is unknown (the connection dropped after it was sent, a gateway timeout)
leaves its changes pending and marks the object to be read again: the next commit reads it first
and sends only what the master does not hold yet. Collections the master can only replace whole
(model labels, metadata dicts) are also read just before they are sent, for the same reason.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

from .. import _wire as w
from .._ops._effects import Op, gather_outcomes, send
from .._plan._edits import (
    CREATABLE,
    DELETABLE,
    DELETED,
    Change,
    FlushPlan,
    PlannedCall,
    created_values,
    creation,
    creation_call,
    deletion,
    plan_flush,
)
from .._resources._base import Resource, TagSet
from .._resources._models import Experiment, Project, Workspace
from ..errors import APIError, CommitError, InvalidState, InvalidValue, TransportError
from ._identity import IdentityMap

__all__ = ["Change", "UnitOfWork", "outcome_unknown"]

# Statuses from a gateway or proxy in front of the master that gave up waiting or lost the
# connection: the master may still have applied the request (see _transport.py on 503).
_MAYBE_APPLIED_STATUSES: Final = frozenset({502, 503, 504})

Key = tuple[str, Any]


def _snapshot(value: Any) -> Any:
    if isinstance(value, TagSet):
        return TagSet(value)
    if isinstance(value, dict):
        return copy.deepcopy(dict(value))  # never copy a TrackedDict's link to the session
    return copy.deepcopy(value)


def outcome_unknown(error: Exception) -> bool:
    """Whether a failed request may nevertheless have been applied by the master."""
    if isinstance(error, TransportError):
        return error.request_sent
    return isinstance(error, APIError) and error.status in _MAYBE_APPLIED_STATUSES


R = TypeVar("R", bound=Resource)


class Session(Protocol):
    """What the unit of work needs of its session (``SessionBase`` in ``_session.py``, which
    imports this module): its identity map, watching objects, refreshing them, and forgetting
    loaded collections."""

    @property
    def identity(self) -> IdentityMap: ...
    def _watch(self, obj: Resource) -> None: ...
    def _refresh(self, obj: R) -> Op[R]: ...
    def _forget_collections(self, parent: str) -> None: ...
    def _forget(self, obj: Resource) -> None: ...


# --- collections: this session's intents over the master's value -----------------------------
_DELETED: Final = object()


class _TagIntents:
    """The labels this session added (True) or removed (False), over the master's tag set."""

    def __init__(self, server: Iterable[str]) -> None:
        self.server = TagSet(server)
        self.wanted: dict[str, bool] = {}

    def record(self, before: Iterable[str], after: Iterable[str]) -> None:
        old, new = set(before), set(after)
        for tag in new - old:
            self.wanted[tag] = True
        for tag in old - new:
            self.wanted[tag] = False

    def settle(self) -> None:
        self.wanted = {t: on for t, on in self.wanted.items() if on != (t in self.server)}

    def local(self) -> TagSet:
        kept = [t for t in self.server if self.wanted.get(t, True)]
        return TagSet([*kept, *(t for t, on in self.wanted.items() if on and t not in self.server)])

    def rebase(self, server: Iterable[str]) -> None:
        self.server = TagSet(server)
        self.settle()

    def confirm(self, tag: str, present: bool, answer: Iterable[str] = ()) -> None:
        """The master applied one label call; its answer also shows labels others added."""
        others = [t for t in answer if t not in self.server and t != tag and t not in self.wanted]
        items = [t for t in self.server if t != tag] + others + ([tag] if present else [])
        self.server = TagSet(items)


class _DictIntents:
    """The keys this session set (to a value) or deleted, over the master's dict."""

    def __init__(self, server: dict[str, Any]) -> None:
        self.server: dict[str, Any] = _snapshot(server)
        self.wanted: dict[str, Any] = {}

    def record(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        for key, value in after.items():
            if key not in before or before[key] != value:
                self.wanted[key] = copy.deepcopy(value)
        for key in before.keys() - after.keys():
            self.wanted[key] = _DELETED

    def settle(self) -> None:
        self.wanted = {k: v for k, v in self.wanted.items() if not self._holds(k, v)}

    def rebase(self, server: dict[str, Any]) -> None:
        self.server = _snapshot(server)
        self.settle()

    def _holds(self, key: str, value: Any) -> bool:
        if value is _DELETED:
            return key not in self.server
        return key in self.server and bool(self.server[key] == value)

    def local(self) -> dict[str, Any]:
        merged: dict[str, Any] = _snapshot(self.server)
        for key, value in self.wanted.items():
            if value is _DELETED:
                merged.pop(key, None)
            else:
                merged[key] = copy.deepcopy(value)
        return merged


_Intents = _TagIntents | _DictIntents


def _intents_for(value: Any) -> _Intents | None:
    """Intents for a collection edited in place; None for a plain field."""
    if isinstance(value, TagSet):
        return _TagIntents(value)
    if isinstance(value, dict):
        return _DictIntents(value)
    return None


@dataclass
class _Pending:
    """What one object has pending: plain-field baselines, collection intents, a re-read."""

    obj: Resource
    baselines: dict[str, Any] = field(default_factory=dict)
    intents: dict[str, _Intents] = field(default_factory=dict)
    reread: bool = False

    def fields(self) -> frozenset[str]:
        values = self.obj.__dict__
        plain = [n for n, old in self.baselines.items() if not _same(values.get(n), old)]
        return frozenset([*plain, *(n for n, i in self.intents.items() if i.wanted)])

    def tracked(self) -> frozenset[str]:
        return frozenset(self.baselines) | frozenset(self.intents)

    def change(self, name: str) -> Change:
        obj = self.obj
        intents = self.intents.get(name)
        old = intents.server if intents is not None else self.baselines[name]
        new = intents.local() if intents is not None else obj.__dict__[name]
        return Change(type(obj).__name__, obj.pk, name, _snapshot(old), _snapshot(new), obj)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, TagSet) or isinstance(b, TagSet):
        return set(a or ()) == set(b or ())
    return bool(a == b)


class UnitOfWork:
    """Pending edits of one session."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._pending: dict[Key, _Pending] = {}
        # New objects to create, in the order they were added; objects to delete; edits that
        # name a new object (``exp.project = new_project``), made once it is created.
        self._new: list[Resource] = []
        self._deleted: dict[Key, Resource] = {}
        self._references: dict[tuple[int, str], tuple[Resource, str, Resource]] = {}
        self._lock = threading.RLock()

    # --- creations and deletions --------------------------------------------------------------
    def add(self, obj: Resource) -> None:
        """Create the new ``obj`` at the next commit (its new parents first)."""
        if not obj.is_new:
            raise InvalidValue(
                f"{type(obj).__name__} {obj.pk} exists on the master already: only a new object "
                "(made by its constructor) can be added"
            )
        if type(obj).__name__ not in CREATABLE:
            raise InvalidValue(
                f"a new {type(obj).__name__} cannot be added: the unit of work creates "
                f"{', '.join(sorted(CREATABLE))}"
            )
        with self._lock:
            for parent in (obj._creating or {}).values():
                if all(parent is not o for o in self._new):
                    self.add(parent)  # a new parent goes with its child
            if all(obj is not o for o in self._new):
                obj._session = self._session  # type: ignore[assignment]
                self._new.append(obj)

    def delete(self, obj: Resource) -> None:
        """Delete ``obj`` at the next commit, after the edits (moves out of it first)."""
        with self._lock:
            if obj.is_new:
                if all(obj is not o for o in self._new):
                    raise InvalidValue(f"this new {type(obj).__name__} was never added")
                self._new = [o for o in self._new if o is not obj]
                return
            if type(obj).__name__ not in DELETABLE:
                raise InvalidValue(
                    f"a {type(obj).__name__} cannot be deleted through the session; it deletes "
                    f"{', '.join(sorted(DELETABLE))}"
                )
            key = IdentityMap.key_of(obj)
            self._deleted[key] = obj
            self._session.identity.pin(obj)

    def refer_to_new(self, obj: Resource, key_field: str, parent: Resource) -> None:
        """``obj.key_field`` is to hold the id of the new ``parent`` once it is created."""
        with self._lock:
            self.add(parent)
            self._references[(id(obj), key_field)] = (obj, key_field, parent)
            self._session.identity.pin(obj)

    def _deletions(self, objects: Iterable[Resource] | None) -> list[Change]:
        chosen = self._deleted.values() if objects is None else _among(self._deleted, objects)
        return [deletion(obj) for obj in chosen]

    def _creations(self, objects: Iterable[Resource] | None) -> list[Resource]:
        if objects is None:
            return list(self._new)
        wanted = list(objects)
        return [o for o in self._new if any(o is w for w in wanted)]

    # --- recording ----------------------------------------------------------------------------
    def record(self, obj: Resource, name: str, old: Any) -> None:
        """Called after ``obj.name`` changed from ``old`` (assignment or in-place edit)."""
        if obj.is_new:
            return  # its creation sends what it holds then
        key = IdentityMap.key_of(obj)
        with self._lock:
            pending = self._pending.get(key)
            if pending is None:
                pending = self._pending[key] = _Pending(obj)
                self._session.identity.pin(obj)
            new = obj.__dict__[name]
            intents = pending.intents.get(name)
            if intents is not None and _intents_for(new) is None:
                # a collection replaced by None (a workspace's storage cleared): a plain edit
                # of the master's last known value from now on
                pending.baselines[name] = _snapshot(intents.server)
                del pending.intents[name]
                intents = None
            if intents is None and name not in pending.baselines:
                intents = _intents_for(old) if _intents_for(new) is not None else None
                if intents is None:
                    pending.baselines[name] = _snapshot(old)
                else:
                    pending.intents[name] = intents
            if intents is not None:
                intents.record(old, new)
                intents.settle()
            self._forget_if_clean(key)

    def _forget_if_clean(self, key: Key) -> None:
        pending = self._pending.get(key)
        if pending is None or pending.reread:
            return
        values = pending.obj.__dict__
        for name in [n for n, old in pending.baselines.items() if _same(values.get(n), old)]:
            del pending.baselines[name]
        for name in [n for n, intents in pending.intents.items() if not intents.wanted]:
            del pending.intents[name]
        if not pending.baselines and not pending.intents:
            del self._pending[key]
            self._session.identity.unpin(pending.obj)

    def tracked_fields(self, obj: Resource) -> frozenset[str]:
        """Fields whose server value goes through :meth:`server_value` (edits pending)."""
        pending = self._pending.get(IdentityMap.key_of(obj))
        return frozenset() if pending is None else pending.tracked()

    def server_value(self, obj: Resource, name: str, value: Any) -> None:
        """The master holds ``value`` for ``obj.name``: keep this session's edits on top of it."""
        key = IdentityMap.key_of(obj)
        with self._lock:
            pending = self._pending.get(key)
            intents = None if pending is None else pending.intents.get(name)
            if pending is None or (intents is None and name not in pending.baselines):
                obj.__dict__[name] = value
                return
            if intents is None:
                pending.baselines[name] = _snapshot(value)
            else:
                intents.rebase(value)
                obj.__dict__[name] = intents.local()
                self._session._watch(obj)
            self._forget_if_clean(key)

    def read_again(self, obj: Resource) -> None:
        """An object was read afresh: the re-read an unknown outcome asked for is done."""
        pending = self._pending.get(IdentityMap.key_of(obj))
        if pending is not None and pending.reread:
            pending.reread = False
            self._forget_if_clean(IdentityMap.key_of(obj))

    # --- inspecting ---------------------------------------------------------------------------
    @property
    def dirty(self) -> list[Resource]:
        with self._lock:
            edited = [p.obj for p in self._pending.values() if p.fields()]
            return [*self._new, *edited, *(o for o in self._deleted.values() if o not in edited)]

    def _selected(self, objects: Iterable[Resource] | None) -> list[_Pending]:
        if objects is None:
            return list(self._pending.values())
        found = (self._pending.get(IdentityMap.key_of(o)) for o in objects)
        return [p for p in found if p is not None]

    def changes(self, objects: Iterable[Resource] | None = None) -> list[Change]:
        with self._lock:
            return [p.change(name) for p in self._selected(objects) for name in sorted(p.fields())]

    def plan(
        self, objects: Iterable[Resource] | None = None, *, creations: bool = True
    ) -> FlushPlan:
        """What a commit sends; the creations come first (shown with their parents' ids as far
        as they are known), then the edits, then the deletions."""
        with self._lock:
            selected = self._selected(objects)
            reread = [p.obj for p in selected if p.reread]
            deletions = self._deletions(objects)
            new = self._creations(objects) if creations else []
            calls = [creation_call(obj, _parent_id(obj)) for obj in new]
        return plan_flush(
            self.changes(objects), reread=reread, deletions=deletions, creations=calls
        )

    # --- rollback -----------------------------------------------------------------------------
    def rollback(self, objects: Iterable[Resource] | None = None) -> None:
        """Restore every edited field to its last confirmed value; forget pending creations and
        deletions."""
        with self._lock:
            chosen = None if objects is None else list(objects)
            dropped = self._creations(chosen)
            self._new = [o for o in self._new if all(o is not d for d in dropped)]
            for change in self._deletions(chosen):
                del self._deleted[IdentityMap.key_of(change.obj)]
                if IdentityMap.key_of(change.obj) not in self._pending:
                    self._session.identity.unpin(change.obj)
            self._references = {
                k: ref for k, ref in self._references.items()
                if chosen is not None and all(ref[0] is not o for o in chosen)
            }  # fmt: skip
            objects = chosen
            for pending in self._selected(objects):
                values = pending.obj.__dict__
                for name, old in pending.baselines.items():
                    values[name] = _snapshot(old)
                for name, intents in pending.intents.items():
                    values[name] = _snapshot(intents.server)
                    intents.wanted.clear()
                self._session._watch(pending.obj)
                self._forget_if_clean(IdentityMap.key_of(pending.obj))

    # --- flushing -----------------------------------------------------------------------------
    def commit(self, objects: Iterable[Resource] | None = None) -> Op[list[Change]]:
        """Send the pending edits; return the applied changes or raise CommitError."""
        applied: list[Change] = []
        failed: list[tuple[Change, Exception]] = []
        unknown: list[tuple[Change, Exception]] = []
        objects = None if objects is None else list(objects)
        yield from self._create(objects, applied, failed, unknown)
        failed += self._resolve_references()
        plan = self.plan(objects, creations=False)
        if plan.reads:
            unread = yield from self._read_first(plan)
            plan = self.plan(objects, creations=False)
            for planned in plan:
                for change in planned.changes:
                    if change.obj in unread:
                        failed.append((change, unread[change.obj]))
            plan = plan.without(unread)
        for stage in plan.stages():
            held = [p for p in stage if _held_back(p, [*failed, *unknown])]
            for planned in held:
                failed += [(c, _kept(c)) for c in planned.changes]
            stage = [p for p in stage if p not in held]
            outcomes = yield from gather_outcomes([self._send(planned) for planned in stage])
            for planned, outcome in zip(stage, outcomes, strict=True):
                ok, refused, maybe = self._apply(planned, outcome)
                applied += ok
                failed += refused
                unknown += maybe
        # A tag (or pool) change travels in one call per label (pool): it is applied when all
        # of them were.
        pending = {id(change) for change, _ in [*failed, *unknown]}
        applied = [c for c in {id(c): c for c in applied}.values() if id(c) not in pending]
        if failed or unknown:
            raise CommitError(_once(failed), applied, _once(unknown))
        return applied

    def _create(
        self,
        objects: list[Resource] | None,
        applied: list[Change],
        failed: list[tuple[Change, Exception]],
        unknown: list[tuple[Change, Exception]],
    ) -> Op[None]:
        """Create the new objects level by level: those whose parents exist, concurrently; then
        those whose parents were just created. A child of a failed creation is not sent."""
        waiting = self._creations(objects)
        while waiting:
            ready = [o for o in waiting if _parent_id(o) is not None or not o._creating]
            blocked = [o for o in waiting if o not in ready]
            if not ready:
                for obj in blocked:
                    failed.append((creation(obj), _parent_not_created(obj)))
                return
            calls = [creation_call(obj, _parent_id(obj)) for obj in ready]
            outcomes = yield from gather_outcomes([self._send(planned) for planned in calls])
            for obj, planned, outcome in zip(ready, calls, outcomes, strict=True):
                (change,) = planned.changes
                if isinstance(outcome, Exception):
                    target = unknown if outcome_unknown(outcome) else failed
                    target.append((change, outcome))
                    blocked = [o for o in blocked if not _needs(o, obj)]
                    for child in [o for o in waiting if _needs(o, obj)]:
                        failed.append((creation(child), _parent_not_created(child)))
                else:
                    self._created(obj, outcome)
                    applied.append(change)
            waiting = blocked

    def _created(self, obj: Resource, content: bytes) -> None:
        """The master created ``obj``: fill in its server fields from the answer, and file it in
        the identity map. Fields the POST's answer does not carry stay not loaded."""
        values = created_values(obj, content)
        with self._lock:
            workspace = (obj._creating or {}).get("workspace_id")
            if isinstance(obj, Project) and workspace is None:
                workspace = self._session.identity.get(Workspace, values["workspace_id"])
            if isinstance(obj, Project) and workspace is not None and "name" in workspace.__dict__:
                values["workspace_name"] = workspace.__dict__["name"]
            obj.__dict__.update(values)
            obj.__pydantic_fields_set__.update(values)
            obj._creating = None
            self._new = [o for o in self._new if o is not obj]
            self._session.identity.add(obj)
            self._session._watch(obj)
            self._session._forget_collections("Workspace")

    def _resolve_references(self) -> list[tuple[Change, Exception]]:
        """Edits naming a new object become edits of its id once it exists."""
        refused: list[tuple[Change, Exception]] = []
        with self._lock:
            for ref_key, (obj, key_field, parent) in list(self._references.items()):
                if parent.is_new:
                    old = obj.__dict__.get(key_field)
                    change = Change(type(obj).__name__, obj.pk, key_field, old, parent, obj)
                    refused.append((change, _parent_not_created(obj, parent)))
                    continue
                del self._references[ref_key]
                setattr(obj, key_field, parent.pk)  # recorded as an ordinary edit
        return refused

    def _read_first(self, plan: FlushPlan) -> Op[dict[Resource, Exception]]:
        """Read the objects the plan needs fresh; the objects that could not be read."""
        objects = list(plan.reads)
        outcomes = yield from gather_outcomes([self._session._refresh(obj) for obj in objects])
        return {
            obj: outcome
            for obj, outcome in zip(objects, outcomes, strict=True)
            if isinstance(outcome, Exception)
        }

    @staticmethod
    def _send(planned: PlannedCall) -> Op[bytes]:
        return (yield from send(planned.call)).content

    def _apply(
        self, planned: PlannedCall, outcome: Any
    ) -> tuple[list[Change], list[tuple[Change, Exception]], list[tuple[Change, Exception]]]:
        if isinstance(outcome, Exception):
            pairs = [(c, outcome) for c in planned.changes]
            if outcome_unknown(outcome):
                self._mark_reread(planned.changes)
                return [], [], pairs
            return [], pairs, []
        if planned.kind == "delete":
            for change in planned.changes:
                self._deleted_now(change.obj)
            return list(planned.changes), [], []
        with self._lock:
            if planned.kind == "bulk":
                ok, refused = self._apply_bulk(planned, outcome)
                return ok, refused, []
            if planned.kind == "label":
                labels = w.LabelsResponse.model_validate_json(outcome).labels
                self._confirm_member(planned, "tags", planned.call.method == "PUT", labels)
            elif planned.kind == "binding":  # the answer is empty
                self._confirm_member(planned, "resource_pools", planned.call.method == "POST")
            else:
                for change in planned.changes:
                    self.confirm(change.obj, change.field, change.new)
                    self.after_move(change)
            return list(planned.changes), [], []

    def _deleted_now(self, obj: Resource) -> None:
        """The master deleted ``obj`` (or is deleting it, for workspaces and projects with
        experiments: state DELETING, then gone): nothing of it is pending any more."""
        with self._lock:
            key = IdentityMap.key_of(obj)
            self._deleted.pop(key, None)
            self._pending.pop(key, None)
            self._session._forget(obj)
            self._session._forget_collections(type(obj).__name__)

    def _mark_reread(self, changes: Iterable[Change]) -> None:
        with self._lock:
            for change in changes:
                pending = self._pending.get(IdentityMap.key_of(change.obj))
                if pending is not None:
                    pending.reread = True

    def _apply_bulk(
        self, planned: PlannedCall, content: bytes
    ) -> tuple[list[Change], list[tuple[Change, Exception]]]:
        results = {r.id: r.error for r in w.BulkActionResponse.model_validate_json(content).results}
        applied: list[Change] = []
        failed: list[tuple[Change, Exception]] = []
        for change in planned.changes:
            error = results.get(change.key, "the master did not report this experiment")
            if error:
                failed.append((change, _bulk_error(planned, change, error)))
            elif change.field == DELETED:
                self._deleted_now(change.obj)
                applied.append(change)
            else:
                self.confirm(change.obj, change.field, change.new)
                self.after_move(change)
                applied.append(change)
        return applied, failed

    def confirm(self, obj: Resource, name: str, value: Any) -> None:
        """The master applied our change: it now holds ``value`` (what we sent) for the field.

        The value sent is what counts, not the field as an answer shows it: PatchExperiment
        answers with the config read before the edit (so its resources are the old ones).
        """
        self.server_value(obj, name, value)

    def _confirm_member(
        self, planned: PlannedCall, name: str, present: bool, answer: Iterable[str] = ()
    ) -> None:
        """One label (or pool) was added or removed. A label's answer lists the experiment's
        labels afterwards (labels others added meanwhile show in the view; nothing of theirs is
        ever sent)."""
        obj = planned.changes[0].obj
        pending = self._pending.get(IdentityMap.key_of(obj))
        intents = None if pending is None else pending.intents.get(name)
        if not isinstance(intents, _TagIntents):
            return
        intents.confirm(planned.label, present, answer)
        intents.settle()
        obj.__dict__[name] = intents.local()
        self._session._watch(obj)
        self._forget_if_clean(IdentityMap.key_of(obj))

    def after_move(self, change: Change) -> None:
        """Keep a moved object's denormalised fields consistent with its new parent."""
        obj = change.obj
        if isinstance(obj, Experiment) and change.field == "project_id":
            destination = self._session.identity.get(Project, change.new)
            for name in ("project_name", "workspace_id", "workspace_name", "parent_archived"):
                obj.__dict__.pop(name, None)
            if destination is not None:
                # (a project just created lacks the fields its POST's answer does not carry)
                known = destination.__dict__
                for name, source in (
                    ("project_name", "name"), ("workspace_id", "workspace_id"),
                    ("workspace_name", "workspace_name"), ("parent_archived", "archived"),
                ):  # fmt: skip
                    if source in known:
                        obj.__dict__[name] = known[source]
            self._session._forget_collections("Project")
        elif isinstance(obj, Project) and change.field == "workspace_id":
            obj.__dict__.pop("workspace_name", None)
            self._session._forget_collections("Workspace")


# A deletion of a parent is held back while a move out of it did not go through: the master
# deletes a project's experiments (a workspace's projects) with it.
_MOVES_OUT: Final = {
    "Project": {("Experiment", "project_id")},
    "Workspace": {("Project", "workspace_id"), ("Model", "workspace_id")},
}


def _held_back(planned: PlannedCall, pending: list[tuple[Change, Exception]]) -> bool:
    for change in planned.changes:
        moves = _MOVES_OUT.get(change.resource, set())
        if change.field == DELETED and any(
            (c.resource, c.field) in moves and c.old == change.key for c, _ in pending
        ):
            return True
    return False


def _kept(change: Change) -> InvalidState:
    return InvalidState(
        f"not deleted: moves out of {change.resource} {change.key} did not go through (its "
        "deletion would take what they move with it)"
    )


def _among(deleted: dict[Key, Resource], objects: Iterable[Resource]) -> list[Resource]:
    wanted = [IdentityMap.key_of(o) for o in objects if not o.is_new]
    return [deleted[k] for k in wanted if k in deleted]


def _parent_id(obj: Resource) -> int | None:
    """The id of a new object's workspace (None: not created yet, or a model given none)."""
    parent = (obj._creating or {}).get("workspace_id")
    if parent is not None:
        return None if parent.is_new else int(parent.pk)
    value = obj.__dict__.get("workspace_id")
    return value if isinstance(value, int) else None


def _needs(child: Resource, parent: Resource) -> bool:
    return any(p is parent for p in (child._creating or {}).values())


def _parent_not_created(obj: Resource, parent: Resource | None = None) -> InvalidState:
    if parent is None:
        parent = next(iter((obj._creating or {}).values()))
    name = parent.__dict__.get("name")
    return InvalidState(
        f"the new {type(parent).__name__} {name!r} it needs was not created (see its own error)"
    )


def _once(pairs: list[tuple[Change, Exception]]) -> list[tuple[Change, Exception]]:
    """Each change once (the first error of a tag change that failed in several calls)."""
    return list({id(change): (change, error) for change, error in reversed(pairs)}.values())[::-1]


def _bulk_error(planned: PlannedCall, change: Change, message: str) -> APIError:
    # A per-id error inside a 200 bulk response.
    return APIError(
        method=planned.call.method, path=planned.call.path, status=200,
        message=f"{change.resource} {change.key}: {message}",
    )  # fmt: skip
