"""The model registry: models and model versions (``api_model.go``, ``static/srv/get_models.sql``,
``get_model*.sql``, ``update_model*.sql``, ``db.InsertModel``/``InsertModelVersion``).

Each master query selects its own set of columns, and the columns it leaves out come back as zero
values; the views below reproduce each query's set (``PatchModel`` answers without id or user,
the models inside ``GetModelVersions`` have no workspace id, and so on). Labels and metadata are
stored the way the master writes them: labels joined with ``,`` and split again
(``string_to_array``), metadata as ``protojson`` of the request's struct (``{}`` for none).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from detorm import _wire as w
from detorm._plan._collation import collation_key
from detorm._wire import (
    Model,
    ModelSortBy,
    ModelsResponse,
    ModelVersion,
    ModelVersionSortBy,
    OrderBy,
    Struct,
)
from detorm.local._views import string_labels, ts

from .. import _tables as t
from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, Code, internal, invalid_argument, not_found, permission_denied
from .._pagination import in_memory_page
from .._sql_lists import orm_in
from .checkpoints import CheckpointViews, pg_uuid
from .projects import go_quote, like_match, list_filter, usernames

__all__ = ["find_model", "find_version", "model_view"]

_INT32_MAX: Final = 2**31 - 1
_DUPLICATE_NAME: Final = "avoid names equal to other models (case-sensitive)"


# --- storage conversions -------------------------------------------------------------------------


def stored_labels(labels: Sequence[str]) -> list[str]:
    """``string_to_array(strings.Join(labels, ","), ",")``."""
    return list_filter(labels) or []


def _canonical(value: Any) -> Any:
    """What ``protojson`` makes of a Struct value: numbers are doubles, keys sorted."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _same_struct(a: Struct | None, b: Struct | None) -> bool:
    return bool(_canonical(a or {}) == _canonical(b or {}))


# --- views ---------------------------------------------------------------------------------------


def _version_counts(db: Session, model_ids: Sequence[int]) -> dict[int, int]:
    rows = db.exec(
        select(t.ModelVersionRow.model_id, func.count())
        .where(orm_in(t.ModelVersionRow.model_id, model_ids))
        .group_by(col(t.ModelVersionRow.model_id))
    ).all()
    return {model_id: count for model_id, count in rows}


def model_view(
    db: Session,
    row: t.ModelRow,
    *,
    num_versions: int | None = None,
    names: dict[int, str] | None = None,
    omit: frozenset[str] = frozenset(),
) -> Model:
    """A model as ``get_model.sql`` selects it; ``omit`` names the fields a query leaves out."""
    assert row.id is not None
    if num_versions is None:
        num_versions = _version_counts(db, [row.id]).get(row.id, 0)
    names = names if names is not None else usernames(db)
    model = Model(
        name=row.name,
        description=row.description,
        metadata=row.metadata_,
        creation_time=ts(row.creation_time),
        last_updated_time=ts(row.last_updated_time),
        id=row.id,
        num_versions=num_versions,
        labels=list(row.labels or []),
        username=names.get(row.user_id, ""),
        workspace_id=row.workspace_id,
        user_id=row.user_id,
        archived=row.archived,
        notes=row.notes,
    )
    for field in omit:
        setattr(model, field, Model.model_fields[field].get_default(call_default_factory=True))
    return model


# the columns each query leaves out
_MODEL_IN_VERSION_LIST: Final = frozenset({"workspace_id"})  # get_model_versions.sql
_MODEL_IN_NEW_OR_PATCHED_VERSION: Final = frozenset({"workspace_id", "user_id"})
_MODEL_AFTER_POST: Final = frozenset({"user_id", "num_versions", "archived"})  # db.InsertModel
_MODEL_AFTER_PATCH: Final = frozenset(
    {"id", "num_versions", "username", "workspace_id", "user_id", "archived"}
)
_VERSION_AFTER_POST: Final = frozenset(
    {"last_updated_time", "user_id", "notes"}
)  # db.InsertModelVersion
_VERSION_AFTER_PATCH: Final = frozenset(
    {"last_updated_time", "username", "user_id"}
)  # update_model_version


def _version_view(
    views: CheckpointViews,
    row: t.ModelVersionRow,
    model: Model,
    names: dict[int, str],
    checkpoint: t.CheckpointRow,
    *,
    omit: frozenset[str] = frozenset(),
) -> ModelVersion:
    assert row.id is not None
    version = ModelVersion(
        model=model,
        checkpoint=views.view(checkpoint),
        version=row.version,
        creation_time=ts(row.creation_time),
        id=row.id,
        name=row.name,
        metadata=row.metadata_,
        last_updated_time=ts(row.last_updated_time),
        comment=row.comment,
        username=names.get(row.user_id, ""),
        user_id=row.user_id,
        labels=list(row.labels or []),
        notes=row.notes,
    )
    for field in omit:
        setattr(
            version, field, ModelVersion.model_fields[field].get_default(call_default_factory=True)
        )
    return version


# --- lookups -------------------------------------------------------------------------------------


def find_model(db: Session, identifier: str) -> t.ModelRow:
    """``ModelFromIdentifier``: an all-digit identifier is an id, anything else a name."""
    if re.fullmatch(r"[0-9]+", identifier):
        if int(identifier) > _INT32_MAX:
            raise internal(
                f"error fetching model {go_quote(identifier)} from database:"
                " error running query: get_model_by_id:"
                f' ERROR: value "{identifier}" is out of range for type integer (SQLSTATE 22003)'
            )
        row = db.get(t.ModelRow, int(identifier))
    else:
        row = db.exec(select(t.ModelRow).where(t.ModelRow.name == identifier)).first()
    if row is None:
        raise not_found(f"model {go_quote(identifier)} not found")
    return row


def find_version(
    db: Session, identifier: str, number: int
) -> tuple[t.ModelRow, t.ModelVersionRow, t.CheckpointRow]:
    """``ModelVersionFromID``; a version whose checkpoint is gone is not found either."""
    model = find_model(db, identifier)
    row = db.exec(
        select(t.ModelVersionRow).where(
            t.ModelVersionRow.model_id == model.id, t.ModelVersionRow.version == number
        )
    ).first()
    checkpoint = db.get(t.CheckpointRow, row.checkpoint_uuid) if row is not None else None
    if row is None or checkpoint is None:
        raise not_found(f"version {number} for model {go_quote(identifier)} not found")
    return model, row, checkpoint


def _validate_model_name(name: str) -> None:
    """``clearModelName``."""
    if not name.replace(" ", ""):
        raise invalid_argument("model names cannot be blank")
    if "  " in name:
        raise invalid_argument("model names cannot have excessive spacing")
    if "/" in name or "\\" in name:
        raise invalid_argument("model names cannot have slashes")
    if re.fullmatch(r"[0-9]+", name):
        raise invalid_argument("model names cannot be only numbers")


def _workspace_by_name(db: Session, name: str) -> t.WorkspaceRow:
    row = db.exec(select(t.WorkspaceRow).where(t.WorkspaceRow.name == name)).first()
    if row is None:
        raise internal(f"failed to get workspace {name}: not found")
    return row


def _fk_violation(prefix: str) -> ApiError:
    return internal(
        f'{prefix}: ERROR: insert or update on table "models" violates foreign key constraint'
        ' "models_workspace_id_fkey" (SQLSTATE 23503)'
    )


def _name_taken(db: Session, name: str, *, other_than: int | None = None) -> bool:
    query = select(t.ModelRow.id).where(t.ModelRow.name == name)
    if other_than is not None:
        query = query.where(t.ModelRow.id != other_than)
    return db.exec(query).first() is not None


def _caller(ctx: Ctx) -> t.UserRow:
    assert ctx.user is not None
    return ctx.user


# --- models --------------------------------------------------------------------------------------

_SORT_KEYS: Final[dict[ModelSortBy, str]] = {
    ModelSortBy.CREATION_TIME: "creation_time",
    ModelSortBy.LAST_UPDATED_TIME: "last_updated_time",
}


@rpc("GetModels")
def get_models(ctx: Ctx) -> ModelsResponse:
    q = ctx.query
    sort_by = q.get_enum("sort_by", ModelSortBy, "apiv1.GetModelsRequest_SortBy")
    order = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    offset, limit = q.get_int("offset"), q.get_int("limit")
    model_id = q.get_int("id")
    archived = q.get_bool_value("archived")
    users = list_filter(q.get_strs("users"))
    user_ids = q.get_ints("user_ids")
    labels = list_filter(q.get_strs("labels"))
    name, description = "%" + q.get_str("name") + "%", "%" + q.get_str("description") + "%"
    workspace_ids = _workspace_filter(
        ctx.db, q.get_ints("workspace_ids"), q.get_strs("workspace_names")
    )
    names = usernames(ctx.db)
    rows = []
    for row in ctx.db.exec(select(t.ModelRow)).all():
        if model_id and row.id != model_id:
            continue
        if archived is not None and row.archived != archived:
            continue
        if users is not None and names.get(row.user_id) not in users:
            continue
        if user_ids and row.user_id not in user_ids:
            continue
        if labels is not None and not set(row.labels or []) & set(labels):  # any label matches
            continue
        if not like_match(row.name, name, case_insensitive=True):
            continue
        if not like_match(row.description, description, case_insensitive=True):
            continue
        if workspace_ids and row.workspace_id not in workspace_ids:
            continue
        rows.append(row)
    counts = _version_counts(ctx.db, [r.id for r in rows if r.id is not None])
    _sort_models(ctx.db, rows, sort_by, counts, descending=order == OrderBy.DESC)
    page = in_memory_page(offset, limit, len(rows))
    models = [
        model_view(ctx.db, r, num_versions=counts.get(r.id or 0, 0), names=names)
        for r in page.slice(rows)
    ]
    return ModelsResponse(models=models, pagination=page.pagination)


def _workspace_filter(db: Session, ids: list[int], workspace_names: list[str]) -> list[int]:
    """Ids win over names; names nobody has match no workspace, and then nothing is filtered."""
    if ids:
        return ids
    if not workspace_names:
        return []
    found = db.exec(
        select(t.WorkspaceRow.id).where(orm_in(t.WorkspaceRow.name, workspace_names))
    ).all()
    return [i for i in found if i is not None]


def _sort_models(
    db: Session,
    rows: list[t.ModelRow],
    sort_by: ModelSortBy,
    counts: dict[int, int],
    *,
    descending: bool,
) -> None:
    """``ORDER BY <col> <dir>, id <dir>``; text in the database's collation."""
    rows.sort(key=lambda r: r.id or 0, reverse=descending)
    if sort_by == ModelSortBy.NAME:
        rows.sort(key=lambda r: collation_key(r.name), reverse=descending)
    elif sort_by == ModelSortBy.DESCRIPTION:
        rows.sort(key=lambda r: collation_key(r.description), reverse=descending)
    elif sort_by in _SORT_KEYS:
        attribute = _SORT_KEYS[sort_by]
        rows.sort(key=lambda r: _sort_value(getattr(r, attribute)), reverse=descending)
    elif sort_by == ModelSortBy.NUM_VERSIONS:
        rows.sort(key=lambda r: counts.get(r.id or 0, 0), reverse=descending)
    elif sort_by == ModelSortBy.WORKSPACE:
        workspaces = {w.id: w.name for w in db.exec(select(t.WorkspaceRow)).all()}
        rows.sort(
            key=lambda r: collation_key(workspaces.get(r.workspace_id, "")), reverse=descending
        )


def _sort_value(value: Any) -> Any:
    return collation_key(value) if isinstance(value, str) else value  # text: the collation


@rpc("GetModel")
def get_model(ctx: Ctx) -> dict[str, Any]:
    return {
        "model": model_view(ctx.db, find_model(ctx.db, ctx.path["model_name"])).model_dump_wire()
    }


@rpc("GetModelLabels")
def get_model_labels(ctx: Ctx) -> dict[str, Any]:
    workspace_id = ctx.query.get_optional_int("workspace_id")
    query = select(t.ModelRow)
    if workspace_id is not None and workspace_id > 0:
        query = query.where(t.ModelRow.workspace_id == workspace_id)
    models_by_label: dict[str, set[int]] = {}
    for row in ctx.db.exec(query).all():
        for label in row.labels or []:
            models_by_label.setdefault(label, set()).add(row.id or 0)
    # ORDER BY COUNT(DISTINCT model) DESC, label ASC
    ordered = sorted(
        models_by_label, key=lambda label: (-len(models_by_label[label]), collation_key(label))
    )
    return {"labels": ordered}


@rpc("PostModel")
def post_model(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(w.PostModelRequest)
    _validate_model_name(body.name)
    workspace_id = 1
    if body.workspace_id is not None:
        workspace_id = body.workspace_id
    elif body.workspace_name is not None:
        workspace = _workspace_by_name(ctx.db, body.workspace_name)
        assert workspace.id is not None
        workspace_id = workspace.id
    if _name_taken(ctx.db, body.name):
        raise ApiError(Code.ALREADY_EXISTS, _DUPLICATE_NAME)
    if ctx.db.get(t.WorkspaceRow, workspace_id) is None:
        raise _fk_violation(f"error creating model {go_quote(body.name)} in database")
    now = utcnow()
    row = t.ModelRow(
        name=body.name,
        description=body.description,
        metadata_=body.metadata or {},
        creation_time=now,
        last_updated_time=now,
        labels=stored_labels(body.labels),
        user_id=ctx.user_id,
        workspace_id=workspace_id,
        notes=body.notes,
    )
    ctx.db.add(row)
    ctx.db.flush()
    return {
        "model": model_view(ctx.db, row, num_versions=0, omit=_MODEL_AFTER_POST).model_dump_wire()
    }


@rpc("PatchModel")
def patch_model(ctx: Ctx) -> dict[str, Any]:
    patch = ctx.body(w.PatchModel)
    row = find_model(ctx.db, ctx.path["model_name"])
    if row.archived:
        raise internal(f"model {go_quote(row.name)} is archived and cannot have attributes updated")
    current = model_view(ctx.db, row)
    with ctx.db.no_autoflush:
        if not _apply_model_patch(ctx.db, row, patch):
            return {"model": current.model_dump_wire()}
        if _name_taken(ctx.db, row.name, other_than=row.id):
            raise ApiError(Code.ALREADY_EXISTS, _DUPLICATE_NAME)
    row.last_updated_time = utcnow()
    ctx.db.add(row)
    ctx.db.flush()
    # update_model.sql returns only name, description, notes, metadata, labels and times
    return {
        "model": model_view(ctx.db, row, num_versions=0, omit=_MODEL_AFTER_PATCH).model_dump_wire()
    }


def _apply_model_patch(db: Session, row: t.ModelRow, patch: w.PatchModel) -> bool:
    """Apply the changes to ``row`` (the caller checks uniqueness before anything is flushed)."""
    changed = False
    if patch.name is not None and patch.name != row.name:
        _validate_model_name(patch.name)
        row.name, changed = patch.name, True
    if patch.description is not None and patch.description != row.description:
        row.description, changed = patch.description, True
    if patch.notes is not None and patch.notes != row.notes:
        row.notes, changed = patch.notes, True
    if patch.metadata is not None and not _same_struct(row.metadata_, patch.metadata):
        row.metadata_, changed = patch.metadata, True
    labels = ",".join(row.labels or [])
    if patch.labels is not None and ",".join(string_labels(patch.labels)) != labels:
        labels, changed = ",".join(string_labels(patch.labels)), True
    destination = _patch_destination(db, patch)
    if destination is not None and destination != row.workspace_id:
        row.workspace_id, changed = destination, True
    if changed:
        row.labels = labels.split(",") if labels else []  # string_to_array of the joined labels
    return changed


def _patch_destination(db: Session, patch: w.PatchModel) -> int | None:
    if patch.workspace_id is not None:
        if db.get(t.WorkspaceRow, patch.workspace_id) is None:
            raise internal(f"failed to get workspace with id {patch.workspace_id}: not found")
        # The master reads the workspace with sqlx StructScan into workspacev1.Workspace, whose
        # fields have no db tags: the user_id column has no destination and the scan fails.
        raise internal(
            f"failed to get workspace with id {patch.workspace_id}: missing destination name user_id in"
            " *workspacev1.Workspace"
        )
    if patch.workspace_name is not None:
        return _workspace_by_name(db, patch.workspace_name).id
    return None


def _set_model_archived(ctx: Ctx, *, archived: bool) -> dict[str, Any]:
    row = find_model(ctx.db, ctx.path["model_name"])
    row.archived = archived
    row.last_updated_time = utcnow()
    ctx.db.add(row)
    return {}


@rpc("ArchiveModel")
def archive_model(ctx: Ctx) -> dict[str, Any]:
    return _set_model_archived(ctx, archived=True)


@rpc("UnarchiveModel")
def unarchive_model(ctx: Ctx) -> dict[str, Any]:
    return _set_model_archived(ctx, archived=False)


@rpc("MoveModel")
def move_model(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(w.MoveModelRequest)
    identifier: str = ctx.path["model_name"]
    row = find_model(ctx.db, identifier)
    if ctx.db.get(t.WorkspaceRow, body.destination_workspace_id) is None:
        raise _fk_violation(f"error moving a model ({identifier}): error running query: move_model")
    row.workspace_id = body.destination_workspace_id
    ctx.db.add(row)
    return {}


@rpc("DeleteModel")
def delete_model(ctx: Ctx) -> dict[str, Any]:
    user = _caller(ctx)
    row = find_model(ctx.db, ctx.path["model_name"])
    if not user.admin and user.id != row.user_id:
        raise permission_denied("non-admin users may not delete other users' models access denied")
    ctx.db.execute(delete(t.ModelVersionRow).where(col(t.ModelVersionRow.model_id) == row.id))
    ctx.db.delete(row)
    return {}


# --- model versions ------------------------------------------------------------------------------


@rpc("GetModelVersion", model_version_num=int)
def get_model_version(ctx: Ctx) -> dict[str, Any]:
    model, row, checkpoint = find_version(
        ctx.db, ctx.path["model_name"], ctx.path["model_version_num"]
    )
    names = usernames(ctx.db)
    version = _version_view(
        CheckpointViews(ctx.db), row, model_view(ctx.db, model, names=names), names, checkpoint
    )
    return {"modelVersion": version.model_dump_wire()}


@rpc("GetModelVersions")
def get_model_versions(ctx: Ctx) -> dict[str, Any]:
    q = ctx.query
    sort_by = q.get_enum("sort_by", ModelVersionSortBy, "apiv1.GetModelVersionsRequest_SortBy")
    order = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    offset, limit = q.get_int("offset"), q.get_int("limit")
    model = find_model(ctx.db, ctx.path["model_name"])
    names = usernames(ctx.db)
    rows = ctx.db.exec(
        select(t.ModelVersionRow).where(t.ModelVersionRow.model_id == model.id)
    ).all()
    checkpoints = {
        c.uuid: c
        for c in ctx.db.exec(
            select(t.CheckpointRow).where(
                orm_in(t.CheckpointRow.uuid, [r.checkpoint_uuid for r in rows])
            )
        ).all()
    }
    listed = [r for r in rows if r.checkpoint_uuid in checkpoints]
    # api.Sort: the requested field, then the version; DESC reverses both
    key_of: dict[ModelVersionSortBy, Any] = {
        ModelVersionSortBy.CREATION_TIME: lambda r: (r.creation_time, r.version),
    }
    listed.sort(key=key_of.get(sort_by, lambda r: r.version), reverse=order == OrderBy.DESC)
    page = in_memory_page(offset, limit, len(listed))
    parent = model_view(ctx.db, model, names=names)
    inner = model_view(
        ctx.db, model, num_versions=parent.num_versions, names=names, omit=_MODEL_IN_VERSION_LIST
    )
    views = CheckpointViews(ctx.db)
    shown = page.slice(listed)
    views.views([checkpoints[r.checkpoint_uuid] for r in shown])
    versions = [
        _version_view(views, r, inner, names, checkpoints[r.checkpoint_uuid]) for r in shown
    ]
    return {
        "model": parent.model_dump_wire(),
        "modelVersions": [v.model_dump_wire() for v in versions],
        "pagination": page.pagination.model_dump_wire(),
    }


@rpc("PostModelVersion")
def post_model_version(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(w.PostModelVersionRequest)
    model = find_model(ctx.db, ctx.path["model_name"])
    if model.archived:
        raise internal(f"model {go_quote(model.name)} is archived and cannot register new versions")
    canonical = pg_uuid(body.checkpoint_uuid)
    if canonical is None:
        raise internal(
            "error running query: get_checkpoint: ERROR: invalid input syntax for type uuid:"
            f' "{body.checkpoint_uuid}" (SQLSTATE 22P02)'
        )
    checkpoint = ctx.db.get(t.CheckpointRow, canonical)
    if checkpoint is None:
        raise not_found(f"checkpoint '{body.checkpoint_uuid}' not found")
    if checkpoint.state.removeprefix("STATE_") != "COMPLETED":
        raise internal(
            f"checkpoint {checkpoint.uuid} is in STATE_{checkpoint.state.removeprefix('STATE_')} state."
            " checkpoints for model versions must be in a COMPLETED state"
        )
    names = usernames(ctx.db)
    # the statement's snapshot does not see the version it inserts
    inner = model_view(ctx.db, model, names=names, omit=_MODEL_IN_NEW_OR_PATCHED_VERSION)
    versions = ctx.db.exec(
        select(t.ModelVersionRow.version).where(t.ModelVersionRow.model_id == model.id)
    ).all()
    now = utcnow()
    row = t.ModelVersionRow(
        model_id=model.id or 0,
        version=max(versions, default=0) + 1,
        checkpoint_uuid=checkpoint.uuid,
        name=body.name,
        comment=body.comment,
        notes=body.notes,
        labels=stored_labels(body.labels),
        metadata_=body.metadata or {},
        user_id=ctx.user_id,
        creation_time=now,
        last_updated_time=now,
    )
    ctx.db.add(row)
    ctx.db.flush()
    version = _version_view(
        CheckpointViews(ctx.db), row, inner, names, checkpoint, omit=_VERSION_AFTER_POST
    )
    return {"modelVersion": version.model_dump_wire()}


@rpc("PatchModelVersion", model_version_num=int)
def patch_model_version(ctx: Ctx) -> dict[str, Any]:
    patch = ctx.body(w.PatchModelVersion)
    identifier: str = ctx.path["model_name"]
    model, row, checkpoint = find_version(ctx.db, identifier, ctx.path["model_version_num"])
    names = usernames(ctx.db)
    views = CheckpointViews(ctx.db)
    current = _version_view(views, row, model_view(ctx.db, model, names=names), names, checkpoint)
    if not _apply_version_patch(row, patch):
        return {"modelVersion": current.model_dump_wire()}
    row.last_updated_time = utcnow()
    ctx.db.add(row)
    ctx.db.flush()
    inner = model_view(ctx.db, model, names=names, omit=_MODEL_IN_NEW_OR_PATCHED_VERSION)
    version = _version_view(views, row, inner, names, checkpoint, omit=_VERSION_AFTER_PATCH)
    return {"modelVersion": version.model_dump_wire()}


def _apply_version_patch(row: t.ModelVersionRow, patch: w.PatchModelVersion) -> bool:
    changed = False
    for field in ("name", "comment", "notes"):
        value = getattr(patch, field)
        if value is not None and value != getattr(row, field):
            setattr(row, field, value)
            changed = True
    if patch.metadata is not None and not _same_struct(row.metadata_, patch.metadata):
        row.metadata_, changed = patch.metadata, True
    labels = ",".join(row.labels or [])
    if patch.labels is not None:
        # the master de-duplicates through a Go map, so its order is random; detorm.local keeps
        # the first occurrences in request order
        requested = ",".join(string_labels(patch.labels))
        changed = changed or requested != labels
        labels = requested
    if changed:
        row.labels = labels.split(",") if labels else []
    return changed


@rpc("DeleteModelVersion", model_version_num=int)
def delete_model_version(ctx: Ctx) -> dict[str, Any]:
    user = _caller(ctx)
    model, row, _ = find_version(ctx.db, ctx.path["model_name"], ctx.path["model_version_num"])
    if not user.admin and user.id not in (row.user_id, model.user_id):
        raise permission_denied(
            "non-admin users may not delete other users' model versions access denied"
        )
    ctx.db.delete(row)
    return {}
