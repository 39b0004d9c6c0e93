"""The ``det`` CLI as a user runs it, without paying its start-up for every command.

A ``det`` process spends ~0.4 s of CPU starting: the interpreter, then the import of determined's
CLI (requests, argparse trees, the SDK). The contract tests run hundreds of commands, so the
test process starts this module once as a *zygote*: a child that imports the CLI, then forks a
copy of itself for each command. The copy takes the command's argv, environment, working
directory, stdin, stdout and stderr, calls the ``det`` console script's entry point
(``determined.cli.__main__.main``) and exits with its status. Each command is still a process of
its own, whose state is the state right after the import: only the import is shared. (The CLI's
few import-time settings, ``DET_SEGMENT_*`` and ``DET_CLUSTER_ID``, are unset in both.)

Protocol on the zygote's stdin/stdout: one JSON request per line; two lines back, the copy's pid
(so that a timeout can kill it) and then its exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

DET = Path(sys.executable).with_name("det")


class DetZygote:
    """The test process's side: start the zygote, run commands through it, stop it."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DET_")}
        self._proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        self._lock = threading.Lock()

    def run(
        self, args: list[str], env: Mapping[str, str], stdin: str, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        with self._lock, tempfile.TemporaryDirectory(prefix="det-") as scratch:
            files = {name: Path(scratch, name) for name in ("stdin", "stdout", "stderr")}
            files["stdin"].write_text(stdin)
            request = {"args": args, "env": dict(env), "cwd": os.getcwd()}
            request |= {name: str(path) for name, path in files.items()}
            pipe_in, pipe_out = self._pipes()
            pipe_in.write(json.dumps(request) + "\n")
            pipe_in.flush()
            pid = int(pipe_out.readline())
            status = self._status(pipe_out, pid, args, timeout)
            return subprocess.CompletedProcess(
                [str(DET), *args], status, files["stdout"].read_text(), files["stderr"].read_text()
            )

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        assert self._proc.poll() is None, "the det zygote exited"
        return self._proc.stdin, self._proc.stdout

    @staticmethod
    def _status(pipe_out: IO[str], pid: int, args: list[str], timeout: float) -> int:
        killer = threading.Timer(timeout, _kill, (pid,))
        killer.start()
        try:
            status = int(pipe_out.readline())
        finally:
            killer.cancel()
        if status == -signal.SIGKILL:
            raise subprocess.TimeoutExpired([str(DET), *args], timeout)
        return status

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()  # the zygote's loop ends at EOF
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended as the timeout came
        os.kill(pid, signal.SIGKILL)


_SHARED: DetZygote | None = None


def shared() -> DetZygote:
    """The test process's zygote, started by the first command (closed by :func:`close_shared`)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = DetZygote()
    return _SHARED


def close_shared() -> None:
    global _SHARED
    if _SHARED is not None:
        _SHARED.close()
        _SHARED = None


# --- the zygote -----------------------------------------------------------------------------------
def _serve() -> None:
    from determined.cli.__main__ import main  # the import every command shares

    requests, replies = sys.stdin, sys.stdout
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _command(main, request)
        replies.write(f"{pid}\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(f"{os.waitstatus_to_exitcode(status)}\n")
        replies.flush()


def _command(main: Any, request: dict[str, Any]) -> None:
    """In the forked copy: become the command ``det <args>``, run it, exit with its status."""
    code = 1
    try:
        for fd, name, flags in (
            (0, "stdin", os.O_RDONLY),
            (1, "stdout", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, "stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            os.dup2(os.open(request[name], flags), fd)
        # Fresh file objects: the zygote's may hold buffered protocol lines.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.argv = [str(DET), *request["args"]]
        main(request["args"])  # the console script: sys.exit(main())
        code = 0
    except SystemExit as exit_:
        code = _exit_code(exit_.code)
    except BaseException:  # noqa: BLE001 (as the interpreter does: print it, exit 1)
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _exit_code(code: object) -> int:
    """``sys.exit(code)``'s status, as the interpreter computes it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    _serve()
