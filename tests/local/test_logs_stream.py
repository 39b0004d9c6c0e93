"""Trial logs on detorm.local, as ``api_trials.go:TrialLogs`` (through ``api_tasks.go:taskLogs``,
the Postgres task-log backend and ``api.BatchStreamProcessor``) and ``TrialLogsFields`` behave."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from determined.common.api import bindings, logs
from determined.common.api._session import Session
from hypothesis import given
from hypothesis import strategies as st

from detorm._wire import Timestamp
from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._routes import logs as logs_routes
from tests.conftest import FIXTURES, error_of

T0 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quick_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The master waits 1 s between empty polls and 5 s after a task ends; tests need less."""
    monkeypatch.setattr(logs_routes, "FOLLOW_POLL_SECONDS", 0.02)
    monkeypatch.setattr(logs_routes, "FIELDS_POLL_SECONDS", 0.02)
    monkeypatch.setattr(logs_routes, "TERMINATION_GRACE_SECONDS", 0.0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


LINES: list[dict[str, Any]] = [
    {"log": "Scheduling Trial\n", "timestamp": at(0), "source": "master"},
    {"log": "pulling image\n", "timestamp": at(1), "agent_id": "agent-1", "container_id": "c0ffee00c0ffee00", "level": "LOG_LEVEL_DEBUG"},
    {"log": "rank zero says hi\n", "timestamp": at(2), "agent_id": "agent-1", "container_id": "c0ffee00c0ffee00", "rank_id": 0},
    {"log": "rank one says hi\n", "timestamp": at(3), "agent_id": "agent-2", "container_id": "beef0000beef0000", "rank_id": 1},
    {"log": "Disk almost FULL\n", "timestamp": at(4), "agent_id": "agent-2", "container_id": "beef0000beef0000", "rank_id": 1, "level": "LOG_LEVEL_WARNING", "stdtype": "stderr"},
    {"log": "loss is NaN: 100% broken\n", "timestamp": at(4.5), "rank_id": 0, "level": "LOG_LEVEL_ERROR", "stdtype": "stderr"},
    {"log": "+ set -x\n", "timestamp": at(5), "container_id": "c0ffee00c0ffee00", "level": "LOG_LEVEL_UNSPECIFIED", "stdtype": "stderr"},
    {"log": "Trial finished\n", "timestamp": at(6), "source": "master"},
]  # fmt: skip


@dataclass
class World:
    api: httpx.Client
    master: LocalMaster
    trial: int  # LINES, ended
    other: int  # an active trial with two ranked lines
    task_id: str


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        experiment = seed.experiment(name="e")
        trial = seed.trial(experiment, end_time=T0 + timedelta(minutes=1))
        other = seed.trial(seed.experiment(name="running", state="ACTIVE"))
        seed.logs(trial, LINES)
        seed.logs(
            other,
            [
                {"log": "other rank 0\n", "rank_id": 0, "level": "LOG_LEVEL_ERROR"},
                {"log": "other rank 1\n", "rank_id": 1},
            ],
        )
    with local_master.database.transaction(write=False) as db:
        row = db.get(t.TrialRow, trial)
        assert row is not None
        task_id = row.task_id
    yield World(api, local_master, trial, other, task_id)


def results(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found = []
    for line in response.text.splitlines():
        message = json.loads(line)["result"]
        bindings.v1TrialLogsResponse.from_json(message)  # what the official client requires
        found.append(message)
    return found


def texts(world: World, trial: int | None = None, **params: Any) -> list[str]:
    response = world.api.get(f"/api/v1/trials/{trial or world.trial}/logs", params=params)
    return [m["log"].strip() for m in results(response)]


def official_session(world: World) -> Session:
    token = world.api.headers["Authorization"].removeprefix("Bearer ")
    return Session(world.master.url, "determined", token, None)


# --- messages -------------------------------------------------------------------------------
def test_the_recorded_stream_is_reproduced(local_master: LocalMaster, api: httpx.Client) -> None:
    """The master's recorded trial-logs stream, seeded line by line, comes back identical."""
    recorded = [
        json.loads(line)["result"]
        for line in (FIXTURES / "harness__tests__fixtures__trial_logs.json")
        .read_text()
        .splitlines()
    ]
    with Seeder(local_master.database) as seed:
        trial = seed.trial(seed.experiment(name="fixture"))
        seed.logs(trial, [
            {"log": r["log"], "timestamp": Timestamp.parse(r["timestamp"]), "level": r["level"],
             "source": r.get("source"), "stdtype": r.get("stdtype"), "agent_id": r.get("agentId"),
             "container_id": r.get("containerId"), "rank_id": r.get("rankId")}
            for r in recorded
        ])  # fmt: skip
    served = results(api.get(f"/api/v1/trials/{trial}/logs"))
    assert len(served) == len(recorded) == 49
    for ours, theirs in zip(served, recorded, strict=True):
        expected = {**theirs, "id": ours["id"], "trialId": trial}
        assert ours == expected
        assert list(ours) == list(theirs)  # field order and omitted optional fields


def test_message_format(world: World) -> None:
    messages = results(world.api.get(f"/api/v1/trials/{world.trial}/logs"))
    assert [m["message"] for m in messages] == [
        "[2025-01-01T00:00:00.000000Z]          || INFO: Scheduling Trial\n",
        "[2025-01-01T00:00:01.000000Z] c0ffee00 || DEBUG: pulling image\n",
        "[2025-01-01T00:00:02.000000Z] c0ffee00 [rank=0] || INFO: rank zero says hi\n",
        "[2025-01-01T00:00:03.000000Z] beef0000 [rank=1] || INFO: rank one says hi\n",
        "[2025-01-01T00:00:04.000000Z] beef0000 [rank=1] || WARNING: Disk almost FULL\n",
        "[2025-01-01T00:00:04.500000Z]          [rank=0] || ERROR: loss is NaN: 100% broken\n",
        "[2025-01-01T00:00:05.000000Z] c0ffee00 || + set -x\n",
        "[2025-01-01T00:00:06.000000Z]          || INFO: Trial finished\n",
    ]
    assert messages[5] == {
        "id": messages[5]["id"], "timestamp": "2025-01-01T00:00:04.500Z",
        "message": messages[5]["message"], "level": "LOG_LEVEL_ERROR", "trialId": world.trial,
        "rankId": 0, "log": "loss is NaN: 100% broken\n", "source": "agent", "stdtype": "stderr",
    }  # fmt: skip
    assert messages[0]["timestamp"] == "2025-01-01T00:00:00Z"
    assert messages[6]["level"] == "LOG_LEVEL_UNSPECIFIED"
    assert [int(m["id"]) for m in messages] == sorted(int(m["id"]) for m in messages)


# --- limit and order ------------------------------------------------------------------------
def test_limit(world: World) -> None:
    assert len(texts(world)) == 8
    assert len(texts(world, limit=0)) == 8
    assert texts(world, limit=2) == ["Scheduling Trial", "pulling image"]
    assert texts(world, limit=100) == texts(world)
    assert texts(world, limit=-1) == []


def test_descending_order_is_by_id(world: World) -> None:
    assert texts(world, orderBy="ORDER_BY_DESC", limit=3) == [
        "Trial finished",
        "+ set -x",
        "loss is NaN: 100% broken",
    ]
    assert texts(world, orderBy="ORDER_BY_ASC") == texts(world)


def test_more_than_a_batch_in_descending_order_repeats_rows(
    world: World, local_master: LocalMaster
) -> None:
    # Each batch starts after the id of the last row sent, whatever the order: the second
    # batch of a descending stream re-reads the newest rows (PgDB.TaskLogs + its follow state).
    with Seeder(local_master.database) as seed:
        many = seed.trial(seed.experiment(name="many"))
        seed.logs(many, [f"line {i}" for i in range(1200)])
    ascending = texts(world, many)
    assert ascending == [f"line {i}" for i in range(1200)]
    descending = texts(world, many, orderBy="ORDER_BY_DESC")
    assert descending == [f"line {i}" for i in range(1199, 199, -1)] + [
        f"line {i}" for i in range(1199, 999, -1)
    ]


# --- filters --------------------------------------------------------------------------------
def test_field_filters(world: World) -> None:
    assert texts(world, agentIds=["agent-2"]) == ["rank one says hi", "Disk almost FULL"]
    assert texts(world, containerIds=["c0ffee00c0ffee00"]) == [
        "pulling image",
        "rank zero says hi",
        "+ set -x",
    ]
    assert texts(world, rankIds=[1]) == ["rank one says hi", "Disk almost FULL"]
    assert texts(world, stdtypes=["stderr"]) == [
        "Disk almost FULL",
        "loss is NaN: 100% broken",
        "+ set -x",
    ]
    assert texts(world, sources=["master"]) == ["Scheduling Trial", "Trial finished"]
    assert texts(world, sources=["master"], agentIds=["agent-1"]) == []


def test_levels_are_an_in_list(world: World) -> None:
    assert texts(world, levels=["LOG_LEVEL_WARNING", "LOG_LEVEL_ERROR"]) == [
        "Disk almost FULL",
        "loss is NaN: 100% broken",
    ]
    # a NULL level never matches, not even LOG_LEVEL_UNSPECIFIED
    assert texts(world, levels=["LOG_LEVEL_UNSPECIFIED"]) == []
    # the official client asks for every level at or above the minimum
    session = official_session(world)
    warned = logs.trial_logs(session, world.trial, min_level=bindings.v1LogLevel.WARNING)
    assert [m.log for m in warned] == ["Disk almost FULL\n", "loss is NaN: 100% broken\n"]


def test_minus_one_rank_matches_null_ranks_with_the_masters_precedence(world: World) -> None:
    assert texts(world, rankIds=[-1]) == [
        "Scheduling Trial",
        "pulling image",
        "+ set -x",
        "Trial finished",
    ]
    # "AND rank_id IS NULL OR rank_id IN (...) AND ...": NULL-rank lines ignore the other
    # filters, and ranked lines of other trials match them.
    filtered = texts(world, rankIds=[-1, 0], levels=["LOG_LEVEL_ERROR"])
    assert filtered == [
        "Scheduling Trial", "pulling image", "loss is NaN: 100% broken", "+ set -x", "Trial finished",
        "other rank 0",
    ]  # fmt: skip


def test_timestamps(world: World) -> None:
    assert texts(world, timestampBefore="2025-01-01T00:00:01Z") == [
        "Scheduling Trial",
        "pulling image",
    ]
    assert texts(world, timestampAfter="2025-01-01T00:00:05Z") == ["Trial finished"]
    assert texts(world, timestampAfter="2025-01-01T00:00:03.999999999Z", timestampBefore="2025-01-01T00:00:04.5Z") == [
        "Disk almost FULL", "loss is NaN: 100% broken",
    ]  # fmt: skip
    bad = world.api.get(
        f"/api/v1/trials/{world.trial}/logs", params={"timestampBefore": "yesterday"}
    )
    assert bad.status_code == 400 and error_of(bad)["code"] == 3


def test_search_text_is_ilike(world: World) -> None:
    assert texts(world, searchText="full") == ["Disk almost FULL"]
    assert texts(world, searchText="RANK") == ["rank zero says hi", "rank one says hi"]
    # LIKE wildcards are not escaped
    assert texts(world, searchText="100%") == ["loss is NaN: 100% broken"]
    assert texts(world, searchText="r_nk one") == ["rank one says hi"]
    assert texts(world, searchText="Disk%FULL") == ["Disk almost FULL"]


def test_enable_regex_is_parsed_but_not_honoured(world: World) -> None:
    # TrialLogs does not pass enable_regex on to the task-log request
    assert texts(world, searchText="r.nk", enableRegex="true") == []
    bad = world.api.get(f"/api/v1/trials/{world.trial}/logs", params={"enableRegex": "maybe"})
    assert bad.status_code == 400
    assert error_of(bad)["error"] == 'strconv.ParseBool: parsing "maybe": invalid syntax'


def test_errors(world: World) -> None:
    unknown = world.api.get("/api/v1/trials/999/logs")
    assert unknown.status_code == 404
    assert unknown.json() == {
        "error": {"grpcCode": 5, "httpCode": 404, "message": "trial '999' not found",
                  "httpStatus": "Not Found", "details": []}
    }  # fmt: skip
    assert world.api.get("/api/v1/trials/999/logs/fields").status_code == 404
    bad = world.api.get(f"/api/v1/trials/{world.trial}/logs", params={"limit": "ten"})
    assert bad.status_code == 400 and error_of(bad)["reason"] == "InvalidArgument"
    bad_level = world.api.get(f"/api/v1/trials/{world.trial}/logs", params={"levels": "LOUD"})
    assert error_of(bad_level)["error"] == "LOUD is not a valid logv1.LogLevel"


# --- follow ---------------------------------------------------------------------------------
def end_trial(master: LocalMaster, trial: int, ago: float = 10.0) -> None:
    with master.database.transaction(write=True) as db:
        row = db.get(t.TrialRow, trial)
        assert row is not None
        row.state, row.end_time = "COMPLETED", datetime.now(UTC) - timedelta(seconds=ago)
        db.add(row)


def test_follow_streams_new_lines_until_the_trial_has_ended(
    world: World, local_master: LocalMaster
) -> None:
    path = f"/api/v1/trials/{world.other}/logs"
    with world.api.stream("GET", path, params={"follow": "true"}) as response:
        lines = response.iter_lines()
        assert [json.loads(next(lines))["result"]["log"] for _ in range(2)] == [
            "other rank 0\n",
            "other rank 1\n",
        ]
        with Seeder(local_master.database) as seed:
            seed.logs(world.other, ["a new line\n"])
        assert json.loads(next(lines))["result"]["log"] == "a new line\n"
        end_trial(local_master, world.other)
        assert list(lines) == []  # the stream ends


def test_follow_of_an_ended_trial_ignores_the_limit_and_ends(world: World) -> None:
    assert len(texts(world, follow="true", limit=2)) == 8
    assert len(texts(world, follow="true", limit=-1)) == 8


def test_the_official_client_follows(
    world: World, local_master: LocalMaster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The trial ends now; the stream polls until the grace period has passed, then ends.
    monkeypatch.setattr(logs_routes, "TERMINATION_GRACE_SECONDS", 0.2)
    end_trial(local_master, world.other, ago=0.0)
    session = official_session(world)
    followed = [m.log for m in logs.trial_logs(session, world.other, follow=True)]
    assert followed == ["other rank 0\n", "other rank 1\n"]


def test_official_head_and_tail(world: World) -> None:
    session = official_session(world)
    assert [m.log for m in logs.trial_logs(session, world.trial, head=2)] == [
        "Scheduling Trial\n",
        "pulling image\n",
    ]
    assert [m.log for m in logs.trial_logs(session, world.trial, tail=2)] == [
        "+ set -x\n",
        "Trial finished\n",
    ]
    assert [
        m.log for m in logs.trial_logs(session, world.trial, rank_ids=[1], search_text="disk")
    ] == ["Disk almost FULL\n"]


def test_a_failure_mid_stream_ends_with_the_error_line(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = logs_routes.fetch_logs
    calls: list[object] = []

    def failing(*args: Any) -> list[tuple[Any, ...]]:
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("connection reset")
        return real(*args)

    monkeypatch.setattr(logs_routes, "fetch_logs", failing)
    response = world.api.get(f"/api/v1/trials/{world.other}/logs", params={"follow": "true"})
    assert response.status_code == 200
    lines = response.text.split("\n")
    assert [json.loads(line)["result"]["log"] for line in lines[:2]] == [
        "other rank 0\n",
        "other rank 1\n",
    ]
    with world.master.database.transaction(write=False) as db:
        row = db.get(t.TrialRow, world.other)
        assert row is not None
        task_id = row.task_id
    assert json.loads(lines[2]) == {
        "error": {
            "grpcCode": 2, "httpCode": 500, "httpStatus": "Internal Server Error", "details": [],
            "message": f"getting trial logs for task ID {task_id}: 1 error occurred:\n\t* failed to fetch batch: connection reset\n\n",
        }
    }  # fmt: skip
    assert len(lines) == 3


# --- TrialLogsFields ------------------------------------------------------------------------
def test_fields(world: World) -> None:
    response = world.api.get(f"/api/v1/trials/{world.trial}/logs/fields")
    assert response.status_code == 200
    (line,) = response.text.splitlines()
    fields = json.loads(line)["result"]
    assert fields == {
        "agentIds": ["agent-1", "agent-2"], "containerIds": ["beef0000beef0000", "c0ffee00c0ffee00"],
        "rankIds": [0, 1], "stdtypes": ["stderr", "stdout"], "sources": ["agent", "master"],
    }  # fmt: skip
    assert bindings.v1TrialLogsFieldsResponse.from_json(fields).rankIds == [0, 1]


def test_fields_follow_until_the_trial_ends(world: World, local_master: LocalMaster) -> None:
    assert (
        len(
            world.api.get(
                f"/api/v1/trials/{world.trial}/logs/fields", params={"follow": "true"}
            ).text.splitlines()
        )
        == 1
    )
    with world.api.stream(
        "GET", f"/api/v1/trials/{world.other}/logs/fields", params={"follow": "true"}
    ) as response:
        lines = response.iter_lines()
        assert json.loads(next(lines))["result"]["rankIds"] == [0, 1]
        with Seeder(local_master.database) as seed:
            seed.logs(world.other, [{"log": "rank 2", "rank_id": 2}])
        while json.loads(next(lines))["result"]["rankIds"] != [0, 1, 2]:
            pass
        end_trial(local_master, world.other)
        assert all("result" in json.loads(line) for line in lines)


# --- the hand-written message --------------------------------------------------------------
_texts = st.none() | st.text()


@given(
    text=st.text(), agent=_texts, container=_texts, source=_texts, stdtype=_texts,
    rank=st.none() | st.integers(-(2**31), 2**31 - 1),
    level=st.none() | st.sampled_from(["LOG_LEVEL_INFO", "LOG_LEVEL_UNSPECIFIED", "bogus"]),
)  # fmt: skip
def test_a_message_is_written_as_json_dumps_writes_its_fields(
    text: str,
    agent: str | None,
    container: str | None,
    source: str | None,
    stdtype: str | None,
    rank: int | None,
    level: str | None,
) -> None:
    row = (12, "2025-01-01 00:00:04.500000", level, text, agent, container, rank, source, stdtype)
    written = bytes(logs_routes._log_message(7, row))
    fields = json.loads(written)
    assert fields["log"] == text and fields["trialId"] == 7 and fields["id"] == "12"
    assert fields.get("agentId") == agent and fields.get("rankId") == rank
    assert fields.get("containerId") == container and fields.get("stdtype") == stdtype
    assert fields.get("source") == source
    # Byte for byte what json.dumps writes for those fields, in the master's order.
    assert written == json.dumps(fields, separators=(",", ":")).encode()
