"""Cluster-wide objects: webhooks and their triggers.

A webhook is created and deleted at once (``Webhook.create``, ``webhook.delete()``); the
master 0.38.1 can change only its URL (PatchWebhook), which detorm does not offer as an edit:
its fields are read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from .._wire import TriggerType, WebhookMode, WebhookType
from .._wire import _cluster as wc
from ..errors import InvalidValue
from ._base import Resource
from ._inputs import check_json_object, require

__all__ = ["REGEX_CONDITION_KEY", "Trigger", "Webhook", "enum_member"]

# webhooks.regexConditionKey: the one key of a TASK_LOG trigger's condition.
REGEX_CONDITION_KEY = "regex"


E = TypeVar("E", TriggerType, WebhookType, WebhookMode)


def enum_member(where: str, enum: type[E], value: object) -> E:
    """A member of ``enum`` given as itself or by name (``"TASK_LOG"``, case-insensitive);
    UNSPECIFIED and names the master does not know are refused."""
    require(where, value, (enum, str), f"a {enum.__name__} or its name")
    member: E | None = None
    try:
        member = value if isinstance(value, enum) else enum.parse(str(value))
    except ValueError:
        pass
    if member is None or member.number <= 0:
        names = ", ".join(m.short for m in enum if m.number > 0)
        raise InvalidValue(f"{where} must be one of {names}, not {value!r}")
    return member


@dataclass(frozen=True, slots=True, init=False)
class Trigger:
    """What makes a webhook fire: ``trigger_type`` (a TriggerType or its name) and its
    ``condition``, e.g. ``Trigger("EXPERIMENT_STATE_CHANGE", {"state": "COMPLETED"})``,
    ``Trigger("TASK_LOG", {"regex": "CUDA out of memory"})``, ``Trigger("CUSTOM")``.
    ``id`` and ``webhook_id`` are the master's (0 before the webhook exists)."""

    trigger_type: TriggerType
    condition: dict[str, Any]
    id: int
    webhook_id: int

    def __init__(
        self,
        trigger_type: TriggerType | str,
        condition: Mapping[str, Any] | None = None,
        id: int = 0,
        webhook_id: int = 0,
    ) -> None:
        kind = enum_member("Trigger.trigger_type", TriggerType, trigger_type)
        values = {} if condition is None else condition
        check_json_object("Trigger.condition", values)
        if kind is TriggerType.TASK_LOG:
            _check_task_log_condition(values)
        object.__setattr__(self, "trigger_type", kind)
        object.__setattr__(self, "condition", dict(values))
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "webhook_id", webhook_id)

    @classmethod
    def from_wire(cls, wire: wc.Trigger) -> Trigger:
        """The trigger from the master's JSON."""
        return cls(wire.trigger_type, dict(wire.condition or {}), wire.id, wire.webhook_id)

    def to_wire(self) -> dict[str, Any]:
        """The trigger as PostWebhook's JSON takes it (type and condition)."""
        return {"triggerType": self.trigger_type.value, "condition": self.condition}


def _check_task_log_condition(condition: Mapping[str, Any]) -> None:
    # The master's PostWebhook checks, with its wording (api_webhook.go).
    if set(condition) != {REGEX_CONDITION_KEY} or not isinstance(
        condition[REGEX_CONDITION_KEY], str
    ):
        raise InvalidValue(
            f"a TASK_LOG trigger's condition must be {{'{REGEX_CONDITION_KEY}': <a str>}}, "
            f"not {condition!r}"
        )


class Webhook(Resource):
    """A webhook (read-only fields): the master POSTs to ``url`` when a trigger fires, for the
    experiments of its workspace (``workspace_id`` 0: every workspace) in ``WORKSPACE`` mode,
    or for those whose config names it in ``SPECIFIC`` mode."""

    id: int
    name: str
    url: str
    webhook_type: WebhookType
    triggers: tuple[Trigger, ...]
    mode: WebhookMode
    workspace_id: int

    _read_only_hints: ClassVar[dict[str, str]] = {
        "url": "the SDK does not patch webhooks; delete it and create another"
    }

    # A webhook's URL often holds its credential (a Slack or Teams hook's path is its token):
    # displays show its scheme and host only.
    _repr_fields: ClassVar[tuple[str, ...]] = ("id", "name", "webhook_type", "mode")
    _hidden_fields: ClassVar[frozenset[str]] = frozenset({"url"})

    @staticmethod
    def values_from_wire(wire: wc.Webhook) -> dict[str, Any]:
        """The object's field values from the master's JSON (a wire model)."""
        return {
            "id": wire.id, "name": wire.name, "url": wire.url, "webhook_type": wire.webhook_type,
            "triggers": tuple(Trigger.from_wire(t) for t in wire.triggers), "mode": wire.mode,
            "workspace_id": wire.workspace_id,
        }  # fmt: skip
