"""``detorm demo``: start detorm.local with demo data and show what detorm reads from it."""

from __future__ import annotations

from typing import TextIO

import httpx

from detorm.local import LocalMaster


def run_demo(*, seed: int = 0, out: TextIO) -> int:
    with LocalMaster(demo=True, process=False) as master:
        out.write(f"detorm.local is serving a demo cluster at {master.url}\n")
        with httpx.Client(base_url=master.url) as client:
            token = client.post("/api/v1/auth/login", json={"username": "determined", "password": ""})
            client.headers["Authorization"] = "Bearer " + token.json()["token"]
            users = client.get("/api/v1/users").json()["users"]
            out.write("users: " + ", ".join(u["username"] for u in users) + "\n")
    return 0
