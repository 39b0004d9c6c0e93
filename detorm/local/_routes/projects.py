"""Projects (``api_project.go``, ``project/postgres_project.go``), and helpers the workspace and
model routes share: LIKE matching, wrapped gRPC errors, workspace lookups, experiment deletion.

Basic (non-RBAC) authorization applies, as on an OSS master (``project/authz_basic_impl.go``):
anyone may read, add notes or create projects; renaming, describing, re-keying, archiving and
deleting need an admin or the owner of the project or of its workspace; moving needs an admin or
the project's owner.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, func, update
from sqlmodel import Session, col, select

from detorm._wire import Note, Project, ProjectResponse, WireModel, WorkspaceState, absent
from detorm.local._views import ts

from .. import _tables as t
from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, Code, internal, invalid_argument, not_found, permission_denied
from .._filter_sql import PgError, like
from .._sql_lists import orm_in

__all__ = [
    "NIL_DEREFERENCE",
    "delete_experiments",
    "delete_project_rows",
    "find_workspace",
    "go_quote",
    "like_match",
    "list_filter",
    "project_view",
    "usernames",
    "workspace_state",
    "wrapped_status",
]

# --- helpers shared with the workspace and model routes -----------------------------------------


def wrapped_status(prefix: str, code: Code, message: str) -> ApiError:
    """A status error wrapped by ``errors.Wrapf``: grpc-go keeps the code and sends the whole text."""
    return ApiError(code, f"{prefix}: rpc error: code = {code.reason} desc = {message}")


def like_match(value: str, pattern: str, *, case_insensitive: bool, query: str = "") -> bool:
    """Postgres ``LIKE``/``ILIKE``: ``%`` any run, ``_`` one character, ``\\`` escapes.

    The master passes user text straight in as the pattern, so wildcards in it are live; a
    pattern ending in a lone escape fails the master's query (``query`` names it).
    """
    try:
        return like(value, pattern, case_insensitive=case_insensitive)
    except PgError as err:
        raise internal(f"error running query: {query}: {err.message}") from None


def list_filter(values: Sequence[str]) -> list[str] | None:
    """A repeated filter as the SQL receives it: joined with ``,`` and split by
    ``string_to_array``; None when the joined text is empty (no filter)."""
    joined = ",".join(values)
    return joined.split(",") if joined else None


def go_quote(text: str) -> str:
    """Go's ``%q`` (``strconv.Quote``)."""
    escapes = {
        '"': '\\"',
        "\\": "\\\\",
        "\n": "\\n",
        "\t": "\\t",
        "\r": "\\r",
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\v": "\\v",
    }
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


NIL_DEREFERENCE: Final = "runtime error: invalid memory address or nil pointer dereference"
"""The recovered panic of a handler reading a field of a message the request left out."""


def usernames(db: Session) -> dict[int, str]:
    return {
        row[0]: row[1] for row in db.exec(select(t.UserRow.id, t.UserRow.username)).all() if row[0]
    }


def workspace_state(stored: str) -> WorkspaceState:
    """Stored states may carry the proto prefix or the bare DB value (``DELETING``)."""
    return WorkspaceState.lookup(stored or "UNSPECIFIED")


def find_workspace(
    db: Session, workspace_id: int, *, reject_immutable: bool = False
) -> t.WorkspaceRow:
    """``GetWorkspaceByID``: 404 when missing; with ``reject_immutable`` a plain (500) error for
    the immutable or an archived workspace, whatever the caller is about to do."""
    row = db.get(t.WorkspaceRow, workspace_id)
    if row is None:
        raise not_found(f"workspace '{workspace_id}' not found")
    if reject_immutable and row.immutable:
        raise internal(f"workspace ({workspace_id}) is immutable and cannot add new projects")
    if reject_immutable and row.archived:
        raise internal(f"workspace ({workspace_id}) is archived and cannot add new projects")
    return row


def delete_experiments(db: Session, experiment_ids: Sequence[int]) -> None:
    """Delete experiments as ``deleteExperiments`` leaves them: trials, metrics, logs and
    checkpoints go; checkpoints registered as model versions are never garbage-collected, so
    they stay, detached from their (deleted) trial."""
    if not experiment_ids:
        return
    trial_ids = list(
        db.exec(select(t.TrialRow.id).where(orm_in(t.TrialRow.experiment_id, experiment_ids))).all()
    )
    if trial_ids:
        registered = select(t.ModelVersionRow.checkpoint_uuid)
        db.execute(
            update(t.CheckpointRow)
            .where(
                orm_in(t.CheckpointRow.trial_id, trial_ids),
                col(t.CheckpointRow.uuid).in_(registered),
            )
            .values(trial_id=None)
        )
        db.execute(delete(t.CheckpointRow).where(orm_in(t.CheckpointRow.trial_id, trial_ids)))
        for table in (t.MetricRow, t.SystemMetricRow, t.TrialLogRow):
            db.execute(delete(table).where(orm_in(table.trial_id, trial_ids)))
        db.execute(delete(t.RunHparamRow).where(orm_in(t.RunHparamRow.run_id, trial_ids)))
        db.execute(
            delete(t.LocalIdRedirectRow).where(orm_in(t.LocalIdRedirectRow.run_id, trial_ids))
        )
        db.execute(delete(t.TrialRow).where(orm_in(t.TrialRow.id, trial_ids)))
    db.execute(delete(t.ExperimentRow).where(orm_in(t.ExperimentRow.id, experiment_ids)))


def delete_project_rows(db: Session, project_id: int) -> None:
    """``deleteProject``: its experiments, then the project."""
    experiment_ids = list(
        db.exec(select(t.ExperimentRow.id).where(t.ExperimentRow.project_id == project_id)).all()
    )
    delete_experiments(db, [i for i in experiment_ids if i is not None])
    db.execute(
        delete(t.LocalIdRedirectRow).where(col(t.LocalIdRedirectRow.project_id) == project_id)
    )
    db.execute(delete(t.ProjectRow).where(col(t.ProjectRow.id) == project_id))


# --- project views -------------------------------------------------------------------------------


class _ExperimentStats:
    """Per-project experiment counts, as the project queries compute them."""

    def __init__(self, db: Session, project_ids: Iterable[int]) -> None:
        ids = list(project_ids)
        self.count: dict[int, int] = {}
        self.active: dict[int, int] = {}
        self.last_start: dict[int, datetime] = {}
        self.runs: dict[int, int] = {}
        if not ids:
            return
        exp = t.ExperimentRow
        rows = db.exec(
            select(exp.project_id, func.count(), func.max(exp.start_time))
            .where(orm_in(exp.project_id, ids))
            .group_by(col(exp.project_id))
        ).all()
        for project_id, count, last in rows:
            self.count[project_id] = count
            self.last_start[project_id] = last
        active = db.exec(
            select(exp.project_id, func.count())
            .where(orm_in(exp.project_id, ids), exp.state == "ACTIVE")
            .group_by(col(exp.project_id))
        ).all()
        self.active = {project_id: count for project_id, count in active}
        runs = db.exec(
            select(exp.project_id, func.count())
            .select_from(t.TrialRow)
            .join(exp, exp.id == t.TrialRow.experiment_id)  # type: ignore[arg-type]
            .where(orm_in(exp.project_id, ids))
            .group_by(col(exp.project_id))
        ).all()
        self.runs = {project_id: count for project_id, count in runs}


def _notes(row: t.ProjectRow) -> list[Note]:
    return [Note(name=n.get("name", ""), contents=n.get("contents", "")) for n in row.notes or []]


def project_view(
    db: Session,
    row: t.ProjectRow,
    *,
    stats: _ExperimentStats | None = None,
    names: dict[int, str] | None = None,
    workspace: t.WorkspaceRow | None = None,
    with_runs: bool = True,
) -> Project:
    """``GetProjectByID`` (``getProjectByIDTx`` + ``Project.Proto``).

    ``state`` is always UNSPECIFIED here: the query already prefixes ``WORKSPACE_STATE_`` and
    ``WorkspaceState.ToProto`` prefixes it again, which matches no enum name (``pkg/model``).
    """
    assert row.id is not None
    stats = stats or _ExperimentStats(db, [row.id])
    names = names if names is not None else usernames(db)
    workspace = workspace or db.get(t.WorkspaceRow, row.workspace_id)
    assert workspace is not None
    return Project(
        id=row.id,
        name=row.name,
        workspace_id=row.workspace_id,
        description=row.description,
        last_experiment_started_at=ts(stats.last_start.get(row.id)),
        notes=_notes(row),
        num_experiments=stats.count.get(row.id, 0),
        num_active_experiments=stats.active.get(row.id, 0),
        archived=row.archived or workspace.archived,
        username=names.get(row.user_id, ""),
        immutable=row.immutable,
        user_id=row.user_id,
        workspace_name=workspace.name,
        state=WorkspaceState.UNSPECIFIED,
        error_message=row.error_message or "",
        key=row.key,
        num_runs=stats.runs.get(row.id, 0) if with_runs else 0,
    )


def list_project_view(
    row: t.ProjectRow, stats: _ExperimentStats, names: dict[int, str], workspace_archived: bool
) -> Project:
    """A row of ``get_workspace_projects.sql``: the real state, no workspace name."""
    assert row.id is not None
    return Project(
        id=row.id,
        name=row.name,
        workspace_id=row.workspace_id,
        description=row.description,
        last_experiment_started_at=ts(stats.last_start.get(row.id)),
        notes=_notes(row),
        num_experiments=stats.count.get(row.id, 0),
        num_active_experiments=stats.active.get(row.id, 0),
        archived=workspace_archived or row.archived,
        username=names.get(row.user_id, ""),
        immutable=row.immutable,
        user_id=row.user_id,
        workspace_name="",
        state=workspace_state(row.state),
        error_message=row.error_message or "",
        key=row.key,
        num_runs=stats.runs.get(row.id, 0),
    )


def project_stats(db: Session, project_ids: Iterable[int]) -> _ExperimentStats:
    return _ExperimentStats(db, project_ids)


# --- lookups and permissions ----------------------------------------------------------------------


def _find_project(db: Session, project_id: int) -> t.ProjectRow:
    row = db.get(t.ProjectRow, project_id)
    if row is None:
        raise not_found(f"project '{project_id}' not found")
    return row


def _admin_or_owner(db: Session, user: t.UserRow, project: t.ProjectRow, action: str) -> None:
    """``shouldBeAdminOrOwnWorkspaceOrProject``; the refusal is a PermissionDenied status."""
    if user.admin or user.id == project.user_id:
        return
    workspace = db.get(t.WorkspaceRow, project.workspace_id)
    if workspace is not None and workspace.user_id == user.id:
        return
    raise permission_denied(f"{action}: non admin users need to own the project or workspace")


def _require_user(ctx: Ctx) -> t.UserRow:
    assert ctx.user is not None
    return ctx.user


# --- keys -----------------------------------------------------------------------------------------
_MAX_KEY_LENGTH: Final = 5
_MAX_KEY_PREFIX_LENGTH: Final = 3
_MAX_RETRIES: Final = 5
_KEY_CHARS: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def validate_project_key(key: str) -> None:
    """``ValidateProjectKey`` (lengths are Go byte lengths)."""
    if len(key.encode()) > _MAX_KEY_LENGTH:
        raise invalid_argument(f"project key cannot be longer than {_MAX_KEY_LENGTH} characters")
    if not key:
        raise invalid_argument("project key cannot be empty")
    if re.fullmatch(r"[a-zA-Z0-9]{1,5}", key) is None:
        raise invalid_argument(f"project key can only contain alphanumeric characters: {key}")


def _random_suffix(length: int) -> str:
    # random.String: crypto bytes modulo the alphabet
    return "".join(_KEY_CHARS[b % len(_KEY_CHARS)] for b in secrets.token_bytes(length))


def _generate_key(db: Session, name: str) -> str:
    """``generateProjectKey``: up to 3 alphanumerics of the name, upper-cased, plus random."""
    prefix = re.sub(r"[^a-zA-Z0-9]", "", name).upper()[:_MAX_KEY_PREFIX_LENGTH]
    for _ in range(_MAX_RETRIES):
        key = (prefix + _random_suffix(_MAX_KEY_LENGTH - len(prefix))).upper()
        if db.exec(select(t.ProjectRow.id).where(t.ProjectRow.key == key)).first() is None:
            return key
    raise internal("could not generate a unique project key")


def _key_in_redirects(db: Session, key: str, *, except_project: int | None = None) -> bool:
    query = select(t.LocalIdRedirectRow.id).where(t.LocalIdRedirectRow.project_key == key)
    if except_project is not None:
        query = query.where(t.LocalIdRedirectRow.project_id != except_project)
    return db.exec(query.limit(1)).first() is not None


def _record_redirects(db: Session, project: t.ProjectRow) -> None:
    """Every edit of a project records its runs under its (new) key (``UpdateProject``)."""
    runs = db.exec(
        select(t.TrialRow.id, t.TrialRow.local_id)
        .join(t.ExperimentRow, t.ExperimentRow.id == t.TrialRow.experiment_id)  # type: ignore[arg-type]
        .where(t.ExperimentRow.project_id == project.id)
    ).all()
    for run_id, local_id in runs:
        assert run_id is not None and project.id is not None
        db.add(
            t.LocalIdRedirectRow(
                run_id=run_id, project_id=project.id, project_key=project.key, local_id=local_id
            )
        )


# --- request bodies -------------------------------------------------------------------------------


class _PostProjectBody(WireModel):
    name: str = ""
    description: str = ""
    workspace_id: int = 0
    key: str | None = absent()


class _PatchProjectBody(WireModel):
    name: str | None = None
    description: str | None = None
    key: str | None = None


class _NotesBody(WireModel):
    notes: list[Note] = []


class _MoveProjectBody(WireModel):
    destination_workspace_id: int = 0


# --- handlers -------------------------------------------------------------------------------------


@rpc("GetProject", id=int)
def get_project(ctx: Ctx) -> ProjectResponse:
    return ProjectResponse(project=project_view(ctx.db, _find_project(ctx.db, ctx.path["id"])))


@rpc("GetProjectByKey")
def get_project_by_key(ctx: Ctx) -> ProjectResponse:
    key: str = ctx.path["key"]
    row = ctx.db.exec(select(t.ProjectRow).where(t.ProjectRow.key == key.upper())).first()
    if row is None:
        raise not_found(f"project '{key}' not found")
    return ProjectResponse(project=project_view(ctx.db, row))


@rpc("PostProject", workspace_id=int)
def post_project(ctx: Ctx) -> ProjectResponse:
    user = _require_user(ctx)
    body = ctx.body(_PostProjectBody)
    workspace_id: int = ctx.path["workspace_id"]
    find_workspace(ctx.db, workspace_id, reject_immutable=True)
    key = None
    if body.key is not None:
        key = body.key.upper()
        validate_project_key(key)
    prefix = f"error creating project {body.name} in database"
    insert_prefix = f"error inserting project {body.name} into database"
    if key is not None and _key_in_redirects(ctx.db, key):
        # a status error wrapped twice; MapAndFilterErrors then hides it behind "internal"
        raise wrapped_status(prefix, Code.INTERNAL, "internal server error")
    # Postgres checks CHECK constraints, then unique indexes in creation order (name, then key)
    if not 1 <= len(body.name) <= 80:  # namemin / namemax
        raise wrapped_status(prefix, Code.INTERNAL, "internal server error")
    duplicate = ctx.db.exec(
        select(t.ProjectRow.id).where(
            t.ProjectRow.workspace_id == workspace_id, t.ProjectRow.name == body.name
        )
    ).first()
    if duplicate is not None:
        message = f"{insert_prefix}: project name {body.name} is already in use: row already exists"
        raise wrapped_status(prefix, Code.ALREADY_EXISTS, message)
    if key is not None and _key_taken(ctx.db, key):
        message = f"{insert_prefix}: project key {key} is already in use: row already exists"
        raise wrapped_status(prefix, Code.ALREADY_EXISTS, message)
    row = t.ProjectRow(
        name=body.name,
        workspace_id=workspace_id,
        description=body.description,
        user_id=ctx.user_id,
        key=key or _generate_key(ctx.db, body.name),
        notes=None,
        state="WORKSPACE_STATE_UNSPECIFIED",
        created_at=utcnow(),
    )
    ctx.db.add(row)
    ctx.db.flush()
    assert row.id is not None
    # Project.Proto() of the inserted model: no counts, no workspace name
    project = Project(
        id=row.id,
        name=row.name,
        workspace_id=workspace_id,
        description=row.description,
        user_id=user.id or 0,
        username=user.username,
        key=row.key,
        state=WorkspaceState.UNSPECIFIED,
    )
    return ProjectResponse(project=project)


def _key_taken(db: Session, key: str) -> bool:
    return db.exec(select(t.ProjectRow.id).where(t.ProjectRow.key == key)).first() is not None


@rpc("AddProjectNote", project_id=int)
def add_project_note(ctx: Ctx) -> dict[str, Any]:
    note = ctx.body(Note)
    # body "note": decodeNonProtoField allocates req.Note before reading the body, so an empty
    # body is an empty note, never nil (grpc-gateway runtime/marshal_jsonpb.go)
    row = _find_project(ctx.db, ctx.path["project_id"])
    notes = [*(row.notes or []), {"name": note.name, "contents": note.contents}]
    row.notes = notes
    ctx.db.add(row)
    return {"notes": [n.model_dump_wire() for n in _notes(row)]}


@rpc("PutProjectNotes", project_id=int)
def put_project_notes(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(_NotesBody)
    row = _find_project(ctx.db, ctx.path["project_id"])
    row.notes = [{"name": n.name, "contents": n.contents} for n in body.notes]
    ctx.db.add(row)
    return {"notes": [n.model_dump_wire() for n in _notes(row)]}


@rpc("PatchProject", id=int)
def patch_project(ctx: Ctx) -> ProjectResponse:
    user = _require_user(ctx)
    patch = ctx.body(_PatchProjectBody)  # never nil: see add_project_note
    project_id: int = ctx.path["id"]
    if patch.key is not None:
        validate_project_key(patch.key)  # before upper-casing, as the handler does
    row = _find_project(ctx.db, project_id)
    workspace = ctx.db.get(t.WorkspaceRow, row.workspace_id)
    assert workspace is not None
    if row.archived or workspace.archived:
        raise internal(f"project ({project_id}) is archived and cannot have attributes updated")
    if row.immutable:
        raise internal(f"project ({project_id}) is immutable and cannot have attributes updated")
    with ctx.db.no_autoflush:
        changed = _apply_project_patch(ctx.db, user, row, patch)
        if changed:
            _check_project_update(ctx.db, row)
    if not changed:
        # the row as locked for update: only a handful of columns were selected
        return ProjectResponse(
            project=Project(
                id=project_id,
                name=row.name,
                description=row.description,
                key=row.key,
                workspace_id=row.workspace_id,
                archived=False,
                immutable=row.immutable,
                state=WorkspaceState.UNSPECIFIED,
            )
        )
    ctx.db.add(row)
    ctx.db.flush()
    _record_redirects(ctx.db, row)
    ctx.db.flush()
    # the re-read after the update selects no run count
    return ProjectResponse(project=project_view(ctx.db, row, workspace=workspace, with_runs=False))


def _apply_project_patch(
    db: Session, user: t.UserRow, row: t.ProjectRow, patch: _PatchProjectBody
) -> bool:
    changed = False
    if patch.name is not None and patch.name != row.name:
        _admin_or_owner(db, user, row, "can't set project name")
        row.name, changed = patch.name, True
    if patch.description is not None and patch.description != row.description:
        # the master's description check reuses the name check's message
        _admin_or_owner(db, user, row, "can't set project name")
        row.description, changed = patch.description, True
    if patch.key is not None and patch.key.upper() != row.key:
        _admin_or_owner(db, user, row, "can't set project key")
        row.key, changed = patch.key.upper(), True
    return changed


def _check_project_update(db: Session, row: t.ProjectRow) -> None:
    """The redirect-table test, then the constraints the UPDATE would hit (CHECK first)."""
    if _key_in_redirects(db, row.key, except_project=row.id):
        raise ApiError(
            Code.ALREADY_EXISTS,
            f"error updating project {row.name}, provided key '{row.key}' already in use in redirect table",
        )
    if not 1 <= len(row.name) <= 80:
        constraint = "namemin" if not row.name else "namemax"
        raise internal(
            f'error updating project {row.name}: ERROR: new row for relation "projects" violates check'
            f' constraint "{constraint}" (SQLSTATE 23514)'
        )
    same_name = db.exec(
        select(t.ProjectRow.id).where(
            t.ProjectRow.workspace_id == row.workspace_id,
            t.ProjectRow.name == row.name,
            t.ProjectRow.id != row.id,
        )
    ).first()
    if same_name is not None:
        # the constraint is projects_name_workspace_id_key, which the handler's "projects_name_key"
        # test misses: the sentinel-matched error surfaces as a plain (500) error
        raise internal(f"error updating project {row.name}: row already exists")
    same_key = db.exec(
        select(t.ProjectRow.id).where(t.ProjectRow.key == row.key, t.ProjectRow.id != row.id)
    ).first()
    if same_key is not None:
        raise ApiError(Code.ALREADY_EXISTS, f"project key {row.key} is already in use")


@rpc("DeleteProject", id=int)
def delete_project(ctx: Ctx) -> dict[str, Any]:
    user = _require_user(ctx)
    project_id: int = ctx.path["id"]
    row = _find_project(ctx.db, project_id)
    _admin_or_owner(ctx.db, user, row, "can't delete project")
    if row.immutable:
        raise internal(
            f"project ({project_id}) does not exist or not deletable by this user: not found"
        )
    has_experiments = ctx.db.exec(
        select(t.ExperimentRow.id).where(t.ExperimentRow.project_id == project_id).limit(1)
    ).first()
    # With experiments the master answers at once and deletes in the background; detorm.local
    # finishes the deletion before answering, but answers the same.
    delete_project_rows(ctx.db, project_id)
    return {"completed": has_experiments is None}


@rpc("MoveProject", project_id=int)
def move_project(ctx: Ctx) -> dict[str, Any]:
    user = _require_user(ctx)
    body = ctx.body(_MoveProjectBody)
    project_id: int = ctx.path["project_id"]
    row = _find_project(ctx.db, project_id)
    origin = find_workspace(ctx.db, row.workspace_id)
    find_workspace(ctx.db, body.destination_workspace_id, reject_immutable=True)
    if not user.admin and user.id != row.user_id:
        raise permission_denied("non admin users can't move projects that someone else owns")
    clash = ctx.db.exec(
        select(t.ProjectRow.id).where(
            t.ProjectRow.workspace_id == body.destination_workspace_id,
            t.ProjectRow.name == row.name,
        )
    ).first()
    if clash is not None:
        raise internal(f"project with name '{row.name}' already exists in target workspace")
    # move_project.sql only moves a mutable, unarchived project out of a mutable, unarchived
    # workspace (despite the handler's comment about immutable workspaces)
    if row.immutable or row.archived or origin.archived or origin.immutable:
        raise internal(f"error moving project ({project_id}): not found")
    row.workspace_id = body.destination_workspace_id
    ctx.db.add(row)
    return {}


def _archive(ctx: Ctx, *, archive: bool) -> dict[str, Any]:
    user = _require_user(ctx)
    project_id: int = ctx.path["id"]
    row = _find_project(ctx.db, project_id)
    verb = "archive" if archive else "unarchive"
    _admin_or_owner(ctx.db, user, row, f"can't {verb} project")
    workspace = ctx.db.get(t.WorkspaceRow, row.workspace_id)
    assert workspace is not None
    if workspace.archived:
        raise internal(
            "This project belongs to an archived workspace. To make changes, first unarchive the workspace."
        )
    if row.immutable:
        raise internal(f"error {verb[:-1]}ing project ({project_id}): not found")
    row.archived = archive
    ctx.db.add(row)
    return {}


@rpc("ArchiveProject", id=int)
def archive_project(ctx: Ctx) -> dict[str, Any]:
    return _archive(ctx, archive=True)


@rpc("UnarchiveProject", id=int)
def unarchive_project(ctx: Ctx) -> dict[str, Any]:
    return _archive(ctx, archive=False)
