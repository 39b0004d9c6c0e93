"""Test-only fault injection (``detorm serve --enable-test-faults``).

A fault row makes matching requests fail with a chosen status before any handler runs, or (with
``ids``) makes a bulk action report an error for those ids inside its 200 response. Faults live
in the database, so a test seeds them the way it seeds data. A master started without the flag
never looks at them.
"""

from __future__ import annotations

import re

from sqlmodel import select

from . import _tables as t
from ._db import Database
from ._errors import ApiError, Code

__all__ = ["raise_matching_fault"]

_CODE_FOR_STATUS = {
    400: Code.INVALID_ARGUMENT, 401: Code.UNAUTHENTICATED, 403: Code.PERMISSION_DENIED,
    404: Code.NOT_FOUND, 409: Code.ALREADY_EXISTS, 500: Code.INTERNAL, 501: Code.UNIMPLEMENTED,
    503: Code.UNAVAILABLE, 504: Code.DEADLINE_EXCEEDED,
}  # fmt: skip


def raise_matching_fault(database: Database, method: str, path: str) -> None:
    """Raise the first request-level fault matching ``method`` and ``path``, if any."""
    fault_error: ApiError | None = None
    with database.transaction(write=True) as db:
        for fault in db.exec(select(t.FaultRow)).all():
            if fault.ids is not None:
                continue  # a per-id fault, applied by the bulk handlers
            if fault.method not in ("*", method) or not re.fullmatch(fault.path_regex, path):
                continue
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    continue
                fault.remaining -= 1
                db.add(fault)
            # Raised after the transaction commits, so that the countdown is kept.
            fault_error = ApiError(_CODE_FOR_STATUS.get(fault.status, Code.INTERNAL), fault.message)
            break
    if fault_error is not None:
        raise fault_error
