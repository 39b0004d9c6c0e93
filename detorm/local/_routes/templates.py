"""Config templates (``master/internal/templates/api.go`` and ``service.go``; the ``templates``
table: ``name`` the primary key, ``config`` jsonb, ``workspace_id`` a workspace).

Basic (OSS) authorization (``templates/authz_basic_impl.go``): every user may list, read, create,
update and delete every template, and ``workspace.CanGetWorkspaceID`` lets everyone name any
workspace; a template can only go to a workspace that exists and is not archived
(``workspace.Exists``).

Oddities of the master kept here, where the real API forces them:

- GetTemplate answers 404 ``template 'x' not found``, but PatchTemplateConfig, PatchTemplateName,
  PutTemplate (its update) and DeleteTemplate return ``TemplateByName``'s bare ``db.ErrNotFound``:
  a 500 ``not found``. A name that exists already is a Postgres error, also a 500.
- ``sortBy`` is ignored: GetTemplates always orders by name (``orderBy`` picks the direction).
  ``name`` is ``ILIKE '%%' || name || '%%'``: a case-insensitive substring, ``%`` and ``_`` live.
- PutTemplate of a new name answers with the request's template as sent (``workspaceId`` 0 when
  it was left out, ``config`` null when absent), not the stored row; PutTemplate of an existing
  name with neither a config nor a workspace id updates every column of an empty
  ``model.Template`` (bun's update of the whole model), which the config's NOT NULL refuses.
- bun writes strings into the SQL text and drops their NUL characters (``AppendString``), so
  ``"a\\x00b"`` names the template ``ab``. ``json.Marshal`` writes a NUL inside the config as
  ``\\u0000``, which jsonb refuses.
- PatchTemplateName checks nothing about the new name: ``""`` is a valid new name (and such a
  template can only be renamed again: its routes refuse an empty name).

Not modelled: protobuf's recursion limit (10,000 nested messages, when the gRPC server decodes
the request and when bun scans the jsonb back through ``protojson``; each level of a config is a
Struct and a Value) and Postgres's stack depth limit on jsonb input, which refuse configs nested
some thousands of levels deep on the master; detorm.local keeps them (Go's JSON reader stops at
10,000 levels, as the gateway here does).
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any, Final

from sqlmodel import Session, select

from detorm._plan._collation import collation_key
from detorm._wire import OrderBy

from .. import _tables as t
from .._app import Ctx, RawJSON, rpc
from .._errors import internal, invalid_argument, not_found
from .._filter_sql import like
from .._jsonpb import Number, read_json
from .._pagination import bun_page
from .._sql_lists import orm_in
from .._trampoline import Steps, run

__all__ = ["delete_workspace_templates", "template_config"]

_DEFAULT_WORKSPACE_ID: Final = 1  # model.DefaultWorkspaceID ("Uncategorized")

_PKEY_VIOLATION: Final = (
    'ERROR: duplicate key value violates unique constraint "templates_pkey" (SQLSTATE 23505)'
)
_NUL_IN_JSONB: Final = "ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)"
_NULL_CONFIG: Final = (
    'ERROR: null value in column "config" of relation "templates" violates not-null constraint'
    " (SQLSTATE 23502)"
)


# --- the config: a Struct as Go writes it --------------------------------------------------------


class _Unstorable(Exception):
    """A config jsonb refuses (a NUL character, which ``json.Marshal`` writes as ``\\u0000``)."""


def _go_float(value: float) -> str:
    """``json.Marshal`` of a float64: the shortest digits, in exponent form below 1e-6 and from
    1e21 (``1e-07`` cleaned to ``1e-7``), written out in between."""
    size = abs(value)
    if size == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    if size < 1e-6 or size >= 1e21:
        return repr(value).replace("e-0", "e-")  # repr uses the exponent form in both ranges
    text = repr(value)  # the shortest digits; written out, zeros pad them (not the exact value)
    if "e" in text:
        return format(Decimal(text), "f")
    return text.removesuffix(".0")


def _go_string(text: str, *, stored: bool) -> str:
    """``json.Marshal`` of a string (Go 1.22: HTML characters and U+2028/U+2029 escaped)."""
    if stored and "\x00" in text:
        raise _Unstorable
    encoded = json.dumps(text, ensure_ascii=False)
    if any(char in encoded for char in "<>&\u2028\u2029"):
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                              ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
            encoded = encoded.replace(char, escaped)
    return encoded


def _go_json(value: Any, stored: bool) -> Steps[str]:
    """jsonpb's output of a ``google.protobuf.Value``: object keys sorted (Go's byte order is the
    code point order), numbers doubles. ``stored``: the value went through jsonb first, which
    refuses NUL characters and has no negative zero. Recursive through ``_trampoline.run``: Go
    reads configs 10,000 levels deep."""
    if isinstance(value, dict):
        members = []
        for key in sorted(value):
            member = yield _go_json(value[key], stored)
            members.append(f"{_go_string(key, stored=stored)}:{member}")
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        items = []
        for item in value:
            items.append((yield _go_json(item, stored)))
        return "[" + ",".join(items) + "]"
    if isinstance(value, str):
        return _go_string(value, stored=stored)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    number = float(value)
    return "0" if stored and number == 0 else _go_float(number)


def _stored_config(config: dict[str, Any] | None) -> str:
    """The jsonb of ``json.Marshal(config.AsMap())`` as it reads back (a missing config is
    ``{}``); raises :class:`_Unstorable`."""
    return run(_go_json(config or {}, True))


# --- rows ----------------------------------------------------------------------------------------


def _sql(text: str) -> str:
    """A string as bun writes it into the SQL text: without its NUL characters."""
    return text.replace("\x00", "")


def _view(row: t.TemplateRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "config": RawJSON(row.config.encode()),
        "workspaceId": row.workspace_id,
    }


def _by_name(db: Session, name: str) -> t.TemplateRow | None:
    return db.get(t.TemplateRow, _sql(name))


def _existing(db: Session, name: str) -> t.TemplateRow:
    """``TemplateByName``, whose ``db.ErrNotFound`` the handlers return as it is (a 500)."""
    row = _by_name(db, name)
    if row is None:
        raise internal("not found")
    return row


def _check_workspace(db: Session, workspace_id: int) -> None:
    """``canCreateTemplateWorkspace``: ``workspace.Exists`` (the workspace, not archived)."""
    row = db.get(t.WorkspaceRow, workspace_id)
    if row is None or row.archived:
        raise not_found(f"workspace '{workspace_id}' not found")


def _rename_taken(db: Session, old: str, new: str) -> bool:
    return new != old and db.get(t.TemplateRow, new) is not None


def template_config(db: Session, name: str) -> Any:
    """A template's config for a launch (``UnmarshalTemplateConfig``): 404 ``template 'x' not
    found`` when there is none (with basic authorization every template is visible)."""
    row = _by_name(db, name)
    if row is None:
        raise not_found(f"template '{name}' not found")
    _, document = read_json(row.config.encode())  # iterative: configs nest 10,000 levels deep
    return run(_plain(document))


def _plain(value: Any) -> Steps[Any]:
    """A document of :func:`read_json` as plain Python values (numbers as int or float)."""
    if isinstance(value, dict):
        members = {}
        for key, item in value.items():
            members[str(key)] = yield _plain(item)
        return members
    if isinstance(value, list):
        items = []
        for item in value:
            items.append((yield _plain(item)))
        return items
    if isinstance(value, Number):
        return value.python()
    return str(value) if isinstance(value, str) else value


def _template_body(ctx: Ctx) -> tuple[str, dict[str, Any] | None, int]:
    """Post/PutTemplateRequest: the template's name (the path's), config (None when unset) and
    workspace id."""
    document = ctx.document or {}
    name: str = ctx.path["template.name"]
    config = document.get("config")
    return name, config, int(document.get("workspaceId", 0))


# --- handlers ------------------------------------------------------------------------------------


@rpc("GetTemplates")
def get_templates(ctx: Ctx) -> dict[str, Any]:
    q = ctx.query
    # sort_by is parsed (the gateway refuses an unknown value) and ignored: only name sorts
    order = q.get_enum("order_by", OrderBy, "apiv1.OrderBy")
    offset, limit = q.get_int("offset"), q.get_int("limit")
    name = _sql(q.get_str("name"))
    workspace_ids = q.get_ints("workspace_ids")
    query = select(t.TemplateRow)
    if q.has("workspace_ids"):
        query = query.where(orm_in(t.TemplateRow.workspace_id, workspace_ids))
    rows = list(ctx.db.exec(query).all())
    if name:
        pattern = "%%" + name + "%%"
        rows = [row for row in rows if like(row.name, pattern, case_insensitive=True)]
    # ORDER BY name ASC|DESC; names are unique, so there are no ties
    rows.sort(key=lambda row: collation_key(row.name), reverse=order == OrderBy.DESC)
    page = bun_page(offset, limit, len(rows))
    return {
        "templates": [_view(row) for row in page.slice(rows)],
        "pagination": page.pagination.model_dump_wire(),
    }


@rpc("GetTemplate")
def get_template(ctx: Ctx) -> dict[str, Any]:
    name: str = ctx.path["template_name"]
    if not name:
        raise invalid_argument("name is required")
    row = _by_name(ctx.db, name)
    if row is None:
        raise not_found(f"template '{name}' not found")
    return {"template": _view(row)}


def _post(ctx: Ctx, name: str, config: dict[str, Any] | None, workspace_id: int) -> t.TemplateRow:
    if not name:
        raise invalid_argument("name is required")
    workspace_id = workspace_id or _DEFAULT_WORKSPACE_ID
    _check_workspace(ctx.db, workspace_id)
    try:
        stored = _stored_config(config)
    except _Unstorable:
        raise internal(f"failed to create template {name}: {_NUL_IN_JSONB}") from None
    if _by_name(ctx.db, name) is not None:
        raise internal(f"failed to create template {name}: {_PKEY_VIOLATION}")
    row = t.TemplateRow(name=_sql(name), config=stored, workspace_id=workspace_id)
    ctx.db.add(row)
    ctx.db.flush()
    return row


@rpc("PostTemplate")
def post_template(ctx: Ctx) -> dict[str, Any]:
    return {"template": _view(_post(ctx, *_template_body(ctx)))}


@rpc("PutTemplate")
def put_template(ctx: Ctx) -> dict[str, Any]:
    name, config, workspace_id = _template_body(ctx)
    if not name:
        raise invalid_argument("name is required")
    row = _by_name(ctx.db, name)
    if row is None:
        _post(ctx, name, config, workspace_id)
        # the response is the request's template, as it was sent
        sent = "null" if config is None else run(_go_json(config, False))
        return {
            "template": {
                "name": name,
                "config": RawJSON(sent.encode()),
                "workspaceId": workspace_id,
            }
        }
    if config is None and workspace_id == 0:
        # no Set(): bun updates every column from an empty model.Template (config NULL)
        raise internal(_NULL_CONFIG)
    if workspace_id != 0:
        _check_workspace(ctx.db, workspace_id)
    if config is not None:
        try:
            row.config = _stored_config(config)
        except _Unstorable:
            raise internal(_NUL_IN_JSONB) from None
    if workspace_id != 0:
        row.workspace_id = workspace_id
    ctx.db.add(row)
    ctx.db.flush()
    return {"template": _view(row)}


@rpc("PatchTemplateConfig")
def patch_template_config(ctx: Ctx) -> dict[str, Any]:
    name: str = ctx.path["template_name"]
    if not name:
        raise invalid_argument("name is required")
    row = _existing(ctx.db, name)
    try:
        row.config = _stored_config(ctx.document)
    except _Unstorable:
        raise internal(f"failed to update template: {_NUL_IN_JSONB}") from None
    ctx.db.add(row)
    ctx.db.flush()
    return {"template": _view(row)}


@rpc("PatchTemplateName")
def patch_template_name(ctx: Ctx) -> dict[str, Any]:
    document = ctx.document or {}
    old_name: str = document.get("oldName", "")
    new_name = _sql(document.get("newName", ""))
    row = _existing(ctx.db, old_name)
    if _rename_taken(ctx.db, row.name, new_name):
        raise internal(f"failed to update template name: {_PKEY_VIOLATION}")
    row.name = new_name  # UPDATE templates SET name = ... WHERE name = ...
    ctx.db.add(row)
    ctx.db.flush()
    return {"template": _view(row)}


@rpc("DeleteTemplate")
def delete_template(ctx: Ctx) -> dict[str, Any]:
    name: str = ctx.path["template_name"]
    if not name:
        raise internal("error deleting template: empty name")
    row = _existing(ctx.db, name)
    ctx.db.delete(row)
    return {}


def delete_workspace_templates(db: Session, workspace_id: int) -> None:
    """``DeleteWorkspaceTemplates`` (DeleteWorkspace deletes a workspace's templates)."""
    for row in db.exec(select(t.TemplateRow).where(t.TemplateRow.workspace_id == workspace_id)):
        db.delete(row)
