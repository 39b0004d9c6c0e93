"""Creating and continuing experiments: CreateExperiment, PutExperiment (an unmanaged experiment
created or found by its external id) and ContinueExperiment (``master/internal/api_experiment.go``;
``parseCreateExperiment`` and ``getCreateExperimentsProject`` in ``core_experiment.go``;
``newExperiment`` in ``experiment.go``; ``AddExperimentTx`` in ``db/postgres_experiments.go``).

What the master does, and detorm.local with it:

* The config is YAML; it is checked against the expconf schema (``_expconf.py``), the template
  merged under it, defaults filled (the name ``Experiment (three-pet-words)``, the master's
  checkpoint storage, the pool, priority 42, a seed from the clock), then checked complete.
  Those refusals are plain Go errors (500 ``invalid experiment configuration: ...``); a pool that
  does not exist is an InvalidArgument (400).
* The project is ``projectId`` when above 1, else the config's ``workspace``/``project`` (both or
  neither), else Uncategorized (project 1).
* The model definition is the request's files as a ``.tar.gz`` (``archive.ToTarGz``), empty when
  there are none; a fork (``parentId``) always takes its parent's, whatever the request sends.
* ``validateOnly`` answers an empty experiment (every field at its zero value), no config, and
  stores nothing.
* A managed experiment is created PAUSED with its searcher's first trials (PAUSED too), then
  activated when ``activate`` is set (experiment and trials ACTIVE). Its simulation row lets the
  simulation run its trials.
* An unmanaged experiment is stored PAUSED, with no trials (its client creates them), no
  simulation, and its pool left as configured; ``activate`` is ignored.

Not modelled: config policies (none are set in detorm.local), the warm-start checkpoint of
``searcher.source_trial_id``/``source_checkpoint_uuid``, the OIDC Pachyderm variables.
"""

from __future__ import annotations

import json
import random
import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlmodel import Session, select

from .. import _expconf as expconf
from .. import _scheduler as sim
from .. import _tables as t
from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, Code, failed_precondition, internal, invalid_argument, not_found
from .._filter_sql import execute, fetch
from .._ntsc_config import (
    MAX_RECV_MESSAGE_BYTES,
    _file_size,
    _length_delimited,
    _utf8,
    _varint,
    context_archive,
)
from .._searchers import create_trials, initial_trial_count, planned_trials
from .._storage import CheckpointStorage
from .experiments import TERMINAL_STATES, experiment_view, write_config
from .projects import wrapped_status
from .templates import template_config

__all__ = ["continue_experiment", "create_experiment", "put_experiment"]

_DEFAULT_PROJECT_ID: Final = 1  # model.DefaultProjectID (Uncategorized)
_INVALID: Final = "invalid experiment configuration"

# experimentv1.Experiment{} as jsonpb writes it with EmitDefaults: zero values, null messages,
# proto3 optional fields left out.
_EMPTY_EXPERIMENT: Final[dict[str, Any]] = {
    "id": 0, "description": "", "labels": [], "startTime": None, "endTime": None,
    "state": "STATE_UNSPECIFIED", "archived": False, "numTrials": 0, "trialIds": [],
    "displayName": "", "userId": 0, "username": "", "resourcePool": "", "searcherType": "",
    "searcherMetric": "", "hyperparameters": None, "name": "", "notes": "", "jobId": "",
    "forkedFrom": None, "progress": None, "projectId": 0, "projectName": "", "workspaceId": 0,
    "workspaceName": "", "parentArchived": False, "config": None, "originalConfig": "",
    "projectOwnerId": 0, "checkpointSize": "0", "checkpointCount": 0, "unmanaged": False,
}  # fmt: skip


@dataclass
class _Parsed:
    """What ``parseCreateExperiment`` returns: the active config and where it goes."""

    config: dict[str, Any]
    project: t.ProjectRow
    model_definition: bytes


# --- the request ----------------------------------------------------------------------------------
def _request_size(document: Mapping[str, Any]) -> int:
    """The encoded size of a CreateExperimentRequest (fields 1-8, one tag byte each)."""
    size = sum(_length_delimited(_file_size(f)) for f in document.get("modelDefinition") or [])
    for name in ("config", "template"):
        if document.get(name):
            size += _length_delimited(_utf8(str(document[name])))
    for name in ("parentId", "projectId"):
        number = int(document.get(name) or 0)
        if number:
            size += 1 + _varint(number)
    size += sum(2 for name in ("validateOnly", "activate", "unmanaged") if document.get(name))
    return size


def _check_size(document: Mapping[str, Any]) -> None:
    """The gRPC server's receive limit (``grpc.MaxRecvMsgSize(96 MiB)`` in ``grpcutil/api.go``):
    a model definition too large for it is refused before the handler runs."""
    size = _request_size(document)
    if size > MAX_RECV_MESSAGE_BYTES:
        raise ApiError(
            Code.RESOURCE_EXHAUSTED,
            f"grpc: received message larger than max ({size} vs. {MAX_RECV_MESSAGE_BYTES})",
        )


# --- parseCreateExperiment ------------------------------------------------------------------------
def _read_config(text: str) -> dict[str, Any]:
    """``ParseAnyExperimentConfigYAML``, then the ``resources.slots`` check."""
    try:
        config = expconf.parse_config(text)
    except expconf.ConfigError as err:
        raise internal(f"{_INVALID}: {err}") from None
    problems = expconf.sanity_errors(config)
    if problems:
        raise internal(
            f"{_INVALID}: version 0 experiment config is invalid: config is invalid: "
            + "\n".join(problems)
        )
    resources = config.get("resources")
    if isinstance(resources, dict) and resources.get("slots") is not None:
        raise internal('<config>.resources: additionalProperties "slots" not allowed')
    assert isinstance(config, dict)
    return config


def _project(db: Session, project_id: int, config: Mapping[str, Any]) -> t.ProjectRow:
    """``getCreateExperimentsProject``: the request's project, the config's, or Uncategorized."""
    if project_id > 1:
        row = db.get(t.ProjectRow, project_id)
        if row is None:
            raise not_found(f"project '{project_id}' not found")
        return row
    workspace, project = config.get("workspace") or "", config.get("project") or ""
    if (workspace == "") != (project == ""):
        raise internal("workspace and project must both be included in config if one is provided")
    if workspace:
        found = db.exec(
            select(t.ProjectRow)
            .join(t.WorkspaceRow, t.WorkspaceRow.id == t.ProjectRow.workspace_id)  # type: ignore[arg-type]
            .where(t.WorkspaceRow.name == workspace, t.ProjectRow.name == project)
        ).first()
        if found is None:
            raise not_found(f"workspace/project '{workspace}/{project}' not found")
        return found
    row = db.get(t.ProjectRow, _DEFAULT_PROJECT_ID)
    if row is None:
        raise not_found(f"project '{_DEFAULT_PROJECT_ID}' not found")
    return row


def _resolve_pool(db: Session, ctx: Ctx, config: Mapping[str, Any], workspace_id: int) -> str:
    """``Master.ResolveResources``: the workspace's default pools, the pool must exist (400),
    and more slots than the cluster has are refused (``launch_error`` is on by default)."""
    resources = config.get("resources") or {}
    pool = resources.get("resource_pool") or ""
    slots = resources.get("slots_per_trial")
    slots = 1 if slots is None else int(slots)
    workspace = db.get(t.WorkspaceRow, workspace_id)
    if pool == "" and workspace is not None:  # zero-slot work goes to the auxiliary pool
        pool = workspace.default_aux_pool if slots == 0 else workspace.default_compute_pool
    pool = pool or sim.POOL
    if pool != sim.POOL:
        raise invalid_argument(
            "invalid resource configuration: resource pool"
            f" {pool} does not exist or is not available to workspace id {workspace_id}"
        )
    if slots > ctx.app.cluster.slots:
        if resources.get("is_single_node"):
            raise internal(
                "invalid resource configuration: validating resources: request unfulfillable,"
                " please try requesting less slots"
            )
        raise internal("invalid resource configuration: slots requested exceeds cluster capacity")
    return str(pool)


def _checkpoint_storage(ctx: Ctx, db: Session, workspace_id: int) -> dict[str, Any]:
    """The workspace's checkpoint storage over the master's: detorm.local's master stores
    checkpoints next to its database (``_storage.py``)."""
    root = CheckpointStorage.of(ctx.app.db.path).root
    master = {
        "type": "shared_fs", "host_path": str(root.parent), "storage_path": root.name,
        "container_path": None, "checkpoint_path": None, "tensorboard_path": None,
        "propagation": "rprivate", "save_experiment_best": 0, "save_trial_best": 1,
        "save_trial_latest": 1,
    }  # fmt: skip
    workspace = db.get(t.WorkspaceRow, workspace_id)
    own = workspace.checkpoint_storage_config if workspace is not None else None
    return expconf.merge(own, master) if isinstance(own, dict) else master


def _parse_create(
    ctx: Ctx,
    *,
    text: str,
    template: str | None,
    project_id: int,
    parent_id: int,
    files: list[Mapping[str, Any]],
    unmanaged: bool,
) -> _Parsed:
    db = ctx.db
    config = _read_config(text)
    if template is not None:
        stored = template_config(db, template)
        if isinstance(stored, dict):
            config = expconf.merge(config, stored)
    project = _project(db, project_id, config)
    pool = ""
    if not unmanaged:
        pool = _resolve_pool(db, ctx, config, project.workspace_id)
        if config.get("entrypoint") is None:
            raise internal("managed experiments require entrypoint")
    active = expconf.with_defaults(
        config, storage=_checkpoint_storage(ctx, db, project.workspace_id), pool=pool,
        priority=sim.DEFAULT_PRIORITY, seed=int(time.time()) & 0xFFFFFFFF, rng=random.Random(),
    )  # fmt: skip
    problems = expconf.completeness_errors(active)
    if problems:
        raise internal(f"{_INVALID}: config is invalid or incomplete: " + "\n".join(problems))
    outdated = expconf.assert_current(active["searcher"])
    if outdated is not None:
        raise internal(f"{_INVALID}: {outdated}")
    if parent_id:
        parent = db.get(t.ExperimentRow, parent_id)
        model_definition = (parent.model_definition if parent is not None else None) or b""
    else:
        model_definition = context_archive(files) if files else b""
    return _Parsed(active, project, model_definition)


# --- storing ----------------------------------------------------------------------------------------
def _insert_experiment(
    ctx: Ctx,
    parsed: _Parsed,
    *,
    text: str,
    parent_id: int,
    state: str,
    unmanaged: bool,
    external_id: str | None = None,
) -> t.ExperimentRow:
    """``AddExperiment``: the row, with the columns the Seeder fills mirrored from the config."""
    config = parsed.config
    labels = config.get("labels") or []
    assert parsed.project.id is not None
    row = t.ExperimentRow(
        project_id=parsed.project.id, owner_id=ctx.user_id, state=state,
        name=str(config.get("name") or ""), description=str(config.get("description") or ""),
        labels=[label for label in labels if isinstance(label, str)], config=config,
        original_config=text, start_time=utcnow(), parent_id=parent_id or None, progress=0.0,
        job_id=str(uuidlib.uuid4()), unmanaged=unmanaged,
        model_definition=parsed.model_definition, external_experiment_id=external_id,
        **_searcher_and_resource_columns(config),
    )  # fmt: skip
    ctx.db.add(row)
    ctx.db.flush()
    return row


def _searcher_and_resource_columns(config: Mapping[str, Any]) -> dict[str, Any]:
    """The experiment columns detorm.local mirrors from the searcher and resources of its config
    (the master reads them from the config itself)."""
    searcher, resources = config["searcher"], config.get("resources") or {}
    return {
        "searcher_type": str(searcher.get("name")),
        "searcher_metric": str(searcher.get("metric") or ""),
        "smaller_is_better": searcher.get("smaller_is_better") is not False,
        "resource_pool": str(resources.get("resource_pool") or ""),
        "priority": resources.get("priority"),
        "weight": float(resources.get("weight") or 0),
        "max_slots": resources.get("max_slots"),
    }


@rpc("CreateExperiment")
def create_experiment(ctx: Ctx) -> dict[str, Any]:
    document = ctx.document or {}
    _check_size(document)
    parent_id = int(document.get("parentId") or 0)
    if parent_id:
        parent = experiment_view(ctx.db, parent_id)  # 404 when it does not exist
        if parent["parentArchived"]:
            raise internal("forking an experiment in an archived workspace/project")
    unmanaged = bool(document.get("unmanaged"))
    text = str(document.get("config") or "")
    template = document.get("template")
    parsed = _parse_create(
        ctx, text=text, template=None if template is None else str(template),
        project_id=int(document.get("projectId") or 0), parent_id=parent_id,
        files=list(document.get("modelDefinition") or []), unmanaged=unmanaged,
    )  # fmt: skip
    if document.get("validateOnly"):
        return {"experiment": dict(_EMPTY_EXPERIMENT), "config": None, "warnings": []}
    activate = bool(document.get("activate")) and not unmanaged
    state = "ACTIVE" if activate else "PAUSED"
    row = _insert_experiment(
        ctx, parsed, text=text, parent_id=parent_id, state=state, unmanaged=unmanaged
    )
    assert row.id is not None
    if not unmanaged:
        ctx.db.add(t.SimulatedExperimentRow(experiment_id=row.id))
        create_trials(ctx.db, row, initial_trial_count(parsed.config), state)
        ctx.db.flush()
    view = experiment_view(ctx.db, row.id)
    return {"experiment": view, "config": parsed.config, "warnings": []}


# --- PutExperiment ---------------------------------------------------------------------------------
_PUT_PREFIX: Final = "failed to parse exp config"


def _put_request_size(document: Mapping[str, Any], external_id: str) -> int:
    """The encoded size of a PutExperimentRequest: the CreateExperimentRequest (field 1, always
    present: the gateway allocates it before decoding the body) and the external id (field 41,
    a two-byte tag)."""
    size = _length_delimited(_request_size(document))
    if external_id:
        encoded = _utf8(external_id)
        size += 2 + _varint(encoded) + encoded
    return size


def _parse_error(err: ApiError) -> ApiError:
    """``fmt.Errorf("failed to parse exp config: %w", err)``: grpc-go keeps a wrapped status's
    code and sends the whole text; a plain error (every refusal of ``parseCreateExperiment``
    that detorm.local raises as Internal) stays a 500 with the prefix."""
    if err.code == Code.INTERNAL:
        return internal(f"{_PUT_PREFIX}: {err.message}")
    return wrapped_status(_PUT_PREFIX, err.code, err.message)


@rpc("PutExperiment")
def put_experiment(ctx: Ctx) -> dict[str, Any]:
    """Create-or-get an unmanaged experiment by its external id (core_v2's
    ``external_experiment_id``): ``AddExperimentTx`` with ``upsert``, an ``INSERT ... ON CONFLICT
    (external_experiment_id) DO UPDATE`` that replaces only the config of an experiment that
    exists (its state, project, owner, original config and trials are kept). Unlike
    CreateExperiment, ``validateOnly`` and ``activate`` are not read: the experiment is stored."""
    document = ctx.document or {}
    external_id = str(ctx.path["external_experiment_id"])
    size = _put_request_size(document, external_id)
    if size > MAX_RECV_MESSAGE_BYTES:
        raise ApiError(
            Code.RESOURCE_EXHAUSTED,
            f"grpc: received message larger than max ({size} vs. {MAX_RECV_MESSAGE_BYTES})",
        )
    # `unmanaged` is proto3 optional: left out and false are both refused
    if not document.get("unmanaged"):
        raise internal("only unmanaged experiments are supported")
    if int(document.get("parentId") or 0):
        raise internal("can't fork into an unmanaged experiment")
    text = str(document.get("config") or "")
    template = document.get("template")
    try:
        parsed = _parse_create(
            ctx, text=text, template=None if template is None else str(template),
            project_id=int(document.get("projectId") or 0), parent_id=0,
            files=list(document.get("modelDefinition") or []), unmanaged=True,
        )  # fmt: skip
    except ApiError as err:
        raise _parse_error(err) from None
    existing = ctx.db.exec(
        select(t.ExperimentRow).where(t.ExperimentRow.external_experiment_id == external_id)
    ).first()
    if existing is None:
        row = _insert_experiment(
            ctx, parsed, text=text, parent_id=0, state="PAUSED", unmanaged=True,
            external_id=external_id,
        )  # fmt: skip
    else:
        row = existing
        assert row.id is not None
        write_config(ctx.db, row.id, parsed.config, **_searcher_and_resource_columns(parsed.config))
        ctx.db.expire_all()
    assert row.id is not None
    return {"experiment": experiment_view(ctx.db, row.id), "config": parsed.config}


# --- ContinueExperiment -----------------------------------------------------------------------------
_CONTINUABLE: Final = ("single", "grid", "random")


def _continue_config(stored: Mapping[str, Any], override: str) -> tuple[dict[str, Any], bool]:
    """``parseAndMergeContinueConfig``: the override merged over the active config."""
    override = override or "{}"
    active = expconf.normalize(stored)
    name = (active.get("searcher") or {}).get("name")
    single = name == "single"
    if name not in _CONTINUABLE:
        raise invalid_argument(f"Unsupported searcher type provided: '{name}'")
    if not single and override.strip() != "{}":
        raise invalid_argument(
            f"override config is provided and experiment is not single searcher, got '{name}' instead"
        )
    try:
        provided = expconf.parse_config(override)
        problems = expconf.sanity_errors(provided)
    except expconf.ConfigError as err:
        raise invalid_argument(f"parsing override config: {err}") from None
    if problems:
        raise invalid_argument(
            "parsing override config: version 0 experiment config is invalid: config is invalid: "
            + "\n".join(problems)
        )
    assert isinstance(provided, dict)
    for key in ("project", "workspace"):
        if provided.get(key) is not None:
            raise invalid_argument(
                f"'{key}' in override config cannot be specified, use `det experiment move` first"
                f" if you want to change the {key}"
            )
    merged = expconf.merge(provided, active)
    merged_name = (merged.get("searcher") or {}).get("name")
    if single and merged_name != "single":
        raise invalid_argument(
            f"override config must have single searcher type got '{merged_name}' instead"
        )
    return merged, single


@rpc("ContinueExperiment")
def continue_experiment(ctx: Ctx) -> dict[str, Any]:
    document = ctx.document or {}
    experiment_id = int(document.get("id") or 0)
    experiment_view(ctx.db, experiment_id)  # 404 when it does not exist
    exp = ctx.db.get(t.ExperimentRow, experiment_id)
    assert exp is not None
    trials = list(
        ctx.db.exec(
            select(t.TrialRow)
            .where(t.TrialRow.experiment_id == experiment_id)
            .order_by(t.TrialRow.id)  # type: ignore[arg-type]
        ).all()
    )
    merged, single = _continue_config(exp.config, str(document.get("overrideConfig") or ""))
    try:
        parsed = _parse_create(
            ctx, text=json.dumps(merged), template=None, project_id=0, parent_id=0, files=[],
            unmanaged=False,
        )  # fmt: skip
    except ApiError as err:
        raise ApiError(err.code, f"parsing continue experiment request: {err.message}") from None
    _check_continuable(exp.state, single, trials)
    _restart(ctx.db, exp, parsed.config, trials, single)
    return {"experiment": experiment_view(ctx.db, experiment_id), "warnings": []}


def _check_continuable(state: str, single: bool, trials: list[t.TrialRow]) -> None:
    prefix = "experiment continue database updates: "
    if state not in TERMINAL_STATES:
        raise failed_precondition(
            f"{prefix}experiment in non terminal state '{state}', try again later"
        )
    if state == "COMPLETED" and not single and all(row.state == "COMPLETED" for row in trials):
        raise failed_precondition(
            f"{prefix}experiment has been completed, cannot continue this experiment"
        )


def _restart(
    db: Session,
    exp: t.ExperimentRow,
    config: dict[str, Any],
    trials: list[t.TrialRow],
    single: bool,
) -> None:
    """The continue transaction, then the restarted searcher and ActivateExperiment: trials
    that did not complete run again (a single searcher's trial always does), restarts and end
    times are cleared on every trial, and the searcher creates the trials it had not yet."""
    assert exp.id is not None
    # handleContinueExperiment: a trial that completed counts as exited, the others continue
    reruns = [
        row.state != "COMPLETED" or (single and index == 0) for index, row in enumerate(trials)
    ]
    for row, rerun in zip(trials, reruns, strict=True):
        execute(
            db, "UPDATE trials SET restarts = 0, end_time = NULL, state = ? WHERE id = ?",
            ["ACTIVE" if rerun else row.state, row.id],
        )  # fmt: skip
    searcher = config.get("searcher") or {}
    write_config(
        db, exp.id, config, state="ACTIVE", progress=0.0, end_time=None,
        searcher_metric=str(searcher.get("metric") or ""),
        smaller_is_better=searcher.get("smaller_is_better") is not False,
    )  # fmt: skip
    db.expire_all()
    if not fetch(db, "SELECT 1 FROM simulated_experiments WHERE experiment_id = ?", [exp.id]):
        db.add(t.SimulatedExperimentRow(experiment_id=exp.id))
    refreshed = db.get(t.ExperimentRow, exp.id)
    assert refreshed is not None
    live = sum(reruns)
    limit = (config.get("searcher") or {}).get("max_concurrent_trials") or planned_trials(config)
    missing = min(planned_trials(config) - len(trials), max(limit - live, 0))
    if missing > 0:
        create_trials(db, refreshed, missing, "ACTIVE")
    db.flush()
