"""Import time: ``import detorm`` against ``import determined.experimental.client``.

    python benchmarks/imports.py                    # 15 fresh processes per client, interleaved
    python benchmarks/imports.py --runs 31
    python benchmarks/imports.py --master URL       # and detorm's first requests against URL

Each run is a fresh interpreter (``python -c``) that times the one import statement itself
(wall and CPU time of the process, from before the import to after it), so Python's own start-up
is left out for both clients alike. The runs of the two clients alternate, so that a burst of
load on a shared machine hits both; the medians are reported.

``import detorm`` defers the SDK to the first use of a public name (``detorm/_surface.py``), and
pydantic builds each model's schema on its first use (``defer_build``). Both costs move to a
script's first steps, so ``--master`` also times, in fresh processes: the first public name
(``from detorm import Experiment, Session``: the whole SDK imported), opening a session (its
login), and the first and second identical requests (``Experiment.query(session)[:100]``):
what the first request pays above the second is the schema building deferred to it.
``sdk_vs_official.py`` prints these figures as its row I1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = {"official": "determined.experimental.client", "detorm": "detorm"}
_PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
wall, cpu = time.perf_counter(), time.process_time()
import {module}
print(json.dumps({{"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}}))
"""


def import_once(module: str) -> dict[str, float]:
    """One fresh process importing ``module``: its wall and CPU seconds."""
    code = _PROBE.format(root=str(ROOT), module=module)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    measured: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return measured


_FIRST_USE = """
import json, sys, time
sys.path.insert(0, {root!r})
clock = time.perf_counter
started = clock()
import detorm
imported = clock()
from detorm import Experiment, Session
loaded = clock()
session = Session({url!r}, user="determined", password="", environ={environ!r})
session.whoami()
opened = clock()
first = len(Experiment.query(session).order_by("id")[:100].all())
requested = clock()
second = len(Experiment.query(session).order_by("id")[100:200].all())
again = clock()
assert first == second == 100, (first, second)
print(json.dumps({{
    "import": imported - started, "sdk": loaded - imported, "session": opened - loaded,
    "first_request": requested - opened, "second_request": again - requested,
}}))
"""


def first_use(url: str, runs: int = 15) -> dict[str, float]:
    """Medians, over fresh processes, of detorm's steps from ``import detorm`` to its second
    request against the master at ``url``."""
    import tempfile

    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="detorm-bench-import-") as home:
        environ = {"HOME": home, "XDG_CONFIG_HOME": f"{home}/config"}
        code = _FIRST_USE.format(root=str(ROOT), url=url, environ=environ)
        for run in range(runs + 1):
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True,
                timeout=120,
            ).stdout  # fmt: skip
            if run:  # the first run only warms the caches
                samples.append(json.loads(out.strip().splitlines()[-1]))
    return {step: statistics.median(s[step] for s in samples) for step in samples[0]}


def measure(runs: int = 15) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of each client's import over ``runs`` interleaved runs."""
    samples: dict[str, list[dict[str, float]]] = {client: [] for client in MODULES}
    for client, module in MODULES.items():
        import_once(module)  # warm the file system cache and the .pyc files of both, unmeasured
    for _ in range(runs):
        for client, module in MODULES.items():
            samples[client].append(import_once(module))
    return {
        client: {
            "wall": statistics.median(s["wall"] for s in runs_of),
            "cpu": statistics.median(s["cpu"] for s in runs_of),
            "runs": len(runs_of),
        }
        for client, runs_of in samples.items()
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--master", help="a master (detorm.local) holding >= 200 experiments")
    args = parser.parse_args(argv)
    figures = measure(args.runs)
    for client, module in MODULES.items():
        f = figures[client]
        print(
            f"import {module:<32} median {f['wall'] * 1000:6.1f} ms wall,"
            f" {f['cpu'] * 1000:6.1f} ms CPU ({f['runs']} runs)"
        )
    if args.master:
        steps = first_use(args.master, args.runs)
        print(
            "detorm's first use (medians):"
            + ",".join(f" {step} {seconds * 1000:.1f} ms" for step, seconds in steps.items())
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
