"""The master's config, log and cluster message on detorm.local (``api_master.go``,
``db/postgres_clustermessage.go``, ``cluster/authz_basic_impl.go``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from detorm.local import LocalMaster
from detorm.local._routes import master as master_routes
from tests.conftest import error_of, login


@pytest.fixture
def admin(local_master: LocalMaster) -> Iterator[httpx.Client]:
    client = login(local_master.url, "admin")
    try:
        yield client
    finally:
        client.close()


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- config ---------------------------------------------------------------------------------


def test_only_admins_read_the_config(api: httpx.Client, admin: httpx.Client) -> None:
    denied = api.get("/api/v1/master/config")
    assert (denied.status_code, error_of(denied)["error"]) == (403, "user does not have permission")
    config = admin.get("/api/v1/master/config").json()["config"]
    assert config["cluster_name"] == "detorm.local"
    assert config["resource_pools"][0]["pool_name"] == "default"
    assert config["log"]["level"] in {"debug", "info", "warn", "error", "fatal"}


def test_patching_the_log_config_is_accepted_and_changes_nothing(admin: httpx.Client) -> None:
    before = admin.get("/api/v1/master/config").json()
    body = {"config": {"log": {"level": "LOG_LEVEL_ERROR", "color": True}},
            "fieldMask": {"paths": ["log.level", "log.color"]}}  # fmt: skip
    response = admin.patch("/api/v1/master/config", json=body)
    assert (response.status_code, response.json()) == (200, {})
    assert admin.get("/api/v1/master/config").json() == before  # 0.38.1 never reads `config`


def test_patching_another_path_is_the_recovered_panic(
    admin: httpx.Client, api: httpx.Client
) -> None:
    response = admin.patch("/api/v1/master/config", json={"fieldMask": {"paths": ["port"]}})
    assert response.status_code == 500
    assert error_of(response)["error"] == "unsupported or invalid field: port"
    assert api.patch("/api/v1/master/config", json={}).status_code == 403


# --- logs -----------------------------------------------------------------------------------


def log_lines(client: httpx.Client, **params: object) -> list[dict[str, object]]:
    response = client.get("/api/v1/master/logs", params=params)
    assert response.status_code == 200, response.text
    return [json.loads(line)["result"]["logEntry"] for line in response.text.splitlines()]


def test_master_logs_serve_the_process_records_in_order(api: httpx.Client) -> None:
    logger = logging.getLogger("detorm.local")
    logger.warning("first %s", "record")
    logger.error("second record")
    tail = log_lines(api, offset=-2)
    assert [(e["message"], e["level"]) for e in tail] == [
        ("first record", "LOG_LEVEL_WARNING"), ("second record", "LOG_LEVEL_ERROR"),
    ]  # fmt: skip
    first_id = tail[0]["id"]
    assert isinstance(first_id, int)
    assert tail[1]["id"] == first_id + 1
    assert [e["id"] for e in log_lines(api, offset=first_id, limit=1)] == [first_id]


def stream_error(response: httpx.Response) -> tuple[int, str]:
    """A streaming RPC's error before its first message: ``runtime.StreamError``'s body."""
    error = response.json()["error"]
    assert error["grpcCode"] == 3 and error["httpStatus"] == "Bad Request", error
    return response.status_code, error["message"]


def test_master_logs_check_limit_and_follow(api: httpx.Client) -> None:
    response = api.get("/api/v1/master/logs", params={"limit": -1})
    assert stream_error(response) == (400, "Limit must be >= 0")
    response = api.get("/api/v1/master/logs", params={"limit": 1, "follow": "true"})
    assert stream_error(response) == (400, "Limit cannot be specified when following")


def test_followed_master_logs_deliver_new_records(api: httpx.Client) -> None:
    logger = logging.getLogger("detorm.local")
    logger.warning("before following")
    start = len(master_routes.MASTER_LOG)
    with api.stream("GET", "/api/v1/master/logs", params={"follow": "true", "offset": -1}) as s:
        lines = s.iter_lines()
        assert json.loads(next(lines))["result"]["logEntry"]["id"] == start - 1
        logger.warning("while following")
        entry = json.loads(next(line for line in lines if line))["result"]["logEntry"]
        assert (entry["id"], entry["message"]) == (start, "while following")


# --- cluster message ------------------------------------------------------------------------


def test_a_message_set_now_shows_in_get_master_until_cleared(
    admin: httpx.Client, api: httpx.Client
) -> None:
    assert admin.get("/api/v1/master/cluster_message").json() == {}
    start = datetime.now(UTC) - timedelta(seconds=1)
    body = {"message": "maintenance at noon", "startTime": rfc3339(start), "duration": "1h"}
    assert admin.put("/api/v1/master/cluster_message", json=body).json() == {}
    message = admin.get("/api/v1/master/cluster_message").json()["clusterMessage"]
    assert message["message"] == "maintenance at noon"
    assert datetime.fromisoformat(message["endTime"]) - datetime.fromisoformat(
        message["startTime"]
    ) == timedelta(hours=1)
    assert api.get("/api/v1/master").json()["clusterMessage"]["message"] == "maintenance at noon"
    assert admin.delete("/api/v1/master/cluster_message").json() == {}
    assert admin.get("/api/v1/master/cluster_message").json() == {}
    assert "clusterMessage" not in api.get("/api/v1/master").json()


def test_a_future_message_is_listed_but_not_yet_shown(admin: httpx.Client) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    body = {"message": "later", "startTime": rfc3339(start)}
    admin.put("/api/v1/master/cluster_message", json=body).raise_for_status()
    assert (
        admin.get("/api/v1/master/cluster_message").json()["clusterMessage"]["message"] == "later"
    )
    assert "endTime" not in admin.get("/api/v1/master/cluster_message").json()["clusterMessage"]
    assert "clusterMessage" not in admin.get("/api/v1/master").json()


def test_a_new_message_replaces_the_old_one(admin: httpx.Client) -> None:
    for text in ("one", "two"):
        body = {"message": text, "startTime": rfc3339(datetime.now(UTC))}
        admin.put("/api/v1/master/cluster_message", json=body).raise_for_status()
    assert admin.get("/api/v1/master/cluster_message").json()["clusterMessage"]["message"] == "two"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"endTime": "2999-01-01T00:00:00Z", "duration": "1h"},
         "EndTime and Duration are mutually exclusive"),
        ({"duration": "-1h"},
         "Duration must be a Go-formatted duration string with a positive value"),
        ({"duration": "soon"},
         "Duration must be a Go-formatted duration string with a positive value"),
        ({"endTime": "2000-01-01T00:00:00Z"}, "invalid input, end time must be after start time"),
        ({"startTime": "2000-01-01T00:00:00Z", "endTime": "2001-01-01T00:00:00Z"},
         "invalid input, end time must be after current time"),
        ({"message": "x" * 251}, "invalid input: message must be at most 250 characters; got 251"),
    ],
)  # fmt: skip
def test_bad_messages_are_rejected(
    admin: httpx.Client, extra: dict[str, str], message: str
) -> None:
    body = {"message": "m", "startTime": rfc3339(datetime.now(UTC)), **extra}
    response = admin.put("/api/v1/master/cluster_message", json=body)
    assert (response.status_code, error_of(response)["error"]) == (400, message)


def test_only_admins_touch_the_cluster_message(api: httpx.Client) -> None:
    for response in (
        api.get("/api/v1/master/cluster_message"),
        api.put("/api/v1/master/cluster_message", json={"message": "m"}),
        api.delete("/api/v1/master/cluster_message"),
    ):
        assert (response.status_code, error_of(response)["error"]) == (
            403, "user does not have permission",
        )  # fmt: skip
