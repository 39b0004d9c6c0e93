"""Trials of created experiments run by simulation (``detorm/local/_simulation.py``): training
to ``max_length`` with reports, checkpoints, TensorBoard files and logs; pause, cancel, kill,
restarts and errors; the time scale. The cluster's clock is frozen (``frozen_clock``): a trial
trains exactly as far as a test moves it."""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from detorm.errors import ConfigurationError
from detorm.local import LocalMaster, Seeder
from detorm.local import _simulation as simulation
from detorm.local import _scheduler as sim
from detorm.local import _tables as t
from detorm.local._routes.master import CLUSTER_ID
from detorm.local._seed import default_config
from detorm.local._storage import CheckpointStorage
from tests.conftest import login
from tests.local.simulation import Clock, durations, frozen_clock, ok, quick_logs, stream

RATE = simulation.BATCHES_PER_SECOND  # batches per second at time scale 1


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    durations(monkeypatch)
    return frozen_clock(monkeypatch)


@pytest.fixture
def master(clock: Clock) -> Iterator[LocalMaster]:
    with LocalMaster(process=False, enable_faults=True) as master:
        yield master


@pytest.fixture
def api(master: LocalMaster) -> Iterator[httpx.Client]:
    client = login(master.url)
    try:
        yield client
    finally:
        client.close()


def simulated(
    master: LocalMaster,
    api: httpx.Client,
    *,
    trials: int = 1,
    max_length: Any = None,
    state: str = "ACTIVE",
    hparams: Mapping[str, Any] | None = None,
    **config: Any,
) -> tuple[int, list[int]]:
    """An experiment as CreateExperiment leaves it: a simulated_experiments row and its trials
    (with these hparams and a learning rate of its own), ``config`` merged over the defaults.
    Then a request, which schedules its trials: they start training at the clock's time."""
    with Seeder(master.database) as seed:
        document = seed.storage.localize(
            default_config(name="sim", searcher="random", max_trials=trials)
        )
        document["searcher"]["max_length"] = {"batches": 1000} if max_length is None else max_length
        for key, value in config.items():
            if isinstance(value, dict) and isinstance(document.get(key), dict):
                document[key] = {**document[key], **value}
            else:
                document[key] = value
        searcher = document["searcher"]
        experiment = seed.experiment(
            name="sim", state=state, config=document, searcher="random",
            metric=searcher["metric"], smaller_is_better=searcher["smaller_is_better"],
        )  # fmt: skip
        seed.db.add(t.SimulatedExperimentRow(experiment_id=experiment))
        ids = [
            seed.trial(experiment, hparams={**(hparams or {}), "lr": 0.01 * (i + 1)})
            for i in range(trials)
        ]
    ok(api.get(f"/api/v1/experiments/{experiment}"))  # the first request schedules its trials
    return experiment, ids


def experiment(api: httpx.Client, experiment_id: int) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.get(f"/api/v1/experiments/{experiment_id}"))["experiment"]
    return body


def trial(api: httpx.Client, trial_id: int) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.get(f"/api/v1/trials/{trial_id}"))["trial"]
    return body


def metrics(api: httpx.Client, trial_id: int, group: str) -> list[dict[str, Any]]:
    response = api.get(
        "/api/v1/trials/metrics/trial_metrics", params={"trialIds": trial_id, "group": group}
    )
    assert response.status_code == 200, response.text
    return [report for batch in stream(response) for report in batch["metrics"]]


def steps(reports: list[dict[str, Any]]) -> list[int]:
    return [int(report["totalBatches"]) for report in reports]


def log_lines(api: httpx.Client, trial_id: int) -> list[str]:
    response = api.get(f"/api/v1/trials/{trial_id}/logs")
    assert response.status_code == 200, response.text
    return [entry["log"] for entry in stream(response)]


def checkpoints(api: httpx.Client, trial_id: int) -> list[dict[str, Any]]:
    body = ok(api.get(f"/api/v1/trials/{trial_id}/checkpoints"))
    found: list[dict[str, Any]] = body["checkpoints"]
    return sorted(found, key=lambda c: int(c["metadata"]["steps_completed"]))


def jobs(api: httpx.Client) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ok(api.get("/api/v1/job-queues-v2"))["jobs"]
    return found


def storage(master: LocalMaster) -> CheckpointStorage:
    return CheckpointStorage.of(master.db_path)


# --- the TFRecord reader of the tests ------------------------------------------------------------
def _masked_crc(data: bytes) -> int:
    crc = simulation.crc32c(data)
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(path: Path) -> list[bytes]:
    """TFRecords, their two checksums verified."""
    data, records, at = path.read_bytes(), [], 0
    while at < len(data):
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", data[at + 8 : at + 12])
        assert header_crc == _masked_crc(header)
        body = data[at + 12 : at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length : at + 16 + length])
        assert body_crc == _masked_crc(body)
        records.append(body)
        at += 16 + length
    return records


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _fields(data: bytes) -> Iterator[tuple[int, Any]]:
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 1:
            value, at = data[at : at + 8], at + 8
        elif wire == 5:
            value, at = data[at : at + 4], at + 4
        else:
            length, at = _varint(data, at)
            value, at = data[at : at + length], at + length
        yield number, value


def scalars(event: bytes) -> tuple[int, dict[str, float]]:
    """An Event's step and its summary's simple values by tag."""
    step, found = 0, {}
    for number, value in _fields(event):
        if number == 2:
            step = value
        if number == 5:
            for _, item in _fields(value):
                fields = dict(_fields(item))
                found[fields[1].decode()] = struct.unpack("<f", fields[2])[0]
    return step, found


# --- tests ---------------------------------------------------------------------------------------
def test_crc32c_is_castagnoli() -> None:
    assert simulation.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


@pytest.mark.parametrize(
    ("length", "hparams", "expected"),
    [
        (700, {}, 700),
        ({"batches": 800}, {}, 800),
        ({"records": 6400}, {"global_batch_size": 32}, 200),
        ({"records": 10}, {"global_batch_size": 32}, 1),
        ({"epochs": 2}, {"global_batch_size": 50}, 40),  # records_per_epoch 1000
    ],
)
def test_max_length_in_batches(length: Any, hparams: dict[str, Any], expected: int) -> None:
    config = {"searcher": {"max_length": length}, "records_per_epoch": 1000}
    assert simulation.target_batches(config, hparams) == expected


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"searcher": {"max_length": {"records": 100}}}, "global_batch_size"),
        ({"searcher": {"max_length": {"epochs": 1}}, "global_batch_size": 1}, "global_batch_size"),
        ({"searcher": {"max_length": {"weeks": 1}}}, "invalid length"),
        ({"searcher": {"name": "single"}}, "no max_length"),
    ],
)
def test_max_length_that_cannot_be_trained(config: dict[str, Any], message: str) -> None:
    with pytest.raises(simulation.SimulationError, match=message):
        simulation.target_batches(config, {})


def test_an_experiment_runs_to_completed(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, trial_ids = simulated(
        master, api, trials=3, min_validation_period={"batches": 500},
        min_checkpoint_period={"batches": 500},
        searcher={"metric": "accuracy", "smaller_is_better": False},
    )  # fmt: skip
    assert experiment(api, exp_id)["state"] == "STATE_RUNNING"
    assert [trial(api, i)["totalBatchesProcessed"] for i in trial_ids] == [0, 0, 0]
    assert len(jobs(api)) == 1  # the experiment's job, its three trials scheduled

    clock.skip(500 / RATE)  # half way
    halfway = experiment(api, exp_id)
    assert halfway["state"] == "STATE_RUNNING"
    assert halfway["progress"] == pytest.approx(0.5)
    assert [trial(api, i)["totalBatchesProcessed"] for i in trial_ids] == [500, 500, 500]

    clock.skip(500 / RATE)
    done = experiment(api, exp_id)
    assert done["state"] == "STATE_COMPLETED"
    assert done["progress"] == 1.0 and done["endTime"]
    assert jobs(api) == []  # every allocation released
    for trial_id in trial_ids:
        body = trial(api, trial_id)
        assert body["state"] == "STATE_COMPLETED" and body["endTime"]
        assert body["totalBatchesProcessed"] == 1000
        assert body["restarts"] == 0
        hparams = body["hparams"]
        training = metrics(api, trial_id, "training")
        assert steps(training) == list(range(100, 1001, 100))
        for report in training:
            expected = simulation.training_metrics(hparams, trial_id, report["totalBatches"])
            assert report["metrics"]["avg_metrics"] == expected
        losses = [r["metrics"]["avg_metrics"]["loss"] for r in training]
        assert losses == sorted(losses, reverse=True)  # it learns
        validation = metrics(api, trial_id, "validation")
        assert steps(validation) == [500, 1000]
        final = validation[-1]["metrics"]["validation_metrics"]
        assert final == simulation.validation_metrics(hparams, trial_id, 1000, "accuracy", False)
        assert final["accuracy"] > validation[0]["metrics"]["validation_metrics"]["accuracy"]
    # different hparams, different curves
    finals = {metrics(api, i, "training")[-1]["metrics"]["avg_metrics"]["loss"] for i in trial_ids}
    assert len(finals) == 3


def test_system_metrics_are_the_harness_groups(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    _, (trial_id,) = simulated(master, api, max_length=300)
    clock.skip(300 / RATE)
    for values in simulation.system_metrics(trial_id, 300).values():
        assert list(values) == ["detorm-local"]  # keyed by agent id, as _Collector reports
    response = api.get(f"/api/v1/trials/{trial_id}/profiler/available_series")
    (message,) = stream(response)
    names = {label["name"] for label in message["labels"]}
    assert names == {
        "cpu_util_simple", "memory_free", "disk_iops", "disk_throughput_read",
        "disk_throughput_write", "net_throughput_sent", "net_throughput_recv",
    }  # fmt: skip
    assert {label["agentId"] for label in message["labels"]} == {"detorm-local"}
    response = api.get(
        f"/api/v1/trials/{trial_id}/profiler/metrics",
        params={"labels.name": "cpu_util_simple", "labels.agentId": "detorm-local",
                "labels.metricType": "PROFILER_METRIC_TYPE_SYSTEM"},
    )  # fmt: skip
    values = [value for batch in stream(response) for value in batch["batch"]["values"]]
    assert values == [
        pytest.approx(
            simulation.system_metrics(trial_id, b)["cpu"]["detorm-local"]["cpu_util_simple"]
        )
        for b in (100, 200, 300)
    ]  # one report with each training report


def test_checkpoints_have_their_files(master: LocalMaster, api: httpx.Client, clock: Clock) -> None:
    exp_id, (trial_id,) = simulated(master, api, min_checkpoint_period={"batches": 400})
    clock.skip(1000 / RATE)
    found = checkpoints(api, trial_id)
    assert [int(c["metadata"]["steps_completed"]) for c in found] == [400, 800, 1000]
    total = 0
    for checkpoint in found:
        assert checkpoint["state"] == "STATE_COMPLETED"
        directory = storage(master).directory(checkpoint["uuid"])
        on_disk = {p.name: p.stat().st_size for p in directory.iterdir()}
        assert on_disk == {k: int(v) for k, v in checkpoint["resources"].items()}
        metadata = json.loads((directory / "metadata.json").read_text())
        assert metadata["steps_completed"] == int(checkpoint["metadata"]["steps_completed"])
        total += sum(on_disk.values())
    body = trial(api, trial_id)
    assert int(body["totalCheckpointSize"]) == total
    assert int(experiment(api, exp_id)["checkpointSize"]) == total
    assert int(experiment(api, exp_id)["checkpointCount"]) == 3
    # a download through the master streams the same files
    response = api.get(f"/checkpoints/{found[-1]['uuid']}", headers={"Accept": "application/x-tar"})
    assert response.status_code == 200
    assert b"state_dict.pth" in response.content


def test_tensorboard_files_hold_the_reported_scalars(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (trial_id,) = simulated(
        master, api, max_length=400, min_validation_period={"batches": 200}
    )
    clock.skip(400 / RATE)
    assert trial(api, trial_id)["state"] == "STATE_COMPLETED"  # the replay wrote the files
    directory = (
        storage(master).root / CLUSTER_ID / "tensorboard" / "experiment" / str(exp_id)
        / "trial" / str(trial_id)
    )  # fmt: skip
    (path,) = directory.iterdir()
    assert path.name.startswith("events.out.tfevents.")
    records = read_records(path)
    assert b"brain.Event:2" in records[0]
    events = [scalars(record) for record in records[1:]]
    hparams = trial(api, trial_id)["hparams"]
    training = [(s, v["Determined/loss"]) for s, v in events if "Determined/loss" in v]
    assert [s for s, _ in training] == [100, 200, 300, 400]
    for step, value in training:
        expected = simulation.training_metrics(hparams, trial_id, step)["loss"]
        assert value == pytest.approx(expected, rel=1e-6)  # stored as a float32
    validation = [s for s, v in events if "Determined/validation_loss" in v]
    assert validation == [200, 400]


def test_trial_logs_tell_the_allocation_story(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (trial_id,) = simulated(master, api, max_length=200)
    clock.skip(200 / RATE)
    lines = log_lines(api, trial_id)
    name = f"Trial {trial_id} (Experiment {exp_id})"
    assert lines[0].startswith(f"Scheduling {name} (id: ")
    assert f"{name} was assigned to an agent\n" in lines
    assert f"Resources for {name} have started\n" in lines
    assert any(line.startswith("Running task container on agent_id=detorm-local") for line in lines)
    assert lines[-1] == (
        f"{name} was terminated: allocation stopped early after all resources exited:"
        " resources exited successfully with a zero exit code\n"
    )


def test_pause_then_activate_resumes_where_it_was(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (trial_id,) = simulated(master, api)
    clock.skip(250 / RATE)
    ok(api.post(f"/api/v1/experiments/{exp_id}/pause"))
    assert experiment(api, exp_id)["state"] == "STATE_PAUSED"
    paused = trial(api, trial_id)
    assert paused["state"] == "STATE_PAUSED"
    assert paused["totalBatchesProcessed"] == 200
    assert jobs(api) == []  # its allocation released
    # the harness checkpointed where it was when it was preempted
    assert [int(c["metadata"]["steps_completed"]) for c in checkpoints(api, trial_id)] == [200]
    lines = log_lines(api, trial_id)
    assert (
        "gracefully terminating allocation's remaining resources (reason: user requested pause)\n"
        in lines
    )

    clock.skip(3600)  # nothing trains while paused
    assert trial(api, trial_id)["totalBatchesProcessed"] == 200
    assert steps(metrics(api, trial_id, "training")) == [100, 200]

    ok(api.post(f"/api/v1/experiments/{exp_id}/activate"))
    clock.skip(800 / RATE)
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"
    training = metrics(api, trial_id, "training")
    assert steps(training) == list(range(100, 1001, 100))  # each step once: resumed at 200
    assert [r["trialRunId"] for r in training] == [1, 1] + [2] * 8
    assert sum(1 for line in log_lines(api, trial_id) if line.startswith("Scheduling ")) == 2


def test_kill_cancels_the_experiment_and_its_trials(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, trial_ids = simulated(master, api, trials=2)
    clock.skip(300 / RATE)
    ok(api.post(f"/api/v1/experiments/{exp_id}/kill"))
    body = experiment(api, exp_id)
    assert body["state"] == "STATE_CANCELED" and body["endTime"]
    assert jobs(api) == []
    for trial_id in trial_ids:
        killed = trial(api, trial_id)
        assert killed["state"] == "STATE_CANCELED" and killed["endTime"]
        lines = log_lines(api, trial_id)
        assert (
            "forcibly killing allocation's remaining resources (reason: user requested kill)\n"
            in lines
        )
        assert lines[-1].endswith(
            "was terminated: allocation killed after all resources exited: resources were killed\n"
        )
        assert checkpoints(api, trial_id) == []  # killed, not preempted: no checkpoint
    clock.skip(3600)
    assert [trial(api, i)["totalBatchesProcessed"] for i in trial_ids] == [300, 300]


def test_cancel_stops_gracefully(master: LocalMaster, api: httpx.Client, clock: Clock) -> None:
    exp_id, (trial_id,) = simulated(master, api)
    clock.skip(300 / RATE)
    ok(api.post(f"/api/v1/experiments/{exp_id}/cancel"))
    assert experiment(api, exp_id)["state"] == "STATE_CANCELED"
    assert trial(api, trial_id)["state"] == "STATE_CANCELED"
    assert [int(c["metadata"]["steps_completed"]) for c in checkpoints(api, trial_id)] == [300]


def test_a_paused_experiment_killed_is_canceled(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (trial_id,) = simulated(master, api)
    ok(api.post(f"/api/v1/experiments/{exp_id}/pause"))
    ok(api.post(f"/api/v1/experiments/{exp_id}/kill"))
    assert experiment(api, exp_id)["state"] == "STATE_CANCELED"
    assert trial(api, trial_id)["state"] == "STATE_CANCELED"


def test_killing_one_trial_leaves_the_others(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (killed, kept) = simulated(master, api, trials=2)
    clock.skip(100 / RATE)
    ok(api.post(f"/api/v1/trials/{killed}/kill"))
    assert trial(api, killed)["state"] == "STATE_CANCELED"
    assert experiment(api, exp_id)["state"] == "STATE_RUNNING"
    clock.skip(900 / RATE)
    assert trial(api, kept)["state"] == "STATE_COMPLETED"
    assert trial(api, killed)["totalBatchesProcessed"] == 100
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"  # the searcher completed


def fault(master: LocalMaster, trial_id: int, at_batches: int, remaining: int | None) -> None:
    with Seeder(master.database) as seed:
        seed.trial_fault(trial_id, at_batches, times=remaining)


def test_a_crashed_trial_restarts_from_its_checkpoint(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (trial_id,) = simulated(master, api, min_checkpoint_period={"batches": 200})
    fault(master, trial_id, 300, remaining=1)
    clock.skip(300 / RATE)  # crashes at 300, restarts at once from the checkpoint at 200
    body = trial(api, trial_id)
    assert body["restarts"] == 1
    assert body["state"] == "STATE_RUNNING"
    lines = log_lines(api, trial_id)
    crash = "crashed: resources failed with non-zero exit code: container failed with non-zero"
    assert any(line.startswith(crash) and "(exit code 1)" in line for line in lines)
    assert lines.count(f"Resources for Trial {trial_id} (Experiment {exp_id}) have started\n") == 2
    clock.skip(800 / RATE)
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"
    training = metrics(api, trial_id, "training")
    assert steps(training) == list(range(100, 1001, 100))
    assert [r["trialRunId"] for r in training] == [1, 1] + [2] * 8


def test_a_trial_past_max_restarts_errors(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (trial_id,) = simulated(master, api, max_restarts=1)
    fault(master, trial_id, 100, remaining=None)
    clock.skip(200 / RATE)
    body = trial(api, trial_id)
    assert body["state"] == "STATE_ERROR" and body["endTime"]
    assert body["restarts"] == 1  # two crashes; the view caps restarts at max_restarts
    crashed = [line for line in log_lines(api, trial_id) if line.startswith("crashed: ")]
    assert len(crashed) == 2
    assert experiment(api, exp_id)["state"] == "STATE_ERROR"  # all of its trials failed


def test_one_failed_trial_of_two_completes_the_experiment(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (failing, fine) = simulated(master, api, trials=2, max_restarts=0)
    fault(master, failing, 100, remaining=None)
    clock.skip(1000 / RATE)
    assert trial(api, failing)["state"] == "STATE_ERROR"
    assert trial(api, fine)["state"] == "STATE_COMPLETED"
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"


def test_faults_need_the_flag(clock: Clock) -> None:
    with LocalMaster(process=False) as master:
        client = login(master.url)
        exp_id, (trial_id,) = simulated(master, client)
        fault(master, trial_id, 100, remaining=None)
        clock.skip(1000 / RATE)
        assert trial(client, trial_id)["restarts"] == 0
        assert experiment(client, exp_id)["state"] == "STATE_COMPLETED"
        client.close()


@pytest.mark.parametrize("scale", [0.5, 4.0])
def test_the_time_scale_sets_the_rate(clock: Clock, scale: float) -> None:
    with LocalMaster(process=False, time_scale=scale) as master:
        client = login(master.url)
        _, (trial_id,) = simulated(master, client, max_length=10_000)
        clock.skip(1.0)
        assert trial(client, trial_id)["totalBatchesProcessed"] == int(RATE * scale) // 100 * 100
        client.close()


def test_a_time_scale_of_zero_holds_trials(clock: Clock) -> None:
    with LocalMaster(process=False, time_scale=0) as master:
        client = login(master.url)
        exp_id, (trial_id,) = simulated(master, client)
        clock.skip(24 * 3600)
        assert trial(client, trial_id)["totalBatchesProcessed"] == 0
        assert experiment(client, exp_id)["state"] == "STATE_RUNNING"
        client.close()


def test_a_replay_longer_than_its_budget_lets_the_request_go_on(
    master: LocalMaster, api: httpx.Client, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A simulation that falls behind the wall clock (more transitions due than the CPU can
    replay in time) must not hold every request behind it: past the budget a request answers
    with the cluster as far as it got, and later requests go on from there, in order."""
    _, (trial_id,) = simulated(master, api, max_length={"batches": 10**9})
    clock.skip(3600)  # an hour of training due: 18,000 reports of 100 batches
    monkeypatch.setattr(sim, "LIVE_REPLAY_SECONDS", 0.0)  # one transition per advance
    first = trial(api, trial_id)["totalBatchesProcessed"]
    second = trial(api, trial_id)["totalBatchesProcessed"]
    reported = steps(metrics(api, trial_id, "training"))  # this request advances once more
    assert 0 < first < second < reported[-1] < RATE * 3600
    assert reported == list(range(100, reported[-1] + 1, 100))  # none skipped, in order


@pytest.mark.parametrize("scale", [-1.0, float("nan"), float("inf")])
def test_a_bad_time_scale_is_refused(scale: float) -> None:
    with pytest.raises(ConfigurationError, match="time_scale must be a finite number"):
        LocalMaster(process=False, time_scale=scale)


def test_seeded_experiments_are_not_driven(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    with Seeder(master.database) as seed:
        exp_id = seed.experiment(name="seeded", state="ACTIVE")
        trial_id = seed.trial(exp_id)
    clock.skip(3600)
    assert trial(api, trial_id)["totalBatchesProcessed"] == 0
    assert trial(api, trial_id)["state"] == "STATE_RUNNING"
    assert experiment(api, exp_id)["state"] == "STATE_RUNNING"
    assert log_lines(api, trial_id) == []


def test_a_config_the_simulation_cannot_train_errors(
    master: LocalMaster, api: httpx.Client, clock: Clock
) -> None:
    exp_id, (trial_id,) = simulated(
        master, api, max_length={"records": 1000}
    )  # no global_batch_size
    clock.skip(1)
    assert trial(api, trial_id)["state"] == "STATE_ERROR"
    assert experiment(api, exp_id)["state"] == "STATE_ERROR"
    assert any("global_batch_size" in line for line in log_lines(api, trial_id))


def test_an_experiment_created_over_http_runs_to_completed(api: httpx.Client, clock: Clock) -> None:
    config = {
        "name": "created",
        "entrypoint": "model_def:Trial",
        "searcher": {
            "name": "random", "metric": "validation_loss", "max_trials": 2,
            "max_length": {"batches": 300},
        },
        "hyperparameters": {"lr": {"type": "double", "minval": 0.001, "maxval": 0.1}},
    }  # fmt: skip
    body = ok(
        api.post("/api/v1/experiments", json={"config": yaml.safe_dump(config), "activate": True})
    )
    exp_id = body["experiment"]["id"]  # its trials were scheduled when it was created
    clock.skip(300 / RATE)
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"
    trials = ok(api.get(f"/api/v1/experiments/{exp_id}/trials"))["trials"]
    assert [(t_["state"], t_["totalBatchesProcessed"]) for t_ in trials] == [
        ("STATE_COMPLETED", 300),
        ("STATE_COMPLETED", 300),
    ]
    for created in trials:
        assert steps(metrics(api, created["id"], "training")) == [100, 200, 300]
        (checkpoint,) = checkpoints(api, created["id"])
        response = api.get(
            f"/checkpoints/{checkpoint['uuid']}", headers={"Accept": "application/x-tar"}
        )
        assert response.status_code == 200 and b"metadata.json" in response.content


def test_detorm_serve_takes_the_time_scale() -> None:
    """``detorm serve --time-scale``: at a billion times the speed, 1,000 batches take two
    nanoseconds, done by the request after the one that scheduled them."""
    with LocalMaster(time_scale=1e9) as master:  # a `detorm serve` process
        client = login(master.url)
        exp_id, (trial_id,) = simulated(master, client)
        assert experiment(client, exp_id)["state"] == "STATE_COMPLETED"
        assert trial(client, trial_id)["totalBatchesProcessed"] == 1000
        client.close()


def test_a_followed_log_stream_ends_with_its_trial(
    master: LocalMaster, api: httpx.Client, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing but the ticker moves the cluster while a stream follows the trial's logs."""
    quick_logs(monkeypatch)
    exp_id, (trial_id,) = simulated(master, api, max_length=200)
    result: list[list[str]] = []

    def follow() -> None:
        client = login(master.url)
        try:
            response = client.get(f"/api/v1/trials/{trial_id}/logs", params={"follow": "true"})
            result.append([entry["log"] for entry in stream(response)])
        finally:
            client.close()

    reader = threading.Thread(target=follow)
    reader.start()
    clock.skip(200 / RATE)
    reader.join(timeout=30)
    assert not reader.is_alive()
    (lines,) = result
    assert lines[-1].startswith(f"Trial {trial_id} (Experiment {exp_id}) was terminated")


def test_continue_trains_on_to_the_new_max_length(api: httpx.Client, clock: Clock) -> None:
    config = {
        "name": "continued",
        "entrypoint": "model_def:Trial",
        "searcher": {"name": "single", "metric": "validation_loss", "max_length": 300},
        "hyperparameters": {"lr": 0.1},
    }
    body = {"config": yaml.safe_dump(config), "activate": True}
    exp_id = ok(api.post("/api/v1/experiments", json=body))["experiment"]["id"]
    clock.skip(300 / RATE)
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"
    override = yaml.safe_dump({"searcher": {"max_length": 500}})
    ok(api.post("/api/v1/experiments/continue", json={"id": exp_id, "overrideConfig": override}))
    clock.skip(200 / RATE)
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"
    (continued,) = ok(api.get(f"/api/v1/experiments/{exp_id}/trials"))["trials"]
    assert continued["totalBatchesProcessed"] == 500
    training = metrics(api, continued["id"], "training")
    assert steps(training) == [100, 200, 300, 400, 500]  # from the checkpoint at 300
    assert [r["trialRunId"] for r in training] == [1, 1, 1, 2, 2]


def test_the_searcher_opens_trials_as_others_close(api: httpx.Client, clock: Clock) -> None:
    config = {
        "name": "one at a time",
        "entrypoint": "model_def:Trial",
        "searcher": {
            "name": "random", "metric": "validation_loss", "max_trials": 3,
            "max_concurrent_trials": 1, "max_length": 200,
        },
        "hyperparameters": {"lr": {"type": "double", "minval": 0.001, "maxval": 0.1}},
    }  # fmt: skip
    body = {"config": yaml.safe_dump(config), "activate": True}
    exp_id = ok(api.post("/api/v1/experiments", json=body))["experiment"]["id"]
    opened = []
    for _ in range(3):
        trials = ok(api.get(f"/api/v1/experiments/{exp_id}/trials"))["trials"]
        opened.append([t_["state"] for t_ in trials])
        clock.skip(200 / RATE)
    assert opened == [
        ["STATE_RUNNING"],
        ["STATE_COMPLETED", "STATE_RUNNING"],
        ["STATE_COMPLETED", "STATE_COMPLETED", "STATE_RUNNING"],
    ]
    assert experiment(api, exp_id)["state"] == "STATE_COMPLETED"
    assert experiment(api, exp_id)["progress"] == 1.0
