"""The ``detorm`` logger: every request at DEBUG, retries, new logins and stream resumes at
WARNING, never a secret; a NullHandler as libraries have; no ``print`` in the SDK.

Driver-level tests run against both drivers (the ``make`` fixture of test_transport): the ops
of ``detorm._ops._http`` log, so the sync and async APIs log alike.
"""

from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from detorm._io._auth import Secret, salt_and_hash
from detorm._ops._effects import Op
from detorm._plan._call import Call
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster
from tests.sdk.test_transport import Make, _Broken, make  # noqa: F401 (make: a fixture)

ROOT = Path(__file__).resolve().parents[2]
REQUEST_LINE = re.compile(
    r"^(?P<method>[A-Z]+) (?P<path>/\S*) -> (?P<outcome>.+) in (?P<ms>\d+\.\d) ms "
    r"\(attempt (?P<attempt>\d+)\)$"
)


def _detorm_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("detorm")]


# --- every request at DEBUG, in both APIs ---------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_every_request_is_logged_at_debug(
    mode: Mode, cluster: Cluster, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="detorm")
    api = Api(mode, cluster.url, environ, user="alice", password="secret")
    try:
        assert api(api.session.whoami()).username == "alice"
        count = api(api.session.query(api.mod.Experiment).filter(name="resnet-base").count())
        assert count == 1
    finally:
        api.close()
    lines = [r for r in _detorm_records(caplog) if r.name == "detorm.http"]
    assert all(r.levelno == logging.DEBUG for r in lines)
    parsed = [REQUEST_LINE.match(r.getMessage()) for r in lines]
    assert all(parsed), [r.getMessage() for r in lines]
    requests = [(m["method"], m["path"], m["outcome"], m["attempt"]) for m in parsed if m]
    assert requests[:2] == [
        ("POST", "/api/v1/auth/login", "200 OK", "1"),
        ("GET", "/api/v1/me", "200 OK", "1"),
    ]
    assert len(requests) == api.session.requests_sent  # one record per request sent
    # The path only: a query's filter values travel in the query string, never logged.
    assert not any("?" in m["path"] or "resnet-base" in m["path"] for m in parsed if m)


# --- no secret in any record, at DEBUG, whoever logs ----------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_no_password_or_token_in_any_record(
    mode: Mode, cluster: Cluster, environ: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # the root: detorm's records, httpx's and httpcore's
    api = Api(mode, cluster.url, environ, user="alice", password="secret")
    try:
        api(api.session.whoami())
        token = api.session.transport.token
        assert isinstance(token, Secret)
        api.list(api.session.query(api.mod.Experiment).filter(tags__contains="cv"))
    finally:
        api.close()
    secrets = ["secret", salt_and_hash("secret"), token.reveal()]
    assert caplog.records  # httpx and httpcore logged too: the check below is not vacuous
    for record in caplog.records:
        text = record.getMessage() + repr(record.args) + repr(record.__dict__)
        for secret in secrets:
            assert secret not in text, f"{record.name}: {record.getMessage()}"


# --- retries, new logins and resumes at WARNING, in both drivers ----------------------------------
def test_a_retry_is_a_warning_and_each_attempt_a_debug_record(
    make: Make,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="detorm")
    answers = iter([httpx.Response(503), httpx.Response(200, json={"ok": True})])
    transport = make(lambda request: next(answers))
    assert transport.json(Call("GET", "/api/v1/experiments/7")) == {"ok": True}
    records = [(r.levelno, r.getMessage()) for r in _detorm_records(caplog)]
    assert [level for level, _ in records] == [logging.DEBUG, logging.WARNING, logging.DEBUG]
    first, warning, second = (message for _, message in records)
    assert first.startswith("GET /api/v1/experiments/7 -> 503 Service Unavailable in ")
    assert first.endswith("(attempt 1)") and second.endswith("(attempt 2)")
    assert re.fullmatch(
        r"GET /api/v1/experiments/7 -> 503 Service Unavailable; retrying in \d+\.\d\d s "
        r"\(retry 1 of at most 3\)",
        warning,
    )


def test_a_transport_error_is_logged_without_the_hint(
    make: Make,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="detorm")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    transport = make(refuse, retries=1)
    with pytest.raises(Exception, match="Connection refused"):
        transport.send(Call("GET", "/api/v1/me"))
    messages = [r.getMessage() for r in _detorm_records(caplog)]
    assert messages[0].startswith(
        "GET /api/v1/me -> ConnectError: [Errno 111] Connection refused in "
    )
    assert "retrying in" in messages[1]
    assert not any("detorm serve" in m for m in messages)  # the hint is for the error only


def test_a_new_login_after_a_401_is_a_warning(
    make: Make,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="detorm")

    def handler(request: httpx.Request) -> httpx.Response:
        fresh = request.headers["Authorization"] == "Bearer fresh"
        return httpx.Response(200, json={}) if fresh else httpx.Response(401)

    transport = make(handler)

    def relogin() -> Op[bool]:
        transport.driver.token = Secret("fresh")
        return True
        yield  # an op: a generator (that sends nothing here)

    transport.driver.on_unauthenticated = relogin
    assert transport.json(Call("GET", "/api/v1/me")) == {}
    warnings = [r.getMessage() for r in _detorm_records(caplog) if r.levelno == logging.WARNING]
    assert warnings == ["GET /api/v1/me -> 401: the token was refused; logging in again"]
    assert not any("fresh" in r.getMessage() for r in caplog.records)


def test_a_stream_resumed_after_a_break_is_a_warning(
    make: Make,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="detorm")
    bodies = iter([httpx.Response(200, stream=_Broken()), httpx.Response(200, text="")])
    transport = make(lambda request: next(bodies))
    call = Call("GET", "/api/v1/trials/3/logs", stream=True)
    rows = transport.driver.results(call, lambda: call).rows()
    iterated = transport.driver.iterate(rows)
    items = list(iterated) if transport.mode == "sync" else list(transport._each(iterated))  # type: ignore[arg-type]
    assert items == [b'{"a":1}']
    warnings = [r.getMessage() for r in _detorm_records(caplog) if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert re.fullmatch(
        r"GET /api/v1/trials/3/logs broke off; reading it again in \d+\.\d\d s \(retry 1\)",
        warnings[0],
    )


# --- a library's logger ---------------------------------------------------------------------------
def test_the_library_logger_has_a_null_handler_and_prints_nothing_unconfigured() -> None:
    code = (
        "import logging, detorm\n"
        "assert any(isinstance(h, logging.NullHandler) "
        "for h in logging.getLogger('detorm').handlers)\n"
        "logging.getLogger('detorm.http').warning('a retry nobody configured logging for')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    # Without the NullHandler, logging's last resort would print the warning to stderr.
    assert result.stderr == "" and result.stdout == ""


# --- no print in the SDK --------------------------------------------------------------------------
# Output that is the point: the CLI (detorm/_cli* and `detorm demo`'s tour) and `detorm serve`'s
# ready line (detorm/local/_server.py); the rest of detorm.local is a server, not the SDK, and
# is checked too.
_ALLOWED_PRINTS = ("_cli", "__main__.py", "_demo_tour.py", "local/_server.py")


def _sdk_modules() -> list[Path]:
    package = ROOT / "detorm"
    return [
        path
        for path in sorted(package.rglob("*.py"))
        if not any(part in path.relative_to(package).as_posix() for part in _ALLOWED_PRINTS)
    ]


def test_the_sdk_never_prints() -> None:
    modules = _sdk_modules()
    assert len(modules) > 50 and ROOT / "detorm" / "_ops" / "_http.py" in modules
    found = []
    for path in modules:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_the_print_scan_finds_a_print() -> None:
    # The scan above would pass on a broken matcher: it must see this one.
    tree = ast.parse("def f():\n    print('x')\n")
    calls = [
        n for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"
    ]  # fmt: skip
    assert len(calls) == 1
