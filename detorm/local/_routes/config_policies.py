"""Task config policies (``master/internal/api_config_policies.go``, ``configpolicy/utils.go``,
``configpolicy/postgres_task_config_policy.go``; table ``task_config_policies``).

The OSS master serves all six routes (``license.RequireLicense`` is a no-op there). Basic
authorization (``configpolicy/authz_basic_impl.go``): anyone reads; a workspace's policies are
set and deleted by its owner or an admin, the global ones by an admin. Workload types are
``EXPERIMENT`` and ``NTSC``. A policy document (YAML or JSON text) has two optional parts,
``invariant_config`` and ``constraints`` (``resources.max_slots``, ``priority_limit``); PUT answers
the document as parsed, GET the stored parts (``{}`` when none).

Oddities of the master kept here, where the real API forces them:

- Errors are re-wrapped with ``status.Errorf(code, err.Error())``: a wrapped status prints as
  ``rpc error: code = X desc = Y`` (an unknown workspace: 404 ``rpc error: code = NotFound desc =
  workspace '9' not found``; the global permission refusal: 403 ``rpc error: code =
  PermissionDenied desc = user does not have permission``), and the message is a format string
  (``%`` in it prints as Go's ``%!x(MISSING)``).
- PUT says ``invalid workload type: X``; GET and DELETE say ``invalid workload type: X.``.
- The document is decoded as JSON, then as YAML (ghodss/yaml: YAML to JSON, then JSON with
  unknown fields refused); the YAML attempt's error is the one reported, so a float that is a
  whole number passes as an int.
- NTSC policies may not have an ``invariant_config`` (``not supported: ...``, whose message keeps
  the Go source's line break and indentation).

Not modelled: the decoding of an experiment ``invariant_config`` into the whole expconf struct
(only ``resources.max_slots``, ``slots_per_trial`` and ``priority`` are decoded and checked; other
unknown or mistyped fields are stored), the decoding of an NTSC one before it is refused, go-yaml's
wording of YAML syntax errors, and the enforcement of policies when experiments and tasks are
created (detorm.local stores and serves policies; it does not apply them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import yaml
from sqlalchemy import delete
from sqlmodel import Session, col, select

from .. import _tables as t
from .._app import Ctx, rpc
from .._db import utcnow
from .._errors import ApiError, Code
from .._expconf import _jsonable
from .projects import find_workspace

__all__ = ["delete_workspace_policies", "sorted_struct"]

_EXPERIMENT: Final = "EXPERIMENT"
_NTSC: Final = "NTSC"
_INVALID_EXPERIMENT: Final = "invalid experiment config policy"
_INVALID_NTSC: Final = "invalid ntsc config policy"
_NTSC_INVARIANT: Final = (
    "not supported: invariant config policies for tasks is not yet supported, \n"
    '\t\t  please remove "invariant_config" section and try again.'
)
_YAML_PREFIX: Final = "error unmarshaling JSON: while decoding JSON: "


class _DecodeError(Exception):
    """A ``json.Decoder`` error (the first one in document order, as ``saveError`` keeps)."""


# --- Go's fmt and status printing ------------------------------------------------------------------


def _go_errorf(message: str) -> str:
    """``status.Errorf(code, message)`` with no arguments: ``%%`` is ``%``, other verbs print
    ``%!v(MISSING)``, a trailing ``%`` ``%!(NOVERB)``."""
    out: list[str] = []
    i = 0
    while i < len(message):
        char = message[i]
        if char != "%":
            out.append(char)
            i += 1
        elif i + 1 >= len(message):
            out.append("%!(NOVERB)")
            i += 1
        elif message[i + 1] == "%":
            out.append("%")
            i += 2
        else:
            out.append(f"%!{message[i + 1]}(MISSING)")
            i += 2
    return "".join(out)


def _wrapped(code: Code, err: ApiError | str) -> ApiError:
    """``status.Errorf(code, err.Error())``."""
    text = (
        err if isinstance(err, str) else f"rpc error: code = {err.code.reason} desc = {err.message}"
    )
    return ApiError(code, _go_errorf(text))


# --- the policy document as the master decodes it --------------------------------------------------


def _yaml_to_json(text: str) -> Any:
    """ghodss ``YAMLToJSON``: the YAML value, with JSON's keys and numbers."""
    try:
        return _go_numbers(_jsonable(yaml.safe_load(text)))
    except yaml.YAMLError as err:  # go-yaml's wording differs (not modelled)
        problem = str(err).splitlines()[0] if str(err) else "invalid YAML"
        raise _DecodeError(f"error converting YAML to JSON: yaml: {problem}") from None


def _go_numbers(value: Any) -> Any:
    """``json.Marshal`` of go-yaml's float64s: a whole number prints without a fraction."""
    if isinstance(value, dict):
        return {key: _go_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_go_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def _json_kind(value: Any) -> str:
    """``UnmarshalTypeError.Value``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return f"number {json.dumps(value)}"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _field(document: dict[str, Any], name: str) -> Any:
    """encoding/json's key match: exact, else case-insensitive (the last such key wins)."""
    if name in document:
        return document[name]
    found = None
    for key, value in document.items():
        if key.lower() == name:
            found = value
    return found


def _struct(
    document: Any,
    where: tuple[str, str, str],
    fields: dict[str, Callable[[Any], Any]],
) -> dict[str, Any] | None:
    """Decode an object into a struct with ``DisallowUnknownFields``: the decoded fields, None for
    ``null``. ``where`` is (struct, path, Go type) for the type error. Keys are read in sorted
    order: ghodss/yaml hands the decoder ``json.Marshal`` of a Go map, and the decoder reports the
    first error it meets."""
    struct, path, go_type = where
    if document is None:
        return None
    if not isinstance(document, dict):
        place = f"Go struct field {struct}.{path}" if path else "Go value"
        raise _DecodeError(
            f"json: cannot unmarshal {_json_kind(document)} into {place} of type {go_type}"
        )
    out: dict[str, Any] = {}
    for key in sorted(document):
        name = key if key in fields else key.lower()
        if name not in fields:
            raise _DecodeError(f'json: unknown field "{key}"')
        out[name] = fields[name](document[key])
    return out


def _int(struct: str, path: str) -> Callable[[Any], int | None]:
    def decode(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
            return value
        raise _DecodeError(
            f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{path}"
            " of type int"
        )

    return decode


class _Constraints:
    """``model.Constraints``."""

    def __init__(self, document: Any, root: str) -> None:
        def resources(value: Any) -> Any:
            return _struct(
                value,
                ("Constraints", "constraints.resources", "model.ResourceConstraints"),
                {"max_slots": _int("ResourceConstraints", "constraints.resources.max_slots")},
            )

        fields = _struct(
            document,
            (root, "constraints", "model.Constraints"),
            {
                "resources": resources,
                "priority_limit": _int("Constraints", "constraints.priority_limit"),
            },
        )
        self.present = fields is not None
        fields = fields or {}
        self.max_slots: int | None = (fields.get("resources") or {}).get("max_slots")
        self.priority_limit: int | None = fields.get("priority_limit")


def _resources(invariant: Any) -> tuple[int | None, int | None, int | None] | None:
    """An experiment invariant config's ``resources`` (max_slots, slots_per_trial, priority);
    only these fields are decoded (the rest of expconf is not modelled)."""
    if invariant is None:
        return None
    if not isinstance(invariant, dict):
        raise _DecodeError(
            f"json: cannot unmarshal {_json_kind(invariant)} into Go struct field"
            " ExperimentConfigPolicies.invariant_config of type expconf.ExperimentConfigV0"
        )
    resources = _field(invariant, "resources")
    if resources is None:
        return None
    if not isinstance(resources, dict):
        raise _DecodeError(
            f"json: cannot unmarshal {_json_kind(resources)} into Go struct field"
            " ExperimentConfigV0.invariant_config.resources of type expconf.ResourcesConfigV0"
        )

    def number(name: str) -> int | None:
        decode = _int("ResourcesConfigV0", f"invariant_config.resources.{name}")
        return decode(_field(resources, name))

    return number("max_slots"), number("slots_per_trial"), number("priority")


def _conflict(constraints: _Constraints | None, resources: tuple[int | None, ...]) -> str | None:
    """``checkConstraintConflicts``."""
    if constraints is None or not constraints.present:
        return None
    max_slots, slots, priority = resources
    limit = constraints.priority_limit
    if priority is not None and limit is not None and limit != priority:
        return "invariant config & constraints are trying to set the priority limit"
    if max_slots is not None and constraints.max_slots not in (None, max_slots):
        return "invariant config & constraints are trying to set the max slots"
    if slots is not None and constraints.max_slots is not None and constraints.max_slots < slots:
        return (
            f"invariant config has {slots} slots per trial. violates constraints max slots of"
            f" {constraints.max_slots}"
        )
    return None


def _decode(text: str, workload_type: str) -> tuple[Any, _Constraints | None, Any]:
    """``UnmarshalConfigPolicy``: (document, constraints, invariant config)."""
    root = "ExperimentConfigPolicies" if workload_type == _EXPERIMENT else "NTSCConfigPolicies"
    document = _yaml_to_json(text)

    def invariant(value: Any) -> Any:
        if workload_type == _EXPERIMENT:
            _resources(value)  # its decoding errors come in the document's order
        return value

    try:
        fields = _struct(
            document,
            (root, "", f"configpolicy.{root}"),
            {"constraints": lambda value: _Constraints(value, root), "invariant_config": invariant},
        )
    except _DecodeError as err:
        raise _DecodeError(_YAML_PREFIX + str(err)) from None
    fields = fields or {}
    return document, fields.get("constraints"), fields.get("invariant_config")


def _validate(
    db: Session, workload_type: str, text: str, global_row: t.TaskConfigPolicyRow | None
) -> Any:
    """``validatePoliciesAndWorkloadType`` (InvalidArgument), then the parsed document."""
    if workload_type not in (_EXPERIMENT, _NTSC):
        if not workload_type:
            raise _wrapped(Code.INVALID_ARGUMENT, "no workload type specified")
        raise _wrapped(Code.INVALID_ARGUMENT, f"invalid workload type: {workload_type}")
    if not text:
        raise _wrapped(Code.INVALID_ARGUMENT, "no specified config policies")
    invalid = _INVALID_EXPERIMENT if workload_type == _EXPERIMENT else _INVALID_NTSC
    try:
        document, constraints, invariant = _decode(text, workload_type)
    except _DecodeError as err:
        raise _wrapped(Code.INVALID_ARGUMENT, f"{invalid}: {err}") from None
    if workload_type == _NTSC:
        if invariant is not None:
            inner = ApiError(Code.INVALID_ARGUMENT, _NTSC_INVARIANT)
            raise _wrapped(Code.INVALID_ARGUMENT, inner)
        return document
    resources = _resources(invariant)
    if resources is not None:
        own = _conflict(constraints, resources)
        if own is not None:
            inner = ApiError(Code.INVALID_ARGUMENT, f"{invalid}: {own}.")
            raise _wrapped(Code.INVALID_ARGUMENT, inner)
        stored = _stored_constraints(global_row)
        against_global = _conflict(stored, resources)
        if against_global is not None:
            inner = ApiError(
                Code.INVALID_ARGUMENT,
                f"{invalid}: workspace invariant_config conflicts with global constraints:"
                f" {against_global}.",
            )
            raise _wrapped(Code.INVALID_ARGUMENT, inner)
    return document


def _stored_constraints(row: t.TaskConfigPolicyRow | None) -> _Constraints | None:
    if row is None or row.constraints is None:
        return None
    return _Constraints(json.loads(row.constraints), "ExperimentConfigPolicies")


# --- storage ---------------------------------------------------------------------------------------


def _row(db: Session, workspace_id: int | None, workload_type: str) -> t.TaskConfigPolicyRow | None:
    query = select(t.TaskConfigPolicyRow).where(
        t.TaskConfigPolicyRow.workload_type == workload_type
    )
    if workspace_id is None:
        query = query.where(col(t.TaskConfigPolicyRow.workspace_id).is_(None))
    else:
        query = query.where(t.TaskConfigPolicyRow.workspace_id == workspace_id)
    return db.exec(query).first()


def _part(document: Any, name: str) -> str | None:
    """``parseConfigPolicies``: ``json.Marshal`` of a part the document has (``null`` included)."""
    if not isinstance(document, dict) or name not in document:
        return None
    return json.dumps(document[name], separators=(",", ":"))


def _store(ctx: Ctx, workspace_id: int | None, workload_type: str, document: Any) -> None:
    """``SetTaskConfigPolicies``: insert, or update every column on conflict."""
    row = _row(ctx.db, workspace_id, workload_type) or t.TaskConfigPolicyRow(
        workspace_id=workspace_id,
        workload_type=workload_type,
        last_updated_by=ctx.user_id,
        last_updated_time=utcnow(),
    )
    row.last_updated_by = ctx.user_id
    row.last_updated_time = utcnow()
    row.invariant_config = _part(document, "invariant_config")
    row.constraints = _part(document, "constraints")
    ctx.db.add(row)
    ctx.db.flush()


def _policies_view(row: t.TaskConfigPolicyRow | None) -> dict[str, Any]:
    """``getConfigPolicies``: the stored parts (yaml.Unmarshal into a map: ``null`` stays null)."""
    out: dict[str, Any] = {}
    if row is None:
        return out
    if row.invariant_config is not None:
        out["invariant_config"] = _map_or_null(json.loads(row.invariant_config))
    if row.constraints is not None:
        out["constraints"] = _map_or_null(json.loads(row.constraints))
    return {key: sorted_struct(value) for key, value in sorted(out.items())}


def sorted_struct(value: Any) -> Any:
    """A Struct as protojson writes it: map entries sorted by key, at every level."""
    if isinstance(value, dict):
        return {key: sorted_struct(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_struct(item) for item in value]
    return value


def _map_or_null(value: Any) -> Any:
    return value if isinstance(value, dict) else None


def _document_view(document: Any) -> dict[str, Any]:
    """``MarshalConfigPolicy`` of the parsed document (a null document is an empty Struct)."""
    return sorted_struct(document) if isinstance(document, dict) else {}


# --- checks shared by the routes -------------------------------------------------------------------


def _workspace(ctx: Ctx, *, modify: bool) -> int:
    workspace_id: int = ctx.path["workspace_id"]
    try:
        row = find_workspace(ctx.db, workspace_id)
    except ApiError as err:
        raise _wrapped(Code.NOT_FOUND, err) from None
    assert ctx.user is not None
    if modify and not ctx.user.admin and row.user_id != ctx.user.id:
        raise _wrapped(Code.PERMISSION_DENIED, "only admins may set config policies for workspaces")
    return workspace_id


def _global_admin(ctx: Ctx) -> None:
    assert ctx.user is not None
    if not ctx.user.admin:
        denied = ApiError(Code.PERMISSION_DENIED, "user does not have permission")
        raise _wrapped(Code.PERMISSION_DENIED, denied)


def _read_workload_type(ctx: Ctx) -> str:
    """GET's and DELETE's check (with a final period, unlike PUT's)."""
    workload_type: str = ctx.path["workload_type"]
    if workload_type not in (_EXPERIMENT, _NTSC):
        if not workload_type:
            raise ApiError(Code.INVALID_ARGUMENT, "no workload type specified")
        raise ApiError(
            Code.INVALID_ARGUMENT, _go_errorf(f"invalid workload type: {workload_type}.")
        )
    return workload_type


def _config_text(ctx: Ctx) -> str:
    text: str = (ctx.document or {}).get("configPolicies", "")
    return text


# --- handlers --------------------------------------------------------------------------------------


@rpc("PutWorkspaceConfigPolicies", workspace_id=int, workload_type=str)
def put_workspace_config_policies(ctx: Ctx) -> dict[str, Any]:
    workspace_id = _workspace(ctx, modify=True)
    workload_type: str = ctx.path["workload_type"]
    global_row = _row(ctx.db, None, workload_type)
    document = _validate(ctx.db, workload_type, _config_text(ctx), global_row)
    _store(ctx, workspace_id, workload_type, document)
    return {"configPolicies": _document_view(document)}


@rpc("PutGlobalConfigPolicies", workload_type=str)
def put_global_config_policies(ctx: Ctx) -> dict[str, Any]:
    _global_admin(ctx)
    workload_type: str = ctx.path["workload_type"]
    document = _validate(ctx.db, workload_type, _config_text(ctx), None)
    _store(ctx, None, workload_type, document)
    return {"configPolicies": _document_view(document)}


@rpc("GetWorkspaceConfigPolicies", workspace_id=int, workload_type=str)
def get_workspace_config_policies(ctx: Ctx) -> dict[str, Any]:
    workspace_id = _workspace(ctx, modify=False)
    try:
        workload_type = _read_workload_type(ctx)
    except ApiError as err:  # getConfigPolicies' status, wrapped as Internal
        raise _wrapped(Code.INTERNAL, err) from None
    return {"configPolicies": _policies_view(_row(ctx.db, workspace_id, workload_type))}


@rpc("GetGlobalConfigPolicies", workload_type=str)
def get_global_config_policies(ctx: Ctx) -> dict[str, Any]:
    try:
        workload_type = _read_workload_type(ctx)
    except ApiError as err:
        raise _wrapped(Code.INTERNAL, err) from None
    return {"configPolicies": _policies_view(_row(ctx.db, None, workload_type))}


@rpc("DeleteWorkspaceConfigPolicies", workspace_id=int, workload_type=str)
def delete_workspace_config_policies(ctx: Ctx) -> dict[str, Any]:
    workspace_id = _workspace(ctx, modify=True)
    workload_type = _read_workload_type(ctx)
    _delete(ctx.db, workspace_id, workload_type)
    return {}


@rpc("DeleteGlobalConfigPolicies", workload_type=str)
def delete_global_config_policies(ctx: Ctx) -> dict[str, Any]:
    _global_admin(ctx)
    workload_type = _read_workload_type(ctx)
    _delete(ctx.db, None, workload_type)
    return {}


def _delete(db: Session, workspace_id: int | None, workload_type: str) -> None:
    table = t.TaskConfigPolicyRow
    where = (
        col(table.workspace_id).is_(None)
        if workspace_id is None
        else col(table.workspace_id) == workspace_id
    )
    db.exec(delete(table).where(where, col(table.workload_type) == workload_type))


def delete_workspace_policies(db: Session, workspace_id: int) -> None:
    """A deleted workspace's policies go with it (``fk_wksp_id ... ON DELETE CASCADE``)."""
    db.exec(
        delete(t.TaskConfigPolicyRow).where(col(t.TaskConfigPolicyRow.workspace_id) == workspace_id)
    )
