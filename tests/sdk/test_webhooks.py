"""Webhook.query / create / delete / test in both APIs, against detorm.local; bad input refused
before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from detorm import Trigger, TriggerType, WebhookMode, WebhookType
from detorm.errors import APIError, InvalidType, InvalidValue, NotFound
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster

STATE_CHANGE = Trigger("EXPERIMENT_STATE_CHANGE", {"state": "COMPLETED"})


@pytest.fixture(params=MODES)
def admin_api(
    request: pytest.FixtureRequest, fresh_cluster: Cluster, environ: dict[str, str]
) -> Iterator[Api]:
    """Global webhooks are for admins only (webhooks/authz_basic_impl.go)."""
    with Api(request.param, fresh_cluster.url, environ, user="admin", password="") as api:
        yield api


def test_create_query_test_and_delete(admin_api: Api, fresh_cluster: Cluster) -> None:
    api = admin_api
    research = fresh_cluster.workspaces["research"]
    hook = api(api.Webhook.create(
        "https://hooks.example.com/det", triggers=[STATE_CHANGE,
        Trigger(TriggerType.TASK_LOG, {"regex": "CUDA out of memory"})], name="on-done",
        workspace=research, session=api.session,
    ))  # fmt: skip
    assert isinstance(hook, api.Webhook) and hook.id > 0
    assert (hook.name, hook.url, hook.workspace_id) == (
        "on-done",
        "https://hooks.example.com/det",
        research,
    )
    assert hook.webhook_type is WebhookType.DEFAULT and hook.mode is WebhookMode.WORKSPACE
    kinds = [(t.trigger_type, t.condition) for t in hook.triggers]
    assert kinds == [
        (TriggerType.EXPERIMENT_STATE_CHANGE, {"state": "COMPLETED"}),
        (TriggerType.TASK_LOG, {"regex": "CUDA out of memory"}),
    ]
    assert all(t.id > 0 and t.webhook_id == hook.id for t in hook.triggers)
    slack = api(api.Webhook.create(
        "http://slack.example.com/x", triggers=[Trigger("CUSTOM")], webhook_type="SLACK",
        mode="SPECIFIC", name="custom", session=api.session,
    ))  # fmt: skip
    assert slack.workspace_id == 0 and slack.webhook_type is WebhookType.SLACK

    everything = api.list(api.Webhook.query(api.session))
    assert {h.id for h in everything} == {hook.id, slack.id}
    assert everything[[h.id for h in everything].index(hook.id)] is hook  # the identity map
    found = api.list(api.Webhook.query(api.session).filter(webhook_type="SLACK"))
    assert [h.id for h in found] == [slack.id]
    by_name = api.list(api.Webhook.query(api.session).filter(name__contains="DONE"))
    assert [h.id for h in by_name] == [hook.id]  # evaluated here, case-insensitively
    ordered = api.list(api.Webhook.query(api.session).order_by("-id"))
    assert [h.id for h in ordered] == sorted((hook.id, slack.id), reverse=True)
    assert api(api.Webhook.query(api.session).filter(workspace_id=research).count()) == 1
    assert api(api.session.get(api.Webhook, slack.id)) is slack

    api(hook.test())
    api(hook.delete())
    assert [h.id for h in api.list(api.Webhook.query(api.session))] == [slack.id]
    with pytest.raises(NotFound, match=f"webhook {hook.id} does not exist"):
        api(api.session.get(api.Webhook, hook.id))


@pytest.mark.parametrize("mode", MODES)
def test_a_non_admin_cannot_create_a_global_webhook(
    mode: Mode, fresh_cluster: Cluster, environ: dict[str, str]
) -> None:
    with Api(mode, fresh_cluster.url, environ, user="alice", password="secret") as api:
        # The master's refusal is a plain Go error: a 500 (see detorm/local/_routes/webhooks.py)
        with pytest.raises(APIError, match="non admin users can't edit global webhooks"):
            api(api.Webhook.create("https://h.example.com", triggers=[STATE_CHANGE],
                                   session=api.session))  # fmt: skip
        assert api.list(api.Webhook.query(api.session)) == []


BAD: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"url": "not a url"}, InvalidValue, "absolute http"),
    ({"url": "/relative/path"}, InvalidValue, "absolute http"),
    ({"url": "ftp://h.example.com"}, InvalidValue, "absolute http"),
    ({"url": "http://h:port/"}, InvalidValue, "not a valid URL"),
    ({"url": 42}, InvalidType, "URL"),
    ({"triggers": []}, InvalidValue, "at least one Trigger"),
    ({"triggers": STATE_CHANGE}, InvalidValue, "not one Trigger"),
    ({"triggers": ["EXPERIMENT_STATE_CHANGE"]}, InvalidType, "a Trigger"),
    ({"triggers": [Trigger("CUSTOM")]}, InvalidValue, "CUSTOM trigger needs mode='SPECIFIC'"),
    ({"webhook_type": "TEAMS"}, InvalidValue, "webhook_type.*DEFAULT, SLACK"),
    ({"webhook_type": "UNSPECIFIED"}, InvalidValue, "webhook_type"),
    ({"mode": "ALL"}, InvalidValue, r"mode\) must be one of WORKSPACE, SPECIFIC"),
    ({"workspace": "research"}, InvalidType, "Workspace or its id"),
    ({"name": 3}, InvalidType, r"name\) must be a str"),
]


@pytest.mark.parametrize(("change", "error", "message"), BAD)
def test_bad_input_is_refused_unsent(
    writer_api: Api, change: dict[str, Any], error: type[Exception], message: str
) -> None:
    api = writer_api
    sent = api.session.requests_sent
    arguments: dict[str, Any] = {
        "url": "https://h.example.com",
        "triggers": [STATE_CHANGE],
        **change,
    }
    with pytest.raises(error, match=message):
        api(api.Webhook.create(arguments.pop("url"), **arguments, session=api.session))
    assert api.session.requests_sent == sent


def test_bad_triggers_are_refused_as_they_are_made() -> None:
    with pytest.raises(InvalidValue, match="trigger_type must be one of EXPERIMENT_STATE_CHANGE"):
        Trigger("ON_FIRE")
    with pytest.raises(InvalidValue, match="trigger_type"):
        Trigger(TriggerType.UNSPECIFIED)
    with pytest.raises(InvalidValue, match="TASK_LOG trigger's condition"):
        Trigger("TASK_LOG", {"pattern": "x"})
    with pytest.raises(InvalidValue, match="TASK_LOG trigger's condition"):
        Trigger("TASK_LOG", {"regex": 3})
    with pytest.raises(InvalidType):
        Trigger("CUSTOM", ["not", "a", "dict"])  # type: ignore[arg-type]
    assert Trigger("metric_threshold_exceeded").trigger_type is (
        TriggerType.METRIC_THRESHOLD_EXCEEDED
    )
