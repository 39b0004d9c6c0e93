"""The master's own messages: cluster message, SSO providers, master log entries, webhooks
(``proto/src/determined/api/v1/master.proto``, ``log/v1/log.proto``, ``webhook/v1/webhook.proto``,
``api/v1/webhook.proto``)."""

from __future__ import annotations

from ._base import Struct, Timestamp, WireModel, absent
from ._enums import LogLevel, WireEnum

__all__ = [
    "ClusterMessage",
    "GetClusterMessageResponse",
    "GetMasterConfigResponse",
    "MasterLogEntry",
    "MasterLogsResponse",
    "SSOProvider",
    "SetClusterMessageRequest",
    "TestWebhookResponse",
    "Trigger",
    "TriggerType",
    "Webhook",
    "WebhookMode",
    "WebhookResponse",
    "WebhookType",
    "WebhooksResponse",
]


class ClusterMessage(WireModel):
    """``v1ClusterMessage``: shown by the web UI between ``start_time`` and ``end_time``."""

    message: str = ""
    start_time: Timestamp | None = None
    end_time: Timestamp | None = absent()  # proto3 optional: left out when there is none
    created_time: Timestamp | None = None


class GetClusterMessageResponse(WireModel):
    cluster_message: ClusterMessage | None = absent()


class SetClusterMessageRequest(WireModel):
    message: str = ""
    start_time: Timestamp | None = None
    end_time: Timestamp | None = absent()
    duration: str | None = absent()  # Go's time.ParseDuration syntax


class SSOProvider(WireModel):
    name: str = ""
    sso_url: str = ""
    type: str = ""
    always_redirect: bool = False


class GetMasterConfigResponse(WireModel):
    config: Struct | None = None


class MasterLogEntry(WireModel):
    """``v1LogEntry``: one line of the master's own log (int32 id, its index in the master's
    in-memory log buffer)."""

    id: int = 0
    message: str = ""
    timestamp: Timestamp | None = None
    level: LogLevel = LogLevel.UNSPECIFIED


class MasterLogsResponse(WireModel):
    log_entry: MasterLogEntry | None = None


# --- webhooks ---------------------------------------------------------------------------------
class WebhookType(WireEnum):
    """``v1WebhookType``: the shape of the payload (Slack's or Determined's)."""

    UNSPECIFIED = "WEBHOOK_TYPE_UNSPECIFIED", 0
    DEFAULT = "WEBHOOK_TYPE_DEFAULT", 1
    SLACK = "WEBHOOK_TYPE_SLACK", 2


class WebhookMode(WireEnum):
    """``v1WebhookMode``: every experiment of the workspace, or those that name the webhook."""

    UNSPECIFIED = "WEBHOOK_MODE_UNSPECIFIED", 0
    WORKSPACE = "WEBHOOK_MODE_WORKSPACE", 1
    SPECIFIC = "WEBHOOK_MODE_SPECIFIC", 2


class TriggerType(WireEnum):
    """``v1TriggerType``."""

    UNSPECIFIED = "TRIGGER_TYPE_UNSPECIFIED", 0
    EXPERIMENT_STATE_CHANGE = "TRIGGER_TYPE_EXPERIMENT_STATE_CHANGE", 1
    METRIC_THRESHOLD_EXCEEDED = "TRIGGER_TYPE_METRIC_THRESHOLD_EXCEEDED", 2
    TASK_LOG = "TRIGGER_TYPE_TASK_LOG", 3
    CUSTOM = "TRIGGER_TYPE_CUSTOM", 4


class Trigger(WireModel):
    id: int = 0
    trigger_type: TriggerType = TriggerType.UNSPECIFIED
    condition: Struct | None = None
    webhook_id: int = 0


class Webhook(WireModel):
    id: int = 0
    url: str = ""
    triggers: list[Trigger] = []
    webhook_type: WebhookType = WebhookType.UNSPECIFIED
    name: str = ""
    workspace_id: int = 0  # 0: a global webhook
    mode: WebhookMode = WebhookMode.UNSPECIFIED


class WebhooksResponse(WireModel):
    """GetWebhooks: every webhook the user may see, in one answer (no paging, no filter)."""

    webhooks: list[Webhook] = []


class WebhookResponse(WireModel):
    """PostWebhook (request and response: ``{"webhook": ...}``)."""

    webhook: Webhook | None = None


class TestWebhookResponse(WireModel):
    completed: bool = False
