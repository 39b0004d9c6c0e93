"""A synthetic master for benchmarks: the experiments list of a cluster of any size, generated.

    python benchmarks/paging_server.py --experiments 1000000     # prints its URL, serves

It answers what a client needs to page the experiments of a master of release 0.38.1, and
nothing else: ``POST /api/v1/auth/login``, ``GET /api/v1/me`` and ``GET /api/v1/experiments``
(GetExperiments: ``offset`` and ``limit``, a limit of 0 or less meaning every row left; ids
ascending; the ``pagination`` object as detorm.local answers it: offset, limit, startIndex,
endIndex, total). Each row has the shape and the size of a real GetExperiments row (about
2.8 KB: the master's list rows carry each experiment's config), generated from one template with
the row's id, name, description, start and end times filled in, so that the server costs little
next to a client parsing its pages. Other routes
answer the master's 501 ``Unimplemented`` body. Nothing is stored: detorm.local is not involved
(``detorm.local`` with a database of a million experiments would measure SQLite, not a client).

Used by ``benchmarks/lazy_iteration.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
_USER = {
    "id": 2, "username": "determined", "admin": False, "active": True, "agentUserGroup": None,
    "displayName": "", "modifiedAt": "2025-01-01T00:00:00Z", "remote": False,
    "lastAuthAt": "2025-01-01T00:00:00Z",
}  # fmt: skip
_TOKEN = "synthetic-benchmark-token"
_HPARAMS = {
    "learning_rate": {"type": "log", "base": 10, "minval": -5, "maxval": -1},
    "global_batch_size": {"type": "const", "val": 64},
    "dropout": {"type": "double", "minval": 0.0, "maxval": 0.5},
    "layers": {"type": "int", "minval": 1, "maxval": 8},
    "optimizer": {"type": "categorical", "vals": ["adam", "sgd"]},
}
# Placeholders, replaced per row (they appear in the JSON text as these exact strings).
_ID, _NAME, _START, _END = "@@ID@@", "@@NAME@@", "@@START@@", "@@END@@"


def _row_template() -> str:
    """A GetExperiments row of a completed random-search experiment, as the master sends it,
    with placeholders for what differs between rows; ``%`` escaped for %-formatting."""
    config: dict[str, Any] = {
        "bind_mounts": [], "checkpoint_policy": "best",
        "checkpoint_storage": {
            "type": "shared_fs", "host_path": "/tmp", "storage_path": "checkpoints",
            "propagation": "rprivate", "save_experiment_best": 0, "save_trial_best": 1,
            "save_trial_latest": 1,
        },
        "data": {}, "debug": False, "description": _NAME, "entrypoint": "model_def:Trial",
        "environment": {
            "image": {"cpu": "determinedai/pytorch-ngc:0.38.1",
                      "cuda": "determinedai/pytorch-ngc:0.38.1"},
            "environment_variables": {}, "force_pull_image": False, "pod_spec": None,
            "add_capabilities": [], "drop_capabilities": [],
        },
        "hyperparameters": _HPARAMS, "labels": ["ablation", "debug"], "log_policies": [],
        "max_restarts": 5, "min_checkpoint_period": {"batches": 0},
        "min_validation_period": {"batches": 0}, "name": _NAME,
        "optimizations": {"aggregation_frequency": 1, "average_training_metrics": True},
        "perform_initial_validation": False, "project": "synthetic", "records_per_epoch": 0,
        "reproducibility": {"experiment_seed": 1700000000},
        "resources": {"resource_pool": "default", "slots_per_trial": 1, "max_slots": None,
                      "priority": None, "weight": 1, "shm_size": None, "devices": []},
        "scheduling_unit": 100,
        "searcher": {"name": "random", "metric": "validation_loss", "smaller_is_better": True,
                     "max_trials": 1, "source_trial_id": None, "source_checkpoint_uuid": None},
        "workspace": "synthetic",
    }  # fmt: skip
    row: dict[str, Any] = {
        "id": _ID, "description": _NAME, "labels": ["ablation", "debug"],
        "startTime": _START, "endTime": _END, "state": "STATE_COMPLETED", "archived": False,
        "numTrials": 4, "trialIds": [], "displayName": "determined", "userId": 2,
        "username": "determined", "resourcePool": "default", "searcherType": "random",
        "searcherMetric": "validation_loss", "hyperparameters": _HPARAMS, "name": _NAME,
        "notes": "", "jobId": "4663521f-2538-53f3-a324-9d09db491403", "forkedFrom": None,
        "progress": 1.0, "projectId": 2, "projectName": "synthetic", "workspaceId": 2,
        "workspaceName": "synthetic", "parentArchived": False, "config": config,
        "originalConfig": "", "projectOwnerId": 1, "checkpointSize": "12616348",
        "checkpointCount": 12, "unmanaged": False, "duration": 1800,
    }  # fmt: skip
    text = json.dumps(row, separators=(",", ":")).replace("%", "%%")
    return (
        text.replace(f'"{_ID}"', "%(id)d")
        .replace(_NAME, "%(name)s")
        .replace(_START, "%(start)s")
        .replace(_END, "%(end)s")
    )


class Experiments:
    """The generated rows: ``total`` experiments, ids 1..total."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._template = _row_template()

    def row(self, experiment_id: int) -> str:
        start = _EPOCH + timedelta(minutes=experiment_id)
        return self._template % {
            "id": experiment_id,
            "name": f"synthetic-{experiment_id:07d}",
            "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def page(self, offset: int, limit: int) -> bytes:
        """GetExperiments' answer for ``offset`` and ``limit``."""
        start = min(max(offset, 0), self.total)
        end = self.total if limit <= 0 else min(start + limit, self.total)
        rows = ",".join(self.row(i + 1) for i in range(start, end))
        pagination = {"offset": offset, "limit": limit, "startIndex": start, "endIndex": end,
                      "total": self.total}  # fmt: skip
        return b'{"experiments":[%s],"pagination":%s}' % (
            rows.encode(),
            json.dumps(pagination).encode(),
        )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the clients' connection pools expect
    experiments: Experiments

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: a million rows are thousands of requests

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _unimplemented(self) -> None:
        body = {"error": {"code": 12, "reason": "Unimplemented", "error": "Not Implemented"}}
        self._answer(501, json.dumps(body).encode())

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        if urlsplit(self.path).path == "/api/v1/auth/login":
            self._answer(200, json.dumps({"token": _TOKEN, "user": _USER}).encode())
        else:
            self._unimplemented()

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/api/v1/me":
            self._answer(200, json.dumps({"user": _USER}).encode())
        elif url.path == "/api/v1/experiments":
            query = parse_qs(url.query)
            offset = int(query.get("offset", ["0"])[0])
            limit = int(query.get("limit", ["0"])[0])
            self._answer(200, self.experiments.page(offset, limit))
        else:
            self._unimplemented()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--experiments", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    Handler.experiments = Experiments(args.experiments)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
