"""The HTTP server of detorm.local: requests that never finish arriving are cut off, without
holding the others up."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from urllib.parse import urlsplit

import httpx
import pytest

from detorm.errors import ConfigurationError
from detorm.local import LocalMaster, Seeder
from tests.conftest import login

STALLED = 300


def _stall(address: tuple[str, int], kind: int) -> socket.socket:
    """A connection that sends part of a request and then nothing: half a body, half the
    headers, or not a byte."""
    sock = socket.create_connection(address)
    if kind == 0:
        sock.sendall(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"username": "admin", "pass'
        )
    elif kind == 1:
        sock.sendall(b"GET /api/v1/master HTTP/1.1\r\nHost: x\r\nAccept: appl")
    return sock


def _wait_until_closed(sockets: list[socket.socket], seconds: float) -> dict[socket.socket, bytes]:
    """What each socket received before the server closed it; sockets still open after
    ``seconds`` are left out."""
    received: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=max(0.0, deadline - time.monotonic())):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(65536)
                except ConnectionResetError:
                    data = b""
                received[sock] = received.get(sock, b"") + data
                if not data:
                    selector.unregister(sock)
        for key in list(selector.get_map().values()):
            received.pop(key.fileobj, None)  # type: ignore[call-overload]
    return received


def test_stalled_requests_are_closed_after_the_read_timeout_while_others_are_served() -> None:
    with LocalMaster(process=False, read_timeout=3) as master:
        url = urlsplit(master.url)
        address = (url.hostname or "", url.port or 0)
        stalled = [_stall(address, kind=i % 3) for i in range(STALLED)]
        try:
            with httpx.Client(base_url=master.url, timeout=30) as client:
                login = client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": ""}
                )
            assert login.status_code == 200
            closed = _wait_until_closed(stalled, seconds=60)
        finally:
            for sock in stalled:
                sock.close()
    # every one closed by the server, and none got a response (net/http answers nothing)
    assert len(closed) == STALLED
    assert set(closed.values()) == {b""}


def test_the_read_timeout_must_be_positive() -> None:
    master = LocalMaster(process=False, read_timeout=0)
    try:
        with pytest.raises(ConfigurationError, match="read_timeout must be a positive number"):
            master.start()
    finally:
        master.stop()


def _follow_then_stop(master: LocalMaster) -> tuple[list[str], list[BaseException], httpx.Client]:
    """Follow the logs of a running trial (a stream that never ends by itself), then stop the
    master: the lines read and the error that ended the stream, once it has ended."""
    try:
        with Seeder(master.database) as seed:
            experiment = seed.experiment(project=seed.project("p"), name="x", state="ACTIVE")
            trial = seed.trial(experiment, state="RUNNING")
        client = login(master.url)
        lines: list[str] = []
        failures: list[BaseException] = []

        def follow() -> None:
            params = {"follow": "true"}
            try:
                with client.stream("GET", f"/api/v1/trials/{trial}/logs", params=params) as r:
                    lines.extend(r.iter_lines())
            except BaseException as err:  # noqa: BLE001 - reported to the test
                failures.append(err)

        reader = threading.Thread(target=follow)
        reader.start()
        reader.join(timeout=1.5)  # following: waiting for lines that never come
        assert reader.is_alive()
    finally:
        master.stop()
    reader.join(timeout=30)
    assert not reader.is_alive()
    return lines, failures, client


def test_stop_ends_followed_streams_and_the_server() -> None:
    """Stopping the master ends a followed stream (at its next wait), as a stream ends, and the
    serving thread with it, before the database goes."""
    lines, failures, client = _follow_then_stop(LocalMaster(process=False).start())
    assert failures == [] and lines == []
    try:
        with pytest.raises(httpx.ConnectError):
            client.get("/api/v1/master")
    finally:
        client.close()


def test_stop_cancels_a_request_that_does_not_end(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request still running a moment after the stop (here: a stream whose waits are not
    ended) is cancelled and its connection closed, where uvicorn would wait for ever."""
    master = LocalMaster(process=False).start()
    monkeypatch.setattr(master.database, "close_followers", lambda: None)
    lines, failures, client = _follow_then_stop(master)
    assert lines == [] and [type(err) for err in failures] == [httpx.RemoteProtocolError]
    try:
        with pytest.raises(httpx.ConnectError):
            client.get("/api/v1/master")
    finally:
        client.close()
