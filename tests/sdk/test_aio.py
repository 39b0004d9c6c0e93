"""The async API against detorm.local: what each API does for metrics and logs (both modes,
through ``api``; downloads and checkpoint deletes are in test_download.py, in both modes), and
what only the event loop brings: one login for many first requests, the per-session
concurrency bound, many waits at once, the default session, and operations that are refused
before anything is sent."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

import detorm
import detorm.aio
from detorm import LogLevel
from detorm._api._drivers import AsyncTransport, Transport
from detorm._ops._effects import gather, send
from detorm._plan._call import Call
from detorm.errors import ConfigurationError, InvalidType, InvalidValue, QueryError
from detorm.local import Seeder
from tests.sdk.apis import MODES, Api
from tests.sdk.conftest import Cluster


def test_metrics_and_summaries(api: Api, cluster: Cluster) -> None:
    trials = api.Trial.query(api.session).filter(experiment_id=cluster.experiments["resnet-base"])
    reports = api.list(api.session.metrics(trials, "training"))
    assert {r.trial_id for r in reports} == set(cluster.trials["resnet-base"])
    assert all("loss" in r.values for r in reports)
    trial = api(api.session.get(api.Trial, cluster.trials["resnet-base"][0]))
    validation = api(trial.metrics().to_records())
    assert [r["validation_loss"] for r in validation] == [0.9, 0.5, 0.31]
    assert list(api(trial.metrics().to_pandas())["step"]) == [100, 200, 300]
    summaries = api(api.session.summaries(trials))
    assert sorted(summaries) == cluster.trials["resnet-base"]
    assert summaries[trial.id].hparams == {"lr": 0.1, "optimizer": {"momentum": 0.9}}
    with pytest.raises(InvalidType):
        api.session.metrics([trial], "validation", cache="yes")  # refused before any read


@pytest.mark.parametrize("mode", MODES)
def test_logs(mode: str, cluster: Cluster, environ: dict[str, str]) -> None:
    trial_id = cluster.trials["bert-base"][MODES.index(mode)]  # each mode seeds its own trial
    with Seeder(cluster.master.database) as seed:
        seed.logs(trial_id, ["loading data", "epoch 1 done", "ERROR: NaN loss", "epoch 2 done"])
        seed.logs(trial_id, ["disk almost full"], level="LOG_LEVEL_WARNING")
    api = Api(mode, cluster.url, environ)  # type: ignore[arg-type]
    try:
        trial = api(api.session.get(api.Trial, trial_id))
        messages = [e.message for e in api.list(trial.logs())]
        assert messages[-5:] == [
            "loading data", "epoch 1 done", "ERROR: NaN loss", "epoch 2 done", "disk almost full",
        ]  # fmt: skip
        assert api.list(trial.logs(levels=["WARNING"]))[0].level == LogLevel.WARNING
        assert [e.message for e in api.list(trial.logs(search="epoch"))] == [
            "epoch 1 done", "epoch 2 done",
        ]  # fmt: skip
        found = api.list(trial.logs(search=r"epoch \d done$", regex=True, limit=1))
        assert [e.message for e in found] == ["epoch 1 done"]
        assert [e.message for e in api.list(trial.logs(tail=2))] == [
            "epoch 2 done", "disk almost full",
        ]  # fmt: skip
        followed = api.list(trial.logs(follow=True, limit=2))  # a finished trial's stream ends
        assert [e.message for e in followed] == ["loading data", "epoch 1 done"]
        with pytest.raises(QueryError):  # refused at the call, before anything is sent
            trial.logs(limit=1, tail=1)
        # Many trials: one stream each, read concurrently; limit and tail count per trial.
        others = cluster.trials["gpt-mini"]
        before = api.session.requests_sent
        many = api(api.session.logs([trial, *others], tail=1))
        assert api.session.requests_sent - before == 3
        assert list(many) == [trial_id, *others]
        assert [e.message for e in many[trial_id]] == ["disk almost full"]
        query = api.Trial.query(api.session).filter(experiment_id=cluster.experiments["bert-base"])
        assert sorted(api(api.session.logs(query, search="epoch"))) == cluster.trials["bert-base"]
        with pytest.raises(QueryError):
            api(api.session.logs([trial], limit=1, tail=1))
    finally:
        api.close()


def test_concurrent_first_requests_log_in_once(cluster: Cluster, environ: dict[str, str]) -> None:
    async def main() -> tuple[int, list[str]]:
        async with detorm.aio.AsyncSession(
            cluster.url, user="alice", password="secret", environ=environ
        ) as session:
            trials = await asyncio.gather(
                *(session.get(detorm.aio.Trial, t) for ts in cluster.trials.values() for t in ts)
            )
            return session.requests_sent, [t.experiment_id for t in trials][:1]

    sent, _ = asyncio.run(main())
    assert sent == 1 + sum(len(ts) for ts in cluster.trials.values())  # one login


@pytest.mark.parametrize("mode", MODES)
def test_independent_requests_share_a_bounded_number_of_slots(mode: str) -> None:
    # 40 requests gathered; at most `concurrency` are ever in flight, in either driver.
    state = {"now": 0, "most": 0}

    def enter() -> None:
        state["now"] += 1
        state["most"] = max(state["most"], state["now"])

    calls = [Call("GET", f"/api/v1/experiments/{i}") for i in range(40)]
    op = gather([send(call) for call in calls])
    if mode == "sync":
        import threading
        import time

        lock = threading.Lock()

        def handler(request: httpx.Request) -> httpx.Response:
            with lock:
                enter()
            time.sleep(0.01)
            with lock:
                state["now"] -= 1
            return httpx.Response(200, json={})

        transport = Transport(
            "http://master", concurrency=3, http_transport=httpx.MockTransport(handler)
        )
        assert len(transport.run(op)) == 40
        transport.close()
    else:

        async def async_handler(request: httpx.Request) -> httpx.Response:
            enter()
            await asyncio.sleep(0.01)
            state["now"] -= 1
            return httpx.Response(200, json={})

        async def main() -> int:
            transport = AsyncTransport(
                "http://master", concurrency=3, http_transport=httpx.MockTransport(async_handler)
            )
            results = await transport.run(op)
            await transport.aclose()
            return len(results)

        assert asyncio.run(main()) == 40
    assert state["most"] == 3


def test_a_thousand_reads_at_once_on_one_loop(
    fresh_cluster: Cluster, environ: dict[str, str]
) -> None:
    async def main() -> tuple[int, int]:
        async with detorm.aio.AsyncSession(fresh_cluster.url, environ=environ) as session:
            ids = [t for ts in fresh_cluster.trials.values() for t in ts]
            reads = [session.get(detorm.aio.Trial, ids[i % len(ids)]) for i in range(1000)]
            trials = await asyncio.gather(*reads)
            return len({id(t) for t in trials}), session.requests_sent

    distinct, sent = asyncio.run(main())
    assert distinct == len([t for ts in fresh_cluster.trials.values() for t in ts])  # identity
    assert sent <= 1 + 1000


def test_default_async_session(
    cluster: Cluster, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(detorm._api._aio._defaults, "current", None)

    async def main() -> int:
        session = detorm.aio.connect(cluster.url, user="determined", password="")
        assert detorm.aio.default_session() is session
        count = await detorm.aio.Experiment.query().count()  # the default session
        await session.close()
        assert detorm._api._aio._defaults.current is None
        return count

    monkeypatch.setenv("HOME", environ["HOME"])
    monkeypatch.setenv("XDG_CONFIG_HOME", environ["XDG_CONFIG_HOME"])
    assert asyncio.run(main()) == len(cluster.experiments)
    with pytest.raises(InvalidType, match="AsyncSession"):
        detorm.aio.set_default_session(detorm.Session)  # type: ignore[arg-type]


def test_each_api_refuses_the_others_session(cluster: Cluster, environ: dict[str, str]) -> None:
    with detorm.Session(cluster.url, user="determined", password="", environ=environ) as sync:
        with pytest.raises(InvalidType, match="AsyncSession"):
            detorm.aio.Experiment.query(sync)  # type: ignore[arg-type]
        with pytest.raises(InvalidType, match="Experiment class is the other API's"):
            sync.get(detorm.aio.Experiment, cluster.experiments["bert-base"])  # type: ignore[type-var]
        asession = detorm.aio.AsyncSession(cluster.url, environ=environ)
        with pytest.raises(InvalidType, match="detorm.Session"):
            detorm.Experiment.query(asession)  # type: ignore[arg-type]
        with pytest.raises(
            InvalidType, match="AsyncSession reads and returns detorm.aio.Experiment"
        ):
            asyncio.run(asession.get(detorm.Experiment, cluster.experiments["bert-base"]))
        asyncio.run(asession.close())


def test_bad_options_are_refused_at_once(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="concurrency"):
        detorm.aio.AsyncSession("http://127.0.0.1:9", concurrency=0, environ=environ)


def test_bad_input_is_refused_before_anything_is_sent(
    cluster: Cluster, environ: dict[str, str]
) -> None:
    # The async twins of the bad-input suite's cases: the same typed errors, raised when the
    # call is made (or awaited), before any request.
    async def main() -> None:
        async with detorm.aio.AsyncSession(
            cluster.url, user="determined", password="", environ=environ
        ) as session:
            exp = await session.get(detorm.aio.Experiment, cluster.experiments["resnet-base"])
            trial = await session.get(detorm.aio.Trial, cluster.trials["resnet-base"][0])
            before = session.requests_sent
            refusals: list[tuple[type[Exception], Any]] = [
                (InvalidType, lambda: session.get(int, 1)),
                (InvalidType, lambda: session.get(detorm.aio.Experiment, "one")),
                (InvalidType, lambda: session.summaries(["a"])),
                (InvalidType, lambda: session.logs([trial], limit="10")),
                (QueryError, lambda: session.logs([trial], limit=1, tail=1)),
                (InvalidType, lambda: exp.move_to("elsewhere")),
                (InvalidType, lambda: session.commit("not a resource")),
                (InvalidValue, lambda: session.load(exp, "nope")),
            ]
            for error, call in refusals:
                with pytest.raises(error):
                    await call()
            for error, call in [
                (InvalidType, lambda: session.query(int)),
                (InvalidType, lambda: session.metrics(["a"], "validation")),
                (QueryError, lambda: trial.logs(levels=["LOUD"])),
                (QueryError, lambda: exp.trials.filter(nope=1)),
                (InvalidType, lambda: setattr(exp, "archived", "yes")),
            ]:
                with pytest.raises(error):
                    call()
            assert session.requests_sent == before
            assert session.dirty == []

    asyncio.run(main())
