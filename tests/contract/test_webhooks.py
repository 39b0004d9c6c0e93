"""Webhooks, resource-pool bindings and config policies through ``determined==0.38.1``: the
official client's generated bindings (0.38.1's ``det`` has no webhook command) and the ``det rp
bindings`` and ``det config-policies`` commands, against ``detorm serve --demo``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from determined.common import api
from determined.common.api import bindings
from determined.experimental import Determined

from tests.contract.conftest import Demo
from tests.contract.test_det_cli import det, ok


def session(demo: Demo, user: str, password: str) -> api.Session:
    return Determined(demo.url, user=user, password=password)._session


def test_webhooks_through_the_official_bindings(fresh_demo: Demo) -> None:
    alice = session(fresh_demo, "alice", "alice-pw")
    workspace = fresh_demo.value("SELECT id FROM workspaces WHERE name = 'Computer Vision'")
    body = bindings.v1Webhook(
        mode=bindings.v1WebhookMode.WORKSPACE,
        name="cv-alerts",
        url="http://127.0.0.1:9/hook",
        webhookType=bindings.v1WebhookType.SLACK,
        workspaceId=workspace,
        triggers=[
            bindings.v1Trigger(
                triggerType=bindings.v1TriggerType.TASK_LOG, condition={"regex": "OOM"}
            )
        ],
    )
    created = bindings.post_PostWebhook(alice, body=body).webhook
    assert created.id is not None and created.triggers is not None
    assert created.triggers[0].webhookId == created.id
    assert created.workspaceId == workspace and created.mode == bindings.v1WebhookMode.WORKSPACE

    listed = bindings.get_GetWebhooks(alice).webhooks
    assert [(w.id, w.name, w.url) for w in listed] == [(created.id, "cv-alerts", body.url)]
    # bob owns another workspace: he sees only global webhooks
    bob = session(fresh_demo, "bob", "bob-pw")
    assert bindings.get_GetWebhooks(bob).webhooks == []
    with pytest.raises(api.errors.APIException, match="non admin users can't edit"):
        bindings.post_TestWebhook(bob, id=created.id)

    assert bindings.post_TestWebhook(alice, id=created.id).completed is False
    payload = fresh_demo.value(
        "SELECT payload FROM webhook_test_events WHERE webhook_id = ?", created.id
    )
    assert json.loads(payload)["blocks"][0]["text"]["text"] == "test"  # recorded, not sent

    bindings.patch_PatchWebhook(alice, id=created.id, body=bindings.v1PatchWebhook(url="x"))
    assert fresh_demo.value("SELECT url FROM webhooks WHERE id = ?", created.id) == "x"
    bindings.delete_DeleteWebhook(alice, id=created.id)
    assert fresh_demo.rows("SELECT id FROM webhooks") == []
    assert fresh_demo.rows("SELECT id FROM webhook_triggers") == []


def test_det_rp_bindings(demo: Demo, det_config: Path) -> None:
    ok(det(demo, det_config, "user", "login", "dana", stdin="dana-pw\n"))
    added = det(demo, det_config, "rp", "bindings", "add", "default", "Computer Vision")
    assert added.returncode != 0
    assert "default resource pool default cannot be bound to any workspace" in added.stderr
    listed = ok(det(demo, det_config, "rp", "bindings", "list-workspaces", "default"))
    assert listed.split("\n")[2].split("|")[0].strip() == "default"
    assert listed.split("\n")[2].split("|")[1].strip() == ""
    missing = det(demo, det_config, "rp", "bindings", "remove", "default", "Nowhere")
    assert "the following workspaces do not exist: [Nowhere]" in missing.stderr


def test_det_config_policies(fresh_demo: Demo, det_config: Path, tmp_path: Path) -> None:
    ok(det(fresh_demo, det_config, "user", "login", "alice", stdin="alice-pw\n"))
    policy = tmp_path / "policy.yaml"
    policy.write_text("constraints:\n  priority_limit: 7\n  resources:\n    max_slots: 2\n")
    where = ("-w", "Computer Vision")
    out = ok(
        det(fresh_demo, det_config, "config-policies", "set", "experiment", str(policy), *where)
    )
    assert out.startswith("Set experiment config policies for workspace Computer Vision:")
    shown = ok(det(fresh_demo, det_config, "cp", "describe", "experiment", *where, "--json"))
    assert json.loads(shown) == {
        "constraints": {"priority_limit": 7, "resources": {"max_slots": 2}}
    }
    stored = fresh_demo.value(
        "SELECT constraints FROM task_config_policies WHERE workload_type = 'EXPERIMENT'"
    )
    assert json.loads(stored) == {"priority_limit": 7, "resources": {"max_slots": 2}}

    refused = det(fresh_demo, det_config, "cp", "set", "tasks", str(policy))  # global: admins
    assert refused.returncode != 0 and "user does not have permission" in refused.stderr

    ok(det(fresh_demo, det_config, "cp", "delete", "experiment", *where))
    assert fresh_demo.rows("SELECT id FROM task_config_policies") == []
