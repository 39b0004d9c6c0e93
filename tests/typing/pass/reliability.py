"""User-style code around commits, retries and typed errors that must type-check (--strict)."""

from __future__ import annotations

from typing import assert_type

import detorm
from detorm import Change, Experiment, FlushPlan, RetryPolicy
from detorm.errors import (
    CommitError,
    InvalidAttribute,
    InvalidType,
    InvalidValue,
    RateLimited,
    TransportError,
)


def commit_until_done(session: detorm.Session) -> list[Change]:
    while True:
        try:
            return session.commit()
        except CommitError as err:
            assert_type(err.failed, list[tuple[Change, Exception]])
            assert_type(err.unknown, list[tuple[Change, Exception]])
            assert_type(err.applied, list[Change])


def plan(session: detorm.Session, exp: Experiment) -> int:
    exp.tags.add("team/vision")
    pending: FlushPlan = session.pending()
    return len(pending.reads) + len(pending)


def patient() -> detorm.Session:
    policy = RetryPolicy(retries=8, deadline=300.0, max_retry_after=30.0)
    session = detorm.Session("http://127.0.0.1:8080", retry=policy, timeout=10.0)
    assert_type(session.retries, int)
    return session


def input_errors_are_builtin(exc: Exception) -> bool:
    # Bad input is also the built-in exception a Python user catches.
    kinds: tuple[type[Exception], ...] = (ValueError, TypeError, AttributeError)
    typed = (InvalidValue, InvalidType, InvalidAttribute)
    return isinstance(exc, kinds) and isinstance(exc, typed)


def maybe_sent(exc: TransportError | RateLimited) -> bool:
    return exc.request_sent if isinstance(exc, TransportError) else exc.status == 429
