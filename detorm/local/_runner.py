"""``detorm serve --execute-commands``: commands run for real, as local subprocesses.

When a command's simulated allocation reaches ``RUNNING``, the runner extracts the context the
command was launched with (its ``files``, stored as the master stores them: a tar.gz) into a
temporary directory and runs the entrypoint there, as ``command-entrypoint.sh`` would: one
string runs through ``/bin/sh -c``, a list is executed as it is. Every line the process writes
to stdout or stderr becomes a task-log line (``ship_logs.py``'s fields: the allocation, agent
and container, source ``task``), and its exit status ends the allocation: 0 as a clean exit,
anything else as the master reports a container that failed (a signal ``n`` as ``128 + n``, as
Docker does). A kill sends the process SIGKILL.

Only for a master on a loopback address (``serve`` refuses any other): whoever can launch a
command runs code as the user running ``detorm serve``.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import subprocess
import tarfile
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final

from sqlmodel import Session, col, select

from . import _tables as t
from ._db import Database, utcnow
from ._scheduler import (
    COMMAND_ENTRYPOINT,
    Cluster,
    advance,
    exit_allocation,
    schedule,
    write_log,
)

__all__ = ["Runner"]

TICK_SECONDS: float = 0.05
"""How often the runner advances the cluster and looks at its processes."""

_Line = tuple[str, datetime, str, str]  # allocation id, time, stdtype, text


@dataclass
class _Process:
    allocation_id: str
    task_id: str
    popen: subprocess.Popen[bytes]
    workdir: str
    readers: list[threading.Thread] = field(default_factory=list)
    killed: bool = False


class Runner:
    """The thread that starts, watches and kills the processes of executed commands."""

    def __init__(self, database: Database, cluster: Cluster) -> None:
        self.database = database
        self.cluster = cluster
        self.lines: queue.Queue[_Line] = queue.Queue()
        self.processes: dict[str, _Process] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._loop, name="detorm-command-runner", daemon=True
                )
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        for process in list(self.processes.values()):
            _kill(process.popen)
            shutil.rmtree(process.workdir, ignore_errors=True)
        self.processes.clear()

    # --- the loop --------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:  # keep running: the next tick retries
                pass

    def tick(self) -> None:
        """One round: advance the cluster, write new output, record exits, start and kill."""
        to_start: list[tuple[str, str, Any, bytes | None]] = []
        if not self.processes and self.lines.empty() and not self._pending():
            return  # nothing to run: leave the database alone
        with self.database.transaction(write=True) as db:
            advance(db, self.cluster)
            self._write_lines(db)
            self._record_exits(db)
            live = {
                row.allocation_id: row
                for row in db.exec(
                    select(t.AllocationRow).where(col(t.AllocationRow.state) == "RUNNING")
                ).all()
            }
            for allocation_id, process in self.processes.items():
                row = live.get(allocation_id)
                if (row is None or row.kill_at is not None) and not process.killed:
                    process.killed = True
                    _kill(process.popen)
            for allocation_id, row in live.items():
                if allocation_id in self.processes:
                    continue
                task = db.get(t.TaskRow, row.task_id)
                if task is None or not task.execute:
                    continue
                if row.exit_code is not None or row.kill_at is not None:
                    # its process is gone (a previous serve ran it), or it was killed before
                    # it started: its container exits now
                    exit_allocation(db, row, utcnow(), "killed")
                    db.flush()
                    schedule(db, self.cluster, utcnow())
                    continue
                row.exit_code = -1  # marks it as started (a restart does not run it twice)
                db.add(row)
                to_start.append((allocation_id, task.task_id, task.config, task.context_directory))
        for allocation_id, task_id, config, context in to_start:
            self._start(allocation_id, task_id, config, context)

    def _pending(self) -> bool:
        """Whether an executed command has not ended yet."""
        with self.database.transaction(write=False) as db:
            found = db.connection().exec_driver_sql(
                "SELECT 1 FROM tasks WHERE execute AND end_time IS NULL LIMIT 1"
            )
            return found.first() is not None

    def _write_lines(self, db: Session) -> None:
        while True:
            try:
                allocation_id, at, stdtype, text = self.lines.get_nowait()
            except queue.Empty:
                return
            allocation = db.get(t.AllocationRow, allocation_id)
            if allocation is None:
                continue
            write_log(
                db, allocation.task_id, at, text, level=None, source="task", stdtype=stdtype,
                allocation=allocation,
            )  # fmt: skip

    def _record_exits(self, db: Session) -> None:
        for allocation_id, process in list(self.processes.items()):
            code = process.popen.poll()
            if code is None:
                continue
            for reader in process.readers:
                reader.join(timeout=5)
            self._write_lines(db)
            del self.processes[allocation_id]
            shutil.rmtree(process.workdir, ignore_errors=True)
            allocation = db.get(t.AllocationRow, allocation_id)
            if allocation is None or allocation.state != "RUNNING":
                continue
            now = utcnow()
            status = 128 - code if code < 0 else code
            if allocation.kill_at is not None or process.killed:
                exit_allocation(db, allocation, now, "killed")
            else:
                exit_allocation(db, allocation, now, "exited", code=status)
            allocation.exit_code = status
            db.add(allocation)
            db.flush()
            schedule(db, self.cluster, now)

    # --- processes -------------------------------------------------------------------------
    def _start(self, allocation_id: str, task_id: str, config: Any, context: bytes | None) -> None:
        workdir = tempfile.mkdtemp(prefix=f"detorm-command-{task_id[:8]}-")
        try:
            if context:
                with tarfile.open(fileobj=io.BytesIO(context), mode="r:gz") as archive:
                    archive.extractall(workdir, filter="data")
            popen = subprocess.Popen(
                _argv(config), cwd=workdir, env=_environment(config, task_id, allocation_id),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True,
            )  # fmt: skip
        except (OSError, tarfile.TarError, ValueError) as err:
            shutil.rmtree(workdir, ignore_errors=True)
            self.lines.put((allocation_id, utcnow(), "stderr", f"{err}\n"))
            self._failed_to_start(allocation_id)
            return
        process = _Process(allocation_id, task_id, popen, workdir)
        for stream, stdtype in ((popen.stdout, "stdout"), (popen.stderr, "stderr")):
            assert stream is not None
            reader = threading.Thread(
                target=self._read, args=(allocation_id, stream, stdtype), daemon=True
            )
            reader.start()
            process.readers.append(reader)
        self.processes[allocation_id] = process

    def _failed_to_start(self, allocation_id: str) -> None:
        with self.database.transaction(write=True) as db:
            self._write_lines(db)
            allocation = db.get(t.AllocationRow, allocation_id)
            if allocation is not None and allocation.state == "RUNNING":
                now = utcnow()
                exit_allocation(db, allocation, now, "exited", code=_NOT_FOUND)
                allocation.exit_code = _NOT_FOUND
                db.add(allocation)
                db.flush()
                schedule(db, self.cluster, now)

    def _read(self, allocation_id: str, stream: IO[bytes], stdtype: str) -> None:
        """``ship_logs.py``: each line (``\\n`` or ``\\r`` ended) with the time it was read."""
        pending = b""
        while chunk := stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536):
            pending += chunk
            while True:
                cut = min(
                    (i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0), default=-1
                )
                if cut < 0:
                    break
                line, pending = pending[: cut + 1], pending[cut + 1 :]
                self.lines.put((allocation_id, utcnow(), stdtype, line.decode("utf-8", "replace")))
        if pending:
            self.lines.put((allocation_id, utcnow(), stdtype, pending.decode("utf-8", "replace")))
        stream.close()


_NOT_FOUND: Final = 127  # the shell's "command not found"


def _argv(config: Any) -> list[str]:
    """``command-entrypoint.sh``: ``exec /bin/sh -c "$@"`` for one word, else ``exec "$@"``."""
    entrypoint = config.get("entrypoint") if isinstance(config, dict) else None
    words = [str(word) for word in entrypoint or []]
    if words and words[0] == COMMAND_ENTRYPOINT:
        words = words[1:]
    if not words:
        raise ValueError("entrypoint must be non-empty")
    return ["/bin/sh", "-c", words[0]] if len(words) == 1 else words


def _environment(config: Any, task_id: str, allocation_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DET_TASK_ID": task_id, "DET_ALLOCATION_ID": allocation_id,
                "DET_TASK_TYPE": "COMMAND"})  # fmt: skip
    environment = config.get("environment") if isinstance(config, dict) else None
    variables = environment.get("environment_variables") if isinstance(environment, dict) else None
    for item in (variables or {}).get("cpu") or []:
        name, _, value = str(item).partition("=")
        env[name] = value
    return env


def _kill(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        try:
            os.killpg(popen.pid, 9)
        except (ProcessLookupError, PermissionError):
            popen.kill()
