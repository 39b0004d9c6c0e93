"""How fast detorm.local serves the benchmark cluster.

    python benchmarks/local_server.py [--db PATH] [--repeat N]

Seeds the benchmark cluster (``detorm.local._demo.seed_benchmark``: 2 workspaces x 5 projects x
200 experiments x 4 trials, 500 metric rows and 3 checkpoints per trial) into a fresh database,
or reuses ``--db`` when it already holds it, starts ``detorm serve`` on it as a child process
(``LocalMaster(process=True)``), and measures with raw httpx:

* GetExperiments: one page of 1000 experiments (median of ``--repeat`` requests);
* GetMetrics: a stream of 100,000 training rows (median of ``--repeat`` streams; rows/s, MB/s).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from detorm.local import Database, LocalMaster
from detorm.local._demo import seed_benchmark

STREAM_ROWS = 100_000
PAGE_SIZE = 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", type=Path, help="database to reuse (seeded when missing)")
    parser.add_argument("--repeat", type=int, default=5, help="measurements per row (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="detorm-bench-") as tmp:
        db_path = args.db or Path(tmp) / "bench.sqlite"
        rows: list[tuple[str, str]] = []
        seeded = _seed_if_needed(db_path)
        if seeded is not None:
            rows.append(("seed benchmark cluster (Seeder)", f"{seeded:.1f} s"))
        with LocalMaster(db_path=db_path, process=True) as master:
            with httpx.Client(base_url=master.url, timeout=300) as client:
                _login(client)
                rows.append(_experiments_page(client, args.repeat))
                rows.extend(_metrics_stream(client, db_path, args.repeat))
        _print_table(rows)


def _seed_if_needed(path: Path) -> float | None:
    if path.exists():
        with sqlite3.connect(path) as connection:
            (count,) = connection.execute("SELECT count(*) FROM experiments").fetchone()
        if count:
            return None
    database = Database(path)
    start = time.perf_counter()
    seed_benchmark(database)
    database.dispose()
    return time.perf_counter() - start


def _login(client: httpx.Client) -> None:
    response = client.post("/api/v1/auth/login", json={"username": "determined", "password": ""})
    response.raise_for_status()
    client.headers["Authorization"] = "Bearer " + response.json()["token"]


def _median_seconds(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _experiments_page(client: httpx.Client, repeat: int) -> tuple[str, str]:
    label = f"GetExperiments, one page of {PAGE_SIZE}"
    probe = client.get("/api/v1/experiments", params={"limit": PAGE_SIZE})
    if probe.status_code == 501:
        return label, "not available yet (501)"
    probe.raise_for_status()
    count = len(probe.json()["experiments"])

    def fetch() -> None:
        client.get("/api/v1/experiments", params={"limit": PAGE_SIZE}).raise_for_status()

    seconds = _median_seconds(repeat, fetch)
    return (
        label,
        f"{seconds * 1000:.0f} ms median ({count} experiments, {len(probe.content) / 1e6:.1f} MB)",
    )


def _trials_for_rows(db_path: Path, rows: int) -> list[int]:
    """The first trials whose training rows add up to ``rows``."""
    with sqlite3.connect(db_path) as connection:
        counts = connection.execute(
            "SELECT trial_id, count(*) FROM metrics WHERE metric_group = 'training'"
            " AND archived = 0 GROUP BY trial_id ORDER BY trial_id"
        ).fetchall()
    chosen, total = [], 0
    for trial_id, count in counts:
        if total >= rows:
            break
        chosen.append(trial_id)
        total += count
    return chosen


def _metrics_stream(client: httpx.Client, db_path: Path, repeat: int) -> list[tuple[str, str]]:
    trial_ids = _trials_for_rows(db_path, STREAM_ROWS)
    params: dict[str, list[int] | str] = {"trialIds": trial_ids, "group": "training"}
    body = bytearray()

    def stream() -> None:
        body.clear()
        with client.stream(
            "GET", "/api/v1/trials/metrics/trial_metrics", params=params
        ) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes():
                body.extend(chunk)

    seconds = _median_seconds(repeat, stream)
    lines = bytes(body).splitlines()
    rows = sum(len(json.loads(line)["result"]["metrics"]) for line in lines)
    label = f"GetMetrics stream, {rows:,} rows of {len(trial_ids)} trials"
    return [
        (label, f"{seconds:.2f} s median, {len(lines)} messages"),
        ("  rows/s", f"{rows / seconds:,.0f}"),
        ("  MB/s", f"{len(body) / seconds / 1e6:.1f} ({len(body) / 1e6:.1f} MB)"),
    ]


def _print_table(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    print(f"{'measurement'.ljust(width)}  result")
    print(f"{'-' * width}  {'-' * 40}")
    for label, value in rows:
        print(f"{label.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
