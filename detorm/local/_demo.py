"""Deterministic clusters: the demo (``detorm serve --demo``) and the benchmark dataset.

Both are functions of their seed: the same seed gives the same rows (ids, names, times,
metrics, uuids). Only password hashes differ between runs (they are salted).

The demo cluster (:func:`seed_demo`) looks like a team's real cluster: a few users, workspaces
and projects, some 300 experiments in every state with labels, notes, hyperparameter searches and
searcher configs, trials with training and validation curves (some diverge to NaN), checkpoints,
log lines and registered model versions. Users and passwords:

==========  ============  ==================
user        password      role
==========  ============  ==================
``alice``   ``alice-pw``  ML engineer
``bob``     ``bob-pw``    ML engineer
``carol``   (none)        researcher
``dana``    ``dana-pw``   admin
==========  ============  ==================

The benchmark cluster (:func:`seed_benchmark`) is large and regular: by default 2 workspaces x
5 projects x 200 experiments x 4 trials, each trial with 3 checkpoints and 500 metric rows
(400 training, 100 validation).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlmodel import select

from . import _tables as t
from ._db import Database
from ._seed import MetricReport, Seeder, default_config

__all__ = ["seed_benchmark", "seed_demo"]

DEMO_EPOCH: Final = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
"""The demo's "now": every demo time is before it."""

_USERS: Final = (
    ("alice", "alice-pw", False, "Alice Ng"),
    ("bob", "bob-pw", False, "Bob Okafor"),
    ("carol", None, False, "Carol Diaz"),
    ("dana", "dana-pw", True, "Dana Kim"),
)
_WORKSPACES: Final = (
    ("Computer Vision", "alice", (
        ("image-classification", "ResNets and ViTs on CIFAR and ImageNet subsets", False),
        ("object-detection", "Detectors for the warehouse camera feed", False),
        ("segmentation", "", False),
    )),
    ("Language", "bob", (
        ("sentiment", "Review sentiment, distilled encoders", False),
        ("translation", "EN-DE small transformers", False),
    )),
    ("Research", "carol", (
        ("optimizers", "Comparing optimizers and schedules", False),
        ("old-ideas", "Parked experiments from last quarter", True),
    )),
)  # fmt: skip
_ARCHS: Final = {
    "image-classification": ("resnet18", "resnet50", "vit-tiny", "mobilenet-v3"),
    "object-detection": ("yolo-s", "retinanet", "detr-lite"),
    "segmentation": ("unet", "deeplab-v3"),
    "sentiment": ("distilbert", "bilstm", "tiny-bert"),
    "translation": ("transformer-s", "transformer-m"),
    "optimizers": ("mlp", "resnet18", "gpt-nano"),
    "old-ideas": ("capsnet", "hypernet"),
}
_DATASETS: Final = ("cifar10", "cifar100", "imagenet-64", "coco-mini", "sst2", "wmt14", "mnist")
_LABELS: Final = ("baseline", "sweep", "prod-candidate", "ablation", "fp16", "debug", "long-run")
_STATES: Final = (
    ("COMPLETED", 55), ("CANCELED", 12), ("ERROR", 8), ("ACTIVE", 15), ("PAUSED", 10),
)  # fmt: skip
_SEARCHERS: Final = (("single", 40), ("random", 25), ("grid", 15), ("adaptive_asha", 20))
_NOTES: Final = (
    "",
    "",
    "## Findings\n\n- warmup matters more than peak lr\n- batch 128 is the sweet spot\n",
    "Rerun of the previous sweep with the data loader fix.",
    "TODO: compare against the fp32 baseline.",
)


def seed_demo(database: Database, seed: int = 0) -> None:
    """Seed the demo cluster, unless the database already has experiments."""
    with database.transaction(write=False) as db:
        if db.exec(select(t.ExperimentRow).limit(1)).first() is not None:
            return
    rng = random.Random(seed)
    with Seeder(database, now=DEMO_EPOCH - timedelta(days=90)) as seeder:
        demo = _Demo(seeder, rng)
        demo.users()
        demo.cluster()
        demo.models()
        demo.profiler(random.Random(seed + 1))


# --- hyperparameters ------------------------------------------------------------------------
def _search_space(rng: random.Random, arch: str) -> dict[str, Any]:
    """A search space using every kind of hyperparameter, one level nested."""
    space: dict[str, Any] = {
        "global_batch_size": {"type": "const", "val": rng.choice([32, 64, 128, 256])},
        "learning_rate": {"type": "log", "base": 10, "minval": -5, "maxval": -2},
        "weight_decay": {"type": "double", "minval": 0.0, "maxval": 0.1},
        "num_layers": {"type": "int", "minval": 2, "maxval": 12},
        "optimizer": {"type": "categorical", "vals": ["adam", "adamw", "sgd"]},
        "model": {
            "arch": {"type": "const", "val": arch},
            "dropout": {"type": "double", "minval": 0.0, "maxval": 0.5},
            "activation": {"type": "categorical", "vals": ["relu", "gelu", "silu"]},
        },
    }
    if rng.random() < 0.3:
        space["warmup_steps"] = {"type": "int", "minval": 0, "maxval": 2000}
    return space


def _sample(rng: random.Random, space: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's hparams drawn from a search space."""
    values: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec.get("type") if isinstance(spec, Mapping) else None
        if kind == "const":
            values[name] = spec["val"]
        elif kind == "categorical":
            values[name] = rng.choice(spec["vals"])
        elif kind == "int":
            values[name] = rng.randint(spec["minval"], spec["maxval"])
        elif kind == "double":
            values[name] = round(rng.uniform(spec["minval"], spec["maxval"]), 6)
        elif kind == "log":
            values[name] = float(
                f"{spec['base'] ** rng.uniform(spec['minval'], spec['maxval']):.6g}"
            )
        elif isinstance(spec, Mapping):
            values[name] = _sample(rng, spec)
    return values


def _weighted(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    names = [name for name, _ in table]
    return rng.choices(names, [weight for _, weight in table])[0]


# --- curves ---------------------------------------------------------------------------------
@dataclass
class _Curve:
    """A plausible training run: loss decays towards a floor, accuracy rises."""

    start: float
    floor: float
    rate: float
    noise: float
    diverge_at: int | None = None  # step after which the loss is NaN

    @classmethod
    def draw(cls, rng: random.Random, *, diverge: bool, steps: int) -> _Curve:
        return cls(
            start=rng.uniform(1.8, 2.6), floor=rng.uniform(0.05, 0.6), rate=rng.uniform(0.02, 0.12),
            noise=rng.uniform(0.005, 0.04),
            diverge_at=rng.randint(steps // 2, steps) if diverge and steps > 2 else None,
        )  # fmt: skip

    def loss(self, rng: random.Random, step: int) -> float:
        if self.diverge_at is not None and step >= self.diverge_at:
            return math.nan
        value = self.floor + (self.start - self.floor) * math.exp(-self.rate * step)
        return round(value * (1 + rng.gauss(0, self.noise)), 6)

    def accuracy(self, rng: random.Random, step: int) -> float:
        if self.diverge_at is not None and step >= self.diverge_at:
            return 0.1
        value = 0.98 - 0.88 * math.exp(-self.rate * step * 0.9) - self.floor * 0.2
        return round(min(0.999, max(0.0, value + rng.gauss(0, self.noise / 2))), 6)


# --- the demo cluster -----------------------------------------------------------------------
_TRIAL_STATES_BY_EXPERIMENT: Final = {
    "COMPLETED": (("COMPLETED", 1),),
    "CANCELED": (("CANCELED", 2), ("COMPLETED", 1)),
    "ERROR": (("ERROR", 2), ("COMPLETED", 1)),
    "ACTIVE": (("ACTIVE", 3), ("COMPLETED", 1)),
    "PAUSED": (("PAUSED", 3), ("COMPLETED", 1)),
}


class _Demo:
    def __init__(self, seeder: Seeder, rng: random.Random) -> None:
        self.s = seeder
        self.rng = rng
        self.checkpoints: list[tuple[str, float, str]] = []  # (uuid, best metric, workspace)
        self.workspace_ids: dict[str, int] = {}

    def profiler(self, rng: random.Random) -> None:
        """System metrics of the first trial of each completed experiment, as the harness's
        profiler reports them (groups gpu, cpu and memory, by agent, GPUs by uuid), every 30 s.
        Seeded last, from a generator of its own, so that the rest of the demo is unchanged."""
        rows = self.s.db.exec(
            select(t.TrialRow.experiment_id, t.TrialRow.id, t.TrialRow.start_time)
            .join(t.ExperimentRow, t.ExperimentRow.id == t.TrialRow.experiment_id)  # type: ignore[arg-type]
            .where(t.ExperimentRow.state == "COMPLETED")
            .order_by(t.TrialRow.experiment_id, t.TrialRow.id)  # type: ignore[arg-type]
        ).all()
        first: dict[int, tuple[int, datetime]] = {}
        for experiment_id, trial_id, start in rows:
            assert trial_id is not None
            first.setdefault(experiment_id, (trial_id, start))
        for trial_id, start in first.values():
            agent = f"agent-{rng.randint(0, 3)}"
            gpus = [f"GPU-{rng.getrandbits(32):08x}" for _ in range(2)]
            gpu: list[MetricReport] = []
            cpu: list[MetricReport] = []
            memory: list[MetricReport] = []
            for step in range(8):
                when = start + timedelta(seconds=30 * (step + 1))
                by_gpu = {
                    uuid: {
                        "gpu_util": round(rng.uniform(60, 98), 1),
                        "gpu_free_memory": float(rng.randint(2, 12) * 2**30),
                    }
                    for uuid in gpus
                }
                gpu.append((None, {agent: by_gpu}, when))
                cpu.append(
                    (None, {agent: {"cpu_util_simple": round(rng.uniform(20, 90), 1)}}, when)
                )
                memory.append(
                    (None, {agent: {"memory_free": float(rng.randint(8, 60) * 2**30)}}, when)
                )
            for group, reports in (("gpu", gpu), ("cpu", cpu), ("memory", memory)):
                self.s.metrics(trial_id, group, reports)

    def users(self) -> None:
        for username, password, admin, display in _USERS:
            self.s.user(username, password=password, admin=admin, display_name=display)

    def cluster(self) -> None:
        experiment_index = 0
        for ws_name, owner, projects in _WORKSPACES:
            workspace = self.s.workspace(ws_name, owner=owner)
            self.workspace_ids[ws_name] = workspace
            for project_name, description, archived in projects:
                project = self.s.project(
                    project_name, workspace=workspace, owner=owner, description=description,
                    notes=[{"name": "README", "contents": f"# {project_name}\n\n{description}\n"}],
                )  # fmt: skip
                count = self.rng.randint(30, 55)
                previous: list[int] = []
                for _ in range(count):
                    experiment_index += 1
                    exp = self.experiment(
                        ws_name, project, project_name, experiment_index, previous
                    )
                    previous.append(exp)
                if archived:
                    row = self.s.db.get(t.ProjectRow, project)
                    assert row is not None
                    row.archived = True
                    self.s.db.add(row)

    def experiment(
        self, ws_name: str, project: int, project_name: str, index: int, previous: list[int]
    ) -> int:
        rng = self.rng
        arch = rng.choice(_ARCHS[project_name])
        dataset = rng.choice(_DATASETS)
        state = _weighted(rng, _STATES)
        searcher = _weighted(rng, _SEARCHERS)
        n_trials = {
            "single": 1,
            "random": rng.randint(3, 6),
            "grid": 4,
            "adaptive_asha": rng.randint(4, 6),
        }[searcher]
        use_accuracy = rng.random() < 0.25
        metric = "accuracy" if use_accuracy else "validation_loss"
        name = f"{arch}-{dataset}-{index:03d}"
        labels = sorted(rng.sample(_LABELS, rng.randint(0, 3)))
        description = rng.choice(["", f"{arch} on {dataset}", f"{searcher} search over {arch}"])
        space = _search_space(rng, arch)
        config = default_config(
            name=name, description=description, labels=labels, hyperparameters=space,
            searcher=searcher, metric=metric, smaller_is_better=not use_accuracy,
            max_trials=n_trials, workspace=ws_name, project=project_name,
        )  # fmt: skip
        if searcher == "adaptive_asha":
            config["searcher"].update(max_length={"batches": 4000}, mode="standard", max_rungs=4)
        if searcher in ("random", "grid"):
            config["searcher"]["max_concurrent_trials"] = 2
        start = DEMO_EPOCH - timedelta(days=rng.uniform(1, 85))
        terminal = state in ("COMPLETED", "CANCELED", "ERROR")
        duration = timedelta(minutes=rng.randint(10, 600))
        exp = self.s.experiment(
            project=project, name=name, owner=rng.choice(_USERS)[0], state=state, labels=labels,
            description=description, notes=rng.choice(_NOTES), searcher=searcher, metric=metric,
            smaller_is_better=not use_accuracy,
            archived=terminal and rng.random() < 0.06,
            progress=1.0 if state == "COMPLETED" else round(rng.uniform(0.05, 0.95), 3),
            parent_id=rng.choice(previous) if previous and rng.random() < 0.08 else None,
            start_time=start, end_time=start + duration if terminal else None, config=config,
        )  # fmt: skip
        for _ in range(n_trials):
            self.trial(exp, state, space, start, duration, metric, ws_name)
        return exp

    def trial(
        self, exp: int, exp_state: str, space: Mapping[str, Any], start: datetime,
        duration: timedelta, metric: str, ws_name: str,
    ) -> None:  # fmt: skip
        rng = self.rng
        state = _weighted(rng, _TRIAL_STATES_BY_EXPERIMENT[exp_state])
        terminal = state in ("COMPLETED", "CANCELED", "ERROR")
        trial_start = start + timedelta(seconds=rng.randint(5, 120))
        steps = rng.randint(12, 40) if state == "COMPLETED" else rng.randint(3, 20)
        step_time = duration / (steps + 2)
        trial = self.s.trial(
            exp, hparams=_sample(rng, space), state=state, start_time=trial_start,
            end_time=trial_start + step_time * (steps + 1) if terminal else None,
            restarts=rng.choice([0, 0, 0, 1]) if state == "ERROR" else 0,
        )  # fmt: skip
        curve = _Curve.draw(rng, diverge=state == "ERROR" or rng.random() < 0.03, steps=steps)
        training, validation = [], []
        for step in range(1, steps + 1):
            when = trial_start + step_time * step
            batches = step * 100
            loss = curve.loss(rng, step)
            training.append(
                (batches, {"loss": loss, "lr": _reported_lr(rng), "epoch": step / 10}, when)
            )
            if step % 4 == 0 or step == steps:
                values = {
                    "validation_loss": curve.loss(rng, step) * 1.1,
                    "accuracy": curve.accuracy(rng, step),
                }
                validation.append((batches, values, when + timedelta(seconds=30)))
        self.s.metrics(trial, "training", training)
        self.s.metrics(trial, "validation", validation)
        self.checkpoints_for(trial, validation, metric, ws_name)
        self.logs(trial, exp, state, trial_start, steps)

    def checkpoints_for(
        self, trial: int, validation: list[tuple[int, dict[str, float], datetime]], metric: str,
        ws_name: str,
    ) -> None:  # fmt: skip
        """A checkpoint at every other validation and the last; as with the default policy
        (save_trial_best 1, save_trial_latest 1) only the best and the latest stay, the others
        were garbage-collected (DELETED)."""
        sign = 1.0 if metric == "validation_loss" else -1.0
        points = [v for i, v in enumerate(validation) if i % 2 == 0 or i == len(validation) - 1]
        scores = [sign * v[1][metric] for v in points]
        ranked = [i for i in range(len(points)) if not math.isnan(scores[i])]
        keep = {len(points) - 1} | ({min(ranked, key=lambda i: scores[i])} if ranked else set())
        for index, (batches, _, when) in enumerate(points):
            live = index in keep
            uuid = self.s.checkpoint(
                trial, total_batches=batches, state="COMPLETED" if live else "DELETED",
                report_time=when + timedelta(seconds=5),
                resources={
                    "metadata.json": 180, "state_dict.pth": 4_000_000 + batches * 10,
                    "optimizer.pth": 2_000_000 + batches * 5,
                },
            )  # fmt: skip
            if live and not math.isnan(scores[index]):
                self.checkpoints.append((uuid, scores[index], ws_name))

    def logs(self, trial: int, exp: int, state: str, start: datetime, steps: int) -> None:
        rng = self.rng
        container = f"{rng.getrandbits(128):032x}"
        agent = rng.choice(["agent-a100-1", "agent-a100-2", "agent-t4-1"])
        ranks = rng.choice([(0,), (0,), (0, 1)])
        at = start
        lines: list[dict[str, Any]] = []

        def line(text: str, **fields: Any) -> None:
            nonlocal at
            at += timedelta(milliseconds=rng.randint(5, 900))
            lines.append({"log": text + "\n", "timestamp": at, **fields})

        master = {"source": "master", "stdtype": "stdout"}
        on_agent = {
            "source": "agent",
            "stdtype": "stdout",
            "agent_id": agent,
            "container_id": container,
        }
        line(f"Scheduling Trial {trial} (Experiment {exp})", **master)
        line(f"Trial {trial} (Experiment {exp}) was assigned to an agent", **master)
        line("image already found, skipping pull phase", **on_agent)
        line(
            "+ test -f startup-hook.sh",
            level="LOG_LEVEL_UNSPECIFIED",
            **{**on_agent, "stdtype": "stderr"},
        )
        for rank in ranks:
            line(
                f"[rank={rank}] determined.core: Running task container on agent {agent}",
                rank_id=rank,
                **on_agent,
            )
        line(
            "torch.cuda: using mixed precision (fp16)",
            level="LOG_LEVEL_DEBUG",
            rank_id=0,
            **on_agent,
        )
        for step in range(1, steps + 1, max(1, steps // 6)):
            for rank in ranks:
                line(f"training: step {step * 100} loss reported", rank_id=rank, **on_agent)
            if rng.random() < 0.15:
                line(
                    "DataLoader worker is slow, consider more workers",
                    level="LOG_LEVEL_WARNING",
                    rank_id=0,
                    **on_agent,
                )
        if state == "ERROR":
            line(
                "RuntimeError: loss is NaN, stopping",
                level="LOG_LEVEL_ERROR",
                rank_id=0,
                **{**on_agent, "stdtype": "stderr"},
            )
            line(
                "resources failed with non-zero exit code",
                level="LOG_LEVEL_ERROR",
                container_id=container,
                **master,
            )
        elif state in ("COMPLETED", "CANCELED"):
            line(
                "resources exited successfully with a zero exit code",
                container_id=container,
                **master,
            )
            line(f"Trial {trial} (Experiment {exp}) was terminated", **master)
        self.s.logs(trial, lines)

    def models(self) -> None:
        rng = self.rng
        best = sorted(self.checkpoints, key=lambda item: item[1])
        names = (
            "cifar-classifier",
            "warehouse-detector",
            "sentiment-prod",
            "translator-de",
            "tiny-gpt",
            "legacy-capsnet",
        )
        for index, name in enumerate(names):
            ws_name = _WORKSPACES[min(index // 2, len(_WORKSPACES) - 1)][0]
            model = self.s.model(
                name, workspace=self.workspace_ids[ws_name], owner=rng.choice(_USERS)[0],
                description=f"{name} models promoted from experiments",
                labels=sorted(rng.sample(["prod", "staging", "vision", "nlp", "edge"], 2)),
                metadata={"team": ws_name, "framework": "pytorch"},
                notes="Promote a version only after the offline eval passes.",
                archived=name.startswith("legacy"),
            )  # fmt: skip
            candidates = [c for c in best if c[2] == ws_name] or best
            for version in range(rng.randint(1, 4)):
                uuid = candidates[min(version * 3 + index, len(candidates) - 1)][0]
                self.s.model_version(
                    model, uuid, name=f"v{version + 1}", comment="promoted by the demo",
                    labels=["candidate"] if version else ["baseline"],
                    metadata={"eval_split": "holdout"}, owner=rng.choice(_USERS)[0],
                )  # fmt: skip


def _reported_lr(rng: random.Random) -> float:
    """The learning rate a scheduler reports at some step."""
    return float(f"{10 ** rng.uniform(-5, -2):.4g}")


# --- the benchmark cluster ------------------------------------------------------------------
BENCHMARK_EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)


def seed_benchmark(
    database: Database,
    *,
    workspaces: int = 2,
    projects: int = 5,
    experiments: int = 200,
    trials: int = 4,
    checkpoints: int = 3,
    metric_rows: int = 500,
    seed: int = 0,
) -> None:
    """Seed the benchmark cluster: ``metric_rows`` per trial, four fifths training and one
    fifth validation. Each project is one transaction. Checkpoint rows have no files (their
    downloads fail; everything else about them is served)."""
    rng = random.Random(seed)
    validation_rows = metric_rows // 5
    training_rows = metric_rows - validation_rows
    for w in range(workspaces):
        with Seeder(database, now=BENCHMARK_EPOCH) as seeder:
            workspace = seeder.workspace(f"bench-{w}")
        for p in range(projects):
            clock = BENCHMARK_EPOCH + timedelta(days=30 * (w * projects + p))
            # no checkpoint files: 24,000 directories would double the seeding time
            with Seeder(database, now=clock, checkpoint_files=False) as seeder:
                project = seeder.project(f"bench-{w}-{p}", workspace=workspace)
                for e in range(experiments):
                    _benchmark_experiment(
                        seeder, rng, project, f"bench-{w}-{p}-{e:04d}", clock + timedelta(hours=e),
                        trials, checkpoints, training_rows, validation_rows,
                    )  # fmt: skip


_BENCH_SPACE: Final = {
    "learning_rate": {"type": "log", "base": 10, "minval": -5, "maxval": -1},
    "global_batch_size": {"type": "const", "val": 64},
    "dropout": {"type": "double", "minval": 0.0, "maxval": 0.5},
    "layers": {"type": "int", "minval": 1, "maxval": 8},
    "optimizer": {"type": "categorical", "vals": ["adam", "sgd"]},
}


def _benchmark_experiment(
    seeder: Seeder, rng: random.Random, project: int, name: str, start: datetime, trials: int,
    checkpoints: int, training_rows: int, validation_rows: int,
) -> None:  # fmt: skip
    state = _weighted(
        rng, (("COMPLETED", 70), ("CANCELED", 10), ("ERROR", 5), ("ACTIVE", 10), ("PAUSED", 5))
    )
    exp = seeder.experiment(
        project=project, name=name, state=state, searcher="random" if trials > 1 else "single",
        labels=sorted(rng.sample(_LABELS, rng.randint(0, 2))), hyperparameters=_BENCH_SPACE,
        start_time=start, description=f"benchmark experiment {name}",
    )  # fmt: skip
    for _ in range(trials):
        trial = seeder.trial(exp, hparams=_sample(rng, _BENCH_SPACE), start_time=start)
        rate = rng.uniform(0.005, 0.02)
        training = [
            (step * 10, {"loss": 0.1 + 2.0 * math.exp(-rate * step) + rng.random() * 0.01, "lr": 0.001},
             start + timedelta(seconds=step))
            for step in range(1, training_rows + 1)
        ]  # fmt: skip
        every = max(1, training_rows // max(1, validation_rows))
        validation = [
            (step * every * 10,
             {"validation_loss": 0.12 + 2.0 * math.exp(-rate * step * every) + rng.random() * 0.01,
              "accuracy": min(0.99, 0.5 + step / (2 * validation_rows))},
             start + timedelta(seconds=step * every, milliseconds=500))
            for step in range(1, validation_rows + 1)
        ]  # fmt: skip
        seeder.metrics(trial, "training", training)
        seeder.metrics(trial, "validation", validation)
        for c in range(checkpoints):
            seeder.checkpoint(
                trial, total_batches=(c + 1) * training_rows * 10 // checkpoints,
                report_time=start + timedelta(seconds=(c + 1) * training_rows // checkpoints),
            )  # fmt: skip
