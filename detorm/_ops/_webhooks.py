"""Webhooks: create, delete, test. Each is one op, run by both APIs.

Wire facts (master 0.38.1, ``master/internal/webhooks/api_webhook.go``): ``POST
/api/v1/webhooks`` takes the Webhook message itself as its body (``body: "webhook"`` in
api.proto) and answers ``{"webhook": ...}`` with its id and its triggers' ids;
it refuses an empty trigger list ("at least one trigger required"), a URL
``url.ParseRequestURI`` refuses ("valid url required"), a TASK_LOG condition other than
``{"regex": <str>}`` and a CUSTOM trigger outside SPECIFIC mode. Those are checked here first,
with the URL held to an absolute http(s) URL: the master also takes a bare path such as
``/hook``, which it can never POST to. ``DELETE /api/v1/webhooks/{id}`` and ``POST
/api/v1/webhooks/{id}/test`` (the master sends a test event at once; a URL that fails or
answers an error status is a 400).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .. import _wire as w
from .._plan._call import Call, path
from .._resources._base import Resource
from .._resources._cluster import Trigger, Webhook, enum_member
from .._resources._inputs import check_id, check_iterable, check_text, require
from .._resources._models import Workspace
from ..errors import InvalidValue
from ._effects import Op, send

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

H = TypeVar("H", bound=Webhook)

__all__ = ["create_webhook", "delete_webhook", "test_webhook", "webhook_body"]

_ROUTE = "/api/v1/webhooks"


def webhook_body(
    url: object,
    *,
    triggers: object,
    webhook_type: object = "DEFAULT",
    name: object = None,
    workspace: object = None,
    mode: object = "WORKSPACE",
) -> dict[str, Any]:
    """The PostWebhook body (the Webhook message), checked before anything is sent."""
    kind = enum_member("Webhook.create(webhook_type)", w.WebhookType, webhook_type)
    how = enum_member("Webhook.create(mode)", w.WebhookMode, mode)
    listed = _triggers(triggers)
    for trigger in listed:
        if trigger.trigger_type is w.TriggerType.CUSTOM and how is not w.WebhookMode.SPECIFIC:
            raise InvalidValue(
                f"Webhook.create: a CUSTOM trigger needs mode='SPECIFIC' (the master refuses "
                f"it in {how.short} mode)"
            )
    webhook: dict[str, Any] = {
        "url": _check_url(url), "webhookType": kind.value, "mode": how.value,
        "triggers": [t.to_wire() for t in listed],
    }  # fmt: skip
    if name is not None:
        require("Webhook.create(name)", name, str, "a str")
        assert isinstance(name, str)
        webhook["name"] = check_text("Webhook.create(name)", name)
    if workspace is not None:
        webhook["workspaceId"] = _id_of("Webhook.create(workspace)", workspace, Workspace)
    return webhook


def _check_url(url: object) -> str:
    where = "Webhook.create(url)"
    require(where, url, str, "a URL (a str)")
    assert isinstance(url, str)
    check_text(where, url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as err:
        raise InvalidValue(f"{where} is not a valid URL ({err}): {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or url != url.strip():
        raise InvalidValue(f"{where} must be an absolute http:// or https:// URL, not {url!r}")
    return url


def _triggers(triggers: object) -> list[Trigger]:
    where = "Webhook.create(triggers)"
    if isinstance(triggers, Trigger):
        raise InvalidValue(f"{where} must be a list of Trigger, not one Trigger")
    listed = check_iterable(where, triggers, "a list of Trigger")
    for trigger in listed:
        require(f"{where} item", trigger, Trigger, "a Trigger")
    if not listed:
        raise InvalidValue(f"{where} needs at least one Trigger (the master requires one)")
    return listed


def _id_of(where: str, value: object, cls: type[Resource]) -> int:
    if isinstance(value, cls):
        return int(value.pk)
    return check_id(where, value, what=f"a {cls.__name__} or its id (an int)")


def create_webhook(session: Session, cls: type[H], body: dict[str, Any]) -> Op[H]:
    """PostWebhook; the answer is the whole webhook, so the object is complete."""
    response = yield from send(Call("POST", _ROUTE, body=body))
    created = w.WebhookResponse.model_validate_json(response.content).webhook
    assert created is not None
    webhook = session.merge(cls, Webhook.values_from_wire(created))
    webhook._fetched = True
    return webhook


def delete_webhook(session: Session, webhook: Webhook) -> Op[None]:
    yield from send(Call("DELETE", path(_ROUTE + "/{id}", id=webhook.id)))
    session._forget(webhook)


def test_webhook(webhook: Webhook) -> Op[None]:
    """TestWebhook: the master sends a test event to the URL now; its failure is a 400. The
    answer's ``completed`` is always false on master 0.38.1 (it returns an empty
    TestWebhookResponse), so there is nothing to return. The route takes no body."""
    yield from send(Call("POST", path(_ROUTE + "/{id}/test", id=webhook.id)))
