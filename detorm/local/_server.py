"""Running detorm.local: in this process (a thread) or as a ``detorm serve`` child process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Final

import uvicorn

from ._app import LocalApp
from ._db import Database

__all__ = ["LocalMaster", "default_db_path", "serve"]

READY_PREFIX: Final = "detorm.local listening on "


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


def _server(app: LocalApp) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        http="httptools",
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    db_path: str | os.PathLike[str] | None = None,
    demo: bool = False,
    demo_seed: int = 0,
    enable_faults: bool = False,
) -> None:
    """Serve until interrupted (``detorm serve``). Prints the URL once it accepts requests."""
    database = Database(db_path or default_db_path())
    if demo:
        from ._demo import seed_demo

        seed_demo(database, seed=demo_seed)
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    server = _server(LocalApp(database, enable_faults=enable_faults))
    print(f"{READY_PREFIX}http://{host}:{actual_port}", flush=True)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        database.dispose()


class LocalMaster:
    """A detorm.local master for a test or a script, stopped on exit.

    ``process=True`` (the default) runs ``detorm serve`` as a child process, which is how the
    contract tests prove that the command works; ``process=False`` serves from a thread of
    this process, which is faster to start. Either way it listens on a free loopback port.

        with LocalMaster(demo=True) as master:
            session = detorm.connect(master.url)
    """

    def __init__(
        self,
        *,
        db_path: str | os.PathLike[str] | None = None,
        demo: bool = False,
        process: bool = True,
        enable_faults: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="detorm-local-")
            db_path = Path(self._tmp.name) / "local.sqlite"
        self.db_path = Path(db_path)
        self.demo = demo
        self.process = process
        self.enable_faults = enable_faults
        self.host = host
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self._uvicorn: uvicorn.Server | None = None
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
        return self

    def _start_process(self) -> None:
        command = [
            sys.executable, "-m", "detorm", "serve", "--host", self.host, "--port", "0",
            "--db", str(self.db_path),
        ]  # fmt: skip
        if self.demo:
            command.append("--demo")
        if self.enable_faults:
            command.append("--enable-test-faults")
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
        sock = _bind(self.host, 0)
        port = sock.getsockname()[1]
        self._uvicorn = _server(LocalApp(database, enable_faults=self.enable_faults))
        server = self._uvicorn
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

    def stop(self) -> None:
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
            self._uvicorn.should_exit = True
            self._thread.join(timeout=10)
            self._uvicorn = None
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
