"""Session, connect and RetryPolicy arguments: a wrong type is an InvalidType naming the option,
a value that cannot work a ConfigurationError, both before anything is set up or sent. Sessions
of both APIs (``detorm.Session`` and ``detorm.aio.AsyncSession``) are checked."""

from __future__ import annotations

import asyncio
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import detorm
import detorm.aio
from detorm.errors import ConfigurationError, InvalidType
from tests.sdk.apis import Mode

from .conftest import GENERATED
from .strategies import ANY_VALUE, EDGE_INTS, ODD_FLOATS, ODD_TEXT

UNREACHABLE = "http://127.0.0.1:9"  # never contacted: a token is given, so no login is needed


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# The types each option takes (anything else must be refused as InvalidType).
OPTION_TYPES: dict[str, Any] = {
    "master": lambda v: v is None or isinstance(v, str),
    "user": lambda v: v is None or isinstance(v, str),
    "password": lambda v: v is None or isinstance(v, str),
    "token": lambda v: v is None or isinstance(v, str),
    "verify": lambda v: isinstance(v, bool | str),
    "timeout": _number,
    "retry": lambda v: v is None or isinstance(v, detorm.RetryPolicy),
    "max_connections": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "cache": lambda v: isinstance(v, bool | str | os.PathLike),
    "environ": lambda v: (
        v is None or isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    ),
}


def open_session(mode: Mode, tmp: Path, **options: Any) -> Any:
    """A session of the ``mode`` API: a detorm.Session or a detorm.aio.AsyncSession."""
    options.setdefault("environ", {"HOME": str(tmp), "XDG_CONFIG_HOME": str(tmp / "config")})
    if "password" not in options and "user" not in options:
        options.setdefault("token", "a-token")
    factory = detorm.Session if mode == "sync" else detorm.aio.AsyncSession
    return factory(options.pop("master", UNREACHABLE), **options)


@contextmanager
def opened(session: Any) -> Iterator[Any]:
    """``session``, closed on exit (an AsyncSession is closed on an event loop of its own)."""
    try:
        yield session
    finally:
        if isinstance(session, detorm.aio.AsyncSession):
            asyncio.run(session.close())
        else:
            session.close()


@GENERATED
@given(option=st.sampled_from(sorted(OPTION_TYPES)), value=ANY_VALUE)
def test_an_option_of_the_wrong_type_is_refused_by_name(
    mode: Mode, option: str, value: object, tmp_path: Path
) -> None:
    assume(not OPTION_TYPES[option](value))
    with pytest.raises(InvalidType) as info:
        open_session(mode, tmp_path, **{option: value})
    assert option in str(info.value)
    assert isinstance(info.value, TypeError)


@settings(GENERATED, max_examples=25)  # each accepted option builds an HTTP client (slow)
@given(
    option=st.sampled_from(["timeout", "max_connections"]),
    value=st.one_of(EDGE_INTS, ODD_FLOATS, st.floats(), st.integers()),
)
def test_a_number_option_is_accepted_only_when_it_can_work(
    mode: Mode, option: str, value: float, tmp_path: Path
) -> None:
    assume(OPTION_TYPES[option](value))
    try:
        session = open_session(mode, tmp_path, **{option: value})
    except ConfigurationError as err:
        assert option in str(err) and session_never_opened(err)
        return
    with opened(session):
        transport = session.transport
        if option == "timeout":
            assert math.isfinite(transport.timeout) and 0 < transport.timeout
            assert transport.timeout <= threading.TIMEOUT_MAX
        else:
            assert 1 <= transport.max_connections


def session_never_opened(err: ConfigurationError) -> bool:
    return isinstance(err, ValueError) and not isinstance(err, TypeError)


@settings(GENERATED, max_examples=25)
@given(option=st.sampled_from(["verify", "cache", "master"]), value=st.one_of(ODD_TEXT, st.text()))
def test_a_text_option_is_accepted_only_when_it_can_work(
    mode: Mode, option: str, value: str, tmp_path: Path
) -> None:
    try:
        session = open_session(mode, tmp_path, **{option: value})
    except ConfigurationError as err:
        assert session_never_opened(err)
        return
    with opened(session):
        if option == "verify":
            assert os.path.exists(value)
        elif option == "cache":
            assert value and session.cache.directory == Path(value)
            assert not Path(value).exists() or Path(value).is_dir()
        else:
            assert session.master.startswith(("http://", "https://"))


RETRY_TYPES: dict[str, Any] = {
    "retries": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "backoff": _number,
    "max_backoff": _number,
    "deadline": lambda v: v is None or _number(v),
    "statuses": lambda v: (
        isinstance(v, set | frozenset)
        and all(isinstance(s, int) and not isinstance(s, bool) for s in v)
    ),
}


@GENERATED
@given(field=st.sampled_from(sorted(RETRY_TYPES)), value=ANY_VALUE)
def test_retry_policy_fields_are_checked_when_written(field: str, value: object) -> None:
    try:
        policy = detorm.RetryPolicy(**{field: value})
    except InvalidType as err:
        assert not RETRY_TYPES[field](value) and f"RetryPolicy.{field}" in str(err)
        return
    except ConfigurationError as err:
        assert RETRY_TYPES[field](value) and f"RetryPolicy.{field}" in str(err)
        return
    assert RETRY_TYPES[field](value)
    for seconds in (policy.backoff, policy.max_backoff, policy.deadline or 1):
        assert math.isfinite(seconds) and 0 <= seconds <= threading.TIMEOUT_MAX
    assert policy.retries >= 0 and all(100 <= s <= 599 for s in policy.statuses)
