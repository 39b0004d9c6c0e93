"""The ``detorm`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="detorm", description="detorm: a typed SDK for Determined"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run detorm.local, a Determined-compatible master")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    serve.add_argument("--port", type=int, default=8080, help="port (0 picks a free one)")
    serve.add_argument("--db", default=None, help="SQLite file (default: user data dir)")
    serve.add_argument("--demo", action="store_true", help="seed a demo cluster if empty")
    serve.add_argument("--seed", type=int, default=0, help="random seed of the demo data")
    serve.add_argument("--enable-test-faults", action="store_true", help=argparse.SUPPRESS)

    demo = commands.add_parser("demo", help="start detorm.local with demo data and tour it")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the demo data")

    cache = commands.add_parser("cache", help="the disk cache of finished trials' data")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    clear = cache_commands.add_parser("clear", help="remove every cached entry")
    clear.add_argument("--dir", default=None, help="cache directory (default: the user cache dir)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from detorm.local import serve

        try:
            serve(
                host=args.host, port=args.port, db_path=args.db, demo=args.demo,
                demo_seed=args.seed, enable_faults=args.enable_test_faults,
            )  # fmt: skip
        except KeyboardInterrupt:
            pass
        return 0
    if args.command == "demo":
        from detorm._demo_tour import run_demo

        return run_demo(seed=args.seed, out=sys.stdout)
    if args.command == "cache":
        from pathlib import Path

        from detorm._cache import DiskCache

        disk = DiskCache(Path(args.dir) if args.dir else None)
        removed = disk.clear()
        disk.close()
        print(f"removed {removed} cached entries from {disk.directory}")
        return 0
    return 2
