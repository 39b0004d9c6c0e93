"""Mistakes with the cluster and webhooks are type errors."""

from datetime import timedelta

import detorm
import detorm.aio as det


def mistakes(session: detorm.Session) -> None:
    session.set_cluster_message("x", duration=7200)  # E: Argument "duration" to "set_cluster_message" of "Session" has incompatible type "int"
    session.master_logs(limit="10")  # E: Argument "limit" to "master_logs" of "Session" has incompatible type "str"
    session.master_logs(10)  # E: Too many positional arguments
    detorm.Webhook.create("https://h.example.com", triggers=["CUSTOM"])  # E: List item 0 has incompatible type "str"; expected "Trigger"
    detorm.Webhook.create("https://h.example.com")  # E: Missing named argument "triggers"
    detorm.Webhook.query(session).filter(webhook_type="TEAMS")  # E: Argument "webhook_type" to "filter" of "WebhookFilters" has incompatible type
    detorm.Webhook.query(session).filter(triggers=[])  # E: Unexpected keyword argument "triggers"
    detorm.Webhook.query(session).order_by("url_")  # E: Argument 1 to "order_by" of "WebhookFilters" has incompatible type
    info: str = session.master_info().version
    info.cluster_id  # E: "str" has no attribute "cluster_id"
    print(timedelta())


async def async_mistakes(session: det.AsyncSession) -> None:
    for entry in session.master_logs():  # E: "AsyncIterator[MasterLogEntry]" has no attribute "__iter__"
        print(entry)
    info = session.master_info()
    info.version  # E: "Coroutine[Any, Any, MasterInfo]" has no attribute "version"
