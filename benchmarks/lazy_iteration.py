"""Iterating 1,000,000 experiments lazily: client memory and throughput against a bare floor.

    python benchmarks/lazy_iteration.py                       # 1,000,000 experiments
    python benchmarks/lazy_iteration.py --experiments 100000  # a shorter run

A synthetic master (``benchmarks/paging_server.py``, its own process) generates the experiments
list of a cluster of that size, each row of a real GetExperiments row's shape and size (about
2.8 KB, config included). Two clients page through it, each in a fresh process, one after the
other:

* ``floor``: a bare ``httpx.Client`` asking for pages of 2,000 rows (``offset``/``limit``, as
  detorm pages) and decoding each with ``json.loads``, keeping nothing;
* ``detorm``: ``for exp in Experiment.query(session)``, the rows turned into ``Experiment``
  objects in the session's identity map (which holds them weakly: an experiment the loop has
  dropped is freed), keeping nothing either.

Throughput is rows per second of wall time. Memory is the process's resident set size (RSS,
``/proc/self/statm``), sampled every 20 ms: its peak above the level just before the loop (a
page's bytes, decoded JSON and objects are in it), and its growth between the end of the first
tenth of the rows and the end (what grows with the number of rows read: should be about zero).
RSS rather than tracemalloc: tracemalloc slows every allocation several times, which would make
the throughput figures meaningless in the same run. ``sdk_vs_official.py`` prints these figures
as its row L1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PAGE = 2000  # detorm's default page size (detorm/_plan/_planner.py DEFAULT_PAGE_SIZE)


def floor(url: str, expected: int) -> dict[str, Any]:
    """A bare httpx client: every page requested, decoded, dropped."""
    import httpx

    from benchmarks.sdk_vs_official import RssSampler

    with httpx.Client(base_url=url, timeout=120) as http:
        login = {"username": "determined", "password": ""}
        token = http.post("/api/v1/auth/login", json=login).json()["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        progress = _Progress(expected)
        with RssSampler() as sampler:
            started = time.perf_counter()
            offset = 0
            while True:
                params = {"offset": offset, "limit": PAGE}
                page = json.loads(http.get("/api/v1/experiments", params=params).content)
                rows = page["experiments"]
                progress.add(len(rows))
                end, total = page["pagination"]["endIndex"], page["pagination"]["total"]
                if not rows or end >= total:
                    break
                offset = end
            seconds = time.perf_counter() - started
    return progress.report(seconds, sampler)


def detorm_client(url: str, expected: int) -> dict[str, Any]:
    """detorm's lazy iteration: every experiment made, handed to the loop, dropped."""
    import detorm
    from benchmarks.sdk_vs_official import RssSampler
    from detorm import Experiment

    with tempfile.TemporaryDirectory(prefix="detorm-bench-lazy-") as home:
        environ = {"HOME": home, "XDG_CONFIG_HOME": f"{home}/config"}
        with detorm.Session(url, user="determined", password="", environ=environ) as session:
            progress = _Progress(expected)
            with RssSampler() as sampler:
                started = time.perf_counter()
                for exp in Experiment.query(session):
                    progress.add(1)
                seconds = time.perf_counter() - started
            del exp
            report = progress.report(seconds, sampler)
            report["requests"] = session.requests_sent
            report["identity_map"] = len(session.identity)
    return report


class _Progress:
    """Rows counted, and the RSS when the first tenth of them had been read."""

    def __init__(self, expected: int) -> None:
        self.rows = 0
        self._tenth = max(1, expected // 10)
        self.rss_at_tenth: int | None = None

    def add(self, rows: int) -> None:
        self.rows += rows
        if self.rss_at_tenth is None and self.rows >= self._tenth:
            from benchmarks.sdk_vs_official import _rss

            self.rss_at_tenth = _rss()

    def report(self, seconds: float, sampler: Any) -> dict[str, Any]:
        from benchmarks.sdk_vs_official import _rss

        end = _rss()
        return {
            "rows": self.rows,
            "seconds": seconds,
            "rows_per_second": self.rows / seconds,
            "rss_peak_growth_mb": sampler.growth_mb,
            "rss_growth_after_first_tenth_mb": (end - (self.rss_at_tenth or end)) / 2**20,
        }


def run_client(client: str, url: str, expected: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", client, url, str(expected)]
    process = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if process.returncode != 0:
        lines = process.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else "failed"}
    report: dict[str, Any] = json.loads(process.stdout.strip().splitlines()[-1])
    return report


def measure(experiments: int) -> dict[str, dict[str, Any]]:
    """Starts the synthetic master, runs the floor then detorm against it."""
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "paging_server.py"),
         "--experiments", str(experiments)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        return {client: run_client(client, url, experiments) for client in ("floor", "detorm")}
    finally:
        server.terminate()
        server.wait(timeout=30)


def describe(figures: dict[str, dict[str, Any]]) -> str:
    parts = []
    for client, r in figures.items():
        if "error" in r:
            parts.append(f"{client}: error {r['error']}")
            continue
        parts.append(
            f"{client}: {r['rows']:,} rows in {r['seconds']:.1f} s ({r['rows_per_second']:,.0f}"
            f" rows/s), RSS peak +{r['rss_peak_growth_mb']:.1f} MB, after the first tenth"
            f" {r['rss_growth_after_first_tenth_mb']:+.1f} MB"
            + (f", {r['requests']} requests" if "requests" in r else "")
        )
    ours, bare = figures.get("detorm", {}), figures.get("floor", {})
    if "rows_per_second" in ours and "rows_per_second" in bare:
        parts.append(f"detorm / floor = {ours['rows_per_second'] / bare['rows_per_second']:.2f}")
    return "; ".join(parts)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=1_000_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        client, url, expected = args.child
        run = floor if client == "floor" else detorm_client
        print(json.dumps(run(url, int(expected))))
        return 0
    print(describe(measure(args.experiments)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
