"""User-style code that must type-check under mypy --strict."""

from __future__ import annotations

from datetime import datetime, timezone

import detorm
from detorm import Experiment, ExperimentState, Q, Trial, hp, metrics


def recent_active(session: detorm.Session) -> list[Experiment]:
    query = (
        Experiment.query(session)
        .filter(state__in=["ACTIVE", "PAUSED"], tags__contains="prod")
        .filter(start_time__gte=datetime(2024, 1, 1, tzinfo=timezone.utc))
        .order_by("-start_time", "name")
    )
    return query[:50].all()


def best_trials(exp: Experiment) -> list[tuple[int, float | None]]:
    trials = exp.trials.filter(state="COMPLETED").order_by("-searcher_metric_value")
    return [(t.id, t.searcher_metric_value) for t in trials]


def expressions() -> int:
    query = Experiment.query().filter(
        (hp.lr > 0.01) | (metrics.validation.loss.min < 0.3),
        Q(hp__optimizer__momentum__gte=0.9) & ~Q(state=ExperimentState.ERROR),
        name__contains="bert",
    )
    return query.order_by(hp.lr.desc(), "id").count()


def relationships(session: detorm.Session) -> str:
    trial: Trial = session.get(Trial, 1)
    project_name: str = trial.experiment.project.name
    workspace_names = [p.workspace.name for p in trial.experiment.project.workspace.projects]
    return project_name + ",".join(workspace_names)


def summaries(trial: Trial) -> float | None:
    loss = trial.summary_metrics.get("validation", {}).get("loss")
    return None if loss is None else loss.min


def config_and_hparams(exp: Experiment, trial: Trial) -> str:
    name: str = exp.config.get("name", "")
    restarts: int = exp.config.get("max_restarts", 5)
    lr = trial.hparams.get("lr")
    if isinstance(lr, float):
        return f"{name} {restarts} {lr:.4f}"
    return name


def edits(session: detorm.Session, exp: Experiment) -> int:
    exp.tags.add("reviewed")
    exp.priority = 10
    plan = session.pending()
    applied = session.commit()
    result = Experiment.query(session).filter(state="COMPLETED").archive()
    return len(plan) + len(applied) + len(result.succeeded)


def reads(session: detorm.Session, trial: Trial) -> float:
    total = 0.0
    for report in session.metrics([trial], "validation"):
        value = report.values.get("loss")
        total += value if isinstance(value, float) else 0.0
    for entry in trial.logs(levels=["ERROR"], tail=10):
        total += len(entry.message)
    summary = session.summaries([trial])[trial.id]
    return total + len(summary.hparams)


def moves(session: detorm.Session, exp: Experiment, project: detorm.Project) -> None:
    exp.project = project
    exp.project = 7
    project.workspace = session.get(detorm.Workspace, 1)
