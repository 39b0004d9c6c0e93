"""Webhooks on detorm.local, as ``master/internal/webhooks/api_webhook.go`` behaves with the basic
(OSS) authorization: a workspace's owner or an admin edits its webhooks, only admins global ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import select

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._routes.webhooks import go_v, request_uri_ok
from tests.conftest import error_of, login

NIL = "runtime error: invalid memory address or nil pointer dereference"


@dataclass
class World:
    api: httpx.Client  # "determined", not an admin
    admin: httpx.Client
    master: LocalMaster
    mine: int  # owned by determined
    theirs: int  # owned by admin


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        mine = seed.workspace("mine", owner="determined")
        theirs = seed.workspace("theirs", owner="admin")
    admin = login(local_master.url, "admin")
    try:
        yield World(api, admin, local_master, mine, theirs)
    finally:
        admin.close()


def failure(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    codes = {400: (3, "InvalidArgument"), 500: (13, "Internal")}
    code, reason = codes[status]
    assert error_of(response) == {"code": code, "reason": reason, "error": message}


def hook(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "url": "http://127.0.0.1:9/hook",
        "webhookType": "WEBHOOK_TYPE_DEFAULT",
        "name": "h",
        "triggers": [
            {"triggerType": "TRIGGER_TYPE_EXPERIMENT_STATE_CHANGE", "condition": {"state": "ERROR"}}
        ],
    }
    body.update(fields)
    return body


def post(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/api/v1/webhooks", json=hook(**fields))


def created(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = post(client, **fields)
    assert response.status_code == 200, response.text
    webhook: dict[str, Any] = response.json()["webhook"]
    return webhook


def listed(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/api/v1/webhooks")
    assert response.status_code == 200, response.text
    webhooks: list[dict[str, Any]] = response.json()["webhooks"]
    return webhooks


# --- create and list ------------------------------------------------------------------------------


def test_post_answers_the_stored_webhook_with_its_triggers(world: World) -> None:
    webhook = created(world.admin, name="alerts", mode="WEBHOOK_MODE_UNSPECIFIED")
    trigger = webhook["triggers"][0]
    assert webhook == {
        "id": webhook["id"],
        "url": "http://127.0.0.1:9/hook",
        "triggers": [
            {
                "id": trigger["id"],
                "triggerType": "TRIGGER_TYPE_EXPERIMENT_STATE_CHANGE",
                "condition": {"state": "ERROR"},
                "webhookId": webhook["id"],
            }
        ],
        "webhookType": "WEBHOOK_TYPE_DEFAULT",
        "name": "alerts",
        "workspaceId": 0,
        "mode": "WEBHOOK_MODE_WORKSPACE",  # an unspecified mode is stored as WORKSPACE
    }
    assert listed(world.admin) == [webhook]


def test_a_user_sees_global_webhooks_and_those_of_workspaces_they_own(world: World) -> None:
    global_hook = created(world.admin, name="g")
    mine = created(world.api, name="m", workspaceId=world.mine)
    theirs = created(world.admin, name="t", workspaceId=world.theirs)
    assert [w["id"] for w in listed(world.api)] == [global_hook["id"], mine["id"]]
    assert [w["id"] for w in listed(world.admin)] == [global_hook["id"], mine["id"], theirs["id"]]


def test_only_admins_and_owners_edit_webhooks(world: World) -> None:
    failure(post(world.api, name="g"), 500, "non admin users can't edit global webhooks")
    failure(
        post(world.api, workspaceId=world.theirs), 500, "non admin users can't edit global webhooks"
    )
    failure(post(world.admin, workspaceId=9999), 500, "sql: no rows in result set")
    assert created(world.admin, workspaceId=world.mine)["workspaceId"] == world.mine


def test_names_are_unique_within_a_workspace_only(world: World) -> None:
    created(world.admin, name="same")
    created(world.admin, name="same")  # global webhooks: NULL workspace ids never collide
    created(world.admin, name="same", workspaceId=world.mine)
    failure(
        post(world.admin, name="same", workspaceId=world.mine),
        500,
        'ERROR: duplicate key value violates unique constraint "name_workspace_key"'
        " (SQLSTATE 23505)",
    )
    assert created(world.admin, name="same", workspaceId=world.theirs)["name"] == "same"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"triggers": []}, "at least one trigger required"),
        ({"url": "not a url"}, "valid url required"),
        ({"url": ""}, "valid url required"),
        ({"url": "http://example.com#frag"}, "valid url required"),
        (
            {"triggers": [{"triggerType": "TRIGGER_TYPE_TASK_LOG", "condition": {}}]},
            "webhook task log condition must have one key got map[]",
        ),
        (
            {"triggers": [{"triggerType": "TRIGGER_TYPE_TASK_LOG", "condition": {"re": 1e6}}]},
            "webhook task log condition must have key 'regex' got map[re:1e+06]",
        ),
        (
            {"triggers": [{"triggerType": "TRIGGER_TYPE_TASK_LOG", "condition": {"regex": 2}}]},
            "webhook task log condition must have key 'regex' as string got map[regex:2]",
        ),
        (
            {"triggers": [{"triggerType": "TRIGGER_TYPE_CUSTOM", "condition": {}}]},
            "custom trigger only works on webhook with mode 'SPECIFIC'. Got WEBHOOK_MODE_UNSPECIFIED",
        ),
    ],
)
def test_post_checks_triggers_and_url(world: World, fields: dict[str, Any], message: str) -> None:
    failure(post(world.admin, **fields), 400, message)
    assert listed(world.admin) == []


def test_unspecified_types_are_the_masters_panics(world: World) -> None:
    unspecified_trigger = [{"condition": {}}]
    failure(
        post(world.admin, triggers=unspecified_trigger, webhookType="WEBHOOK_TYPE_UNSPECIFIED"),
        500,
        "missing mapping for trigger TRIGGER_TYPE_UNSPECIFIED to SQL",  # triggers are built first
    )
    failure(
        post(world.admin, webhookType="WEBHOOK_TYPE_UNSPECIFIED"),
        500,
        "missing mapping for webhook type WEBHOOK_TYPE_UNSPECIFIED to SQL",
    )
    failure(world.admin.post("/api/v1/webhooks", content=b""), 500, NIL)
    assert listed(world.admin) == []


def test_task_log_and_custom_triggers(world: World) -> None:
    webhook = created(
        world.admin,
        webhookType="WEBHOOK_TYPE_SLACK",
        mode="WEBHOOK_MODE_SPECIFIC",
        triggers=[
            {"triggerType": "TRIGGER_TYPE_TASK_LOG", "condition": {"regex": "OOM"}},
            {"triggerType": "TRIGGER_TYPE_CUSTOM"},
        ],
    )
    kinds = [(x["triggerType"], x["condition"]) for x in webhook["triggers"]]
    assert kinds == [("TRIGGER_TYPE_TASK_LOG", {"regex": "OOM"}), ("TRIGGER_TYPE_CUSTOM", {})]
    assert webhook["webhookType"] == "WEBHOOK_TYPE_SLACK"
    assert webhook["mode"] == "WEBHOOK_MODE_SPECIFIC"


# --- patch, test, delete --------------------------------------------------------------------------


def test_patch_sets_any_url(world: World) -> None:
    webhook = created(world.api, workspaceId=world.mine)
    path = f"/api/v1/webhooks/{webhook['id']}"
    response = world.api.patch(path, json={"url": "not checked"})
    assert response.status_code == 200 and response.json() == {}
    assert listed(world.api)[0]["url"] == "not checked"
    failure(world.api.patch(path, content=b"null"), 500, NIL)
    failure(
        world.api.patch("/api/v1/webhooks/999", json={"url": "x"}),
        500,
        "sql: no rows in result set",
    )


def test_test_records_the_request_instead_of_sending_it(world: World) -> None:
    default = created(world.admin, name="d")
    slack = created(world.admin, name="s", webhookType="WEBHOOK_TYPE_SLACK")
    for webhook in (default, slack):
        response = world.admin.post(f"/api/v1/webhooks/{webhook['id']}/test")
        assert response.status_code == 200 and response.json() == {"completed": False}
    failure(
        world.api.post(f"/api/v1/webhooks/{default['id']}/test"),
        500,
        "non admin users can't edit global webhooks",
    )
    with world.master.database.session() as db:
        events = db.exec(select(t.WebhookTestEventRow).order_by(t.WebhookTestEventRow.id)).all()
    assert [(e.webhook_id, e.url) for e in events] == [
        (default["id"], default["url"]),
        (slack["id"], slack["url"]),
    ]
    payload = json.loads(events[0].payload)
    assert payload["event_type"] == "EXPERIMENT_STATE_CHANGE"
    assert payload["condition"] == {"state": "COMPLETED"}
    assert payload["event_data"] == {"data": "test"}
    assert json.loads(events[1].payload) == {
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "test"}}]
    }


def test_delete_removes_the_webhook_and_its_triggers(world: World) -> None:
    webhook = created(world.api, workspaceId=world.mine)
    other = created(world.admin, name="other")
    failure(
        world.api.delete(f"/api/v1/webhooks/{other['id']}"),
        500,
        "non admin users can't edit global webhooks",
    )
    response = world.api.delete(f"/api/v1/webhooks/{webhook['id']}")
    assert response.status_code == 200 and response.json() == {}
    assert [w["id"] for w in listed(world.admin)] == [other["id"]]
    with world.master.database.session() as db:
        triggers = db.exec(select(t.WebhookTriggerRow)).all()
    assert [x.webhook_id for x in triggers] == [other["id"]]
    failure(
        world.api.delete(f"/api/v1/webhooks/{webhook['id']}"), 500, "sql: no rows in result set"
    )
    # ids are never reused (SERIAL): not even the highest one, once deleted
    assert world.admin.delete(f"/api/v1/webhooks/{other['id']}").status_code == 200
    assert created(world.api, workspaceId=world.mine)["id"] > other["id"]


# --- Go's url.ParseRequestURI and fmt %v ----------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("http://example.com/hook", True),
        ("https://user:pw@example.com:8443/a?b=c", True),
        ("http://[::1]:80/", True),
        ("/relative/path", True),
        ("*", True),
        ("mailto:someone", True),  # opaque
        ("http://example.com/#frag", True),
        ("http://example.com:", True),
        ("example.com/hook", False),
        ("http://example.com#frag", False),
        ("http://exa mple.com/", False),
        ("http://example.com:80a/", False),
        ("http://[::1/", False),
        ("http://example.com/%zz", False),
        (":foo", False),
        ("http://a\tb/", False),
        ("http://us er@host/", False),
    ],
)
def test_request_uri_ok_follows_go(url: str, ok: bool) -> None:
    assert request_uri_ok(url) is ok


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({}, "map[]"),
        ({"b": 1.5, "a": "x"}, "map[a:x b:1.5]"),
        ({"n": None, "t": True, "l": [1, "y"]}, "map[l:[1 y] n:<nil> t:true]"),
        (
            {"big": 123456.0, "bigger": 1234567.0, "tiny": 0.00001},
            "map[big:123456 bigger:1.234567e+06 tiny:1e-05]",
        ),
    ],
)
def test_go_v_formats_conditions_as_fmt(value: Any, text: str) -> None:
    assert go_v(value) == text


# --- custom triggers --------------------------------------------------------------------------------


def test_custom_trigger_data_checks_the_experiment_and_its_webhooks(world: World) -> None:
    with Seeder(world.master.database) as seed:
        project = seed.project("p", workspace=world.mine)
        plain = seed.experiment(project=project)
        named = seed.experiment(
            project=project, config={"integrations": {"webhooks": {"webhook_id": [777]}}}
        )
    data = {"title": "t", "description": "d", "level": "LOG_LEVEL_WARNING"}
    url = "/api/v1/webhooks/custom"
    response = world.api.post(url, json={"data": data, "experimentId": plain, "trialId": 3})
    assert response.status_code == 200 and response.json() == {}
    failure(
        world.api.post(url, json={"data": data, "experimentId": 424242}),
        500,
        "failed to handle custom trigger data: {Title:t Description:d Level:WARNING} experiment"
        " id: 424242 trial_id 0 : error getting experiment from id 424242: sql: no rows in result"
        " set",
    )
    failure(
        world.api.post(url, json={"experimentId": named, "data": {}}),
        500,
        "failed to handle custom trigger data: {Title: Description: Level:UNSPECIFIED} experiment"
        f" id: {named} trial_id 0 : error getting webhook from id 777: sql: no rows in result set",
    )
