"""The ``detorm`` command."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Sequence

from detorm._terminal import QUERY_COMMANDS, descending_orders

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    from detorm._terminal import add_query_commands
    from detorm._version import __version__

    parser = argparse.ArgumentParser(
        prog="detorm", description="detorm: a typed SDK for Determined"
    )
    parser.add_argument("--version", action="version", version=f"detorm {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run detorm.local, a Determined-compatible master")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (loopback; any other needs every user to have a password)",
    )
    serve.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    serve.add_argument("--db", default=None, help="SQLite file (default: user data dir)")
    serve.add_argument("--demo", action="store_true", help="seed a demo cluster if empty")
    serve.add_argument("--seed", type=int, default=0, help="random seed of the demo data")
    serve.add_argument(
        "--read-timeout",
        type=float,
        default=None,
        help="seconds a client has to send a whole request (default: 60)",
    )
    serve.add_argument(
        "--slots",
        type=int,
        default=8,
        help="slots of the simulated agent that runs commands, notebooks and experiments"
        " (default: 8)",
    )
    serve.add_argument(
        "--execute-commands",
        action="store_true",
        help="run commands' entrypoints as local processes (loopback addresses only)",
    )
    serve.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="speed of the simulated trials of created experiments: 500 batches per second"
        " times this (default: 1; 0 holds them where they are)",
    )
    serve.add_argument("--enable-test-faults", action="store_true", help=argparse.SUPPRESS)

    password = commands.add_parser(
        "set-password", help="set the password of a detorm.local user (read from stdin or asked)"
    )
    password.add_argument("username")
    password.add_argument("--db", default=None, help="SQLite file (default: user data dir)")

    demo = commands.add_parser("demo", help="start detorm.local with demo data and tour it")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the demo data")

    cache = commands.add_parser("cache", help="the disk cache of finished trials' data")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    clear = cache_commands.add_parser("clear", help="remove every cached entry")
    clear.add_argument("--dir", default=None, help="cache directory (default: the user cache dir)")
    add_query_commands(commands)  # ls, show, metrics, logs, tag, archive... (detorm._terminal)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(descending_orders(sys.argv[1:] if argv is None else argv))
    if args.command in QUERY_COMMANDS:
        from detorm._terminal import run_query_command

        return run_query_command(args, parser)
    if args.command in _LOCAL_COMMANDS and _local_extra_missing(args.command):
        return 2
    if args.command == "serve":
        return _serve(args)
    if args.command == "set-password":
        return _set_password(args.username, args.db)
    if args.command == "demo":
        from detorm._demo_tour import run_demo

        return run_demo(seed=args.seed, out=sys.stdout)
    if args.command == "cache":
        from pathlib import Path

        from detorm._io._cache import DiskCache

        disk = DiskCache(Path(args.dir) if args.dir else None)
        removed = disk.clear()
        disk.close()
        print(f"removed {removed} cached entries from {disk.directory}")
        return 0
    return 2


_LOCAL_COMMANDS = ("serve", "set-password", "demo")
# The modules of the ``local`` extra (pyproject.toml); detorm.local imports some only when used.
_LOCAL_EXTRA = ("sqlmodel", "starlette", "uvicorn", "httptools", "yaml")


def _local_extra_missing(command: str) -> bool:
    """detorm.local's stack (SQLModel, Starlette, uvicorn, PyYAML) is the ``local`` extra: without
    it, say which extra to install instead of showing an import traceback."""
    import importlib

    try:
        for module in _LOCAL_EXTRA:
            importlib.import_module(module)
        import detorm.local  # noqa: F401
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] == "detorm":
            raise  # a module of detorm itself missing is a bug, not a missing extra
        print(
            f"detorm {command}: detorm.local needs the 'local' extra (no module named"
            f" {err.name!r}): pip install 'detorm[local]'",
            file=sys.stderr,
        )
        return True
    return False


def _serve(args: argparse.Namespace) -> int:
    from detorm.errors import ConfigurationError
    from detorm.local import serve
    from detorm.local._server import DEFAULT_READ_TIMEOUT

    try:
        serve(
            host=args.host, port=args.port, db_path=args.db, demo=args.demo,
            demo_seed=args.seed, enable_faults=args.enable_test_faults,
            read_timeout=DEFAULT_READ_TIMEOUT if args.read_timeout is None else args.read_timeout,
            slots=args.slots, execute_commands=args.execute_commands,
            time_scale=args.time_scale,
        )  # fmt: skip
    except ConfigurationError as err:
        print(f"detorm serve: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0


def _set_password(username: str, db_path: str | None) -> int:
    """The password is the first line of stdin when it is not a terminal (scripts), else asked
    twice without echo."""
    from detorm.local import Database, default_db_path

    if sys.stdin.isatty():
        password = getpass.getpass(f"New password for {username}: ")
        if getpass.getpass("Again: ") != password:
            print("detorm set-password: the passwords differ; nothing changed", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("detorm set-password: the password must not be empty", file=sys.stderr)
        return 2
    database = Database(db_path or default_db_path())
    try:
        database.set_password(username, password)
    except KeyError:
        print(f"detorm set-password: no user {username!r} in {database.path}", file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(f"password of {username} set in {database.path}")
    return 0
