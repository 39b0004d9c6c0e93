"""Write cluster data straight into a detorm.local database.

The master's REST API cannot create most of what a cluster holds (trials, metrics, logs and
checkpoints come from running tasks), so tests, the demo and benchmarks build it here. Everything
written goes through the same bookkeeping as a real report: metric rows update the trial's
summary metrics, searcher metric, best and latest validation, and the experiment's best trial;
checkpoints update sizes and counts.

    with Seeder(database) as seed:
        project = seed.project("vision", workspace=seed.workspace("research"))
        exp = seed.experiment(project=project, name="resnet", labels=["prod"],
                              hyperparameters={"lr": 0.01})
        trial = seed.trial(exp, hparams={"lr": 0.01})
        seed.metrics(trial, "validation", [(100, {"loss": 0.5}), (200, {"loss": 0.4})])
"""

from __future__ import annotations

import hashlib
import json
import uuid as uuidlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Final

from sqlalchemy import insert, update
from sqlmodel import Session, select

from . import _tables as t
from ._db import Database, client_hash, hash_password, utcnow
from ._metric_reports import Report, db_time, driver_cursor, record_reports
from ._storage import CheckpointStorage, default_model_definition

__all__ = ["Seeder", "MetricReport", "add_trial", "default_config", "trials_in_project"]

MetricReport = tuple[int | None, Mapping[str, Any]] | tuple[int | None, Mapping[str, Any], datetime]
"""``(total_batches, values)`` or ``(total_batches, values, end_time)``; ``total_batches`` is None
for the profiler groups' reports, which have no step."""

_TERMINAL_TRIAL_STATES: Final = {"COMPLETED", "CANCELED", "ERROR"}
_EXPERIMENT_TO_TRIAL_STATE: Final = {
    "ACTIVE": "ACTIVE", "PAUSED": "PAUSED", "COMPLETED": "COMPLETED", "CANCELED": "CANCELED",
    "ERROR": "ERROR", "STOPPING_COMPLETED": "STOPPING_COMPLETED",
    "STOPPING_CANCELED": "STOPPING_CANCELED", "STOPPING_ERROR": "STOPPING_ERROR",
    "STOPPING_KILLED": "STOPPING_KILLED", "RUNNING": "RUNNING",
    "DELETING": "COMPLETED", "DELETE_FAILED": "COMPLETED",
}  # fmt: skip


def _search_space(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """Turn plain values into ``const`` definitions; definitions (with ``type``) stay."""
    space: dict[str, Any] = {}
    for name, value in hparams.items():
        if isinstance(value, Mapping) and "type" in value:
            space[name] = dict(value)
        elif isinstance(value, Mapping):
            space[name] = _search_space(value)
        else:
            space[name] = {"type": "const", "val": value}
    return space


def default_config(
    *,
    name: str,
    description: str = "",
    labels: Sequence[str] = (),
    hyperparameters: Mapping[str, Any] | None = None,
    searcher: str = "single",
    metric: str = "validation_loss",
    smaller_is_better: bool = True,
    max_trials: int = 1,
    resource_pool: str = "default",
    workspace: str = "Uncategorized",
    project: str = "Uncategorized",
) -> dict[str, Any]:
    """A complete experiment config (expconf) such as the master stores after defaults."""
    return {
        "bind_mounts": [],
        "checkpoint_policy": "best",
        "checkpoint_storage": {
            "type": "shared_fs", "host_path": "/tmp", "storage_path": "determined-checkpoint",
            "propagation": "rprivate", "save_experiment_best": 0, "save_trial_best": 1,
            "save_trial_latest": 1,
        },
        "data": {},
        "debug": False,
        "description": description,
        "entrypoint": "model_def:Trial",
        "environment": {
            "image": {"cpu": "determinedai/pytorch-ngc:0.38.1", "cuda": "determinedai/pytorch-ngc:0.38.1"},
            "environment_variables": {}, "force_pull_image": False, "pod_spec": None,
            "add_capabilities": [], "drop_capabilities": [],
        },
        "hyperparameters": _search_space(hyperparameters or {}),
        "labels": list(labels),
        "log_policies": [],
        "max_restarts": 5,
        "min_checkpoint_period": {"batches": 0},
        "min_validation_period": {"batches": 0},
        "name": name,
        "optimizations": {"aggregation_frequency": 1, "average_training_metrics": True},
        "perform_initial_validation": False,
        "project": project,
        "records_per_epoch": 0,
        "reproducibility": {"experiment_seed": 1700000000},
        "resources": {
            "resource_pool": resource_pool, "slots_per_trial": 1, "max_slots": None,
            "priority": None, "weight": 1, "shm_size": None, "devices": [],
        },
        "scheduling_unit": 100,
        "searcher": {
            "name": searcher, "metric": metric, "smaller_is_better": smaller_is_better,
            "max_trials": max_trials, "source_trial_id": None, "source_checkpoint_uuid": None,
        },
        "workspace": workspace,
    }  # fmt: skip


class Seeder:
    """A transaction that writes cluster data; commit on exit without an exception."""

    def __init__(
        self, database: Database, *, now: datetime | None = None, checkpoint_files: bool = True
    ) -> None:
        self._database = database
        # Checkpoint files go to the storage next to the database (_storage.py); a very large
        # seed may skip them (then only downloads of those checkpoints fail).
        self.storage = CheckpointStorage.of(database.path)
        self.checkpoint_files = checkpoint_files
        # Data is dated in the recent past, so that finished work ended before "now".
        self._clock = now or utcnow() - timedelta(days=30)
        self._context: Any = None
        self._trials_in_project: dict[int, int] = {}  # local ids handed out, per project
        self._db: Session | None = None

    @property
    def db(self) -> Session:
        """The open transaction (only inside ``with seeder:``)."""
        if self._db is None:
            raise RuntimeError(
                "a Seeder writes only inside `with seeder:` (one transaction, committed at the"
                " end of the block): `with seeder as seed: seed.experiment(...)`"
            )
        return self._db

    def __enter__(self) -> Seeder:
        if self._db is not None:
            raise RuntimeError("this Seeder is already inside a `with` block")
        # A Seeder may be entered again (the pytest plugin's detorm_seed): what another writer
        # added in between must be counted afresh.
        self._trials_in_project.clear()
        self._context = self._database.transaction(write=True)
        self._db = self._context.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        context, self._context, self._db = self._context, None, None
        context.__exit__(exc_type, exc, tb)

    def _tick(self, seconds: float = 1.0) -> datetime:
        self._clock += timedelta(seconds=seconds)
        return self._clock

    def _user_id(self, username: str) -> int:
        row = self.db.exec(select(t.UserRow).where(t.UserRow.username == username)).first()
        if row is None or row.id is None:
            return self.user(username)
        return row.id

    # --- users, workspaces, projects --------------------------------------------------------
    def user(
        self,
        username: str,
        *,
        password: str | None = None,
        admin: bool = False,
        active: bool = True,
        display_name: str = "",
        remote: bool = False,
    ) -> int:
        hashed = hash_password(client_hash(password)) if password else None
        row = t.UserRow(
            username=username, password_hash=hashed, admin=admin, active=active,
            display_name=display_name, remote=remote, modified_at=self._tick(),
        )  # fmt: skip
        self.db.add(row)
        self.db.flush()
        assert row.id is not None
        return row.id

    def workspace(self, name: str, *, owner: str = "admin", archived: bool = False) -> int:
        row = t.WorkspaceRow(
            name=name, archived=archived, user_id=self._user_id(owner), created_at=self._tick()
        )
        self.db.add(row)
        self.db.flush()
        assert row.id is not None
        return row.id

    def project(
        self,
        name: str,
        *,
        workspace: int = 1,
        owner: str = "admin",
        description: str = "",
        archived: bool = False,
        key: str | None = None,
        notes: Sequence[Mapping[str, str]] = (),
    ) -> int:
        row = t.ProjectRow(
            name=name, workspace_id=workspace, description=description, archived=archived,
            user_id=self._user_id(owner), key=key or self._project_key(name),
            notes=[dict(n) for n in notes], created_at=self._tick(),
        )  # fmt: skip
        self.db.add(row)
        self.db.flush()
        assert row.id is not None
        return row.id

    def _project_key(self, name: str) -> str:
        prefix = "".join(c for c in name.upper() if c.isalnum())[:3]
        for n in range(100000):
            suffix = hashlib.md5(f"{name}{n}".encode()).hexdigest().upper()[: 5 - len(prefix)]
            key = prefix + suffix
            if self.db.exec(select(t.ProjectRow).where(t.ProjectRow.key == key)).first() is None:
                return key
        raise RuntimeError("no free project key")

    # --- experiments and trials -------------------------------------------------------------
    def experiment(
        self,
        *,
        project: int = 1,
        name: str = "experiment",
        owner: str = "determined",
        state: str = "COMPLETED",
        labels: Sequence[str] = (),
        description: str = "",
        notes: str = "",
        hyperparameters: Mapping[str, Any] | None = None,
        searcher: str = "single",
        metric: str = "validation_loss",
        smaller_is_better: bool = True,
        archived: bool = False,
        progress: float | None = None,
        parent_id: int | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        resource_pool: str = "default",
        model_definition: bytes | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> int:
        state = state.removeprefix("STATE_")
        project_row = self.db.get(t.ProjectRow, project)
        assert project_row is not None, f"no project {project}"
        workspace_row = self.db.get(t.WorkspaceRow, project_row.workspace_id)
        assert workspace_row is not None
        full_config = dict(config) if config is not None else default_config(
            name=name, description=description, labels=labels, hyperparameters=hyperparameters,
            searcher=searcher, metric=metric, smaller_is_better=smaller_is_better,
            resource_pool=resource_pool, workspace=workspace_row.name, project=project_row.name,
        )  # fmt: skip
        if config is None:  # the default checkpoint storage is the database's own (_storage.py)
            full_config = self.storage.localize(full_config)
        start = start_time or self._tick(60)
        if model_definition is None:
            model_definition = default_model_definition(
                name, _yaml_like(full_config), int(start.timestamp())
            )
        terminal = state in ("COMPLETED", "CANCELED", "ERROR", "DELETED")
        row = t.ExperimentRow(
            project_id=project, owner_id=self._user_id(owner), state=state, archived=archived,
            name=name, description=description, labels=list(labels), config=full_config,
            original_config=_yaml_like(full_config), notes=notes, start_time=start,
            end_time=end_time or (start + timedelta(minutes=30) if terminal else None),
            progress=progress if progress is not None else (1.0 if state == "COMPLETED" else 0.0),
            parent_id=parent_id, job_id=str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"job{start}{name}")),
            searcher_type=searcher, searcher_metric=metric, smaller_is_better=smaller_is_better,
            resource_pool=resource_pool, model_definition=model_definition,
        )  # fmt: skip
        self.db.add(row)
        self.db.flush()
        assert row.id is not None
        return row.id

    def trial(
        self,
        experiment: int,
        *,
        hparams: Mapping[str, Any] | None = None,
        state: str | None = None,
        restarts: int = 0,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> int:
        exp = self.db.get(t.ExperimentRow, experiment)
        assert exp is not None, f"no experiment {experiment}"
        trial_state = (
            state or _EXPERIMENT_TO_TRIAL_STATE.get(exp.state, "COMPLETED")
        ).removeprefix("STATE_")
        start = start_time or exp.start_time + timedelta(seconds=5)
        terminal = trial_state in _TERMINAL_TRIAL_STATES
        values = dict(hparams) if hparams is not None else _const_values(exp.config)
        return add_trial(
            self.db, exp, hparams=values, state=trial_state, start_time=start,
            end_time=end_time or (start + timedelta(minutes=20) if terminal else None),
            local_id=self._next_local_id(exp.project_id), restarts=restarts, metadata=metadata,
        )  # fmt: skip

    def _next_local_id(self, project: int) -> int:
        if project not in self._trials_in_project:
            self._trials_in_project[project] = trials_in_project(self.db, project)
        self._trials_in_project[project] += 1
        return self._trials_in_project[project]

    # --- metrics ----------------------------------------------------------------------------
    def metrics(
        self,
        trial: int,
        group: str,
        reports: Iterable[MetricReport],
        *,
        trial_run_id: int = 0,
        batch_metrics: bool = False,
    ) -> None:
        """Record reports of one group exactly as ReportTrialMetrics would (``_metric_reports``),
        without its run id check; many reports at once are written in bulk."""
        items = []
        for report in reports:
            values = dict(report[1])
            items.append(
                Report(
                    steps_completed=report[0], avg_metrics=values,
                    end_time=report[2] if len(report) == 3 else self._tick(),
                    trial_run_id=trial_run_id, batch_metrics=[values] if batch_metrics else None,
                )
            )  # fmt: skip
        record_reports(self.db, trial, group, items, check_run_id=False)

    # --- checkpoints and logs ---------------------------------------------------------------
    def checkpoint(
        self,
        trial: int,
        *,
        total_batches: int,
        uuid: str | None = None,
        state: str = "COMPLETED",
        resources: Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
        report_time: datetime | None = None,
    ) -> str:
        # Written with the driver (seeding writes tens of thousands); see _metric_reports.
        self.db.flush()
        cursor = driver_cursor(self.db)
        found = cursor.execute(
            "SELECT task_id, experiment_id FROM trials WHERE id = ?", (trial,)
        ).fetchone()
        assert found is not None, f"no trial {trial}"
        task_id, experiment_id = found
        files = dict(resources) if resources is not None else {
            "metadata.json": 120, "state_dict.pth": 1_048_576 + total_batches,
        }  # fmt: skip
        checkpoint_uuid = uuid or str(
            uuidlib.uuid5(uuidlib.NAMESPACE_OID, f"{trial}-{total_batches}")
        )
        meta = {
            "determined_version": "0.38.1",
            "steps_completed": total_batches,
            "format": "pickle",
        }
        meta.update(metadata or {})
        size, stored_state = sum(files.values()), state.removeprefix("STATE_")
        cursor.execute(
            "INSERT INTO checkpoints (uuid, trial_id, task_id, allocation_id, report_time, state,"
            " resources, metadata, storage_id, total_batches, size)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (
                checkpoint_uuid, trial, task_id, f"{task_id}.1", db_time(report_time or self._tick()),
                stored_state, json.dumps(files), json.dumps(meta), total_batches, size,
            ),
        )  # fmt: skip
        if stored_state != "DELETED":
            # UpdateCheckpointSizeTx, incrementally: a new live checkpoint adds its size
            for table, ident in (("trials", trial), ("experiments", experiment_id)):
                cursor.execute(
                    f"UPDATE {table} SET checkpoint_size = checkpoint_size + ?,"
                    " checkpoint_count = checkpoint_count + 1 WHERE id = ?",
                    (size, ident),
                )
            for cls, ident in ((t.TrialRow, trial), (t.ExperimentRow, experiment_id)):
                loaded = self.db.identity_map.get(Session.identity_key(cls, ident))
                if loaded is not None:
                    self.db.expire(loaded, ["checkpoint_size", "checkpoint_count"])
        if self.checkpoint_files and stored_state != "DELETED":  # a deleted one was collected
            self.storage.write_checkpoint(checkpoint_uuid, files, meta)
        return checkpoint_uuid

    def refresh_checkpoint_sizes(self, trial: int) -> None:
        """``UpdateCheckpointSizeTx``: sizes and counts of non-deleted checkpoints."""
        refresh_checkpoint_sizes(self.db, trial)

    def logs(
        self,
        trial: int,
        lines: Iterable[str | Mapping[str, Any]],
        *,
        level: str = "LOG_LEVEL_INFO",
        source: str = "agent",
        stdtype: str = "stdout",
    ) -> None:
        row = self.db.get(t.TrialRow, trial)
        assert row is not None, f"no trial {trial}"
        records = []
        for line in lines:
            spec: dict[str, Any] = {"log": line} if isinstance(line, str) else dict(line)
            spec.setdefault("timestamp", self._tick(0.01))
            spec.setdefault("level", level)
            spec.setdefault("source", source)
            spec.setdefault("stdtype", stdtype)
            spec.setdefault("agent_id", None)
            spec.setdefault("container_id", None)
            spec.setdefault("rank_id", None)
            spec["trial_id"] = trial
            records.append(spec)
        if records:
            self.db.connection().execute(insert(t.TrialLogRow), records)

    def trial_fault(
        self, trial: int, at_batches: int, *, exit_code: int = 1, times: int | None = 1
    ) -> None:
        """Make a simulated trial's container crash with ``exit_code`` when it reaches
        ``at_batches``, ``times`` times (None: every time it gets there). The trial restarts
        from its latest checkpoint while its experiment's ``max_restarts`` allows, then ends in
        ERROR. Only a master started with ``--enable-test-faults`` (``LocalMaster(
        enable_faults=True)``) acts on it."""
        row = self.db.get(t.TrialRow, trial)
        assert row is not None, f"no trial {trial}"
        if at_batches < 0 or (times is not None and times < 1):
            raise ValueError(
                f"at_batches must be >= 0 and times >= 1 or None, not {at_batches}, {times}"
            )
        fault = t.TrialFaultRow(
            trial_id=trial, at_batches=at_batches, exit_code=exit_code, remaining=times
        )
        self.db.add(fault)

    # --- model registry ---------------------------------------------------------------------
    def model(
        self,
        name: str,
        *,
        workspace: int = 1,
        owner: str = "determined",
        description: str = "",
        labels: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        notes: str = "",
        archived: bool = False,
    ) -> int:
        now = self._tick()
        row = t.ModelRow(
            name=name, description=description, metadata_=dict(metadata or {}),
            creation_time=now, last_updated_time=now, labels=list(labels),
            user_id=self._user_id(owner), workspace_id=workspace, archived=archived, notes=notes,
        )  # fmt: skip
        self.db.add(row)
        self.db.flush()
        assert row.id is not None
        return row.id

    def model_version(
        self,
        model: int,
        checkpoint: str,
        *,
        name: str = "",
        comment: str = "",
        notes: str = "",
        labels: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
        owner: str = "determined",
    ) -> int:
        versions = self.db.exec(
            select(t.ModelVersionRow.version).where(t.ModelVersionRow.model_id == model)
        ).all()
        now = self._tick()
        row = t.ModelVersionRow(
            model_id=model, version=max(versions, default=0) + 1, checkpoint_uuid=checkpoint,
            name=name, comment=comment, notes=notes, labels=list(labels),
            metadata_=dict(metadata or {}), user_id=self._user_id(owner), creation_time=now,
            last_updated_time=now,
        )  # fmt: skip
        self.db.add(row)
        self.db.execute(
            update(t.ModelRow).where(t.ModelRow.id == model).values(last_updated_time=now)  # type: ignore[arg-type]
        )
        self.db.flush()
        return row.version


def trials_in_project(db: Session, project: int) -> int:
    """How many trials the project's experiments hold: the last local id handed out there."""
    return len(
        db.exec(
            select(t.TrialRow.id).join(t.ExperimentRow).where(t.ExperimentRow.project_id == project)
        ).all()
    )


def add_trial(
    db: Session,
    exp: t.ExperimentRow,
    *,
    hparams: Mapping[str, Any],
    state: str,
    start_time: datetime,
    local_id: int,
    end_time: datetime | None = None,
    restarts: int = 0,
    metadata: Mapping[str, Any] | None = None,
) -> int:
    """Write a trial of ``exp`` (the Seeder's and CreateExperiment's): its row, its task id,
    its hparams in the runs index, and a single-trial experiment's best trial."""
    assert exp.id is not None
    task_uuid = uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"task/{exp.id}/{local_id}")
    row = t.TrialRow(
        experiment_id=exp.id, state=state, start_time=start_time, end_time=end_time,
        restarts=restarts, hparams=dict(hparams), task_id=f"{exp.id}.{task_uuid}",
        summary_metrics={}, metadata_=dict(metadata) if metadata else None, local_id=local_id,
    )  # fmt: skip
    db.add(row)
    db.flush()
    assert row.id is not None
    records = list(_hparam_records(row.id, hparams))
    if records:
        db.connection().execute(insert(t.RunHparamRow), records)
    if exp.searcher_type == "single":
        # AddTrial: a single-trial experiment's best trial is its trial from the start;
        # otherwise it is set when a validation is reported (_metric_reports).
        exp.best_trial_id = row.id
    return row.id


def refresh_checkpoint_sizes(db: Session, trial: int) -> None:
    """Recompute a trial's and its experiment's checkpoint size and count."""
    row = db.get(t.TrialRow, trial)
    assert row is not None
    live = db.exec(
        select(t.CheckpointRow).where(
            t.CheckpointRow.trial_id == trial, t.CheckpointRow.state != "DELETED"
        )
    ).all()
    row.checkpoint_size = sum(c.size for c in live)
    row.checkpoint_count = len(live)
    db.add(row)
    db.flush()
    trials = db.exec(select(t.TrialRow).where(t.TrialRow.experiment_id == row.experiment_id)).all()
    exp = db.get(t.ExperimentRow, row.experiment_id)
    assert exp is not None
    exp.checkpoint_size = sum(tr.checkpoint_size for tr in trials)
    exp.checkpoint_count = sum(tr.checkpoint_count for tr in trials)
    db.add(exp)


def _hparam_records(
    trial_id: int, hparams: Mapping[str, Any], prefix: str = ""
) -> Iterable[dict[str, Any]]:
    """``run_hparams`` rows: one per leaf, typed by its value."""
    for name, value in hparams.items():
        key = prefix + name
        if isinstance(value, Mapping):
            yield from _hparam_records(trial_id, value, key + ".")
            continue
        record: dict[str, Any] = {
            "run_id": trial_id, "hparam": key, "number_val": None, "text_val": None,
            "bool_val": None,
        }  # fmt: skip
        if isinstance(value, bool):
            record["bool_val"] = value
        elif isinstance(value, (int, float)):
            record["number_val"] = float(value)
        elif value is not None:
            record["text_val"] = str(value)
        yield record


def _const_values(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's hparams from a search space: ``val`` of consts, the first categorical value,
    the lower bound of ranges."""

    def pick(spec: Any) -> Any:
        if not isinstance(spec, Mapping):
            return spec
        kind = spec.get("type")
        if kind == "const":
            return spec.get("val")
        if kind == "categorical":
            return (spec.get("vals") or [None])[0]
        if kind in ("int", "double", "log"):
            return spec.get("minval")
        return {k: pick(v) for k, v in spec.items()}

    return {k: pick(v) for k, v in (config.get("hyperparameters") or {}).items()}


def _yaml_like(config: Mapping[str, Any]) -> str:
    # originalConfig is the YAML the user submitted; JSON is valid YAML.
    submitted = {
        k: config[k]
        for k in ("name", "description", "hyperparameters", "searcher", "entrypoint")
        if k in config
    }
    return json.dumps(submitted, indent=2, default=str)
