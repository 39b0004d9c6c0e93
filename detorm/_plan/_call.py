"""Requests as data: a :class:`Call` (method, path, query, body), ``path()`` and
``query_items()`` to build one, and the :class:`RetryPolicy` a session sends Calls under.

The planner describes each request as a Call; the ops in ``detorm._ops._http`` send them.
"""

from __future__ import annotations

import email.utils
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Final
from urllib.parse import quote, urlencode

from .._resources._inputs import INT32_MAX, check_int, check_seconds, require
from ..errors import ConfigurationError, InvalidValue

__all__ = ["Call", "RetryPolicy"]


IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

QueryItems = tuple[tuple[str, str], ...]


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "value") and isinstance(value.value, str):
        return str(value.value)  # enums travel by their full wire name
    return str(value)


def query_items(params: Mapping[str, object]) -> QueryItems:
    """Flatten ``{name: value | [values]}`` into repeated keys, dropping ``None``."""
    items: list[tuple[str, str]] = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple, set, frozenset)):
            items.extend((name, _query_value(v)) for v in value)
        else:
            items.append((name, _query_value(value)))
    return tuple(items)


@dataclass(frozen=True)
class Call:
    """One REST request, as the planner describes it (method, path, query, JSON body).

    ``read_only`` marks a POST that only reads (experiments-search, runs search): it is retried
    like a GET.
    """

    method: str
    path: str
    params: QueryItems = ()
    body: Any = None
    stream: bool = False
    read_only: bool = False

    @property
    def idempotent(self) -> bool:
        """Whether sending the call twice does what sending it once does (GET, PUT, DELETE...)."""
        return self.method in IDEMPOTENT

    @property
    def safe_to_retry(self) -> bool:
        """Sending it twice does no harm: an idempotent method, or a read."""
        return self.read_only or self.idempotent

    @property
    def url(self) -> str:
        """Path and query string, as sent."""
        return self.path + ("?" + urlencode(self.params) if self.params else "")

    def __str__(self) -> str:
        text = f"{self.method} {self.url}"
        if self.body is not None:
            text += " " + json.dumps(self.body, sort_keys=True, separators=(",", ":"))
        return text

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (used by ``explain()`` and snapshots)."""
        out: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.params:
            out["params"] = [list(item) for item in self.params]
        if self.body is not None:
            out["body"] = self.body
        if self.stream:
            out["stream"] = True
        return out


def path(template: str, **values: object) -> str:
    """Fill a path template; each value becomes exactly one percent-encoded path segment.

    Everything but RFC 3986 unreserved characters is escaped, and the dot segments ``.`` and
    ``..`` are written ``%2E`` and ``%2E%2E``, which neither httpx nor a server resolves. A value
    that no escaping keeps in one segment on the master (an empty one, or one holding ``/``) is
    refused with :class:`InvalidValue` before anything is sent.
    """
    return template.format(**{name: _segment(template, name, v) for name, v in values.items()})


def _segment(template: str, name: str, value: object) -> str:
    text = str(value)
    # The master unescapes the whole path before grpc-gateway splits it at "/" (see
    # detorm/local/_app.py), so %2F reaches another route (or another label, when it ends the
    # value), and an empty last segment is a trailing slash Echo drops. The official bindings
    # (quote, "/" kept) send both; detorm refuses them.
    if text == "" or "/" in text:
        raise InvalidValue(
            f"{name}={text!r} cannot be sent in {template}: the master splits the path at '/' "
            "after decoding it, so a path segment must be non-empty and hold no '/'"
        )
    if text in (".", ".."):
        return "%2E" * len(text)
    try:
        return quote(text, safe="")
    except UnicodeEncodeError:
        raise InvalidValue(f"{name}={text!r} cannot be sent in {template}: not UTF-8") from None


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry a call, and how long one call may take in all.

    ``retries`` attempts may follow the first. Before retry *n* (from 0) the wait is a random
    time in ``[0, min(max_backoff, backoff * 2**n)]``, or what a ``Retry-After`` header asks
    (seconds or an HTTP date; anything else is ignored), at most ``max_retry_after`` seconds.

    Retried: calls that may run twice (GET, HEAD, OPTIONS, PUT, DELETE, read-only POSTs) on the
    ``statuses`` and on transport errors; other POSTs and PATCHes only when the master certainly
    did not run them (no connection, or 429 / 503 when in ``statuses``).

    ``deadline`` bounds one call: every attempt, backoff and ``Retry-After`` wait included. None
    (the default) means the session's ``timeout``. Each attempt's timeouts are cut to the time
    left, no wait is started that would end past the deadline, and a server asking to wait
    longer than what is left gets its answer raised at once. When the time is spent the last
    error is raised: the master's (an :class:`~detorm.errors.APIError`, such as
    ``RateLimited`` for 429) or a :class:`~detorm.errors.TransportError`. For a stream the
    deadline bounds getting the response; each read of its body is bounded by the timeout.
    """

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    max_retry_after: float = 60.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        # Refused where the policy is written, not in the middle of a retry later on.
        error = ConfigurationError
        check_int("RetryPolicy.retries", self.retries, low=0, high=INT32_MAX, error=error)
        for name in ("backoff", "max_backoff", "max_retry_after"):
            check_seconds(f"RetryPolicy.{name}", getattr(self, name), error=error, zero=True)
        if self.deadline is not None:
            check_seconds("RetryPolicy.deadline", self.deadline, error=error)
        valid = "a set of HTTP error statuses (ints from 400 to 599)"
        require("RetryPolicy.statuses", self.statuses, (set, frozenset), valid)
        for status in self.statuses:  # every type first: a set's order is arbitrary
            require("RetryPolicy.statuses", status, int, valid)
        for status in self.statuses:
            check_int("RetryPolicy.statuses", status, low=400, high=599, error=error, what=valid)
        object.__setattr__(self, "statuses", frozenset(self.statuses))  # hashable, as frozen

    def delay(self, attempt: int) -> float:
        """The backoff before retry ``attempt`` (from 0): exponential, with full jitter."""
        ceiling = self.backoff * 2 ** min(attempt, 64)  # the exponent only needs to pass the cap
        return random.uniform(0, min(self.max_backoff, ceiling))


NO_RETRY: Final = RetryPolicy(retries=0)


def parse_retry_after(value: str, now: float) -> float | None:
    """The seconds a ``Retry-After`` value asks to wait, given the wall-clock time ``now``.

    RFC 9110 allows delay-seconds (digits) or an HTTP date (a past date asks for no wait).
    Anything else (negative, fractional, ``soon``...) is None: the caller backs off as usual. A
    number too large for a float is ``inf``.
    """
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        date = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if date.tzinfo is None:
        date = date.replace(tzinfo=UTC)  # an HTTP date is always in GMT
    return max(0.0, date.timestamp() - now)
