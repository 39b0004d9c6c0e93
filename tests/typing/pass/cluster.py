"""The cluster and its webhooks, as a script uses them, in both APIs."""

from datetime import datetime, timedelta
from typing import Any, assert_type

import detorm
import detorm.aio as det


def script(session: detorm.Session) -> None:
    info = session.master_info()
    assert_type(info, detorm.MasterInfo)
    assert_type(info.version, str)
    assert_type(info.cluster_message, detorm.ClusterMessage | None)
    assert_type(session.master_config(), dict[str, Any])
    for entry in session.master_logs(offset=-100, follow=True):
        assert_type(entry, detorm.MasterLogEntry)
        assert_type(entry.level, detorm.LogLevel)
    message = session.cluster_message()
    assert_type(message, detorm.ClusterMessage | None)
    if message is not None:
        assert_type(message.end, datetime | None)
    session.set_cluster_message("upgrade at 5pm", duration=timedelta(hours=2))
    session.set_cluster_message("upgrade", start=datetime(2026, 1, 1), end=datetime(2026, 1, 2))
    session.set_cluster_message("upgrade", duration="90m")
    session.clear_cluster_message()
    hook = detorm.Webhook.create(
        "https://hooks.example.com", triggers=[detorm.Trigger("EXPERIMENT_STATE_CHANGE",
        {"state": "COMPLETED"})], webhook_type=detorm.WebhookType.SLACK, workspace=3,
        session=session,
    )  # fmt: skip
    assert_type(hook, detorm.Webhook)
    assert_type(hook.triggers[0].trigger_type, detorm.TriggerType)
    assert_type(hook.mode, detorm.WebhookMode)
    hook.test()
    hook.delete()
    hooks = detorm.Webhook.query(session).filter(webhook_type="SLACK", name__contains="x")
    assert_type(hooks, detorm.WebhookQuery)
    assert_type(hooks.order_by("-id").all(), list[detorm.Webhook])
    assert_type(session.query(detorm.Webhook), detorm.WebhookQuery)
    session.logout()


async def async_script(session: det.AsyncSession) -> None:
    assert_type(await session.master_info(), detorm.MasterInfo)
    assert_type(await session.master_config(), dict[str, Any])
    async for entry in session.master_logs(limit=10):
        assert_type(entry, detorm.MasterLogEntry)
    assert_type(await session.cluster_message(), detorm.ClusterMessage | None)
    await session.set_cluster_message("hi")
    await session.clear_cluster_message()
    hook = await det.Webhook.create(
        "https://h.example.com", triggers=[detorm.Trigger("CUSTOM")], mode="SPECIFIC",
        session=session,
    )  # fmt: skip
    assert_type(hook, det.Webhook)
    await hook.test()
    await hook.delete()
    assert_type(await det.Webhook.query(session).all(), list[det.Webhook])
    assert_type(session.query(det.Webhook), det.AsyncWebhookQuery)
    await session.logout()
