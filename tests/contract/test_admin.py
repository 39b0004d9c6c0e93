"""User administration, the master's config and log through the official client and the det CLI
of ``determined==0.38.1`` against ``detorm serve --demo`` (dana is the demo's admin)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from determined.common.api import errors as api_errors

from tests.contract.conftest import Demo, connect
from tests.contract.test_det_cli import det, ok


def login_status(demo: Demo, username: str, password: str) -> int:
    """A fresh login's status (the official client would reuse its cached token)."""
    body = {"username": username, "password": password}
    return httpx.post(demo.url + "/api/v1/auth/login", json=body).status_code


@pytest.fixture
def dana(fresh_demo: Demo, det_config: Path) -> Path:
    ok(det(fresh_demo, det_config, "user", "login", "dana", stdin="dana-pw\n"))
    return det_config


# --- the official client --------------------------------------------------------------------


def test_client_creates_and_edits_a_user(fresh_demo: Demo) -> None:
    admin = connect(fresh_demo, "dana", "dana-pw")
    user = admin.create_user("erin", admin=False, password="Erin-Pass1")
    assert (user.username, user.admin, user.active) == ("erin", False, True)
    user.rename("erin2")
    user.change_display_name("Erin")
    user.link_with_agent(agent_uid=1001, agent_gid=1002, agent_user="erin", agent_group="ml")
    row = fresh_demo.rows(
        "SELECT username, display_name, agent_uid, agent_gid, agent_user, agent_group"
        " FROM users WHERE id = ?",
        user.user_id,
    )
    assert row == [("erin2", "Erin", 1001, 1002, "erin", "ml")]
    user.change_password("New-Pass2")
    assert (
        connect(fresh_demo, "erin2", "New-Pass2").get_user_by_id(user.user_id).username == "erin2"
    )
    user.deactivate()
    assert fresh_demo.value("SELECT active FROM users WHERE id = ?", user.user_id) == 0
    assert login_status(fresh_demo, "erin2", "New-Pass2") == 403  # "user is not active"
    user.activate()
    assert user.active is True


def test_client_non_admin_cannot_create_users(fresh_demo: Demo) -> None:
    alice = connect(fresh_demo, "alice", "alice-pw")
    with pytest.raises(api_errors.ForbiddenException, match="only admin privileged users"):
        alice.create_user("mallory", admin=False, password="Mallory-1")


# --- the det CLI ----------------------------------------------------------------------------


def test_det_user_create_activate_rename_and_list(fresh_demo: Demo, dana: Path) -> None:
    ok(det(fresh_demo, dana, "user", "create", "frank", "--password", "Frank-Pass1"))
    assert fresh_demo.value("SELECT active FROM users WHERE username = 'frank'") == 1
    ok(det(fresh_demo, dana, "user", "deactivate", "frank"))
    listed = ok(det(fresh_demo, dana, "user", "list"))
    assert "frank" not in listed  # inactive users are listed with --all only
    assert "frank" in ok(det(fresh_demo, dana, "user", "list", "--all"))
    ok(det(fresh_demo, dana, "user", "activate", "frank"))
    ok(det(fresh_demo, dana, "user", "rename", "frank", "franklin"))
    assert fresh_demo.column("SELECT username FROM users WHERE username LIKE 'frank%'") == [
        "franklin"
    ]
    ok(
        det(
            fresh_demo,
            dana,
            "user",
            "link-with-agent-user",
            "franklin",
            "--agent-uid",
            "2000",
            "--agent-gid",
            "2001",
            "--agent-user",
            "fr",
            "--agent-group",
            "grp",
        )  # fmt: skip
    )
    assert fresh_demo.rows(
        "SELECT agent_uid, agent_user FROM users WHERE username = 'franklin'"
    ) == [(2000, "fr")]


def test_det_user_change_password_of_another_user(fresh_demo: Demo, dana: Path) -> None:
    ok(det(fresh_demo, dana, "user", "change-password", "bob", stdin="Bob-Pass22\nBob-Pass22\n"))
    assert login_status(fresh_demo, "bob", "Bob-Pass22") == 200
    assert login_status(fresh_demo, "bob", "bob-pw") == 401


def test_det_master_config_and_logs(served_demo: Demo, det_config: Path) -> None:
    dana = det_config  # logged in to this test's own master (the dana fixture uses fresh_demo)
    ok(det(served_demo, dana, "user", "login", "dana", stdin="dana-pw\n"))
    config = ok(det(served_demo, dana, "master", "config", "--json"))
    assert json.loads(config)["cluster_name"] == "detorm.local"
    ok(det(served_demo, dana, "master", "config", "set", "--log.level", "DEBUG"))
    logs = ok(det(served_demo, dana, "master", "logs", "--tail", "50"))
    assert "detorm.local serving " + served_demo.url in logs, logs


def test_det_master_config_needs_an_admin(fresh_demo: Demo, det_config: Path) -> None:
    ok(det(fresh_demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    result = det(fresh_demo, det_config, "master", "config")
    assert result.returncode != 0
    assert "permission" in (result.stdout + result.stderr).lower()
