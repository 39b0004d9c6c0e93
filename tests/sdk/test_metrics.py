"""Metrics read in one stream for many trials, cached on disk when final; logs."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import detorm
from detorm import LogLevel, Trial
from detorm._ops._effects import Attempt
from detorm.errors import QueryError, TransportError
from detorm.local import LocalMaster, Seeder
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster, seed_cluster


@pytest.fixture
def metrics_cluster(tmp_path: Path) -> Iterator[tuple[Cluster, list[int], list[int]]]:
    """Finished trials with 2,500 validation reports each, and one running trial."""
    with LocalMaster(process=False) as master:
        cluster = seed_cluster(master)
        done, running = [], []
        with Seeder(master.database) as seed:
            exp = seed.experiment(
                project=cluster.projects["vision"], name="long", state="COMPLETED"
            )
            for index in range(3):
                trial = seed.trial(exp, hparams={"lr": 0.1 * (index + 1)})
                rows = [
                    (step, {"validation_loss": 1.0 / step, "epoch": step // 100})
                    for step in range(1, 2501)
                ]
                rows[5] = (6, {"validation_loss": math.nan, "epoch": 0})
                seed.metrics(trial, "validation", rows)
                done.append(trial)
            live = seed.experiment(project=cluster.projects["vision"], name="live", state="ACTIVE")
            trial = seed.trial(live)
            seed.metrics(trial, "validation", [(1, {"validation_loss": 3.0})])
            running.append(trial)
        yield cluster, done, running


def session_for(cluster: Cluster, tmp_path: Path, cache_dir: str = "cache") -> detorm.Session:
    return detorm.Session(
        cluster.url, user="determined", password="", cache=tmp_path / cache_dir,
        environ={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")},
    )  # fmt: skip


def api_for(cluster: Cluster, tmp_path: Path, mode: Mode, cache_dir: str = "cache") -> Api:
    """``session_for`` in either API."""
    environ = {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    return Api(mode, cluster.url, environ, cache=tmp_path / cache_dir)


@pytest.mark.parametrize("mode", MODES)
def test_many_trials_in_one_stream_in_order(
    metrics_cluster: tuple[Cluster, list[int], list[int]], tmp_path: Path, mode: Mode
) -> None:
    cluster, done, running = metrics_cluster
    with api_for(cluster, tmp_path, mode) as api:
        trials = [api(api.session.get(api.Trial, t)) for t in done + running]
        before = api.session.requests_sent
        reports = api.list(api.session.metrics(trials, "validation"))
        assert api.session.requests_sent - before == 1
    assert len(reports) == 3 * 2500 + 1
    assert [r.trial_id for r in reports] == sorted(r.trial_id for r in reports)
    first = reports[0]
    assert (first.step, first.group, first.values["validation_loss"], first.epoch) == (
        1,
        "validation",
        1.0,
        0,
    )
    assert first.time is not None and first.time.tzinfo is not None
    assert math.isnan(reports[5].values["validation_loss"])  # "NaN" on the wire


@pytest.mark.parametrize("mode", MODES)
def test_finished_trials_are_cached_across_sessions(
    metrics_cluster: tuple[Cluster, list[int], list[int]], tmp_path: Path, mode: Mode
) -> None:
    cluster, done, running = metrics_cluster
    with api_for(cluster, tmp_path, mode) as api:
        first = api.list(api.session.metrics(done + running, "validation"))
        assert api.session.requests_sent == 3  # login, the states of the trials, the stream
    with api_for(cluster, tmp_path, mode) as again:
        again(again.session.whoami())  # logged in (the async session logs in when first used)
        before = again.session.requests_sent
        warm = again.list(again.session.metrics(done, "validation"))
        assert again.session.requests_sent == before  # every trial from the disk cache
        assert warm == [r for r in first if r.trial_id in done]
        mixed = again.list(again.session.metrics(done + running, "validation"))
        assert mixed == first  # the running trial is read again, and order is kept
        assert again.session.requests_sent == before + 2
        uncached = again.list(again.session.metrics(done, "validation", cache=False))
        assert uncached == warm and again.session.requests_sent == before + 3


def test_corrupt_cache_entry_is_refetched(
    metrics_cluster: tuple[Cluster, list[int], list[int]], tmp_path: Path
) -> None:
    cluster, done, _ = metrics_cluster
    with session_for(cluster, tmp_path) as session:
        expected = list(session.metrics(done[:1], "validation"))
    database = tmp_path / "cache" / "cache.db"
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT rowid, value, filename FROM Cache").fetchall()
        assert rows
        for rowid, value, filename in rows:
            if filename:
                path = tmp_path / "cache" / filename
                path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")
            else:
                db.execute(
                    "UPDATE Cache SET value = ? WHERE rowid = ?",
                    (value[:-10] + b"corrupted!", rowid),
                )
    with session_for(cluster, tmp_path) as session:
        before = session.requests_sent
        again = list(session.metrics(done[:1], "validation"))
        assert again == expected
        assert session.requests_sent - before == 2  # discarded, then fetched again
        assert session.cache.misses >= 1


def test_cache_clear(metrics_cluster: tuple[Cluster, list[int], list[int]], tmp_path: Path) -> None:
    cluster, done, _ = metrics_cluster
    with session_for(cluster, tmp_path) as session:
        list(session.metrics(done, "validation"))
        assert len(session.cache) == len(done)
        assert session.cache.clear() == len(done)
        assert len(session.cache) == 0


def test_to_pandas_and_polars(
    metrics_cluster: tuple[Cluster, list[int], list[int]], tmp_path: Path
) -> None:
    cluster, done, _ = metrics_cluster
    with session_for(cluster, tmp_path) as session:
        stream = session.get(Trial, done[0]).metrics("validation")
        frame = stream.to_pandas()
        assert list(frame.columns)[:4] == ["trial_id", "trial_run_id", "step", "time"]
        assert len(frame) == 2500 and frame["step"].max() == 2500
        polars_frame = stream.to_polars()
        assert polars_frame.height == 2500
        assert set(polars_frame.columns) >= {"validation_loss", "epoch"}


def test_metrics_of_a_trial_query(cluster: Cluster, session: detorm.Session) -> None:
    query = Trial.query(session).filter(experiment_id=cluster.experiments["resnet-base"])
    reports = list(session.metrics(query, "training"))
    assert {r.trial_id for r in reports} == set(cluster.trials["resnet-base"])
    assert all("loss" in r.values for r in reports)


def test_logs(cluster: Cluster, session: detorm.Session) -> None:
    trial_id = cluster.trials["gpt-mini"][0]
    with Seeder(cluster.master.database) as seed:
        seed.logs(trial_id, ["loading data", "epoch 1 done", "ERROR: NaN loss", "epoch 2 done"])
        seed.logs(trial_id, ["disk almost full"], level="LOG_LEVEL_WARNING")
    trial = session.get(Trial, trial_id)
    entries = list(trial.logs())
    assert [e.message for e in entries][-5:] == [
        "loading data",
        "epoch 1 done",
        "ERROR: NaN loss",
        "epoch 2 done",
        "disk almost full",
    ]
    assert entries[-1].level == LogLevel.WARNING
    assert [e.message for e in trial.logs(search="epoch")] == ["epoch 1 done", "epoch 2 done"]
    assert [e.message for e in trial.logs(search=r"epoch \d done$", regex=True, limit=1)] == [
        "epoch 1 done"
    ]
    assert [e.message for e in trial.logs(levels=["WARNING"])] == ["disk almost full"]
    assert [e.message for e in trial.logs(tail=2)] == ["epoch 2 done", "disk almost full"]
    assert [e.message for e in trial.logs(limit=2)] == ["loading data", "epoch 1 done"]
    with pytest.raises(QueryError):
        trial.logs(limit=1, tail=1)
    with pytest.raises(QueryError):
        trial.logs(levels=["LOUD"])


class _DropsAfter(httpx.SyncByteStream):
    """A response body that loses its connection after ``data``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data
        raise httpx.ReadError("connection reset by peer")


def test_logs_follow_resumes_without_duplicates(
    cluster: Cluster, session: detorm.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    trial_id = cluster.trials["resnet-wide"][1]  # finished: the followed stream ends
    with Seeder(cluster.master.database) as seed:
        seed.logs(trial_id, [f"line {i}" for i in range(10)])
    real = session.transport._attempt
    calls = {"n": 0}

    def flaky(attempt: Attempt, opened: Any) -> httpx.Response | TransportError:
        # The first logs stream drops the connection after four entries.
        response = real(attempt, opened)
        if not isinstance(response, httpx.Response) or not attempt.call.path.endswith("/logs"):
            return response
        calls["n"] += 1
        if calls["n"] > 1:
            return response
        first_lines = b"".join(response.read().splitlines(keepends=True)[:4])
        response.close()
        return httpx.Response(200, stream=_DropsAfter(first_lines), request=response.request)

    monkeypatch.setattr(session.transport, "_attempt", flaky)
    messages = [e.message for e in session.get(Trial, trial_id).logs(follow=True, search="line")]
    assert messages == [f"line {i}" for i in range(10)]
    assert calls["n"] == 2


def test_cli_cache_clear(
    metrics_cluster: tuple[Cluster, list[int], list[int]], tmp_path: Path
) -> None:
    import subprocess
    import sys

    cluster, done, _ = metrics_cluster
    with session_for(cluster, tmp_path) as session:
        list(session.metrics(done, "validation"))
    result = subprocess.run(
        [sys.executable, "-m", "detorm", "cache", "clear", "--dir", str(tmp_path / "cache")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert f"removed {len(done)} cached entries" in result.stdout
    with session_for(cluster, tmp_path) as session:
        assert len(session.cache) == 0


@pytest.mark.parametrize("mode", MODES)
def test_summaries_of_many_trials_cached_when_final(
    metrics_cluster: tuple[Cluster, list[int], list[int]], tmp_path: Path, mode: Mode
) -> None:
    cluster, done, running = metrics_cluster
    with api_for(cluster, tmp_path, mode) as api:
        api(api.session.whoami())
        before = api.session.requests_sent
        first = api(api.session.summaries(done + running))
        assert api.session.requests_sent - before == 1
        assert first[done[0]].hparams == {"lr": 0.1}
        assert first[done[0]].summary_metrics["validation"]["validation_loss"].count == 2500
    with api_for(cluster, tmp_path, mode) as again:
        again(again.session.whoami())
        before = again.session.requests_sent
        assert again(again.session.summaries(done)) == {t: first[t] for t in done}
        assert again.session.requests_sent == before
        again(again.session.summaries(done + running))
        assert again.session.requests_sent == before + 1  # only the running trial is read


def test_special_float_strings_are_read_as_floats_wherever_they_are() -> None:
    from detorm._ops._metrics import _parse_reports

    line = (
        b'{"metrics":[{"trialId":3,"totalBatches":10,"group":"training","metrics":{"avg_metrics":'
        b'{"loss":"-Infinity","acc":"Infinity","name":"Nano"}}},{"trialId":3,"totalBatches":20,'
        b'"group":"training","metrics":{"avg_metrics":{"loss":"NaN","note":"NaN is a string"}}}]}'
    )
    first, second = _parse_reports(line)
    assert first.values == {"loss": -math.inf, "acc": math.inf, "name": "Nano"}
    assert math.isnan(second.values["loss"]) and second.values["note"] == "NaN is a string"
    assert (first.trial_id, first.step, second.step) == (3, 10, 20)
