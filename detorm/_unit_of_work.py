"""The unit of work: pending edits, their flush, commit and rollback.

State-based, like SQLAlchemy's: for each object with edits the session keeps the last value the
master confirmed for each edited field ("committed"). What is pending is the difference between
the object and those values, so setting a field back to its committed value cancels the edit, a
later query refreshes the committed values without losing the edit, and after a partial failure
the next commit retries exactly what did not go through.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from . import _wire as w
from ._edits import Change, FlushPlan, PlannedCall, plan_flush
from ._identity import IdentityMap
from ._resources._base import Resource, TagSet
from ._resources._models import Experiment, Project
from .errors import APIError, CommitError, DetormError

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["Change", "UnitOfWork"]

MAX_CONCURRENT_CALLS: Final = 8


def _snapshot(value: Any) -> Any:
    if isinstance(value, TagSet):
        return TagSet(value)
    if isinstance(value, dict):
        return copy.deepcopy(dict(value))  # never copy a TrackedDict's link to the session
    return copy.deepcopy(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, TagSet) or isinstance(b, TagSet):
        return set(a or ()) == set(b or ())
    return bool(a == b)


class UnitOfWork:
    """Pending edits of one session."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._committed: dict[tuple[str, Any], dict[str, Any]] = {}
        self._objects: dict[tuple[str, Any], Resource] = {}
        self._lock = threading.RLock()

    # --- recording ----------------------------------------------------------------------------
    def record(self, obj: Resource, name: str, old: Any) -> None:
        """Called after ``obj.name`` changed from ``old`` (assignment or tag mutation)."""
        key = IdentityMap.key_of(obj)
        with self._lock:
            committed = self._committed.setdefault(key, {})
            if name not in committed:
                committed[name] = _snapshot(old)
            self._objects[key] = obj
            self._session.identity.pin(obj)
            self._forget_if_clean(key)

    def _forget_if_clean(self, key: tuple[str, Any]) -> None:
        obj = self._objects.get(key)
        committed = self._committed.get(key, {})
        if obj is None:
            return
        for clean in [n for n, v in committed.items() if _same(obj.__dict__.get(n), v)]:
            del committed[clean]
        if not committed:
            self._committed.pop(key, None)
            self._objects.pop(key, None)
            self._session.identity.unpin(obj)

    def pending_fields(self, obj: Resource) -> frozenset[str]:
        key = IdentityMap.key_of(obj)
        committed = self._committed.get(key)
        if not committed:
            return frozenset()
        return frozenset(n for n, v in committed.items() if not _same(obj.__dict__.get(n), v))

    def server_value(self, obj: Resource, name: str, value: Any) -> None:
        """A fresh read of a field with a pending edit: keep the edit, move its baseline."""
        key = IdentityMap.key_of(obj)
        with self._lock:
            if key in self._committed and name in self._committed[key]:
                self._committed[key][name] = _snapshot(value)
                self._forget_if_clean(key)

    # --- inspecting ---------------------------------------------------------------------------
    @property
    def dirty(self) -> list[Resource]:
        with self._lock:
            return [
                self._objects[k] for k in self._committed if self.pending_fields(self._objects[k])
            ]

    def changes(self, objects: Iterable[Resource] | None = None) -> list[Change]:
        with self._lock:
            keys = (
                list(self._committed)
                if objects is None
                else [IdentityMap.key_of(o) for o in objects]
            )
            out: list[Change] = []
            for key in keys:
                obj = self._objects.get(key)
                if obj is None:
                    continue
                for name in sorted(self.pending_fields(obj)):
                    old = self._committed[key][name]
                    out.append(
                        Change(
                            type(obj).__name__,
                            obj.pk,
                            name,
                            old,
                            _snapshot(obj.__dict__[name]),
                            obj,
                        )
                    )
            return out

    def plan(self, objects: Iterable[Resource] | None = None) -> FlushPlan:
        return plan_flush(self.changes(objects))

    # --- rollback -----------------------------------------------------------------------------
    def rollback(self, objects: Iterable[Resource] | None = None) -> None:
        """Restore every edited field to its last confirmed value."""
        with self._lock:
            keys = (
                list(self._committed)
                if objects is None
                else [IdentityMap.key_of(o) for o in objects]
            )
            for key in keys:
                obj = self._objects.get(key)
                committed = self._committed.get(key, {})
                if obj is None:
                    continue
                for name, value in committed.items():
                    obj.__dict__[name] = _snapshot(value)
                self._session._watch(obj)
                self._forget_if_clean(key)

    # --- flushing -----------------------------------------------------------------------------
    def commit(self, objects: Iterable[Resource] | None = None) -> list[Change]:
        """Send the pending edits; return the applied changes or raise CommitError."""
        plan = self.plan(objects)
        applied: list[Change] = []
        failed: list[tuple[Change, Exception]] = []
        for stage in plan.stages():
            for planned, outcome in self._run_stage(stage):
                ok, bad = self._apply(planned, outcome)
                applied.extend(ok)
                failed.extend(bad)
        if failed:
            raise CommitError(failed, applied)
        return applied

    def _run_stage(self, stage: list[PlannedCall]) -> Iterator[tuple[PlannedCall, Any]]:
        transport = self._session.transport

        def send(planned: PlannedCall) -> Any:
            try:
                return transport.send(planned.call).content
            except DetormError as err:
                return err

        if len(stage) == 1:
            yield stage[0], send(stage[0])
            return
        with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_CALLS, len(stage))) as pool:
            yield from zip(stage, pool.map(send, stage), strict=True)

    def _apply(
        self, planned: PlannedCall, outcome: Any
    ) -> tuple[list[Change], list[tuple[Change, Exception]]]:
        if isinstance(outcome, Exception):
            return [], [(c, outcome) for c in planned.changes]
        with self._lock:
            if planned.kind == "bulk":
                return self._apply_bulk(planned, outcome)
            if planned.kind == "label":
                labels = w.LabelsResponse.model_validate_json(outcome).labels
                self._confirm_label(planned, labels)
                return [planned.changes[0]], []
            if planned.kind == "patch":
                self._apply_patched(planned, outcome)
            elif planned.kind == "metadata":
                checkpoint = w.CheckpointResponse.model_validate_json(outcome).checkpoint
                value = dict(checkpoint.metadata or {}) if checkpoint else planned.changes[0].new
                self._confirm(planned.changes[0].obj, "metadata", value)
            else:
                for change in planned.changes:
                    self._confirm(change.obj, change.field, change.new)
                    self.after_move(change)
            return list(planned.changes), []

    def _apply_patched(self, planned: PlannedCall, content: bytes) -> None:
        """Confirm the patched fields with what the master answered.

        Only PatchExperiment answers with the complete object (getExperimentTx); the other
        PATCH answers carry just the columns their queries select (PatchModel's has id 0), so
        only the fields that were sent are read from them.
        """
        from ._loading import patched_values

        obj = planned.changes[0].obj
        values = patched_values(type(obj), content)
        for change in planned.changes:
            self._confirm(obj, change.field, values.get(change.field, change.new))
        if isinstance(obj, Experiment):
            self._session._apply(obj, values)

    def _apply_bulk(
        self, planned: PlannedCall, content: bytes
    ) -> tuple[list[Change], list[tuple[Change, Exception]]]:
        results = {r.id: r.error for r in w.BulkActionResponse.model_validate_json(content).results}
        applied: list[Change] = []
        failed: list[tuple[Change, Exception]] = []
        for change in planned.changes:
            error = results.get(change.key)
            if error:
                failed.append((change, _bulk_error(planned, change, error)))
            elif change.key not in results:
                failed.append(
                    (
                        change,
                        _bulk_error(planned, change, "the master did not report this experiment"),
                    )
                )
            else:
                self._confirm(change.obj, change.field, change.new)
                self.after_move(change)
                applied.append(change)
        return applied, failed

    def _confirm(self, obj: Resource, name: str, value: Any) -> None:
        """The master now holds ``value`` for ``obj.name``."""
        key = IdentityMap.key_of(obj)
        committed = self._committed.get(key)
        if committed is not None and name in committed:
            committed[name] = _snapshot(value)
            self._forget_if_clean(key)

    def _confirm_label(self, planned: PlannedCall, labels: list[str]) -> None:
        """A label was added or removed; the answer lists the experiment's labels afterwards.

        The baseline moves by exactly that label. Labels someone else added meanwhile (in the
        answer, neither known before nor removed by us) join both the baseline and the object,
        so the next flush does not remove them.
        """
        change = planned.changes[0]
        obj = change.obj
        committed = self._committed.get(IdentityMap.key_of(obj))
        if committed is None or "tags" not in committed:
            return
        baseline = set(committed["tags"])
        ours_removed = set(change.old or ()) - set(change.new or ())
        if planned.call.method == "PUT":
            baseline.add(planned.label)
        else:
            baseline.discard(planned.label)
        foreign = set(labels) - baseline - ours_removed - {planned.label}
        if foreign:
            current: TagSet = obj.__dict__["tags"]
            obj.__dict__["tags"] = TagSet([*current, *sorted(foreign - set(current))])
            self._session._watch(obj)
        committed["tags"] = TagSet([*sorted(baseline | foreign)])
        self._forget_if_clean(IdentityMap.key_of(obj))

    def after_move(self, change: Change) -> None:
        """Keep a moved object's denormalised fields consistent with its new parent."""
        obj = change.obj
        if isinstance(obj, Experiment) and change.field == "project_id":
            destination = self._session.identity.get(Project, change.new)
            for name in ("project_name", "workspace_id", "workspace_name", "parent_archived"):
                obj.__dict__.pop(name, None)
            if destination is not None:
                obj.__dict__["project_name"] = destination.name
                obj.__dict__["workspace_id"] = destination.workspace_id
                obj.__dict__["workspace_name"] = destination.workspace_name
                obj.__dict__["parent_archived"] = destination.archived
            self._session._forget_collections("Project")
        elif isinstance(obj, Project) and change.field == "workspace_id":
            obj.__dict__.pop("workspace_name", None)
            self._session._forget_collections("Workspace")

    @contextmanager
    def begin(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()


def _bulk_error(planned: PlannedCall, change: Change, message: str) -> APIError:
    # A per-id error inside a 200 bulk response.
    return APIError(
        method=planned.call.method, path=planned.call.path, status=200,
        message=f"{change.resource} {change.key}: {message}",
    )  # fmt: skip
