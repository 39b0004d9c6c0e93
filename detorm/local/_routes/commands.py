"""Commands, notebooks, shells and TensorBoards (``master/internal/api_command.go``,
``api_notebook.go``, ``api_shell.go``, ``api_tensorboard.go``, ``command/command.go``,
``command/command_service.go``), run by the simulated cluster of ``_scheduler.py``.

The master keeps these tasks in memory (``CommandService``): an exited one stays listed for
:data:`~detorm.local._scheduler.TERMINATED_RETENTION_SECONDS` (24 hours), and a restarted master
restores only the ones still running, so here a task that ended before this app started, or more
than a day ago, is gone (404, out of the lists) though its row, task and logs stay.

Basic (OSS) authorization (``command/authz_basic_impl.go``): everyone may see, launch, kill and
reprioritize every task. Oddities of the master kept here, where the real API forces them:

- ``sortBy=SORT_BY_WORKSPACE_ID`` names field 5 of the task message, which none of the four has:
  the sort panics as soon as there are two tasks to compare (500, the Go runtime's message).
- GetCommands and GetShells drop tasks of workspaces that no longer exist (``AccessibleScopes``);
  GetNotebooks too; GetTensorboards keeps them (``FilterTensorboards`` lets everything through).
- Killing a task that already exited succeeds and returns it unchanged; the kill response shows
  the task as it was when the kill was sent (a started task is still ``RUNNING``).
- SetXPriority takes any number (the job queue's update checks 1..99).
- A TensorBoard's description is always ``TensorBoard (<petname>)``, whatever the config says; its
  ``experimentIds``/``trialIds`` are the request's (empty when it named ``filters``).
- Slots below 0 fail before the config is read: no pool is picked for them, so the error names
  the pool ``""``.
"""

from __future__ import annotations

import html
import posixpath
import random
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlmodel import Session, col, select

from detorm._wire import BulkExperimentFilters, OrderBy

from .. import _ntsc_config as ntsc_config
from .. import _scheduler as sim
from .. import _tables as t
from .._app import Ctx, echo, rpc
from .._db import utcnow
from .._errors import ApiError, Code, internal, invalid_argument, not_found
from .._filter_sql import fetch
from .._ntsc_config import (
    ConfigError,
    apply_config,
    context_archive,
    default_config,
    go_json,
    just_resources,
    launch_message_size,
    marshal,
    petname,
    struct_view,
    validation_error,
)
from .._pagination import in_memory_page
from .._sql_lists import orm_in
from .experiment_actions import _filter_conditions
from .templates import template_config

__all__ = ["KINDS", "cluster_session", "registry_visible", "wire_time"]

DEFAULT_WORKSPACE_ID: Final = 1
RESOURCE_POOLS: Final = ("default",)
_PANIC_NIL: Final = "runtime error: invalid memory address or nil pointer dereference"


@dataclass(frozen=True)
class Kind:
    task_type: str  # model.TaskType
    key: str  # the response's field
    plural: str
    job_type: str
    label: str  # a launched task's description: "<label> (<petname>)"


KINDS: Final = {
    "COMMAND": Kind("COMMAND", "command", "commands", "TYPE_COMMAND", "Command"),
    "NOTEBOOK": Kind("NOTEBOOK", "notebook", "notebooks", "TYPE_NOTEBOOK", "JupyterLab"),
    "SHELL": Kind("SHELL", "shell", "shells", "TYPE_SHELL", "Shell"),
    "TENSORBOARD": Kind(
        "TENSORBOARD", "tensorboard", "tensorboards", "TYPE_TENSORBOARD", "TensorBoard"
    ),
}  # fmt: skip

_ENTRYPOINTS: Final = {
    "NOTEBOOK": "/run/determined/jupyter/notebook-entrypoint.sh",
    "SHELL": "/run/determined/ssh/shell-entrypoint.sh",
    "TENSORBOARD": "/run/determined/tensorboard/tensorboard-entrypoint.sh",
}
_PORTS: Final = {"NOTEBOOK": 2900, "SHELL": 3200, "TENSORBOARD": 2600}  # + rand.Intn(299)


# --- shared with tasks.py and jobs.py -------------------------------------------------------------
@contextmanager
def cluster_session(ctx: Ctx) -> Iterator[Session]:
    """A session in which the cluster has advanced to now. The scheduler writes on reads too,
    so a GET (whose own transaction only reads, and sees nothing written after it began) gets a
    write transaction of its own; other methods use the request's."""
    if ctx.method == "GET":
        with sim.advanced(ctx.app.db, ctx.app.cluster) as db:
            yield db
    else:
        sim.advance(ctx.db, ctx.app.cluster)
        yield ctx.db


def wire_time(value: datetime | None) -> str | None:
    """A datetime as jsonpb writes a Timestamp (UTC, 0, 3 or 6 fraction digits)."""
    if value is None:
        return None
    value = sim.as_utc(value)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    micros = value.microsecond
    if micros == 0:
        return base + "Z"
    if micros % 1000 == 0:
        return f"{base}.{micros // 1000:03d}Z"
    return f"{base}.{micros:06d}Z"


def registry_visible(task: t.TaskRow, cluster: sim.Cluster, now: datetime) -> bool:
    """Whether the master still holds the task (see the module docstring)."""
    if task.end_time is None:
        return True
    ended = sim.as_utc(task.end_time)
    retention = timedelta(seconds=sim.TERMINATED_RETENTION_SECONDS)
    return ended >= cluster.booted_at and ended + retention > now


def allocation_id(task_id: str) -> str:
    """The id of a command-like task's one allocation."""
    return f"{task_id}.1"


def live_allocation(db: Session, task_id: str) -> t.AllocationRow | None:
    """The task's (one) allocation."""
    return db.get(t.AllocationRow, allocation_id(task_id))


def _allocations(db: Session, tasks: Sequence[t.TaskRow]) -> dict[str, t.AllocationRow]:
    """The tasks' allocations by task id, in one query (one per task cost more than the rest of
    a list)."""
    ids = [allocation_id(task.task_id) for task in tasks]
    query = select(t.AllocationRow).where(orm_in(t.AllocationRow.allocation_id, ids))
    return {row.task_id: row for row in db.exec(query).all()}


# --- views ----------------------------------------------------------------------------------------
_CONTAINER_STATES: Final = {
    "ASSIGNED": "STATE_ASSIGNED", "PULLING": "STATE_PULLING", "STARTING": "STATE_STARTING",
    "RUNNING": "STATE_RUNNING", "TERMINATING": "STATE_TERMINATED", "TERMINATED": "STATE_TERMINATED",
}  # fmt: skip


def task_state(allocation: t.AllocationRow | None) -> str:
    """``enrichState``: pending and assigned allocations show as queued."""
    if allocation is None or allocation.state in ("PENDING", "ASSIGNED"):
        return "STATE_QUEUED"
    return f"STATE_{allocation.state}"


def container_view(
    cluster: sim.Cluster, allocation: t.AllocationRow | None
) -> dict[str, Any] | None:
    """``AllocationState.SingleContainer``: the container once the agent has one."""
    if allocation is None or allocation.container_id is None:
        return None
    return {
        "parent": "",
        "id": allocation.container_id,
        "state": _CONTAINER_STATES.get(allocation.state, "STATE_UNSPECIFIED"),
        "devices": [cluster.device(index) for index in allocation.devices or []],
        "permissionDenied": False,
    }


def _owner(db: Session, user_id: int) -> t.UserRow:
    user = db.get(t.UserRow, user_id)
    assert user is not None
    return user


def _addresses(task: t.TaskRow, allocation: t.AllocationRow | None) -> list[dict[str, Any]]:
    if allocation is None or allocation.state != "RUNNING" or task.proxy_port is None:
        return []
    port = task.proxy_port
    return [
        {"container_ip": sim.AGENT_ADDRESS, "container_port": port, "host_ip": sim.AGENT_ADDRESS,
         "host_port": port}
    ]  # fmt: skip


def task_view(
    db: Session,
    cluster: sim.Cluster,
    task: t.TaskRow,
    allocations: Mapping[str, t.AllocationRow] | None = None,
    users: Mapping[int, t.UserRow] | None = None,
) -> dict[str, Any]:
    """``ToV1Command``/``ToV1Notebook``/``ToV1Shell``/``ToV1Tensorboard``, fields in the order
    of their messages. A list passes what it read for all its tasks at once: their
    :func:`_allocations` and the users by id."""
    if allocations is None:
        allocation = live_allocation(db, task.task_id)
    else:
        allocation = allocations.get(task.task_id)
    owner = _owner(db, task.owner_id) if users is None else users[task.owner_id]
    state = "STATE_TERMINATED" if task.exit_status is not None else task_state(allocation)
    view: dict[str, Any] = {
        "id": task.task_id,
        "description": task.description,
        "state": state,
        "startTime": wire_time(task.start_time),
        "container": container_view(cluster, allocation),
    }
    kind = task.task_type
    if kind == "SHELL":
        view["privateKey"] = task.private_key or ""
        view["publicKey"] = task.public_key or ""
    if kind == "TENSORBOARD":
        view["experimentIds"] = list(task.experiment_ids or [])
        view["trialIds"] = list(task.trial_ids or [])
    view["displayName"] = owner.display_name or ""
    view["userId"] = task.owner_id
    view["username"] = owner.username
    if kind == "NOTEBOOK":
        view["serviceAddress"] = f"/proxy/{task.task_id}/?token={task.notebook_token or ''}"
    elif kind == "TENSORBOARD":
        view["serviceAddress"] = f"/proxy/{task.task_id}/"
    view["resourcePool"] = task.resource_pool
    view["exitStatus"] = task.exit_status or ""
    if kind == "SHELL":
        view["addresses"] = _addresses(task, allocation)
        view["agentUserGroup"] = task.agent_user_group
    view["jobId"] = task.job_id
    view["workspaceId"] = task.workspace_id
    return view


def config_view(task: t.TaskRow) -> dict[str, Any]:
    return struct_view(marshal(task.config))  # type: ignore[no-any-return]


# --- lookups -----------------------------------------------------------------------------------
def find_task(db: Session, ctx: Ctx, kind: Kind, task_id: str) -> t.TaskRow:
    """``getNTSC``: the task, of this type, still held by the master (404 otherwise)."""
    task = db.get(t.TaskRow, task_id)
    if (
        task is None
        or task.task_type != kind.task_type
        or not registry_visible(task, ctx.app.cluster, utcnow())
    ):
        raise not_found(f"{kind.key} '{task_id}' not found")
    return task


def _sort_key(sort_by: int) -> Callable[[dict[str, Any]], Any]:
    field = {1: "id", 2: "description", 4: "startTime"}[sort_by]
    if field == "startTime":  # compared as times (the text's fraction has 0 to 6 digits)
        return lambda view: (
            datetime.fromisoformat(view["startTime"].replace("Z", "+00:00")),
            view["id"],
        )
    return lambda view: (view[field], view["id"])


def list_tasks(ctx: Ctx, kind: Kind) -> dict[str, Any]:
    q = ctx.query
    usernames = set(q.get_strs("users"))
    user_ids = set(q.get_ints("user_ids"))
    workspace_id = q.get_int("workspace_id")
    order = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    sort_by = _sort_by(q.get_str("sort_by"))
    offset, limit = q.get_int("offset"), q.get_int("limit")
    with cluster_session(ctx) as db:
        if workspace_id != 0 and db.get(t.WorkspaceRow, workspace_id) is None:
            raise not_found(f"workspace '{workspace_id}' not found")
        now = utcnow()
        users = {user.id: user for user in db.exec(select(t.UserRow)).all() if user.id is not None}
        workspaces = set(db.exec(select(t.WorkspaceRow.id)).all())
        rows = db.exec(select(t.TaskRow).where(t.TaskRow.task_type == kind.task_type)).all()
        allocations = _allocations(db, rows)
        views = []
        for task in rows:
            if not registry_visible(task, ctx.app.cluster, now):
                continue
            if workspace_id != 0 and task.workspace_id != workspace_id:
                continue
            owner = users.get(task.owner_id)
            if (usernames or user_ids) and not (
                (owner is not None and owner.username in usernames) or task.owner_id in user_ids
            ):
                continue
            if kind.task_type != "TENSORBOARD" and workspace_id == 0:
                if task.workspace_id not in workspaces:  # AccessibleScopes
                    continue
            views.append(task_view(db, ctx.app.cluster, task, allocations, users))
    if sort_by == 5:
        if len(views) >= 2:
            raise internal(_PANIC_NIL)
    else:
        views.sort(key=_sort_key(sort_by or 1), reverse=order == OrderBy.DESC)
    page = in_memory_page(offset, limit, len(views))
    return {kind.plural: page.slice(views), "pagination": page.pagination.model_dump_wire()}


def _sort_by(text: str) -> int:
    """The ``sortBy`` enum (shared by the four list requests) by name or number."""
    names = {"SORT_BY_UNSPECIFIED": 0, "SORT_BY_ID": 1, "SORT_BY_DESCRIPTION": 2,
             "SORT_BY_START_TIME": 4, "SORT_BY_WORKSPACE_ID": 5}  # fmt: skip
    if not text:
        return 0
    if text in names:
        return names[text]
    try:
        number = int(text)
    except ValueError:
        raise ApiError(
            Code.INVALID_ARGUMENT,
            f"type mismatch, parameter: sort_by, error: {text} is not valid",
        ) from None
    return number


def get_task(ctx: Ctx, kind: Kind, task_id: str) -> dict[str, Any]:
    with cluster_session(ctx) as db:
        task = find_task(db, ctx, kind, task_id)
        return {kind.key: task_view(db, ctx.app.cluster, task), "config": config_view(task)}


def kill_task(ctx: Ctx, kind: Kind, task_id: str) -> dict[str, Any]:
    """``KillNTSC``: the response shows the task as it was when the kill was sent."""
    with cluster_session(ctx) as db:
        task = find_task(db, ctx, kind, task_id)
        view = task_view(db, ctx.app.cluster, task)
        sim.kill(db, ctx.app.cluster, task, utcnow())
        if task.exit_status is not None:  # exited at once (it was queued)
            view = task_view(db, ctx.app.cluster, task)
        return {kind.key: view}


def set_priority(ctx: Ctx, kind: Kind, task_id: str) -> dict[str, Any]:
    """``SetNTSCPriority``: any number (no 1..99 check here), the group's priority and the
    config's ``resources.priority``."""
    document = ctx.document or {}
    priority = int(document.get("priority", 0))
    with cluster_session(ctx) as db:
        task = find_task(db, ctx, kind, task_id)
        set_task_priority(db, task, priority)
        sim.schedule(db, ctx.app.cluster, utcnow())
        return {kind.key: task_view(db, ctx.app.cluster, task)}


def set_task_priority(db: Session, task: t.TaskRow, priority: int) -> None:
    config = dict(task.config)
    config["resources"] = {**config["resources"], "priority": priority}
    task.config = config
    task.priority = priority
    db.add(task)


# --- launching ----------------------------------------------------------------------------------
def _wrap(err: ApiError) -> ApiError:
    """``api.WrapWithFallbackCode(err, InvalidArgument, "failed to prepare launch params")``."""
    return ApiError(err.code, f"failed to prepare launch params: {err.message}")


def _agent_user_group(db: Session, user: t.UserRow, workspace_id: int) -> dict[str, Any]:
    """``user.GetAgentUserGroup``: the user's (or ``root``/0), then the workspace's fields."""
    uid, gid = user.agent_uid, user.agent_gid
    name, group = user.agent_user, user.agent_group
    if uid is None and gid is None and name is None and group is None:
        uid, gid, name, group = 0, 0, "root", "root"
    workspace = db.get(t.WorkspaceRow, workspace_id)
    if workspace is not None:
        uid = workspace.agent_uid if workspace.agent_uid is not None else uid
        gid = workspace.agent_gid if workspace.agent_gid is not None else gid
        name = workspace.agent_user if workspace.agent_user is not None else name
        group = workspace.agent_group if workspace.agent_group is not None else group
    return {"gid": gid or 0, "group": group or "", "id": 0, "uid": uid or 0,
            "user": name or "", "user_id": 0}  # fmt: skip


def _resolve_pool(
    db: Session, cluster: sim.Cluster, pool: str, slots: int, workspace_id: int
) -> str:
    """``ResolveResources``: the workspace's default pools, then the pool must exist, and a
    single-node request must fit on one agent."""
    workspace = db.get(t.WorkspaceRow, workspace_id)
    compute = workspace.default_compute_pool if workspace is not None else ""
    aux = workspace.default_aux_pool if workspace is not None else ""
    if pool == "" and slots == 0:
        pool = aux or sim.POOL
    if pool == "" and slots >= 0:
        pool = compute or sim.POOL
    if pool not in RESOURCE_POOLS:
        raise invalid_argument(
            f"resource pool {pool} does not exist or is not available to workspace id"
            f" {workspace_id}"
        )
    if slots != 0 and slots > cluster.slots:
        raise invalid_argument(
            "validating resources: request unfulfillable, please try requesting less slots"
        )
    return pool


@dataclass
class _Launch:
    workspace_id: int
    config: dict[str, Any]
    context: bytes | None
    agent_user_group: dict[str, Any]


def _launch_params(ctx: Ctx, db: Session, document: dict[str, Any], zero_slots: bool) -> _Launch:
    """``getCommandLaunchParams``; its errors come back wrapped."""
    workspace_id = int(document.get("workspaceId") or 0) or DEFAULT_WORKSPACE_ID
    user = ctx.user
    assert user is not None
    agent_group = _agent_user_group(db, user, workspace_id)
    request_config = document.get("config")
    slots, pool = just_resources(request_config)
    if zero_slots:
        slots = 0
    try:
        pool = _resolve_pool(db, ctx.app.cluster, pool, slots, workspace_id)
        config = default_config()
        template = document.get("templateName") or ""
        if template:
            try:
                apply_config(config, template_config(db, template), strict=False)
            except ConfigError as err:
                raise invalid_argument(f"yaml.Unmarshal(template={template}): {err}") from None
        if db.get(t.WorkspaceRow, workspace_id) is None:
            raise not_found(f"workspace '{workspace_id}' not found")
        default_work_dir = config["work_dir"]
        if request_config is not None:
            try:
                apply_config(config, request_config, strict=True)
            except ConfigError as err:
                raise invalid_argument(
                    f"unable to decode the merged config: {go_json(request_config)}: {err}"
                ) from None
        config["resources"]["resource_pool"] = pool
        config["resources"]["slots"] = slots
        if config["resources"]["priority"] is None:
            config["resources"]["priority"] = sim.DEFAULT_PRIORITY
        files = document.get("files") or []
        context: bytes | None = None
        if files:
            work_dir = config["work_dir"]
            if work_dir is not None and (default_work_dir is None or default_work_dir != work_dir):
                raise invalid_argument("cannot set work_dir and context directory at the same time")
            config["work_dir"] = None
            context = context_archive(files)
    except ApiError as err:
        raise _wrap(err) from None
    return _Launch(workspace_id, config, context, agent_group)


def _permitted(db: Session, workspace_id: int) -> None:
    """``isNTSCPermittedToLaunch``: the workspace must exist and not be archived."""
    workspace = db.get(t.WorkspaceRow, workspace_id)
    if workspace is None or workspace.archived:
        raise not_found(f"workspace '{workspace_id}' not found")


def _check_size(ctx: Ctx) -> dict[str, Any]:
    """The gRPC server's receive limit, checked before anything else."""
    document = ctx.document or {}
    size = launch_message_size(document)
    limit = ntsc_config.MAX_RECV_MESSAGE_BYTES
    if size > limit:
        raise ApiError(
            Code.RESOURCE_EXHAUSTED, f"grpc: received message larger than max ({size} vs. {limit})"
        )
    return document


def _port(kind: str) -> int:
    low = _PORTS[kind]
    return random.randrange(low, low + 299)  # noqa: S311 (getRandomPort)


def _shell_keys() -> tuple[str, str]:
    """``ssh.GenerateKey`` of the default ``ed25519`` key type (empty when the optional
    ``cryptography`` package is missing)."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    except ImportError:  # pragma: no cover - cryptography ships with the test dependencies
        return "", ""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return private, public + "\n"


def _log_base(storage: Any) -> str:
    """The TensorBoard's view of an experiment's checkpoint storage (its log directory)."""
    if not isinstance(storage, dict):
        raise internal(f"unknown storage backend for experiment: {type(storage).__name__}")
    kind = storage.get("type")
    if kind == "shared_fs":
        host, path = storage.get("host_path"), storage.get("storage_path")
        if path is None:
            return "/determined_shared_fs"
        if str(path).startswith("/"):
            path = posixpath.relpath(str(path), str(host))
        return posixpath.normpath(posixpath.join("/determined_shared_fs", str(path)))
    if kind == "directory":
        return str(storage.get("container_path", ""))
    if kind == "s3":
        bucket, prefix = str(storage.get("bucket", "")), storage.get("prefix")
        return (
            f"s3://{posixpath.normpath(posixpath.join(bucket, str(prefix)))}"
            if prefix
            else f"s3://{bucket}"
        )
    if kind == "azure":
        return "azure://" + str(storage.get("container", ""))
    if kind == "gcs":
        bucket, prefix = str(storage.get("bucket", "")), storage.get("prefix")
        return (
            f"gs://{posixpath.normpath(posixpath.join(bucket, str(prefix)))}"
            if prefix
            else f"gs://{bucket}"
        )
    raise internal("unknown storage backend for experiment: <nil>")


def _tensorboard_experiments(
    db: Session, document: dict[str, Any]
) -> list[tuple[int, dict[str, Any], list[int]]]:
    """``getTensorBoardConfigsFromReq``: (experiment, config, trial ids) by experiment id."""
    filters = document.get("filters")
    if filters is None:
        experiment_ids = [int(i) for i in document.get("experimentIds") or []]
    else:
        parsed = BulkExperimentFilters.model_validate(filters)
        conditions, params = _filter_conditions(parsed)
        clause = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        experiment_ids = [
            row[0] for row in fetch(db, f"SELECT e.id FROM experiments e {clause}", params)
        ]
    found: dict[int, tuple[dict[str, Any], list[int]]] = {}
    for experiment_id in experiment_ids:
        experiment = db.get(t.ExperimentRow, experiment_id)
        if experiment is None:
            raise not_found(f"experiment '{experiment_id}' not found")
        found[experiment_id] = (experiment.config, [])
    for trial_id in [int(i) for i in document.get("trialIds") or []]:
        trial = db.get(t.TrialRow, trial_id)
        if trial is None:
            raise not_found(f"trial '{trial_id}' not found")
        if trial.experiment_id in found:
            found[trial.experiment_id][1].append(trial_id)
            continue
        experiment = db.get(t.ExperimentRow, trial.experiment_id)
        assert experiment is not None
        found[trial.experiment_id] = (experiment.config, [trial_id])
    return [(eid, found[eid][0], found[eid][1]) for eid in sorted(found)]


def _tensorboard_config(db: Session, launch: _Launch, document: dict[str, Any], port: int) -> None:
    from .master import CLUSTER_ID

    experiments = _tensorboard_experiments(db, document)
    if not experiments:
        raise invalid_argument("no experiments found")
    config = launch.config
    if config["idle_timeout"] is None:
        config["idle_timeout"] = 5 * 60 * 1_000_000_000  # tensorboard_timeout: 300 s
    log_dirs: list[str] = []
    mounts: dict[str, dict[str, Any]] = {}
    for experiment_id, exp_config, trial_ids in experiments:
        storage = exp_config.get("checkpoint_storage") if isinstance(exp_config, dict) else None
        base = _log_base(storage)
        if isinstance(storage, dict) and storage.get("type") == "shared_fs":
            mounts["/determined_shared_fs"] = {
                "host_path": str(storage.get("host_path", "")),
                "container_path": "/determined_shared_fs",
                "read_only": False,
                "propagation": "rprivate",
            }
        if not trial_ids:
            log_dirs.append(f"{base}/{CLUSTER_ID}/tensorboard/experiment/{experiment_id}/")
        for trial_id in trial_ids:
            log_dirs.append(
                f"{base}/{CLUSTER_ID}/tensorboard/experiment/{experiment_id}/trial/{trial_id}/"
            )
    config["entrypoint"] = [
        _ENTRYPOINTS["TENSORBOARD"], "/run/determined/tensorboard/storage_config.json",
        ",".join(log_dirs), *(config["tensorboard_args"] or []),
    ]  # fmt: skip
    latest = experiments[-1][1] if isinstance(experiments[-1][1], dict) else {}
    request_env = (document.get("config") or {}).get("environment")
    if not (isinstance(request_env, dict) and "image" in request_env):  # UsingCustomImage
        image = (latest.get("environment") or {}).get("image")
        if isinstance(image, dict):
            config["environment"]["image"] = {
                key: image.get(key, "") for key in ("cpu", "cuda", "rocm")
            }
    if config["environment"]["registry_auth"] is None:
        auth = (latest.get("environment") or {}).get("registry_auth")
        if isinstance(auth, dict):
            config["environment"]["registry_auth"] = auth
    config["bind_mounts"] = [*(config["bind_mounts"] or []), *mounts.values()]


def launch(ctx: Ctx, kind: Kind) -> dict[str, Any]:
    document = _check_size(ctx)
    tensorboard = kind.task_type == "TENSORBOARD"
    if tensorboard and not (
        document.get("experimentIds")
        or document.get("trialIds")
        or document.get("filters") is not None
    ):
        raise invalid_argument("must set experiment, trial ids, or filters")
    db = ctx.db
    sim.advance(db, ctx.app.cluster)
    launch_ = _launch_params(ctx, db, document, zero_slots=tensorboard)
    _permitted(db, launch_.workspace_id)
    config = launch_.config
    kind_type = kind.task_type
    port: int | None = None
    if kind_type == "COMMAND":
        if not config["description"]:
            config["description"] = f"Command ({petname()})"
        config["entrypoint"] = [sim.COMMAND_ENTRYPOINT, *(config["entrypoint"] or [])]
        problem = validation_error(config)
        if problem:
            raise invalid_argument(f"invalid command config: {problem}")
    elif kind_type == "NOTEBOOK":
        if not config["description"]:
            config["description"] = f"JupyterLab ({petname()})"
        if document.get("preview"):
            return {
                "notebook": _EMPTY_NOTEBOOK,
                "config": struct_view(marshal(config)),
                "warnings": [],
            }
        port = _port(kind_type)
        config["entrypoint"] = [_ENTRYPOINTS["NOTEBOOK"]]
        problem = validation_error(config)
        if problem:
            raise invalid_argument(f"invalid notebook config: {problem}")
    elif kind_type == "SHELL":
        if not config["description"]:
            config["description"] = f"Shell ({petname()})"
        port = _port(kind_type)
        config["entrypoint"] = [
            _ENTRYPOINTS["SHELL"], "-f", "/run/determined/ssh/sshd_config", "-p", str(port),
            "-D", "-e",
        ]  # fmt: skip
        problem = validation_error(config)
        if problem:
            raise invalid_argument(problem)
    else:
        port = _port(kind_type)
        config["description"] = f"TensorBoard ({petname()})"
        _tensorboard_config(db, launch_, document, port)
    task = _create(ctx, db, kind, launch_, document, port)
    # the response shows the task as launched: the resource manager schedules it right after
    view = task_view(db, ctx.app.cluster, task)
    sim.schedule(db, ctx.app.cluster, utcnow())
    if task.execute and ctx.app.runner is not None:
        ctx.app.runner.ensure_started()
    return {kind.key: view, "config": config_view(task), "warnings": []}


_EMPTY_NOTEBOOK: Final = {
    "id": "", "description": "", "state": "STATE_UNSPECIFIED", "startTime": None,
    "container": None, "displayName": "", "userId": 0, "username": "", "serviceAddress": "",
    "resourcePool": "", "exitStatus": "", "jobId": "", "workspaceId": 0,
}  # fmt: skip


def _create(
    ctx: Ctx, db: Session, kind: Kind, launch_: _Launch, document: dict[str, Any], port: int | None
) -> t.TaskRow:
    """``LaunchGenericCommand``: the job, the task (registered now, to the millisecond), its
    allocation (``<task id>.1``) and the first scheduling pass."""
    import uuid

    now = utcnow()
    registered = sim.truncate_ms(now)
    task_id = str(uuid.uuid4())
    config = launch_.config
    resources = config["resources"]
    private_key = public_key = None
    if kind.task_type == "SHELL":
        private_key, public_key = _shell_keys()
    execute = kind.task_type == "COMMAND" and ctx.app.cluster.execute_commands
    task = t.TaskRow(
        task_id=task_id,
        task_type=kind.task_type,
        job_id=str(uuid.uuid4()),
        owner_id=ctx.user_id,
        workspace_id=launch_.workspace_id,
        start_time=registered,
        description=config["description"],
        config=config,
        resource_pool=resources["resource_pool"],
        slots=resources["slots"],
        priority=resources["priority"],
        weight=resources["weight"],
        context_directory=launch_.context,
        experiment_ids=[int(i) for i in document.get("experimentIds") or []]
        if kind.task_type == "TENSORBOARD" else None,
        trial_ids=[int(i) for i in document.get("trialIds") or []]
        if kind.task_type == "TENSORBOARD" else None,
        private_key=private_key,
        public_key=public_key,
        notebook_token=secrets.token_urlsafe(32) if kind.task_type == "NOTEBOOK" else None,
        proxy_port=port,
        agent_user_group=launch_.agent_user_group,
        execute=execute,
    )  # fmt: skip
    db.add(task)
    allocation = t.AllocationRow(
        allocation_id=allocation_id(task_id),
        task_id=task_id,
        job_id=task.job_id,
        name=task.description,
        resource_pool=task.resource_pool,
        slots=task.slots,
        requested_at=now,
        submitted_at=registered,
        pull_seconds=sim.PULLING_SECONDS,
        start_seconds=sim.STARTING_SECONDS,
        run_seconds=sim.COMMAND_SECONDS if kind.task_type == "COMMAND" and not execute else None,
    )
    db.add(allocation)
    db.flush()
    sim.write_log(
        db, task_id, now, f"Scheduling {task.description} (id: {allocation.allocation_id})\n"
    )
    db.flush()
    return task


# --- routes ------------------------------------------------------------------------------------
def _register(kind: Kind, op_suffix: str, path_param: str) -> None:
    plural = op_suffix + "s"

    @rpc(f"Get{plural}")
    def _list(ctx: Ctx) -> dict[str, Any]:
        return list_tasks(ctx, kind)

    @rpc(f"Get{op_suffix}")
    def _get(ctx: Ctx) -> dict[str, Any]:
        return get_task(ctx, kind, ctx.path[path_param])

    @rpc(f"Launch{op_suffix}")
    def _launch(ctx: Ctx) -> dict[str, Any]:
        return launch(ctx, kind)

    @rpc(f"Kill{op_suffix}")
    def _kill(ctx: Ctx) -> dict[str, Any]:
        return kill_task(ctx, kind, ctx.path[path_param])

    @rpc(f"Set{op_suffix}Priority")
    def _set_priority(ctx: Ctx) -> dict[str, Any]:
        return set_priority(ctx, kind, ctx.path[path_param])


_register(KINDS["COMMAND"], "Command", "command_id")
_register(KINDS["NOTEBOOK"], "Notebook", "notebook_id")
_register(KINDS["SHELL"], "Shell", "shell_id")
_register(KINDS["TENSORBOARD"], "Tensorboard", "tensorboard_id")


@rpc("GetActiveTasksCount")
def get_active_tasks_count(ctx: Ctx) -> dict[str, Any]:
    """Running tasks of each type, everyone's."""
    counts = {"COMMAND": 0, "NOTEBOOK": 0, "SHELL": 0, "TENSORBOARD": 0}
    with cluster_session(ctx) as db:
        now = utcnow()
        for task in db.exec(select(t.TaskRow).where(col(t.TaskRow.end_time).is_(None))).all():
            if not registry_visible(task, ctx.app.cluster, now):
                continue
            allocation = live_allocation(db, task.task_id)
            if allocation is not None and allocation.state == "RUNNING":
                counts[task.task_type] += 1
    return {
        "commands": counts["COMMAND"],
        "notebooks": counts["NOTEBOOK"],
        "shells": counts["SHELL"],
        "tensorboards": counts["TENSORBOARD"],
    }


# --- the proxy (/proxy/:service/*) ----------------------------------------------------------------
_PAGE: Final = (
    "<!doctype html><html><head><title>{title}</title></head><body>"
    "<h1>{title}</h1><p>A service of detorm.local's simulated cluster: nothing runs behind it."
    "</p></body></html>"
)


@echo("GET", r"/proxy/(?P<service>[^/]+)(?:/.*)?")
def proxy(ctx: Ctx) -> Any:
    """``proxy.NewProxyHandler``: a running notebook, shell or TensorBoard answers at its
    service address (here with a placeholder page); anything else is ``service not found``.
    Notebooks and TensorBoards need a session (or the notebook's token); without one the
    master redirects to its login page."""
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

    service: str = ctx.path["service"]
    task_id = service.split(":", 1)[0]
    with cluster_session(ctx) as db:
        task = db.get(t.TaskRow, task_id)
        allocation = live_allocation(db, task_id) if task is not None else None
        running = (
            task is not None
            and allocation is not None
            and allocation.state == "RUNNING"
            and any(port["serviceId"] == service for port in _service_ports(task))
        )
        if not running or task is None:
            return JSONResponse({"message": f"service not found: {service}"}, status_code=404)
        description = task.description
        unauthenticated = task.task_type == "SHELL"
        token = ctx.query.get_str("token")
        notebook_ok = bool(token) and token == task.notebook_token
    if not unauthenticated and ctx.user is None and not notebook_ok:
        return RedirectResponse(f"/det/login?redirect={ctx.url_path}", status_code=303)
    return HTMLResponse(_PAGE.format(title=html.escape(description)))


def _service_ports(task: t.TaskRow) -> list[dict[str, Any]]:
    from .tasks import proxy_ports

    return proxy_ports(task)
