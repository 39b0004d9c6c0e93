"""The official client (``determined==0.38.1``) against ``detorm serve --demo``: writes.

Each test gets its own ``detorm serve --demo`` child process (``fresh_demo``), calls the client's
public API, and checks the master's database afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from determined.common.api import bindings, errors
from determined.experimental import Determined, client

from detorm.local import _tables as t
from tests.contract.conftest import Demo, connect


def _experiment_in_state(demo: Demo, state: str, *, archived: bool = False) -> int:
    return int(
        demo.value(
            "SELECT min(id) FROM experiments WHERE state = ? AND archived = ?", state, int(archived)
        )
    )


def _labels(demo: Demo, experiment_id: int) -> list[str]:
    return list(
        json.loads(demo.value("SELECT labels FROM experiments WHERE id = ?", experiment_id))
    )


# --- experiment edits -----------------------------------------------------------------------


def test_experiment_labels(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    experiment_id = _experiment_in_state(fresh_demo, "COMPLETED")
    exp = det.get_experiment(experiment_id)
    before = _labels(fresh_demo, experiment_id)
    exp.add_label("contract")
    assert _labels(fresh_demo, experiment_id) == [*before, "contract"]  # PUT appends
    assert exp.labels == {*before, "contract"}
    exp.add_label("contract")  # idempotent
    assert _labels(fresh_demo, experiment_id) == [*before, "contract"]
    exp.remove_label("contract")
    assert _labels(fresh_demo, experiment_id) == before
    exp.remove_label("never-there")
    assert _labels(fresh_demo, experiment_id) == before
    exp.set_labels({"a", "b"})
    assert sorted(_labels(fresh_demo, experiment_id)) == ["a", "b"]  # stored order is random
    assert exp.labels == {"a", "b"}
    config = json.loads(
        fresh_demo.value("SELECT config FROM experiments WHERE id = ?", experiment_id)
    )
    assert sorted(config["labels"]) == ["a", "b"]
    exp.set_labels(set())
    assert _labels(fresh_demo, experiment_id) == []
    assert det.get_experiment(experiment_id).labels is None  # the client maps [] to None


def test_experiment_name_description_notes(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    experiment_id = _experiment_in_state(fresh_demo, "ACTIVE")
    exp = det.get_experiment(experiment_id)
    exp.set_name("renamed by the client")
    exp.set_description("a new description")
    exp.set_notes("# Notes\n\nwritten by the official client")
    name, description, notes, config = fresh_demo.rows(
        "SELECT name, description, notes, config FROM experiments WHERE id = ?", experiment_id
    )[0]
    assert (name, description, notes) == (
        "renamed by the client",
        "a new description",
        "# Notes\n\nwritten by the official client",
    )
    assert json.loads(config)["name"] == "renamed by the client"
    assert (exp.name, exp.description, exp.notes) == (name, description, notes)
    exp.reload()
    assert (exp.name, exp.description, exp.notes) == (name, description, notes)
    with pytest.raises(errors.APIException) as failure:
        exp.set_name("   ")
    assert failure.value.status_code == 400
    assert fresh_demo.value("SELECT name FROM experiments WHERE id = ?", experiment_id) == name


# --- experiment actions ---------------------------------------------------------------------


def _state(demo: Demo, experiment_id: int) -> str:
    return str(demo.value("SELECT state FROM experiments WHERE id = ?", experiment_id))


def test_pause_activate_cancel_kill(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    active = det.get_experiment(_experiment_in_state(fresh_demo, "ACTIVE"))
    active.pause()
    assert _state(fresh_demo, active.id) == "PAUSED"
    active.reload()
    assert active.state == client.ExperimentState.PAUSED
    active.activate()
    assert _state(fresh_demo, active.id) == "ACTIVE"
    active.cancel()
    assert _state(fresh_demo, active.id) == "CANCELED"
    assert (
        fresh_demo.column(
            "SELECT DISTINCT state FROM trials WHERE experiment_id = ?"
            " AND state NOT IN ('COMPLETED', 'CANCELED', 'ERROR')",
            active.id,
        )
        == []
    )
    active.kill()  # a terminal experiment: success, nothing changes
    assert _state(fresh_demo, active.id) == "CANCELED"

    paused = det.get_experiment(_experiment_in_state(fresh_demo, "PAUSED"))
    paused.kill()
    assert _state(fresh_demo, paused.id) == "CANCELED"
    # activate of a terminal experiment: the experiment has no actor (404)
    with pytest.raises(errors.NotFoundException, match=f"experiment '{paused.id}' not found"):
        paused.activate()
    with pytest.raises(errors.APIException, match="experiment in terminal state") as failure:
        paused.pause()
    assert failure.value.status_code == 400


def test_archive_unarchive(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    exp = det.get_experiment(_experiment_in_state(fresh_demo, "COMPLETED"))
    exp.archive()
    assert exp.archived is True
    assert fresh_demo.value("SELECT archived FROM experiments WHERE id = ?", exp.id) == 1
    with pytest.raises(errors.APIException, match="Experiment is already archived."):
        exp.archive()
    exp.unarchive()
    assert fresh_demo.value("SELECT archived FROM experiments WHERE id = ?", exp.id) == 0
    running = det.get_experiment(_experiment_in_state(fresh_demo, "ACTIVE"))
    with pytest.raises(
        errors.APIException, match="Experiment is not in terminal state."
    ) as failure:
        running.archive()
    assert failure.value.status_code == 400
    assert fresh_demo.value("SELECT archived FROM experiments WHERE id = ?", running.id) == 0


def test_move_to_project(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    exp = det.get_experiment(_experiment_in_state(fresh_demo, "COMPLETED"))
    exp.move_to_project("Language", "translation")
    destination = fresh_demo.value("SELECT id FROM projects WHERE name = 'translation'")
    assert exp.project_id == destination
    assert (
        fresh_demo.value("SELECT project_id FROM experiments WHERE id = ?", exp.id) == destination
    )
    exp.reload()
    assert exp.workspace_id == fresh_demo.value("SELECT id FROM workspaces WHERE name = 'Language'")
    with pytest.raises(errors.NotFoundException):
        exp.move_to_project("Language", "no-such-project")


def test_delete_needs_the_owner_or_an_admin(fresh_demo: Demo) -> None:
    experiment_id = int(
        fresh_demo.value(
            "SELECT min(e.id) FROM experiments e JOIN users u ON u.id = e.owner_id"
            " WHERE e.state = 'COMPLETED' AND u.username != 'alice' AND NOT EXISTS"
            " (SELECT 1 FROM model_versions mv JOIN checkpoints c ON c.uuid = mv.checkpoint_uuid"
            " JOIN trials t ON t.id = c.trial_id WHERE t.experiment_id = e.id)"
        )
    )
    trials = fresh_demo.column("SELECT id FROM trials WHERE experiment_id = ?", experiment_id)
    alice = connect(fresh_demo, "alice", "alice-pw")
    with pytest.raises(errors.ForbiddenException):
        alice.get_experiment(experiment_id).delete()
    admin = Determined(fresh_demo.url, user="admin", password="")
    admin.get_experiment(experiment_id).delete()
    assert fresh_demo.rows("SELECT id FROM experiments WHERE id = ?", experiment_id) == []
    marks = ", ".join("?" * len(trials))
    for table in ("trials", "metrics", "trial_logs", "checkpoints"):
        column = "id" if table == "trials" else "trial_id"
        assert (
            fresh_demo.value(f"SELECT count(*) FROM {table} WHERE {column} IN ({marks})", *trials)
            == 0
        )
    with pytest.raises(errors.NotFoundException):
        admin.get_experiment(experiment_id)


def test_kill_trial(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    trial_id = fresh_demo.value("SELECT min(id) FROM trials WHERE state = 'ACTIVE'")
    det.get_trial(trial_id).kill()
    assert fresh_demo.value("SELECT state FROM trials WHERE id = ?", trial_id) == "CANCELED"


# --- checkpoints ----------------------------------------------------------------------------


def test_checkpoint_metadata(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    uuid = fresh_demo.value("SELECT min(uuid) FROM checkpoints WHERE state = 'COMPLETED'")
    stored = json.loads(fresh_demo.value("SELECT metadata FROM checkpoints WHERE uuid = ?", uuid))
    checkpoint = det.get_checkpoint(uuid)
    checkpoint.add_metadata({"owner": "contract", "nested": {"a": [1, 2]}})
    want = {**stored, "owner": "contract", "nested": {"a": [1, 2]}}
    assert (
        json.loads(fresh_demo.value("SELECT metadata FROM checkpoints WHERE uuid = ?", uuid))
        == want
    )
    checkpoint.remove_metadata(["owner"])
    del want["owner"]
    assert (
        json.loads(fresh_demo.value("SELECT metadata FROM checkpoints WHERE uuid = ?", uuid))
        == want
    )
    checkpoint.reload()
    assert checkpoint.metadata == want


def test_checkpoint_delete(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    uuid = fresh_demo.value(
        "SELECT min(c.uuid) FROM checkpoints c WHERE c.state = 'COMPLETED'"
        " AND c.uuid NOT IN (SELECT checkpoint_uuid FROM model_versions)"
    )
    det.get_checkpoint(uuid).delete()
    assert fresh_demo.value("SELECT state FROM checkpoints WHERE uuid = ?", uuid) == "DELETED"
    registered = fresh_demo.value("SELECT min(checkpoint_uuid) FROM model_versions")
    with pytest.raises(errors.APIException, match="registered"):
        det.get_checkpoint(registered).delete()
    assert (
        fresh_demo.value("SELECT state FROM checkpoints WHERE uuid = ?", registered) == "COMPLETED"
    )


# --- workspaces and projects ----------------------------------------------------------------


def test_create_and_delete_workspace(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    created = det.create_workspace("Contract Tests")
    row = fresh_demo.rows(
        "SELECT w.id, u.username, w.archived FROM workspaces w JOIN users u ON u.id = w.user_id"
        " WHERE w.name = 'Contract Tests'"
    )
    assert row == [(created.id, "determined", 0)]
    assert det.get_workspace("Contract Tests").id == created.id
    with pytest.raises(errors.APIException) as failure:
        det.create_workspace("Contract Tests")
    assert failure.value.status_code == 409
    det.delete_workspace("Contract Tests")
    assert fresh_demo.rows("SELECT id FROM workspaces WHERE name = 'Contract Tests'") == []
    with pytest.raises(errors.NotFoundException):
        det.delete_workspace("Contract Tests")


def test_projects_in_a_workspace(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    workspace = det.create_workspace("Projects Here")
    project = workspace.create_project("first", description="made by the client")
    assert (project.name, project.description, project.workspace_id) == (
        "first",
        "made by the client",
        workspace.id,
    )
    assert fresh_demo.rows(
        "SELECT name, description, workspace_id FROM projects WHERE id = ?", project.id
    ) == [("first", "made by the client", workspace.id)]
    assert project.key is not None and len(project.key) == 5

    project.set_name("renamed")
    project.set_description("described")
    project.set_key("ctr1")
    assert (project.name, project.description, project.key) == ("renamed", "described", "CTR1")
    assert fresh_demo.rows(
        "SELECT name, description, key FROM projects WHERE id = ?", project.id
    ) == [("renamed", "described", "CTR1")]

    project.add_note("README", "# hello")
    project.add_note("Plan", "1. write tests")
    assert project.notes == [
        {"name": "README", "contents": "# hello"},
        {"name": "Plan", "contents": "1. write tests"},
    ]
    project.remove_note("README")
    assert json.loads(fresh_demo.value("SELECT notes FROM projects WHERE id = ?", project.id)) == [
        {"name": "Plan", "contents": "1. write tests"}
    ]

    project.archive()
    assert fresh_demo.value("SELECT archived FROM projects WHERE id = ?", project.id) == 1
    with pytest.raises(errors.APIException, match="is archived"):
        project.set_name("again")
    project.unarchive()
    project.reload()
    assert (project.archived, project.name, project.n_experiments) == (False, "renamed", 0)

    assert [p.name for p in workspace.list_projects()] == ["renamed"]
    assert workspace.get_project("renamed").id == project.id
    workspace.delete_project("renamed")
    assert fresh_demo.rows("SELECT id FROM projects WHERE id = ?", project.id) == []
    with pytest.raises(errors.NotFoundException):
        workspace.delete_project("renamed")


# --- models ---------------------------------------------------------------------------------


def _model_row(demo: Demo, name: str) -> tuple[Any, ...]:
    rows = demo.rows(
        "SELECT id, description, metadata, labels, workspace_id, archived FROM models WHERE name = ?",
        name,
    )
    assert len(rows) == 1, rows
    return rows[0]


def test_create_model_and_edit_it(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    model = det.create_model(
        "contract-model", description="from the client", metadata={"stage": "dev", "n": 1},
        labels=["x", "y"], workspace_name="Language",
    )  # fmt: skip
    language = fresh_demo.value("SELECT id FROM workspaces WHERE name = 'Language'")
    model_id, description, metadata, labels, workspace, archived = _model_row(
        fresh_demo, "contract-model"
    )
    assert (model.model_id, model.workspace_id, model.username) == (
        model_id,
        language,
        "determined",
    )
    assert (description, json.loads(metadata), json.loads(labels), workspace, archived) == (
        "from the client", {"stage": "dev", "n": 1}, ["x", "y"], language, 0,
    )  # fmt: skip

    model.set_labels(["prod", "x", "prod"])
    assert json.loads(_model_row(fresh_demo, "contract-model")[3]) == ["prod", "x"]
    model.add_metadata({"owner": "me"})
    model.remove_metadata(["n"])
    assert json.loads(_model_row(fresh_demo, "contract-model")[2]) == {
        "stage": "dev",
        "owner": "me",
    }
    model.set_description("edited")
    assert _model_row(fresh_demo, "contract-model")[1] == "edited"
    model.move_to_workspace("Research")
    assert _model_row(fresh_demo, "contract-model")[4] == fresh_demo.value(
        "SELECT id FROM workspaces WHERE name = 'Research'"
    )
    model.archive()
    assert _model_row(fresh_demo, "contract-model")[5] == 1
    assert det.get_model("contract-model").archived is True
    model.unarchive()
    assert _model_row(fresh_demo, "contract-model")[5] == 0
    model.reload()
    assert (model.description, model.labels, model.metadata) == (
        "edited",
        ["prod", "x"],
        {"stage": "dev", "owner": "me"},
    )
    with pytest.raises(errors.APIException) as failure:
        det.create_model("contract-model")
    assert failure.value.status_code == 409


def test_register_and_edit_model_versions(fresh_demo: Demo) -> None:
    det = connect(fresh_demo)
    model = det.create_model("versions-here")
    uuids = fresh_demo.column(
        "SELECT uuid FROM checkpoints WHERE state = 'COMPLETED' ORDER BY uuid LIMIT 2"
    )
    first = model.register_version(uuids[0])
    second = model.register_version(uuids[1])
    assert (first.model_version, second.model_version) == (1, 2)
    assert first.checkpoint is not None and first.checkpoint.uuid == uuids[0]
    assert fresh_demo.rows(
        "SELECT version, checkpoint_uuid FROM model_versions WHERE model_id = ? ORDER BY version",
        model.model_id,
    ) == [(1, uuids[0]), (2, uuids[1])]
    assert [v.model_version for v in model.list_versions()] == [2, 1]
    latest = model.get_version()
    assert latest is not None and latest.model_version == 2

    first.set_name("first version")
    first.set_notes("notes of the first")
    assert fresh_demo.rows(
        "SELECT name, notes FROM model_versions WHERE model_id = ? AND version = 1", model.model_id
    ) == [("first version", "notes of the first")]
    fetched = model.get_version(1)
    assert fetched is not None and (fetched.name, fetched.notes) == (
        "first version",
        "notes of the first",
    )
    second.delete()
    assert fresh_demo.column(
        "SELECT version FROM model_versions WHERE model_id = ?", model.model_id
    ) == [1]
    with pytest.raises(errors.APIException):
        model.register_version("00000000-0000-0000-0000-000000000000")

    # a model with versions cannot be deleted by someone else; its owner can delete it
    with pytest.raises(errors.ForbiddenException):
        connect(fresh_demo, "alice", "alice-pw").get_model("versions-here").delete()
    model.delete()
    assert fresh_demo.rows("SELECT id FROM models WHERE name = 'versions-here'") == []
    assert fresh_demo.rows("SELECT id FROM model_versions WHERE model_id = ?", model.model_id) == []


# --- test faults (detorm serve --enable-test-faults) ------------------------------------------


def test_injected_per_id_failures_reach_the_client(faulty_demo: Demo) -> None:
    det = connect(faulty_demo, "dana", "dana-pw")  # an admin
    done = faulty_demo.column(
        "SELECT id FROM experiments WHERE state = 'COMPLETED' AND NOT archived AND project_id = 2"
        " ORDER BY id LIMIT 3"
    )
    with faulty_demo.master.database.transaction(write=True) as db:
        db.add(t.FaultRow(ids=[done[1]], message="disk on fire"))
    with pytest.raises(errors.APIException, match="disk on fire") as failure:
        det.get_experiment(done[1]).archive()
    assert failure.value.status_code == 500
    results = bindings.post_ArchiveExperiments(
        det._session, projectId=2, body=bindings.v1ArchiveExperimentsRequest(
            experimentIds=done, projectId=2,
        ),
    ).results  # fmt: skip
    assert [(r.id, r.error) for r in results] == [
        (done[1], "rpc error: code = Internal desc = disk on fire"), (done[0], ""), (done[2], ""),
    ]  # fmt: skip
    assert faulty_demo.rows(
        f"SELECT id, archived FROM experiments WHERE id IN ({', '.join('?' * 3)}) ORDER BY id",
        *done,
    ) == [(done[0], 1), (done[1], 0), (done[2], 1)]
