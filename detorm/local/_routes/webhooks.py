"""Webhooks (``master/internal/webhooks/api_webhook.go``, ``postgres_webhook.go``, ``webhook.go``;
tables ``webhooks`` and ``webhook_triggers``).

Basic (OSS) authorization (``webhooks/authz_basic_impl.go``): a workspace's owner or an admin may
create, patch, test and delete its webhooks; only admins may touch global ones (no workspace).
GetWebhooks lists the global webhooks and those of the workspaces the caller owns (every
workspace for an admin).

Oddities of the master kept here, where the real API forces them:

- The permission refusal is a plain Go error: a 500 ``non admin users can't edit global webhooks``
  (also for a workspace webhook the caller does not own). An unknown webhook id or workspace id is
  bun's bare ``sql: no rows in result set``, also a 500. A name taken in the same workspace is
  Postgres's unique violation (500); global webhooks may share a name.
- PostWebhook checks the URL with Go's ``url.ParseRequestURI`` (``#`` is part of the path, a
  host may not hold it); PatchWebhook checks nothing: any string, ``""`` included, becomes the URL.
- A missing ``webhook`` message is a nil pointer (the recovered panic, 500); an unspecified webhook
  or trigger type makes ``WebhookFromProto`` panic (500 ``missing mapping for ... to SQL``).
- A negative workspace id passes as "global" to the permission check, then breaks the foreign key.

detorm.local sends nothing off the machine: TestWebhook records the request the master would have
POSTed (table ``webhook_test_events``) and answers as a master whose receiver accepted it
(``completed`` false, as the master always answers); experiment, metric and task-log events are
not delivered (nor queued); PostWebhookEventData checks what the master checks (the experiment,
the webhooks its config names by id) and answers as it does, queueing nothing. Not modelled: the
compilation of a TASK_LOG trigger's regex with Go's RE2 (the master refuses a bad one with a 500;
detorm.local stores it).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from .. import _tables as t
from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, internal, invalid_argument
from .._jsonpb import read_json
from .._sql_lists import orm_in
from .config_policies import sorted_struct
from .projects import NIL_DEREFERENCE

__all__: list[str] = []

_NO_ROWS: Final = "sql: no rows in result set"
_NOT_EDITOR: Final = "non admin users can't edit global webhooks"
_DUPLICATE_NAME: Final = (
    'ERROR: duplicate key value violates unique constraint "name_workspace_key" (SQLSTATE 23505)'
)
_WORKSPACE_FKEY: Final = (
    'ERROR: insert or update on table "webhooks" violates foreign key constraint'
    ' "webhooks_workspace_id_fkey" (SQLSTATE 23503)'
)
_REGEX_KEY: Final = "regex"

# enum names on the wire <-> the master's SQL enum values (webhook.go's *FromProto and Proto)
_WEBHOOK_TYPES: Final = {"WEBHOOK_TYPE_DEFAULT": "DEFAULT", "WEBHOOK_TYPE_SLACK": "SLACK"}
_TRIGGER_TYPES: Final = {
    "TRIGGER_TYPE_EXPERIMENT_STATE_CHANGE": "EXPERIMENT_STATE_CHANGE",
    "TRIGGER_TYPE_METRIC_THRESHOLD_EXCEEDED": "METRIC_THRESHOLD_EXCEEDED",
    "TRIGGER_TYPE_TASK_LOG": "TASK_LOG",
    "TRIGGER_TYPE_CUSTOM": "CUSTOM",
}
_MODE_SPECIFIC: Final = "WEBHOOK_MODE_SPECIFIC"


# --- Go's url.ParseRequestURI, as a yes/no (the master answers one message for every failure) ---

_ALNUM: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_HOST_OK: Final = _ALNUM | frozenset("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_OK: Final = _ALNUM | frozenset("-._:~!$&'()*+,;=%@")
_HEX: Final = frozenset("0123456789abcdefABCDEF")


def _escapes_ok(text: str, *, host: bool = False) -> bool:
    """``url.unescape``: every ``%`` starts two hex digits; in a host, ``%XX`` below ``%80`` other
    than ``%25`` is refused, and so is any ASCII character ``shouldEscape`` marks."""
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%":
            pair = text[i + 1 : i + 3]
            if len(pair) < 2 or not set(pair) <= _HEX:
                return False
            if host and int(pair[0], 16) < 8 and pair != "25":
                return False
            i += 3
            continue
        if host and ord(char) < 0x80 and char not in _HOST_OK:
            return False
        i += 1
    return True


def _port_ok(colon_port: str) -> bool:
    """``validOptionalPort``: empty, or ``:`` and digits."""
    return colon_port == "" or (
        colon_port[0] == ":"
        and colon_port[1:].isascii()
        and all("0" <= c <= "9" for c in colon_port[1:])
    )


def _host_ok(host: str) -> bool:
    """``parseHost``."""
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0 or not _port_ok(host[end + 1 :]):
            return False
        zone = host[:end].find("%25")
        if zone >= 0:
            return (
                _escapes_ok(host[:zone], host=True)
                and _escapes_ok(host[zone:end])
                and _escapes_ok(host[end:], host=True)
            )
    elif (colon := host.rfind(":")) != -1 and not _port_ok(host[colon:]):
        return False
    return _escapes_ok(host, host=True)


def _authority_ok(authority: str) -> bool:
    """``parseAuthority``: the host after the last ``@``, the userinfo before it."""
    at = authority.rfind("@")
    if not _host_ok(authority[at + 1 :]):
        return False
    if at < 0:
        return True
    userinfo = authority[:at]
    return all(c in _USERINFO_OK for c in userinfo) and _escapes_ok(userinfo)


def _scheme(raw: str) -> tuple[str, str] | None:
    """``getScheme``: (scheme, rest); None for ``missing protocol scheme`` (a leading colon)."""
    for i, char in enumerate(raw):
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if i == 0:
                return "", raw
            continue
        if char == ":":
            return None if i == 0 else (raw[:i], raw[i + 1 :])
        return "", raw
    return "", raw


def request_uri_ok(raw: str) -> bool:
    """Whether Go's ``url.ParseRequestURI(raw)`` succeeds (``net/url.parse`` with viaRequest)."""
    if raw == "" or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return False
    if raw == "*":
        return True
    split = _scheme(raw)
    if split is None:
        return False
    scheme, rest = split
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    else:
        rest = rest.partition("?")[0]
    if not rest.startswith("/"):
        return scheme != ""  # an opaque URL ("mailto:x"); no scheme: "invalid URI for request"
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        if not _authority_ok(authority):
            return False
        rest = slash + path
    return _escapes_ok(rest)


# --- Go's fmt %v of a condition (map[string]interface{} from Struct.AsMap) --------------------------


def _go_float(value: float) -> str:
    """``%v`` of a float64: strconv's shortest ``'g'``, whose exponent form starts below 1e-4 and
    from 1e6 (``eprec = 6`` for the shortest precision): ``1e+06``, ``1.234567e+06``."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent  # the decimal point's position in the digits
    exp = point - 1
    minus = "-" if sign else ""
    if exp < -4 or exp >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return f"{minus}{text}{'0' * (point - len(text))}"
    return f"{minus}{text[:point]}.{text[point:]}"


def go_v(value: Any) -> str:
    """``fmt.Sprintf("%v", value)`` of a value of ``Struct.AsMap`` (map keys sorted, as fmt does)."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _go_float(float(value))
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + " ".join(go_v(item) for item in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_v(value[k])}" for k in sorted(value)) + "]"
    return str(value)


# --- views and lookups ----------------------------------------------------------------------------


def _trigger_view(row: t.WebhookTriggerRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "triggerType": f"TRIGGER_TYPE_{row.trigger_type}",
        "condition": sorted_struct(row.condition if row.condition is not None else {}),
        "webhookId": row.webhook_id,
    }


def _webhook_view(row: t.WebhookRow, triggers: list[t.WebhookTriggerRow]) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "triggers": [_trigger_view(trigger) for trigger in triggers],
        "webhookType": f"WEBHOOK_TYPE_{row.webhook_type}",
        "name": row.name,
        "workspaceId": row.workspace_id or 0,
        "mode": f"WEBHOOK_MODE_{row.mode}",
    }


def _triggers_of(db: Session, webhook_ids: list[int]) -> dict[int, list[t.WebhookTriggerRow]]:
    rows = db.exec(
        select(t.WebhookTriggerRow)
        .where(orm_in(t.WebhookTriggerRow.webhook_id, webhook_ids))
        .order_by(col(t.WebhookTriggerRow.id))
    ).all()
    out: dict[int, list[t.WebhookTriggerRow]] = {}
    for row in rows:
        out.setdefault(row.webhook_id, []).append(row)
    return out


def _find_webhook(db: Session, webhook_id: int) -> t.WebhookRow:
    """``GetWebhook``: a missing id is bun's bare error (a 500)."""
    row = db.get(t.WebhookRow, webhook_id)
    if row is None:
        raise internal(_NO_ROWS)
    return row


def _authorize_edit(ctx: Ctx, workspace_id: int) -> None:
    """``authorizeEditRequest``: the workspace's owner (workspace id > 0) or an admin."""
    assert ctx.user is not None
    if workspace_id > 0:
        workspace = ctx.db.get(t.WorkspaceRow, workspace_id)
        if workspace is None:
            raise internal(_NO_ROWS)
        if workspace.user_id == ctx.user.id:
            return
    if not ctx.user.admin:
        raise ApiError.from_plain(_NOT_EDITOR)


def _message_or_nil(ctx: Ctx) -> dict[str, Any]:
    """The body's message; an empty or ``null`` body leaves the request's pointer nil, which the
    handler dereferences (the recovered panic)."""
    present, value = read_json(ctx.raw_body)
    if not present or value is None or ctx.document is None:
        raise internal(NIL_DEREFERENCE)
    return ctx.document


def _enum_text(value: Any) -> str:
    """A proto enum as ``%v``/``%s`` prints it: its name, or its number when unknown."""
    return str(value)


# --- PostWebhook's checks, in the master's order ---------------------------------------------------


def _check_triggers(webhook: dict[str, Any]) -> None:
    triggers: list[dict[str, Any]] = webhook.get("triggers", [])
    if not triggers:
        raise invalid_argument("at least one trigger required")
    if not request_uri_ok(webhook.get("url", "")):
        raise invalid_argument("valid url required")
    mode = webhook.get("mode", "WEBHOOK_MODE_UNSPECIFIED")
    for trigger in triggers:
        kind = trigger.get("triggerType", "TRIGGER_TYPE_UNSPECIFIED")
        if kind == "TRIGGER_TYPE_TASK_LOG":
            _check_task_log_condition(trigger.get("condition") or {})
        if kind == "TRIGGER_TYPE_CUSTOM" and mode != _MODE_SPECIFIC:
            raise invalid_argument(
                "custom trigger only works on webhook with mode 'SPECIFIC'. Got " + _enum_text(mode)
            )


def _check_task_log_condition(condition: dict[str, Any]) -> None:
    shown = go_v(condition)
    if len(condition) != 1:
        raise invalid_argument(f"webhook task log condition must have one key got {shown}")
    if _REGEX_KEY not in condition:
        raise invalid_argument(
            f"webhook task log condition must have key '{_REGEX_KEY}' got {shown}"
        )
    if not isinstance(condition[_REGEX_KEY], str):
        raise invalid_argument(
            f"webhook task log condition must have key '{_REGEX_KEY}' as string got {shown}"
        )


def _sql_enum(table: dict[str, str], value: Any, what: str) -> str:
    """``WebhookTypeFromProto`` / ``TriggerTypeFromProto``: an unmapped value panics."""
    if value not in table:
        raise internal(f"missing mapping for {what} {_enum_text(value)} to SQL")
    return table[value]


def _bun_text(text: str) -> str:
    """bun writes strings into the SQL text and drops their NUL characters."""
    return text.replace("\x00", "")


def _insert_webhook(db: Session, webhook: dict[str, Any]) -> dict[str, Any]:
    triggers = webhook.get("triggers", [])
    # WebhookFromProto builds the triggers before the webhook type: their panic comes first
    kinds = [
        _sql_enum(_TRIGGER_TYPES, x.get("triggerType", "TRIGGER_TYPE_UNSPECIFIED"), "trigger")
        for x in triggers
    ]
    webhook_type = _sql_enum(
        _WEBHOOK_TYPES, webhook.get("webhookType", "WEBHOOK_TYPE_UNSPECIFIED"), "webhook type"
    )
    workspace_id = webhook.get("workspaceId", 0) or None
    name = _bun_text(webhook.get("name", ""))
    if workspace_id is not None and db.get(t.WorkspaceRow, workspace_id) is None:
        raise internal(_WORKSPACE_FKEY)
    taken = db.exec(
        select(t.WebhookRow.id).where(
            t.WebhookRow.name == name, t.WebhookRow.workspace_id == workspace_id
        )
    ).first()
    if workspace_id is not None and taken is not None:
        raise internal(_DUPLICATE_NAME)
    row = t.WebhookRow(
        webhook_type=webhook_type,
        url=_bun_text(webhook.get("url", "")),
        mode="SPECIFIC" if webhook.get("mode") == _MODE_SPECIFIC else "WORKSPACE",
        workspace_id=workspace_id,
        name=name,
    )
    db.add(row)
    db.flush()
    assert row.id is not None
    trigger_rows = [
        t.WebhookTriggerRow(
            trigger_type=kind, condition=x.get("condition") or {}, webhook_id=row.id
        )
        for kind, x in zip(kinds, triggers, strict=True)
    ]
    db.add_all(trigger_rows)
    db.flush()
    return _webhook_view(row, trigger_rows)


def _test_payload(row: t.WebhookRow) -> str:
    """The body TestWebhook POSTs (``EventPayload`` or ``SlackMessageBody``, Go's field order)."""
    if row.webhook_type == "SLACK":
        body: dict[str, Any] = {
            "blocks": [{"type": "section", "text": {"type": "plain_text", "text": "test"}}]
        }
    else:
        body = {
            "event_id": str(uuid.uuid4()),
            "event_type": "EXPERIMENT_STATE_CHANGE",
            "timestamp": int(time.time()),
            "condition": {"state": "COMPLETED"},
            "event_data": {"data": "test"},
        }
    return json.dumps(body, separators=(",", ":"))


# --- handlers -------------------------------------------------------------------------------------


@rpc("GetWebhooks")
def get_webhooks(ctx: Ctx) -> dict[str, Any]:
    assert ctx.user is not None
    query = select(t.WebhookRow).order_by(col(t.WebhookRow.id))
    if not ctx.user.admin:
        owned = select(t.WorkspaceRow.id).where(t.WorkspaceRow.user_id == ctx.user.id)
        query = query.where(
            or_(col(t.WebhookRow.workspace_id).is_(None), col(t.WebhookRow.workspace_id).in_(owned))
        )
    else:  # every workspace's id: a webhook whose workspace is gone is not listed either
        everyone = select(t.WorkspaceRow.id)
        query = query.where(
            or_(
                col(t.WebhookRow.workspace_id).is_(None),
                col(t.WebhookRow.workspace_id).in_(everyone),
            )
        )
    rows = ctx.db.exec(query).all()
    triggers = _triggers_of(ctx.db, [row.id for row in rows if row.id is not None])
    return {"webhooks": [_webhook_view(row, triggers.get(row.id or 0, [])) for row in rows]}


@rpc("PostWebhook")
def post_webhook(ctx: Ctx) -> dict[str, Any]:
    webhook = _message_or_nil(ctx)
    _authorize_edit(ctx, webhook.get("workspaceId", 0))
    _check_triggers(webhook)
    return {"webhook": _insert_webhook(ctx.db, webhook)}


@rpc("DeleteWebhook", id=int)
def delete_webhook(ctx: Ctx) -> dict[str, Any]:
    row = _find_webhook(ctx.db, ctx.path["id"])
    _authorize_edit(ctx, row.workspace_id or 0)
    ctx.db.exec(delete(t.WebhookTriggerRow).where(col(t.WebhookTriggerRow.webhook_id) == row.id))
    ctx.db.delete(row)
    ctx.db.flush()
    return {}


@rpc("PatchWebhook", id=int)
def patch_webhook(ctx: Ctx) -> dict[str, Any]:
    row = _find_webhook(ctx.db, ctx.path["id"])
    _authorize_edit(ctx, row.workspace_id or 0)
    patch = _message_or_nil(ctx)  # updateWebhook dereferences the missing PatchWebhook
    row.url = _bun_text(patch.get("url", ""))  # not checked, unlike PostWebhook's
    ctx.db.add(row)
    ctx.db.flush()
    return {}


@rpc("TestWebhook", id=int)
def test_webhook(ctx: Ctx) -> dict[str, Any]:
    row = _find_webhook(ctx.db, ctx.path["id"])
    _authorize_edit(ctx, row.workspace_id or 0)
    assert row.id is not None
    # Recorded, not sent: detorm.local never sends anything off the machine. The master answers
    # an empty TestWebhookResponse when its receiver accepted the request.
    ctx.db.add(
        t.WebhookTestEventRow(
            webhook_id=row.id, url=row.url, payload=_test_payload(row), created_at=utcnow()
        )
    )
    ctx.db.flush()
    return {"completed": False}


# --- PostWebhookEventData (custom triggers) --------------------------------------------------------

_LOG_LEVELS: Final = {
    "LOG_LEVEL_TRACE": "TRACE",
    "LOG_LEVEL_DEBUG": "DEBUG",
    "LOG_LEVEL_INFO": "INFO",
    "LOG_LEVEL_WARNING": "WARNING",
    "LOG_LEVEL_ERROR": "ERROR",
    "LOG_LEVEL_CRITICAL": "CRITICAL",
}


def _custom_data_text(data: dict[str, Any] | None) -> str:
    """``%+v`` of ``CustomTriggerData`` (its zero value when the request has no data)."""
    level = "" if data is None else _LOG_LEVELS.get(data.get("level", ""), "UNSPECIFIED")
    data = data or {}
    return (
        f"{{Title:{data.get('title', '')} Description:{data.get('description', '')} Level:{level}}}"
    )


def _check_custom_trigger(db: Session, experiment_id: int) -> None:
    """``handleCustomTriggerData`` up to the events it would queue (raises its error text)."""
    experiment = db.get(t.ExperimentRow, experiment_id)
    if experiment is None:
        raise _CustomTriggerError(f"error getting experiment from id {experiment_id}: {_NO_ROWS}")
    config = experiment.config if isinstance(experiment.config, dict) else {}
    integrations = config.get("integrations")
    webhooks = integrations.get("webhooks") if isinstance(integrations, dict) else None
    if not isinstance(webhooks, dict) or webhooks.get("exclude"):
        return
    for webhook_id in webhooks.get("webhook_id") or []:
        if db.get(t.WebhookRow, webhook_id) is None:
            raise _CustomTriggerError(f"error getting webhook from id {webhook_id}: {_NO_ROWS}")


class _CustomTriggerError(Exception):
    pass


@rpc("PostWebhookEventData")
def post_webhook_event_data(ctx: Ctx) -> dict[str, Any]:
    request = ctx.document or {}
    experiment_id: int = request.get("experimentId", 0)
    trial_id: int = request.get("trialId", 0)
    try:
        _check_custom_trigger(ctx.db, experiment_id)
    except _CustomTriggerError as err:
        raise internal(
            f"failed to handle custom trigger data: {_custom_data_text(request.get('data'))}"
            f" experiment id: {experiment_id} trial_id {trial_id} : {err}"
        ) from None
    # The events the master would queue for the experiment's CUSTOM triggers are not delivered.
    return {}
