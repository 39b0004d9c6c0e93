"""Running detorm.local: in this process (a thread) or as a ``detorm serve`` child process."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Final

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from detorm._io import _auth
from detorm.errors import ConfigurationError

from ._app import LocalApp
from ._db import Database
from ._master_log import LOGGER, install_log_buffer
from ._scheduler import DEFAULT_SLOTS

if TYPE_CHECKING:
    from detorm._api._aio import AsyncSession
    from detorm._api._sync import Session

__all__ = ["LocalMaster", "default_db_path", "serve"]

READY_PREFIX: Final = "detorm.local listening on "
DEFAULT_READ_TIMEOUT: Final = 60.0


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/detorm/local.sqlite`` (``~/.local/share`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "detorm" / "local.sqlite"


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit TCP_NODELAY: a response's headers and body go out as two
    # writes, and Nagle plus the client's delayed ACK would stall every keep-alive request 40 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _http_protocol(read_timeout: float) -> type[asyncio.Protocol]:
    """uvicorn's httptools protocol with a read deadline per request, and URLs as long as Go's.

    uvicorn waits for a request's headers and body as long as the client likes: 300 clients
    that each send half a body hold 300 connections forever. The master configures no read
    timeouts either (``core.go`` starts Echo's ``http.Server`` with none), so there is no
    status of its own to copy; this is Go's ``http.Server.ReadTimeout``: the whole request must
    be read within ``read_timeout`` seconds, counted from the connection's start for its first
    request and from the first byte of each later one (idle keep-alive time does not count).
    When it passes, the connection is closed without a response, as net/http closes one whose
    headers time out; the other connections are served as usual.
    """

    class DeadlineHttpToolsProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_deadline()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._deadline is None:  # a later request on a kept-alive connection
                self._start_deadline()

        def on_headers_complete(self) -> None:
            # httptools.parse_url refuses URLs over 64 KiB; Go reads request lines up to its
            # 1 MB header limit (an experimentIdFilter.incl of 30,000 ids). The query is set
            # aside and put back before the request's task first runs.
            query = b""
            if len(self.url) > _PARSE_URL_LIMIT:
                self.url, _, query = self.url.partition(b"?")
            super().on_headers_complete()
            if query:
                self.scope["query_string"] = query

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._cancel_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_deadline()
            super().connection_lost(exc)

        def _start_deadline(self) -> None:
            self._deadline = self.loop.call_later(read_timeout, self._read_timed_out)

        def _cancel_deadline(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _read_timed_out(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return DeadlineHttpToolsProtocol


_PARSE_URL_LIMIT: Final = 65535


class _PromptServer(uvicorn.Server):
    """uvicorn's server, stopped at once by :meth:`stop_soon` from another thread.

    uvicorn polls ``should_exit`` every 0.1 s and sleeps another 0.1 s after asking connections
    to close: a fifth of a second per stop, which a test suite starting a master per test pays
    thousands of times. Here the main loop waits on an event (waking each second for the Date
    header, as uvicorn's tick does) and the shutdown polls the closing connections briefly.
    Followed streams end at their next wait (``Database.close_followers``); a request still
    running after ``_GRACE`` is cancelled, where uvicorn would wait for it for ever."""

    _CLOSE_POLL: Final = 0.005
    _GRACE: Final = 1.0

    def __init__(self, config: uvicorn.Config, database: Database) -> None:
        super().__init__(config)
        self._database = database
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exit = asyncio.Event()

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # one call a second: on_tick's "every 10th tick"
            try:
                await asyncio.wait_for(self._exit.wait(), timeout=1.0)
            except TimeoutError:
                pass

    def stop_soon(self) -> None:
        """Ask the server to stop (thread-safe); the serving thread then shuts it down."""
        self.should_exit = True
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._exit.set)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)  # SIGINT/SIGTERM of `detorm serve`
        self.stop_soon()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        self._database.close_followers()  # followed streams end at their next wait
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle keep-alive connections close now, busy ones after
        # Until they are done, or a second Ctrl-C forces the exit, as uvicorn's; and at most
        # _GRACE (a request in a long write, a stream blocked on its client).
        grace: float | None = time.monotonic() + self._GRACE
        while (self.server_state.connections or self.server_state.tasks) and not self.force_exit:
            if grace is not None and time.monotonic() > grace:
                self._end_requests()
                grace = None
            await asyncio.sleep(self._CLOSE_POLL)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    def _end_requests(self) -> None:
        """Cancel the requests still running and close their connections."""
        for task in self.server_state.tasks:
            task.cancel(msg="detorm.local is stopping")
        for connection in list(self.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()


def _server(app: LocalApp, read_timeout: float) -> _PromptServer:
    if not read_timeout > 0:
        raise ConfigurationError(
            f"read_timeout must be a positive number of seconds, not {read_timeout!r}"
        )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http=_http_protocol(read_timeout),
        timeout_keep_alive=30,
    )
    return _PromptServer(config, app.db)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    db_path: str | os.PathLike[str] | None = None,
    demo: bool = False,
    demo_seed: int = 0,
    enable_faults: bool = False,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    slots: int = DEFAULT_SLOTS,
    execute_commands: bool = False,
    time_scale: float = 1.0,
) -> None:
    """Serve until interrupted (``detorm serve``). Prints the URL once it accepts requests.

    ``read_timeout`` is the time a client has to send a whole request (see
    :func:`_http_protocol`). ``slots`` is the simulated agent's slot count; with
    ``execute_commands`` commands run their entrypoints as local processes (``_runner.py``).
    ``time_scale`` multiplies the speed of simulated trials (``_simulation.py``: 500 batches
    per second at 1; 0 holds them where they are).
    Raises :class:`~detorm.errors.ConfigurationError`, before serving, when ``host`` is not a
    loopback address and an active user has an empty password, or commands would be executed
    there."""
    _check_cluster_options(slots, execute_commands, time_scale)
    database = Database(db_path or default_db_path())
    app: LocalApp | None = None
    try:
        if demo:
            from ._demo import seed_demo

            seed_demo(database, seed=demo_seed)
        app = LocalApp(
            database, enable_faults=enable_faults, slots=slots, execute_commands=execute_commands,
            time_scale=time_scale,
        )  # fmt: skip
        server = _server(app, read_timeout)
        sock = _listen(database, host, port, db_path, execute_commands=execute_commands)
        app.start_background()
        actual_port = sock.getsockname()[1]
        install_log_buffer()  # uvicorn's logging config dropped the handlers (MasterLogs)
        LOGGER.info("detorm.local serving http://%s:%s", host, actual_port)
        print(f"{READY_PREFIX}http://{host}:{actual_port}", flush=True)
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        if app is not None:
            app.close()
        database.dispose()


def _check_cluster_options(slots: int, execute_commands: bool, time_scale: float = 1.0) -> None:
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 0:
        raise ConfigurationError(
            f"slots must be a whole number of slots (0 or more), not {slots!r}"
        )
    if (
        isinstance(time_scale, bool)
        or not isinstance(time_scale, (int, float))
        or not math.isfinite(time_scale)
        or time_scale < 0
    ):
        raise ConfigurationError(
            f"time_scale must be a finite number, 0 or more, not {time_scale!r}"
        )


def _listen(
    database: Database,
    host: str,
    port: int,
    db_path: str | os.PathLike[str] | None,
    *,
    execute_commands: bool = False,
) -> socket.socket:
    sock = _bind(host, port)
    try:
        address = sock.getsockname()[0]
        if execute_commands and not _is_loopback(address):
            raise ConfigurationError(
                f"refusing to serve on {host} with --execute-commands ({address} is not a"
                " loopback address): anyone who can reach it could run programs on this"
                " machine. Serve on 127.0.0.1."
            )
        _refuse_open_accounts(database, host, address, db_path)
    except ConfigurationError:
        sock.close()
        raise
    return sock


def _is_loopback(address: str) -> bool:
    return ipaddress.ip_address(address.split("%")[0]).is_loopback


def _refuse_open_accounts(
    database: Database, host: str, address: str, db_path: str | os.PathLike[str] | None
) -> None:
    """Anyone who reaches a non-loopback address could log in as a user without a password
    (a fresh master has two: admin and determined)."""
    if _is_loopback(address):
        return
    users = database.users_without_password()
    if not users:
        return
    db_option = f" --db {shlex.quote(os.fspath(db_path))}" if db_path else ""
    commands = "\n".join(f"    detorm set-password{db_option} {shlex.quote(u)}" for u in users)
    raise ConfigurationError(
        f"refusing to serve on {host} ({address} is not a loopback address): these users have"
        f" an empty password, and anyone who can reach this address could log in as them:"
        f" {', '.join(users)}. Set their passwords first:\n{commands}\n"
        "or serve on 127.0.0.1."
    )


class LocalMaster:
    """A detorm.local master for a test or a script, stopped on exit.

    ``process=True`` (the default) runs ``detorm serve`` as a child process, which is how the
    contract tests prove that the command works; ``process=False`` serves from a thread of
    this process, which is faster to start. Either way it listens on a free port of ``host``
    (loopback by default), and a client has ``read_timeout`` seconds to send each request.

    While it runs, detorm sessions of this process to its URL keep their tokens in memory:
    they never read or write the det CLI's token cache (``~/.config/determined/auth.json``),
    whether made with :meth:`session` or ``detorm.Session(master.url, ...)``.

        with LocalMaster(demo=True) as master, master.session() as session:
            print(session.query(Experiment).count())
    """

    def __init__(
        self,
        *,
        db_path: str | os.PathLike[str] | None = None,
        demo: bool = False,
        process: bool = True,
        enable_faults: bool = False,
        host: str = "127.0.0.1",
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        slots: int = DEFAULT_SLOTS,
        execute_commands: bool = False,
        time_scale: float = 1.0,
    ) -> None:
        _check_cluster_options(slots, execute_commands, time_scale)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="detorm-local-")
            db_path = Path(self._tmp.name) / "local.sqlite"
        self.db_path = Path(db_path)
        self.demo = demo
        self.process = process
        self.enable_faults = enable_faults
        self.host = host
        self.read_timeout = read_timeout
        self.slots = slots
        self.execute_commands = execute_commands
        self.time_scale = time_scale
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._uvicorn: _PromptServer | None = None
        self._app: LocalApp | None = None
        self._database: Database | None = None

    @property
    def database(self) -> Database:
        """The master's database, for seeding (shared safely with the server via WAL)."""
        if self._database is None:
            self._database = Database(self.db_path)
        return self._database

    def start(self) -> LocalMaster:
        if self.process:
            self._start_process()
        else:
            self._start_thread()
        _auth.register_ephemeral_master(self.url)
        return self

    def session(
        self,
        user: str = "determined",
        password: str = "",
        *,
        timeout: float = 60.0,
        cache: bool | str | os.PathLike[str] = False,
    ) -> Session:
        """A :class:`detorm.Session` to this master as ``user`` (the fresh master's
        ``determined``, empty password, by default; these arguments come before ``DET_USER``
        and the like), with its token kept in memory. ``cache`` as for ``Session`` (off by
        default: a test's reads are not cached)."""
        from detorm._api._sync import Session

        return Session(
            self._started_url(), user=user, password=password, timeout=timeout, cache=cache
        )

    def aio_session(
        self,
        user: str = "determined",
        password: str = "",
        *,
        timeout: float = 60.0,
        cache: bool | str | os.PathLike[str] = False,
    ) -> AsyncSession:
        """A :class:`detorm.aio.AsyncSession` to this master, as :meth:`session` makes one."""
        from detorm._api._aio import AsyncSession

        return AsyncSession(
            self._started_url(), user=user, password=password, timeout=timeout, cache=cache
        )

    def _started_url(self) -> str:
        if not self.url:
            raise RuntimeError("start the LocalMaster (or enter its `with` block) first")
        return self.url

    def _start_process(self) -> None:
        command = [
            sys.executable, "-m", "detorm", "serve", "--host", self.host, "--port", "0",
            "--db", str(self.db_path), "--read-timeout", str(self.read_timeout),
        ]  # fmt: skip
        if self.demo:
            command.append("--demo")
        if self.enable_faults:
            command.append("--enable-test-faults")
        if self.slots != DEFAULT_SLOTS:
            command += ["--slots", str(self.slots)]
        if self.execute_commands:
            command.append("--execute-commands")
        if self.time_scale != 1.0:
            command += ["--time-scale", repr(float(self.time_scale))]
        self._proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith(READY_PREFIX):
            self._proc.kill()
            _, err = self._proc.communicate(timeout=10)
            raise RuntimeError(f"detorm serve did not start: {line}{err}")
        self.url = line[len(READY_PREFIX) :].strip()

    def _start_thread(self) -> None:
        database = self.database
        if self.demo:
            from ._demo import seed_demo

            seed_demo(database)
        app = LocalApp(
            database,
            enable_faults=self.enable_faults,
            slots=self.slots,
            execute_commands=self.execute_commands,
            time_scale=self.time_scale,
        )
        server = _server(app, self.read_timeout)
        sock = _listen(database, self.host, 0, self.db_path, execute_commands=self.execute_commands)
        port = sock.getsockname()[1]
        self._app = app
        app.start_background()
        self._uvicorn = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("detorm.local did not start")
            time.sleep(0.01)
        self.url = f"http://{self.host}:{port}"

    def kill(self) -> None:
        """Kill the ``detorm serve`` process at once (SIGKILL), as a crash would: no shutdown,
        no cleanup. :meth:`stop` still removes what the master leaves behind."""
        if self._proc is None:
            raise RuntimeError("only a started LocalMaster(process=True) can be killed")
        self._proc.kill()
        self._proc.wait()

    def stop(self) -> None:
        if self.url:
            _auth.forget_ephemeral_master(self.url)
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.stop_soon()
            self._thread.join(timeout=10)
            self._uvicorn = None
        if self._app is not None:
            self._app.close()
            self._app = None
        if self._database is not None:
            self._database.dispose()
            self._database = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalMaster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
