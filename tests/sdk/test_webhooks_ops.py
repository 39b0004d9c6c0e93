"""Webhook create / delete / test / query in both APIs against canned replies: what each sends
and how the master's answers and refusals are read (against detorm.local: test_webhooks.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from detorm import Trigger, TriggerType, WebhookMode, WebhookType
from detorm.errors import BadRequest, NotFound
from tests.sdk.apis import MODES, Api
from tests.sdk.test_cluster_ops import FakeMaster, _both, error

HOOK = {
    "id": 4, "url": "https://h.example.com/x", "webhookType": "WEBHOOK_TYPE_SLACK", "name": "n",
    "workspaceId": 0, "mode": "WEBHOOK_MODE_SPECIFIC",
    "triggers": [{"id": 9, "triggerType": "TRIGGER_TYPE_CUSTOM", "condition": {},
                  "webhookId": 4}],
}  # fmt: skip


@pytest.fixture
def master() -> FakeMaster:
    return FakeMaster()


@pytest.fixture(params=MODES)
def api(
    request: pytest.FixtureRequest, master: FakeMaster, environ: dict[str, str]
) -> Iterator[Api]:
    with _both(request.param, master, environ, user=None, password=None, token="t0ken") as both:
        yield both


def test_create_sends_the_webhook_message_as_the_body(api: Api, master: FakeMaster) -> None:
    master.reply("POST", "/api/v1/webhooks", {"webhook": HOOK})
    hook = api(api.Webhook.create(
        "https://h.example.com/x", triggers=[Trigger("CUSTOM")], webhook_type="slack",
        mode=WebhookMode.SPECIFIC, name="n", session=api.session,
    ))  # fmt: skip
    ((_, body),) = master.sent("POST", "/api/v1/webhooks")
    assert body == {  # body: "webhook" in api.proto: the message itself, not {"webhook": ...}
        "url": "https://h.example.com/x", "webhookType": "WEBHOOK_TYPE_SLACK",
        "mode": "WEBHOOK_MODE_SPECIFIC", "name": "n",
        "triggers": [{"triggerType": "TRIGGER_TYPE_CUSTOM", "condition": {}}],
    }  # fmt: skip
    assert (hook.id, hook.webhook_type, hook.mode) == (4, WebhookType.SLACK, WebhookMode.SPECIFIC)
    assert hook.triggers == (Trigger(TriggerType.CUSTOM, {}, 9, 4),)
    assert api(api.session.get(api.Webhook, 4)) is hook  # complete: nothing more was sent
    assert len(master.requests) == 1


def test_test_and_delete(api: Api, master: FakeMaster) -> None:
    master.reply("GET", "/api/v1/webhooks", {"webhooks": [HOOK]})
    (hook,) = api.list(api.Webhook.query(api.session))
    master.on("POST", "/api/v1/webhooks/4/test", lambda _: error(
        400, "received error from webhook server for event x error: 500 "))  # fmt: skip
    with pytest.raises(BadRequest, match="received error from webhook server"):
        api(hook.test())
    ((_, body),) = master.sent("POST", "/api/v1/webhooks/4/test")
    assert body is None  # TestWebhook takes no body
    master.reply("DELETE", "/api/v1/webhooks/4", {})
    api(hook.delete())
    assert len(master.sent("DELETE", "/api/v1/webhooks/4")) == 1
    master.reply("GET", "/api/v1/webhooks", {"webhooks": []})
    with pytest.raises(NotFound, match="webhook 4 does not exist"):
        api(api.session.get(api.Webhook, 4))


def test_a_query_reads_the_one_list_and_filters_here(api: Api, master: FakeMaster) -> None:
    other: dict[str, Any] = dict(HOOK, id=5, name="m", webhookType="WEBHOOK_TYPE_DEFAULT")
    master.reply("GET", "/api/v1/webhooks", {"webhooks": [HOOK, other]})
    query = api.Webhook.query(api.session).filter(webhook_type="DEFAULT")
    assert [h.id for h in api.list(query)] == [5]
    assert [h.id for h in api.list(api.Webhook.query(api.session).order_by("-id")[:1])] == [5]
    assert all(q == "" for q, _ in master.sent("GET", "/api/v1/webhooks"))  # no filter sent
    assert "evaluated on the client" in str(query.explain())
