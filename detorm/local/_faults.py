"""Test-only fault injection (``detorm serve --enable-test-faults``).

A fault row makes matching requests fail with a chosen status before any handler runs, or (with
``ids``) makes the experiment actions report an error for those ids: a bulk action lists them as
``{"error": "rpc error: code = <Code> desc = <message>", "id": N}`` inside its 200 response and
leaves them untouched, a single-experiment action answers with the matching HTTP error. Faults live
in the database, so a test seeds them the way it seeds data. A master started without the flag
never looks at them.

Matching: ``method`` (``*`` for any) and ``path_regex`` (a full match of the request path). The
code comes from ``status`` (500 Internal by default). ``remaining`` counts the requests a fault
still applies to (None: until the row is deleted); a per-id fault counts every request it matches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlmodel import col, select

from . import _tables as t
from ._db import Database
from ._errors import ApiError, Code

__all__ = ["FAULTY_IDS", "apply_faults", "faulty_ids"]

FAULTY_IDS = "faulty_ids"
"""The key of the per-id faults in ``Ctx.extra``."""

_CODE_FOR_STATUS = {
    400: Code.INVALID_ARGUMENT, 401: Code.UNAUTHENTICATED, 403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND, 409: Code.ALREADY_EXISTS, 500: Code.INTERNAL, 501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE, 504: Code.DEADLINE_EXCEEDED,
}  # fmt: skip


def _error(fault: t.FaultRow) -> ApiError:
    return ApiError(_CODE_FOR_STATUS.get(fault.status, Code.INTERNAL), fault.message)


def _ids(value: Any) -> list[int]:
    return [int(i) for i in value] if isinstance(value, list) else []


def apply_faults(database: Database, method: str, path: str) -> dict[int, ApiError]:
    """Raise the first request-level fault matching ``method`` and ``path``, if any; otherwise
    return the errors of the per-id faults that match (id -> error; the first fault wins)."""
    fault_error: ApiError | None = None
    per_id: dict[int, ApiError] = {}
    # Its own transaction, committed before the handler's: the countdowns are kept even when the
    # request then fails.
    with database.transaction(write=True) as db:
        for fault in db.exec(select(t.FaultRow).order_by(col(t.FaultRow.id))).all():
            if fault.method not in ("*", method) or not re.fullmatch(fault.path_regex, path):
                continue
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    continue
                fault.remaining -= 1
                db.add(fault)
            if fault.ids is not None:
                for experiment_id in _ids(fault.ids):
                    per_id.setdefault(experiment_id, _error(fault))
                continue
            fault_error = _error(fault)
            break
    if fault_error is not None:
        raise fault_error
    return per_id


def faulty_ids(extra: Mapping[str, Any]) -> dict[int, ApiError]:
    """The per-id faults of a request (empty unless faults are enabled and one matched)."""
    found = extra.get(FAULTY_IDS)
    return dict(found) if found else {}
