"""The planner's second half: from pending edits and bulk actions to REST calls.

A flush sends the fewest requests the real API allows: only changed fields; one PATCH per
object for plain attributes; tags through the per-label PUT and DELETE routes (so that a
concurrent edit by someone else is not overwritten by a full-list replace); experiment moves as
one bulk move per destination project; archive and unarchive as one bulk request each.

Calls run in three stages (unarchive, then edits and moves, then archive) because the master
refuses to move archived experiments and to archive what is not yet in place; calls within a
stage are independent and are sent concurrently. Before them, some objects are read again: those
whose last commit had an unknown outcome, and those whose edited collection the master can only
replace whole (model labels, metadata dicts), so that what is sent holds everyone's latest edits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Final, Generic, Literal, TypeVar

from .. import _display
from .. import _wire as w
from .._resources._base import Resource, TagSet
from .._resources._models import Model, Project, Workspace
from ._call import Call, path
from ._conditions import Condition, Leaf
from ._loading import refetch
from ._planner import conjuncts, exact_runs_filter, experiment_states

__all__ = [
    "BulkPlan",
    "BulkResult",
    "Change",
    "FlushPlan",
    "PlannedCall",
    "RunAction",
    "RunPlan",
    "bulk_filters",
    "created_values",
    "creation_call",
    "plan_bulk",
    "plan_flush",
    "plan_runs",
]

Kind = Literal[
    "patch", "label", "binding", "bulk", "action", "notes", "metadata", "create", "delete"
]
UNARCHIVE, EDIT, ARCHIVE = 0, 1, 2
# Deletions come after every edit (a move out of a project precedes its deletion), children
# before their parents (a version before its model, a model or project before its workspace).
DELETE_CHILDREN, DELETE_PARENTS, DELETE_WORKSPACES = 3, 4, 5
# The pseudo-fields of a creation and a deletion in a Change.
CREATED, DELETED = "<created>", "<deleted>"
GLOBAL_PROJECT: Final = -1  # experiment.GlobalProjectID: bulk actions across every project


@dataclass(frozen=True)
class Change:
    """One pending change of one field of one object."""

    resource: str
    key: Any
    field: str
    old: Any
    new: Any
    obj: Resource = dataclass_field(compare=False, repr=False)

    def __str__(self) -> str:
        where = f"{self.resource} {self.key}"
        if self.field == CREATED:
            return f"create {self.resource} {self.new!r}"
        if self.field == DELETED:
            return f"delete {where}"
        if isinstance(self.new, TagSet) or isinstance(self.old, TagSet):
            added = sorted(set(self.new) - set(self.old or ()))
            removed = sorted(set(self.old or ()) - set(self.new))
            parts = [f"+{a!r}" for a in added] + [f"-{r!r}" for r in removed]
            return f"{where}: {self.field} {' '.join(parts)}"
        return f"{where}: {self.field} {_short(self.old)} -> {_short(self.new)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class PlannedCall:
    """A request of a flush, the changes it carries and how to read its answer."""

    call: Call
    kind: Kind
    stage: int
    changes: tuple[Change, ...]
    label: str = ""  # label and binding calls: the label or pool added or removed

    def __str__(self) -> str:
        carried = "; ".join(str(c) for c in self.changes)
        return f"{self.call.method} {self.call.url}  <- {carried}"


@dataclass(frozen=True)
class FlushPlan:
    """The calls a flush will make, in stage order, after reading ``reads`` again."""

    calls: tuple[PlannedCall, ...]
    reads: tuple[Resource, ...] = ()

    def __iter__(self) -> Iterator[PlannedCall]:
        return iter(self.calls)

    def __len__(self) -> int:
        return len(self.calls)

    def stages(self) -> list[list[PlannedCall]]:
        """The calls in the order commit() sends them: each stage's calls go out together."""
        by_stage: dict[int, list[PlannedCall]] = defaultdict(list)
        for planned in self.calls:
            by_stage[planned.stage].append(planned)
        return [by_stage[s] for s in sorted(by_stage)]

    def without(self, objects: Iterable[Resource]) -> FlushPlan:
        """This plan without the calls carrying changes of ``objects``."""
        skipped = set(objects)
        kept = (p for p in self.calls if not any(c.obj in skipped for c in p.changes))
        return FlushPlan(tuple(kept))

    def __str__(self) -> str:
        if not self.calls and not self.reads:
            return "nothing to send"
        reads = [f"{refetch(obj)[0]}  <- read first" for obj in self.reads]
        return "\n".join([*reads, *(str(c) for c in self.calls)])

    def __repr__(self) -> str:
        reads = f", {len(self.reads)} read(s) first" if self.reads else ""
        return f"<FlushPlan: {len(self.calls)} call(s){reads}>"

    def _repr_html_(self) -> str:
        """Jupyter's view: each call the commit will send, its stage and the changes it
        carries (nothing is sent)."""
        return _display.plan_html(self)


# --- flushing edits --------------------------------------------------------------------------
# Collections whose only write route replaces them whole (PatchModel, PatchModelVersion,
# PostCheckpointMetadata, PatchTemplateConfig): sent after a fresh read, so that others' edits
# are kept.
_REPLACED_WHOLE: Final = frozenset({
    ("Model", "labels"), ("Model", "metadata"), ("ModelVersion", "labels"),
    ("ModelVersion", "metadata"), ("Checkpoint", "metadata"), ("Template", "config"),
    ("Workspace", "checkpoint_storage_config"),
})  # fmt: skip


def needs_fresh_read(change: Change) -> bool:
    """Whether the object must be read just before ``change`` is sent."""
    if (change.resource, change.field) == ("Experiment", "tags"):
        return not _label_routes_carry(change)
    return (change.resource, change.field) in _REPLACED_WHOLE


def _label_routes_carry(change: Change) -> bool:
    """Whether the per-label routes can carry every label ``change`` adds or removes.

    The master decodes the whole path before grpc-gateway splits it at ``/``, and reads what
    follows a ``:`` in the last segment as a verb no route has (501): a label holding either
    cannot be one segment (detorm/local/_app.py has the details). Such edits replace the whole
    list with PatchExperiment instead, after a fresh read.
    """
    edited = set(change.old or ()) ^ set(change.new or ())
    return not any("/" in label or ":" in label for label in edited)


def plan_flush(
    changes: Sequence[Change],
    *,
    reread: Iterable[Resource] = (),
    deletions: Sequence[Change] = (),
    creations: Sequence[PlannedCall] = (),
) -> FlushPlan:
    """The calls that apply ``changes`` (grouped per object, per bulk action, per destination),
    after reading ``reread`` and the objects :func:`needs_fresh_read` names; then
    ``deletions``. ``creations`` (already planned: they run first, level by level) are shown
    first."""
    deleted = {(c.resource, c.key) for c in deletions}
    changes = [c for c in changes if (c.resource, c.key) not in deleted]  # no use sending
    by_object: dict[tuple[str, Any], list[Change]] = defaultdict(list)
    for change in changes:
        by_object[(change.resource, change.key)].append(change)
    calls: list[PlannedCall] = []
    archive: dict[bool, list[Change]] = defaultdict(list)
    moves: dict[int, list[Change]] = defaultdict(list)
    queue = [c for c in changes if c.resource == "Job"]
    if queue:
        calls.append(_queue_update(queue))
    for (resource, _), object_changes in by_object.items():
        if resource == "Job":
            continue
        for change in object_changes:
            if resource == "Experiment" and change.field == "archived":
                archive[bool(change.new)].append(change)
            elif resource == "Experiment" and change.field == "project_id":
                moves[int(change.new)].append(change)
        rest = [
            c for c in object_changes
            if not (resource == "Experiment" and c.field in ("archived", "project_id"))
        ]  # fmt: skip
        calls.extend(_object_calls(resource, rest))
    for archived, group in archive.items():
        calls.append(_bulk_archive(group, archived))
    for destination, group in sorted(moves.items()):
        calls.append(_bulk_move(group, destination))
    calls.extend(_deletion_calls(deletions))
    reads = dict.fromkeys([*reread, *(c.obj for c in changes if needs_fresh_read(c))])
    ordered = (*creations, *sorted(calls, key=lambda c: c.stage))
    return FlushPlan(ordered, tuple(reads))


# --- deletions ---------------------------------------------------------------------------------
def deletion(obj: Resource) -> Change:
    """The pending deletion of ``obj`` as a change."""
    return Change(type(obj).__name__, obj.pk, DELETED, False, True, obj)


def _deletion_calls(deletions: Sequence[Change]) -> list[PlannedCall]:
    """One request per object, but experiments in one DeleteExperiments per source project and
    checkpoints in one DeleteCheckpoints: the fewest the API allows."""
    calls: list[PlannedCall] = []
    experiments: dict[int, list[Change]] = defaultdict(list)
    checkpoints = [c for c in deletions if c.resource == "Checkpoint"]
    for change in deletions:
        if change.resource == "Experiment":
            experiments[int(change.obj.__dict__.get("project_id", GLOBAL_PROJECT))].append(change)
        elif change.resource != "Checkpoint":
            calls.append(_delete_one(change))
    for project, group in sorted(experiments.items()):
        body = {"experimentIds": sorted(c.key for c in group), "projectId": project}
        call = Call("DELETE", path("/api/v1/projects/{p}/experiments/delete", p=project), body=body)
        calls.append(PlannedCall(call, "bulk", DELETE_CHILDREN, tuple(group)))
    if checkpoints:
        body = {"checkpointUuids": sorted(c.key for c in checkpoints)}
        call = Call("DELETE", "/api/v1/checkpoints", body=body)
        calls.append(PlannedCall(call, "delete", DELETE_CHILDREN, tuple(checkpoints)))
    return calls


def _delete_one(change: Change) -> PlannedCall:
    values = change.obj.__dict__
    resource, stage = change.resource, DELETE_PARENTS
    if resource == "Workspace":
        where, stage = path("/api/v1/workspaces/{id}", id=change.key), DELETE_WORKSPACES
    elif resource == "Project":
        where = path("/api/v1/projects/{id}", id=change.key)
    elif resource == "Model":
        where = path("/api/v1/models/{id}", id=change.key)
    elif resource == "ModelVersion":
        where = path("/api/v1/models/{m}/versions/{v}", m=values["model_id"], v=values["version"])
        stage = DELETE_CHILDREN
    elif resource == "Template":
        where, stage = path("/api/v1/templates/{name}", name=change.key), DELETE_CHILDREN
    else:
        raise AssertionError(f"{resource} cannot be deleted through the unit of work")
    return PlannedCall(Call("DELETE", where), "delete", stage, (change,))


DELETABLE: Final = frozenset(
    {"Workspace", "Project", "Model", "ModelVersion", "Experiment", "Checkpoint", "Template"}
)


# --- creations ---------------------------------------------------------------------------------
CREATABLE: Final = frozenset({"Workspace", "Project", "Model"})


def creation(obj: Resource) -> Change:
    """The pending creation of the new object ``obj`` as a change (``new``: its name)."""
    return Change(type(obj).__name__, None, CREATED, None, obj.__dict__.get("name"), obj)


def creation_call(obj: Resource, parent: int | None) -> PlannedCall:
    """The POST that creates the new ``obj``, made by its constructor (which checked every
    value): the one body of both ``session.add(obj)``'s commit and ``Workspace.create`` etc.
    ``parent``: its workspace's id (None: a model in the Uncategorized workspace; for display
    only, a placeholder while the workspace is new).

    What is left out when empty, the master reads as the same request (proto3 plain fields:
    an empty string is the default; api_workspace.go ignores an empty checkpoint storage
    Struct, api_model.go stores an absent metadata Struct as ``{}``). The project key is
    ``optional``: absent, the master makes one from the name (InsertProject)."""
    values = obj.__dict__
    resource = type(obj).__name__
    if resource == "Workspace":
        body: dict[str, Any] = {"name": values["name"]}
        if values.get("checkpoint_storage_config") is not None:
            body["checkpointStorageConfig"] = values["checkpoint_storage_config"]
        for name, wire in (
            ("default_compute_pool", "defaultComputePool"), ("default_aux_pool", "defaultAuxPool")
        ):  # fmt: skip
            if values.get(name):
                body[wire] = values[name]
        call = Call("POST", "/api/v1/workspaces", body=body)
    elif resource == "Project":
        body = {"name": values["name"], "description": values["description"]}
        body["workspaceId"] = parent
        if "key" in values:  # given: even "" assigned later (PostProject refuses it)
            body["key"] = values["key"]
        where = (
            path("/api/v1/workspaces/{id}/projects", id=parent)
            if parent is not None
            else "/api/v1/workspaces/(new)/projects"
        )
        call = Call("POST", where, body=body)
    elif resource == "Model":
        body = {
            "name": values["name"], "description": values["description"],
            "notes": values["notes"], "labels": sorted(values["labels"]),
        }  # fmt: skip
        if values["metadata"]:
            body["metadata"] = dict(values["metadata"])
        if parent is not None:
            body["workspaceId"] = parent
        call = Call("POST", "/api/v1/models", body=body)
    else:
        raise AssertionError(f"{resource} cannot be created through the unit of work")
    return PlannedCall(call, "create", UNARCHIVE - 1, (creation(obj),))


# What each POST answers with (its wire model), and the fields its answer leaves out (the
# master's POST answers are the inserted row's proto: no counts, no names of other tables).
_CREATED: Final[dict[str, tuple[Any, str, Callable[[Any], dict[str, Any]], set[str]]]] = {
    "Workspace": (w.WorkspaceResponse, "workspace", Workspace.values_from_wire, {"pinned_at"}),
    "Project": (w.ProjectResponse, "project", Project.values_from_wire, {"workspace_name"}),
    "Model": (w.ModelResponse, "model", Model.values_from_wire, {"user_id"}),
}


def created_values(obj: Resource, content: bytes) -> dict[str, Any]:
    """The field values of the object ``creation_call(obj)`` created, from the POST's answer
    (the fields it leaves out are not in them)."""
    response, attribute, from_wire, missing = _CREATED[type(obj).__name__]
    wire = getattr(response.model_validate_json(content), attribute)
    assert wire is not None  # the master's answer always holds the created object
    values = from_wire(wire)
    return {k: v for k, v in values.items() if k not in missing}


_QUEUE_FIELDS: Final = {"priority": "priority", "weight": "weight", "resource_pool": "resourcePool"}


def _queue_update(changes: Sequence[Change]) -> PlannedCall:
    """Every queue edit of the commit in one ``UpdateJobQueue``: one ``QueueControl`` per
    changed field (its action is a oneof), applied by the master in order."""
    updates = [{"jobId": c.key, _QUEUE_FIELDS[c.field]: c.new} for c in changes]
    call = Call("POST", "/api/v1/job-queues", body={"updates": updates})
    return PlannedCall(call, "patch", EDIT, tuple(changes))


def _source_project(changes: Sequence[Change]) -> int:
    # The bulk path names the source project; experiments from several use the global one.
    sources = {
        c.old if c.field == "project_id" else c.obj.__dict__.get("project_id") for c in changes
    }
    if len(sources) == 1:
        (source,) = sources
        if isinstance(source, int):
            return source
    return GLOBAL_PROJECT


def _bulk_archive(changes: Sequence[Change], archived: bool) -> PlannedCall:
    action = "archive" if archived else "unarchive"
    project = _source_project(changes)
    body = {"experimentIds": sorted(c.key for c in changes), "projectId": project}
    call = Call(
        "POST", path("/api/v1/projects/{p}/experiments/{a}", p=project, a=action), body=body
    )
    return PlannedCall(call, "bulk", ARCHIVE if archived else UNARCHIVE, tuple(changes))


def _bulk_move(changes: Sequence[Change], destination: int) -> PlannedCall:
    project = _source_project(changes)
    body = {
        "experimentIds": sorted(c.key for c in changes),
        "destinationProjectId": destination,
        "projectId": project,
    }
    call = Call("POST", path("/api/v1/projects/{p}/experiments/move", p=project), body=body)
    return PlannedCall(call, "bulk", EDIT, tuple(changes))


def _object_calls(resource: str, changes: Sequence[Change]) -> list[PlannedCall]:
    if not changes:
        return []
    builder = _OBJECT_PLANNERS[resource]
    return builder(changes)


def _by_field(changes: Sequence[Change]) -> dict[str, Change]:
    return {c.field: c for c in changes}


def _patch(call_path: str, body: dict[str, Any], changes: Sequence[Change]) -> PlannedCall:
    return PlannedCall(Call("PATCH", call_path, body=body), "patch", EDIT, tuple(changes))


def _archive(resource_path: str, change: Change) -> PlannedCall:
    """``POST .../archive`` or ``.../unarchive``, as the change asks."""
    action, stage = ("archive", ARCHIVE) if change.new else ("unarchive", UNARCHIVE)
    return PlannedCall(Call("POST", f"{resource_path}/{action}"), "action", stage, (change,))


def _move(resource_path: str, body: dict[str, Any], change: Change) -> PlannedCall:
    return PlannedCall(Call("POST", resource_path + "/move", body=body), "action", EDIT, (change,))


def _label_calls(change: Change) -> list[PlannedCall]:
    old, new = set(change.old or ()), set(change.new or ())

    def where(label: str) -> str:
        return path("/api/v1/experiments/{id}/labels/{label}", id=change.key, label=label)

    calls = [
        PlannedCall(Call("PUT", where(label)), "label", EDIT, (change,), label)
        for label in sorted(new - old)
    ]
    calls += [
        PlannedCall(Call("DELETE", where(label)), "label", EDIT, (change,), label)
        for label in sorted(old - new)
    ]
    return calls


def _experiment_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    fields = _by_field(changes)
    key = changes[0].key
    base = path("/api/v1/experiments/{id}", id=key)
    calls: list[PlannedCall] = []
    body: dict[str, Any] = {"id": key}
    carried = [fields[f] for f in ("name", "description", "notes") if f in fields]
    for name in ("name", "description", "notes"):
        if name in fields:
            body[name] = fields[name].new
    resources = {
        wire: fields[name].new
        for name, wire in (
            ("priority", "priority"),
            ("weight", "weight"),
            ("max_slots", "maxSlots"),
        )
        if name in fields
    }
    if resources:
        body["resources"] = resources
        carried += [fields[f] for f in ("priority", "weight", "max_slots") if f in fields]
    tags = fields.get("tags")
    if tags is not None and not _label_routes_carry(tags):
        # PatchExperiment stores the list de-duplicated in random order (a Go map).
        body["labels"] = sorted(tags.new)
        carried.append(tags)
    if carried:
        calls.append(_patch(base, body, carried))
    if tags is not None and _label_routes_carry(tags):
        calls.extend(_label_calls(tags))
    return calls


def _project_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    fields = _by_field(changes)
    key = changes[0].key
    base = path("/api/v1/projects/{id}", id=key)
    calls: list[PlannedCall] = []
    patched = [fields[f] for f in ("name", "description", "key") if f in fields]
    if patched:
        calls.append(_patch(base, {c.field: c.new for c in patched}, patched))
    if "notes" in fields:
        notes = [{"name": n.name, "contents": n.contents} for n in fields["notes"].new]
        call = Call("PUT", base + "/notes", body={"notes": notes, "projectId": key})
        calls.append(PlannedCall(call, "notes", EDIT, (fields["notes"],)))
    if "workspace_id" in fields:
        body = {"projectId": key, "destinationWorkspaceId": fields["workspace_id"].new}
        calls.append(_move(base, body, fields["workspace_id"]))
    if "archived" in fields:
        calls.append(_archive(base, fields["archived"]))
    return calls


def _workspace_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    fields = _by_field(changes)
    base = path("/api/v1/workspaces/{id}", id=changes[0].key)
    calls: list[PlannedCall] = []
    body: dict[str, Any] = {}
    carried: list[Change] = []
    for name, wire in _WORKSPACE_PATCH.items():
        if name in fields:
            new = fields[name].new
            # an empty object clears the workspace's storage (None is not sent: "unchanged")
            body[wire] = {} if name == "checkpoint_storage_config" and new is None else new
            carried.append(fields[name])
    if carried:
        calls.append(_patch(base, body, carried))
    if "archived" in fields:
        calls.append(_archive(base, fields["archived"]))
    if "resource_pools" in fields:
        calls.extend(_binding_calls(fields["resource_pools"]))
    return calls


def _binding_calls(change: Change) -> list[PlannedCall]:
    """BindRPToWorkspace per pool added, UnbindRPFromWorkspace per pool removed: a binding
    belongs to the pool (``/resource-pools/{pool}/workspace-bindings``), so each pool is one
    request whose body repeats the path's pool (the gateway maps body "*" onto the same
    field)."""
    old, new = set(change.old or ()), set(change.new or ())

    def binding(method: str, pool: str) -> PlannedCall:
        where = path("/api/v1/resource-pools/{pool}/workspace-bindings", pool=pool)
        body = {"resourcePoolName": pool, "workspaceIds": [change.key]}
        return PlannedCall(Call(method, where, body=body), "binding", EDIT, (change,), pool)

    return [binding("POST", pool) for pool in sorted(new - old)] + [
        binding("DELETE", pool) for pool in sorted(old - new)
    ]


# PatchWorkspace's fields (the pools by their non-deprecated names).
_WORKSPACE_PATCH: Final = {
    "name": "name",
    "checkpoint_storage_config": "checkpointStorageConfig",
    "default_compute_pool": "defaultComputeResourcePool",
    "default_aux_pool": "defaultAuxResourcePool",
}
_AGENT_FIELDS: Final = {
    "agent_uid": "agentUid", "agent_gid": "agentGid", "agent_user": "agentUser",
    "agent_group": "agentGroup",
}  # fmt: skip


def _user_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    """One PatchUser. The agent user and group travel together (PatchUser's AgentUserGroup
    replaces all four), from the object's values."""
    fields = _by_field(changes)
    values = changes[0].obj.__dict__
    body: dict[str, Any] = {}
    for name, wire in (("display_name", "displayName"), ("active", "active"), ("admin", "admin")):
        if name in fields:
            body[wire] = fields[name].new
    if any(name in fields for name in _AGENT_FIELDS):
        group = {wire: values.get(name) for name, wire in _AGENT_FIELDS.items()}
        body["agentUserGroup"] = {k: v for k, v in group.items() if v is not None}
    call = Call("PATCH", path("/api/v1/users/{id}", id=changes[0].key), body=body)
    return [_patch_call(call, changes)]


def _model_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    fields = _by_field(changes)
    # {model_name} takes the numeric id too, which a rename in the same PATCH cannot break.
    base = path("/api/v1/models/{id}", id=changes[0].key)
    calls: list[PlannedCall] = []
    patched = [
        fields[f] for f in ("name", "description", "notes", "labels", "metadata") if f in fields
    ]
    if patched:
        calls.append(_patch(base, {c.field: _plain(c.new) for c in patched}, patched))
    if "workspace_id" in fields:
        # MoveModel, not PatchModel's workspaceId: the master's PatchModel fails on that path
        # (a struct scan of the destination workspace it cannot complete).
        body = {
            "modelName": str(changes[0].key),
            "destinationWorkspaceId": fields["workspace_id"].new,
        }
        calls.append(_move(base, body, fields["workspace_id"]))
    if "archived" in fields:
        calls.append(_archive(base, fields["archived"]))
    return calls


def _model_version_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    obj = changes[0].obj
    base = path(
        "/api/v1/models/{m}/versions/{v}", m=obj.__dict__["model_id"], v=obj.__dict__["version"]
    )
    body = {c.field: _plain(c.new) for c in changes}
    return [_patch(base, body, changes)]


def _checkpoint_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    (change,) = changes
    base = path("/api/v1/checkpoints/{uuid}/metadata", uuid=change.key)
    body = {"checkpoint": {"uuid": change.key, "metadata": change.new}}
    return [PlannedCall(Call("POST", base, body=body), "metadata", EDIT, (change,))]


def _plain(value: Any) -> Any:
    return sorted(value) if isinstance(value, TagSet) else value


def _template_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    (change,) = changes  # config is the only field edited through the unit of work
    call = Call("PATCH", path("/api/v1/templates/{name}", name=change.key), body=change.new)
    return [_patch_call(call, changes)]


def _generic_task_calls(changes: Sequence[Change]) -> list[PlannedCall]:
    (change,) = changes  # priority: SetCommandPriority and its siblings
    collection = type(change.obj)._collection  # type: ignore[attr-defined]
    call = Call(
        "POST", path(f"/api/v1/{collection}/{{id}}/set_priority", id=change.key),
        body={"priority": change.new},
    )  # fmt: skip
    return [_patch_call(call, changes)]


def _patch_call(call: Call, changes: Sequence[Change]) -> PlannedCall:
    return PlannedCall(call, "patch", EDIT, tuple(changes))


_OBJECT_PLANNERS: Final = {
    "Experiment": _experiment_calls,
    "Project": _project_calls,
    "Workspace": _workspace_calls,
    "User": _user_calls,
    "Model": _model_calls,
    "ModelVersion": _model_version_calls,
    "Checkpoint": _checkpoint_calls,
    "Template": _template_calls,
    "Command": _generic_task_calls,
    "Shell": _generic_task_calls,
    "Notebook": _generic_task_calls,
    "Tensorboard": _generic_task_calls,
}


# --- bulk actions on queries -----------------------------------------------------------------
BulkAction = Literal[
    "activate", "pause", "cancel", "kill", "archive", "unarchive", "delete", "move"
]


@dataclass(frozen=True)
class BulkPlan:
    """A bulk action: by filters in one request when the query fits them, else by ids."""

    action: BulkAction
    project: int
    filters: dict[str, Any] | None
    destination: int | None = None

    def call(self, experiment_ids: Iterable[int] = ()) -> Call:
        body: dict[str, Any] = {"projectId": self.project}
        if self.filters is not None:
            body["filters"] = self.filters
        else:
            body["experimentIds"] = sorted(experiment_ids)
        if self.destination is not None:
            body["destinationProjectId"] = self.destination
        method = "DELETE" if self.action == "delete" else "POST"
        return Call(
            method,
            path("/api/v1/projects/{p}/experiments/{a}", p=self.project, a=self.action),
            body=body,
        )


def bulk_filters(condition: Condition | None) -> dict[str, Any] | None:
    """``BulkExperimentFilters`` expressing ``condition`` exactly, or None when it cannot."""
    filters: dict[str, Any] = {}
    for cond in conjuncts(condition):
        if (
            not isinstance(cond, Leaf)
            or cond.field.kind != "column"
            or not _add_filter(filters, cond)
        ):
            return None
    return filters


def _add_filter(filters: dict[str, Any], leaf: Leaf) -> bool:
    name, lookup, value = leaf.field.name, leaf.lookup, leaf.value
    if name in ("name", "description") and lookup == "contains" and name not in filters:
        if any(ch in value for ch in "%_"):
            return False  # ILIKE wildcards would widen the match
        filters[name] = value
        return True
    if name == "tags" and lookup == "contains":
        filters.setdefault("labels", []).append(value)
        return True
    if name == "archived" and lookup == "exact" and "archived" not in filters:
        filters["archived"] = value
        return True
    if name == "state" and lookup in ("exact", "in") and "states" not in filters:
        stored: list[str] = []
        for state in value if lookup == "in" else [value]:
            names, exact = experiment_states(state)
            if not exact:
                return False  # QUEUED and its kin are reported, not stored: read the ids
            stored += names
        filters["states"] = [f"STATE_{name}" for name in dict.fromkeys(stored)]
        return bool(stored)
    if name == "user_id" and lookup in ("exact", "in") and "userIds" not in filters:
        filters["userIds"] = list(value) if lookup == "in" else [value]
        return True
    if name == "project_id" and lookup == "exact" and "projectId" not in filters:
        filters["projectId"] = value
        return True
    if name == "id" and lookup == "ne":
        filters.setdefault("excludedExperimentIds", []).append(value)
        return True
    return False


def plan_bulk(
    condition: Condition | None, action: BulkAction, *, ordered_or_sliced: bool,
    destination: int | None = None,
) -> BulkPlan:  # fmt: skip
    """Filters when they express the query exactly (one request); otherwise ids (query first)."""
    project = GLOBAL_PROJECT
    for cond in conjuncts(condition):
        if isinstance(cond, Leaf) and cond.field.name == "project_id" and cond.lookup == "exact":
            project = cond.value
    filters = None if ordered_or_sliced else bulk_filters(condition)
    if filters is not None and condition is None:
        filters = {}
    return BulkPlan(action, project, filters, destination)


# The runs API's actions on trials (api_runs.go). Each request is scoped to one project (the
# master selects `r.project_id = projectId`; there is no global project as for experiments).
RunAction = Literal["kill", "pause", "resume", "archive", "unarchive", "delete", "move"]


@dataclass(frozen=True)
class RunPlan:
    """A run action: by the query's filter tree when it expresses the query exactly (one
    request per project holding matches), else by run ids."""

    action: RunAction
    filter: str | None
    destination: int | None = None
    skip_multitrial: bool = False

    def call(self, project: int, run_ids: Iterable[int] = ()) -> Call:
        body: dict[str, Any] = {}
        if self.filter is not None:
            # Delete, archive, pause and their twins refuse ids next to a filter.
            body["filter"] = self.filter
        else:
            body["runIds"] = sorted(run_ids)
        if self.action == "move":
            body["sourceProjectId"] = project
            body["destinationProjectId"] = self.destination
            body["skipMultitrial"] = self.skip_multitrial
        else:
            body["projectId"] = project
        return Call("POST", path("/api/v1/runs/{a}", a=self.action), body=body)


def plan_runs(
    condition: Condition | None, action: RunAction, *, ordered_or_sliced: bool,
    destination: int | None = None, skip_multitrial: bool = False,
) -> RunPlan:  # fmt: skip
    """The filter when it expresses the query exactly; otherwise ids (the query is read)."""
    run_filter = None if ordered_or_sliced else exact_runs_filter(condition)
    return RunPlan(action, run_filter, destination, skip_multitrial)


K = TypeVar("K", int, str)


@dataclass(frozen=True)
class BulkResult(Generic[K]):
    """The per-id outcome of a bulk action: an empty message means success (ids are ints for
    experiments, task ids for commands and their siblings)."""

    action: str
    outcomes: dict[K, str]

    @property
    def succeeded(self) -> list[K]:
        """The keys (ids) the action was applied to, sorted."""
        return sorted(k for k, error in self.outcomes.items() if not error)

    @property
    def failed(self) -> dict[K, str]:
        """The keys (ids) the action failed for, with the master's reason."""
        return {k: error for k, error in sorted(self.outcomes.items()) if error}

    def raise_for_errors(self) -> BulkResult[K]:
        """Raise :class:`~detorm.errors.BulkActionError` if any id failed; else return self."""
        from ..errors import BulkActionError

        if self.failed:
            raise BulkActionError(self.action, self.failed, self.succeeded)
        return self

    def __len__(self) -> int:
        return len(self.outcomes)

    def __repr__(self) -> str:
        return f"<BulkResult {self.action}: {len(self.succeeded)} ok, {len(self.failed)} failed>"

    def _repr_html_(self) -> str:
        """Jupyter's view: the outcome of each id."""
        return _display.bulk_html(self)
