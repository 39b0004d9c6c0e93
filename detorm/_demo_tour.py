"""``detorm demo``: start detorm.local with the demo cluster and tour it with detorm.

Everything here is what a user would type in a notebook; the request counts printed come from
the session, so the tour doubles as a quick check that the SDK and the local master agree.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TextIO

import detorm
from detorm import Experiment, Project, Q, Trial, Workspace, hp, metrics
from detorm.local import LocalMaster


def _line(out: TextIO, text: str = "") -> None:
    out.write(text + "\n")


def run_demo(*, seed: int = 0, out: TextIO) -> int:
    with tempfile.TemporaryDirectory(prefix="detorm-demo-") as home:
        environ = {"HOME": home, "XDG_CONFIG_HOME": os.path.join(home, "config")}
        with LocalMaster(demo=True, process=True, db_path=Path(home) / "demo.sqlite") as master:
            _line(out, f"detorm.local is serving the demo cluster at {master.url}")
            with detorm.Session(master.url, user="alice", password="alice-pw", environ=environ,
                                cache=Path(home) / "cache") as session:  # fmt: skip
                _tour(session, out)
    return 0


def _tour(session: detorm.Session, out: TextIO) -> None:
    _line(out, f"logged in as {session.username} ({session.requests_sent} request)\n")

    _line(out, "Workspaces and their projects:")
    for workspace in Workspace.query(session).order_by("name"):
        names = ", ".join(p.name for p in workspace.projects.order_by("name"))
        _line(out, f"  {workspace.name}: {names or '-'}")

    running = (
        Experiment.query(session).filter(state__in=["ACTIVE", "PAUSED"]).order_by("-start_time")
    )
    _line(
        out,
        f"\nActive or paused experiments: {running.count()} (one request: {running.explain().calls[0]})",
    )
    for item in running[:5]:
        _line(out, f"  #{item.id} {item.name:<32} {item.state!s:<8} tags={sorted(item.tags)}")

    good = (
        Experiment.query(session)
        .filter(metrics.validation.validation_loss.min < 0.3, state="COMPLETED")
        .order_by("name")
    )
    _line(out, f"\nCompleted experiments whose best validation loss is below 0.3: {good.count()}")
    wide = Experiment.query(session).filter(
        Q(hp__learning_rate__gte=0.001) | (hp.model.dropout > 0.3)
    )
    _line(out, f"Experiments searching learning rates >= 0.001 or dropouts > 0.3: {wide.count()}")

    exp = good.first()
    if exp is not None:
        trials = exp.trials.order_by("id").all()
        _line(out, f"\n{exp.name}: {len(trials)} trial(s) in project {exp.project.name!r}")
        best = exp.best_trial()
        if best is not None:
            loss = best.summary_metrics.get("validation", {}).get("validation_loss")
            _line(out, f"  best trial #{best.id}: hparams={best.hparams}")
            if loss is not None:
                _line(
                    out,
                    f"  validation_loss min={loss.min:.4f} last={loss.last} over {loss.count} reports",
                )
            reports = list(best.metrics("validation"))
            _line(
                out,
                f"  {len(reports)} validation reports, first at step {reports[0].step}"
                if reports
                else "  no reports",
            )
            for entry in best.logs(tail=3):
                _line(out, f"  log {entry.level!s:<8} {entry}")

    project = session.get(Project, exp.project_id) if exp is not None else None
    if project is not None:
        before = session.requests_sent
        mine = Experiment.query(session).filter(project_id=project.id, username="alice").all()
        for item in mine:
            item.tags.add("toured")
        plan = session.pending()
        _line(
            out,
            f"\nTagging {len(mine)} of alice's experiments in {project.name!r}: {len(plan)} call(s) planned",
        )
        session.commit()
        _line(
            out, f"  committed with {session.requests_sent - before - 1} request(s) after the query"
        )

    trials = (
        Trial.query(session)
        .filter(hp.learning_rate > 0.001)
        .order_by(hp.learning_rate.desc())[:3]
        .all()
    )
    _line(out, "\nTrials with the largest learning rates (one runs search):")
    for trial in trials:
        rate = trial.hparams.get("learning_rate")
        _line(
            out, f"  trial #{trial.id} of experiment #{trial.experiment_id}: learning_rate={rate}"
        )
    _line(out, f"\n{session.requests_sent} requests in all.")
