"""Creating and deleting workspaces, projects, models and model versions at once, through both
APIs against detorm.local (PostWorkspace, PostProject, PostModel, PostModelVersion and their
Delete twins), and the master's refusals as typed errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from syrupy.assertion import SnapshotAssertion

from detorm import WorkspaceState
from detorm.errors import (
    BadRequest,
    CommitError,
    Conflict,
    Forbidden,
    InvalidState,
    InvalidType,
    InvalidValue,
    NotFound,
    NotLoaded,
)
from detorm.local import Seeder
from tests.conftest import NO_HOME
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster
from tests.sdk.faults import _gateway_error


def names(api: Api, resource: str) -> set[str]:
    return {o.name for o in api.list(getattr(api, resource).query(api.session))}


def test_create_a_registry_then_delete_it(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    ws = api(api.Workspace.create("registry", default_compute_pool="", session=api.session))
    assert isinstance(ws, api.Workspace) and ws.name == "registry" and ws.id > 1
    # complete as a GET returns it (PostWorkspace's answer has no counts)
    assert ws.num_projects == 0 and ws.pinned and ws.state == WorkspaceState.UNSPECIFIED
    assert ws.username == "determined" and ws.archived is False
    project = api(api.Project.create(ws, "detection", description="boxes", key="DET"))
    assert isinstance(project, api.Project) and project.workspace_id == ws.id
    assert project.workspace_name == "registry" and project.key == "DET"
    assert project.description == "boxes"
    model = api(api.Model.create(
        "detector", workspace=ws, description="d", labels=["cv", "prod", "cv"],
        metadata={"framework": "torch"}, session=api.session,
    ))  # fmt: skip
    assert isinstance(model, api.Model) and model.workspace_id == ws.id
    assert set(model.labels) == {"cv", "prod"} and model.metadata == {"framework": "torch"}
    assert model.username == "determined" and model.num_versions == 0
    checkpoint = api.list(api.Checkpoint.query(api.session).filter(experiment_id=1))[0]
    version = api(model.register_version(checkpoint, name="first", labels=["best"]))
    assert isinstance(version, api.ModelVersion)
    assert version.version == 1 and version.model_id == model.id
    assert version.checkpoint_uuid == checkpoint.uuid and version.name == "first"
    second = api(model.register_version(checkpoint.uuid, comment="again"))
    assert second.version == 2 and second.comment == "again"
    # the session's identity map holds the created objects
    assert api(api.session.get(api.Workspace, ws.id)) is ws
    assert "registry" in names(api, "Workspace") and "detector" in names(api, "Model")

    api(second.delete())
    versions = api.list(api.ModelVersion.query(api.session).filter(model_id=model.id))
    assert [v.version for v in versions] == [1]
    api(model.delete())
    assert "detector" not in names(api, "Model")
    with pytest.raises(NotFound):
        api(api.session.get(api.Model, model.id))
    api(project.delete())
    with pytest.raises(NotFound):
        api(api.session.get(api.Project, project.id))
    api(ws.delete())
    with pytest.raises(NotFound):
        api(api.session.get(api.Workspace, ws.id))
    assert api(api.session.get(api.Checkpoint, checkpoint.uuid)).uuid == checkpoint.uuid


def test_deleting_a_workspace_deletes_its_projects_and_experiments(
    writer_api: Api, fresh_cluster: Cluster
) -> None:
    api = writer_api
    ws = api(api.Workspace.create("short-lived", session=api.session))
    project = api(api.Project.create(ws, "scratch"))
    experiment = api(api.session.get(api.Experiment, fresh_cluster.experiments["resnet-base"]))
    experiment.project = project
    api(api.session.commit())
    assert api(ws.refresh()).num_projects == 1 and api(project.refresh()).num_experiments == 1
    api(ws.delete())  # the master answers "not completed" while it had projects
    with pytest.raises(NotFound):
        api(api.session.get(api.Workspace, ws.id))
    for child in (project, experiment):  # gone from the master with it
        with pytest.raises(NotFound):
            api(child.refresh())


def test_refusals_are_typed_and_change_nothing(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    before = names(api, "Workspace"), names(api, "Model")
    with pytest.raises(Conflict, match="avoid names equal to other workspaces"):
        api(api.Workspace.create("research", session=api.session))
    research = fresh_cluster.workspaces["research"]
    with pytest.raises(Conflict, match="project name vision is already in use"):
        api(api.Project.create(research, "vision", session=api.session))
    model = api(api.Model.create("only-one", workspace=research, session=api.session))
    with pytest.raises(Conflict):
        api(api.Model.create("only-one", session=api.session))
    holder = api(api.Workspace.create("holder", session=api.session))
    kept = api(api.Model.create("kept", workspace=holder, session=api.session))
    with pytest.raises(BadRequest, match=f"workspace \\({holder.id}\\) contains models"):
        api(holder.delete())
    assert api(holder.refresh()).name == "holder"  # still there
    api(kept.delete())
    api(holder.delete())
    with pytest.raises(NotFound, match="checkpoint"):
        api(model.register_version("7f0c1b9e-0000-4000-8000-000000000000"))
    with pytest.raises(InvalidValue, match="at most 80 bytes"):
        api(api.Workspace.create("w" * 81, session=api.session))
    with pytest.raises(InvalidValue, match="empty or blank"):
        api(api.Project.create(research, "  ", session=api.session))
    with pytest.raises(InvalidValue, match="a Workspace or its id"):
        api(api.Project.create("research", "p", session=api.session))
    api(model.delete())
    assert (names(api, "Workspace"), names(api, "Model")) == before


def test_a_user_may_not_delete_anothers_workspace(
    fresh_cluster: Cluster, environ: dict[str, str]
) -> None:
    for mode in ("sync", "async"):
        with Api(mode, fresh_cluster.url, environ, user="alice", password="secret") as api:
            workspace = api(api.session.get(api.Workspace, fresh_cluster.workspaces["research"]))
            with pytest.raises(Forbidden, match="only admins may delete other user's workspaces"):
                api(workspace.delete())
            own = api(api.Workspace.create(f"alice-{mode}", session=api.session))
            assert own.username == "alice"
            api(own.delete())


# --- creations and deletions through the unit of work -------------------------------------------
class _Recorder:
    """Records every request the session sends (method, path, JSON body) and, when told,
    answers one with a gateway error before it reaches the master (tests/sdk/faults.py)."""

    def __init__(self, inner: Any, fail: str | None = None) -> None:
        self.inner = inner
        self.fail = fail
        self.sent: list[dict[str, Any]] = []

    def _record(self, request: httpx.Request) -> httpx.Response | None:
        body = json.loads(request.content) if request.content else None
        self.sent.append({"method": request.method, "path": request.url.path, "body": body})
        line = f"{request.method} {request.url.path} {request.content.decode()}"
        if self.fail is not None and self.fail in line:
            self.fail = None  # once
            return _gateway_error(502, request)
        return None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        refused = self._record(request)
        return refused if refused is not None else self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        refused = self._record(request)
        if refused is not None:
            return refused
        return await self.inner.handle_async_request(request)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


def _record(api: Api, fail: str | None = None) -> _Recorder:
    client = api.session.transport._client
    recorder = _Recorder(client._transport, fail)
    client._transport = recorder
    return recorder


def _registry_from_scratch(api: Api, cluster: Cluster) -> tuple[Any, ...]:
    """An old project holding 20 experiments; then, pending: a new workspace, a project in it
    and two models, the 20 experiments moved into the new project, the old project deleted."""
    research = cluster.workspaces["research"]
    old = api(api.Project.create(research, "old-stuff", session=api.session))
    with Seeder(cluster.master.database) as s:
        ids = [s.experiment(project=old.id, name=f"run-{i:02}") for i in range(20)]
    experiments = api.list(api.Experiment.query(api.session).filter(project_id=old.id))
    assert sorted(e.id for e in experiments) == sorted(ids)
    ws = api.Workspace(name="registry")
    project = api.Project(name="detection", workspace=ws, key="DTC")
    models = [api.Model(name=f"detector-{n}", workspace=ws, labels=["cv"]) for n in "ab"]
    for obj in (project, *models):
        api.session.add(obj)  # the workspace goes with them
    for experiment in experiments:
        experiment.project = project
    api.session.delete(old)
    return ws, project, models, experiments, old


def _by_level(sent: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # The project and the two models are created concurrently (one level): sorted here.
    return [sent[0], *sorted(sent[1:4], key=json.dumps), *sent[4:]]


def test_a_registry_from_scratch_in_one_commit(
    writer_api: Api, fresh_cluster: Cluster, snapshot: SnapshotAssertion
) -> None:
    api = writer_api
    ws, project, models, experiments, old = _registry_from_scratch(api, fresh_cluster)
    assert ws.is_new and project.is_new and api.session.dirty[:4] == [ws, project, *models]
    assert ws.id is None and project.id is None  # server fields are unset until created
    with pytest.raises(NotLoaded, match="no id until it is created"):
        _ = ws.pk
    recorder = _record(api)
    applied = api(api.session.commit())
    requests = _by_level(recorder.sent)
    assert requests == snapshot
    assert len(requests) == 6  # 4 creations, one bulk move, one deletion
    assert [str(c) for c in applied[:4]] == [
        "create Workspace 'registry'", "create Project 'detection'",
        "create Model 'detector-a'", "create Model 'detector-b'",
    ]  # fmt: skip
    assert str(applied[-1]) == f"delete Project {old.id}" and api.session.dirty == []
    # the objects hold their server fields, and the session knows them
    assert not ws.is_new and ws.id > 1 and project.workspace_id == ws.id
    assert project.key == "DTC" and project.workspace_name == "registry"
    assert all(m.workspace_id == ws.id for m in models)
    assert api(api.session.get(api.Project, project.id)) is project
    assert {e.project_id for e in experiments} == {project.id}
    # the master's state
    fresh = Api(api.mode, fresh_cluster.url, NO_HOME, cache=False)
    with fresh:
        moved = api.list(fresh.Experiment.query(fresh.session).filter(project_id=project.id))
        assert sorted(e.id for e in moved) == sorted(e.id for e in experiments)
        assert api(fresh.session.get(fresh.Workspace, ws.id)).num_projects == 1
        in_ws = api.list(fresh.Model.query(fresh.session).filter(workspace_id=ws.id))
        assert sorted(m.name for m in in_ws) == ["detector-a", "detector-b"]
        with pytest.raises(NotFound):
            api(fresh.session.get(fresh.Project, old.id))


def test_a_failure_in_the_middle_leaves_the_rest_pending(
    writer_api: Api, fresh_cluster: Cluster
) -> None:
    api = writer_api
    ws, project, models, experiments, old = _registry_from_scratch(api, fresh_cluster)
    recorder = _record(api, fail="detection")  # the project's creation
    with pytest.raises(CommitError) as caught:
        api(api.session.commit())
    error = caught.value
    assert [str(c) for c, _ in error.unknown] == ["create Project 'detection'"]
    # the moves into the project that was not created failed, and so did the deletion of the
    # project they were to leave (it would have taken them with it)
    moves = [(c, e) for c, e in error.failed if c.field == "project_id"]
    assert len(moves) == 20 and all(isinstance(e, InvalidState) for _, e in moves)
    assert [str(c) for c, _ in error.failed if c not in dict(moves)] == [f"delete Project {old.id}"]
    assert "did not go through" in str(error)
    assert [str(c) for c in error.applied] == [
        "create Workspace 'registry'", "create Model 'detector-a'", "create Model 'detector-b'",
    ]  # fmt: skip
    assert project.is_new and not ws.is_new and all(not m.is_new for m in models)
    assert api.session.dirty[0] is project and old in api.session.dirty
    # the next commit sends what is pending: the project, the moves into it, the deletion
    recorder.sent.clear()
    api(api.session.commit())
    assert [(r["method"], r["path"]) for r in recorder.sent] == [
        ("POST", f"/api/v1/workspaces/{ws.id}/projects"),
        ("POST", f"/api/v1/projects/{old.id}/experiments/move"),
        ("DELETE", f"/api/v1/projects/{old.id}"),
    ]
    assert not project.is_new and project.workspace_id == ws.id
    assert {e.project_id for e in experiments} == {project.id} and api.session.dirty == []
    assert api(project.refresh()).num_experiments == 20


def test_edits_of_project_keys_and_workspace_settings(writer_api: Api) -> None:
    api = writer_api
    ws = api(api.Workspace.create("settings", session=api.session))
    project = api(api.Project.create(ws, "keyed", key="KEYA"))
    project.key = "KEYB"
    ws.default_compute_pool = "default"
    ws.checkpoint_storage_config = {"type": "shared_fs", "host_path": "/tmp/ckpts"}
    calls = [(p.call.method, p.call.path, p.call.body) for p in api.session.pending()]
    assert calls == [
        ("PATCH", f"/api/v1/projects/{project.id}", {"key": "KEYB"}),
        ("PATCH", f"/api/v1/workspaces/{ws.id}", {
            "checkpointStorageConfig": {"type": "shared_fs", "host_path": "/tmp/ckpts"},
            "defaultComputeResourcePool": "default",
        }),
    ]  # fmt: skip
    api(api.session.commit())
    assert api(project.refresh()).key == "KEYB"
    api(ws.refresh())
    assert ws.default_compute_pool == "default"
    assert ws.checkpoint_storage_config is not None
    assert ws.checkpoint_storage_config["type"] == "shared_fs"
    ws.checkpoint_storage_config = None  # cleared with an empty object
    api(ws.save())
    assert api(ws.refresh()).checkpoint_storage_config is None
    ws.default_aux_pool = "no-such-pool"
    with pytest.raises(CommitError, match="unable to bind a resource pool"):
        api(api.session.commit())
    api(api.session.rollback())


def test_pending_deletions_of_every_kind(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    ws = api(api.Workspace.create("doomed", session=api.session))
    model = api(api.Model.create("doomed-model", workspace=ws, session=api.session))
    checkpoints = api.list(api.Checkpoint.query(api.session).filter(experiment_id=1))
    version = api(model.register_version(checkpoints[0]))
    template = api(
        api.Template.create("doomed-template", {"description": "x"}, session=api.session)
    )
    experiments = [
        api(api.session.get(api.Experiment, fresh_cluster.experiments[n]))
        for n in ("gpt-mini", "bert-base")
    ]
    for obj in (ws, model, version, template, *experiments, *checkpoints):
        api.session.delete(obj)
    plan = [(p.call.method, p.call.path) for p in api.session.pending()]
    nlp = fresh_cluster.projects["nlp"]
    # children first, in the fewest requests: one per project for experiments, one for all
    # checkpoints; then models and projects; then workspaces
    assert plan == [
        ("DELETE", f"/api/v1/models/{model.id}/versions/{version.version}"),
        ("DELETE", "/api/v1/templates/doomed-template"),
        ("DELETE", f"/api/v1/projects/{nlp}/experiments/delete"),
        ("DELETE", "/api/v1/checkpoints"),
        ("DELETE", f"/api/v1/models/{model.id}"),
        ("DELETE", f"/api/v1/workspaces/{ws.id}"),
    ]
    applied = api(api.session.commit())
    assert len(applied) == 6 + len(experiments) + len(checkpoints) - 2
    assert api.session.dirty == []
    for resource, key in ((api.Workspace, ws.id), (api.Model, model.id)):
        with pytest.raises(NotFound):
            api(api.session.get(resource, key))
    assert api.list(api.Template.query(api.session).filter(name="doomed-template")) == []
    for experiment in experiments:  # the master deletes them in the background
        with pytest.raises(NotFound):
            api(experiment.refresh())


def test_new_objects_before_commit(writer_api: Api) -> None:
    api = writer_api
    ws = api.Workspace(name="maybe")
    assert ws.is_new and ws.name == "maybe" and ws != api.Workspace(name="maybe")
    assert len({ws, ws}) == 1  # hashed by identity until created
    assert ws.num_projects is None and ws.state is None  # filled by the master at creation
    with pytest.raises(NotLoaded, match="no resource_pools until it is created"):
        _ = ws.resource_pools  # not a server field: a new workspace has none to read
    project = api.Project(name="later", workspace=ws)
    api.session.add(project)
    assert api.session.dirty == [ws, project]
    assert [str(p) for p in api.session.pending()] == [
        "POST /api/v1/workspaces  <- create Workspace 'maybe'",
        "POST /api/v1/workspaces/(new)/projects  <- create Project 'later'",
    ]
    api.session.delete(project)  # a new object deleted is simply not created
    assert api.session.dirty == [ws]
    api(api.session.rollback())  # pending creations are dropped
    assert api.session.dirty == [] and api(api.session.commit()) == []
    with pytest.raises(InvalidValue, match="a Workspace or its id"):
        api.Project(name="p", workspace="maybe")
    with pytest.raises(InvalidValue, match="cannot be empty or blank"):
        api.Workspace(name=" ")
    existing = api(api.session.get(api.Workspace, 1))
    with pytest.raises(InvalidValue, match="exists on the master already"):
        api.session.add(existing)
    with pytest.raises(InvalidValue, match="cannot be deleted through the session"):
        api.session.delete(api(api.session.whoami()))


def test_new_children_of_existing_parents_are_created_in_them(writer_api: Api) -> None:
    api = writer_api
    ws = api(api.Workspace.create("existing-parent", session=api.session))
    by_object = api.Project(name="by-object", workspace=ws)
    by_id = api.Project(name="by-id", workspace=ws.id)
    model = api.Model(name="in-existing", workspace=ws.id)
    assert by_object.workspace_id == by_id.workspace_id == model.workspace_id == ws.id
    for obj in (by_object, by_id, model):
        api.session.add(obj)
    api(api.session.commit())
    for obj in (by_object, by_id, model):
        assert not obj.is_new
        assert api(api.session.get(type(obj), obj.id)).workspace_id == ws.id


def _creations(recorder: _Recorder) -> list[dict[str, Any]]:
    return [r for r in recorder.sent if r["method"] == "POST" and "/auth/" not in r["path"]]


def _one_body_requests(ws_id: int) -> list[dict[str, Any]]:
    return [
        {"method": "POST", "path": "/api/v1/workspaces", "body": {"name": "one-body"}},
        {"method": "POST", "path": f"/api/v1/workspaces/{ws_id}/projects",
         "body": {"name": "keyless", "description": "d", "workspaceId": ws_id}},
        {"method": "POST", "path": "/api/v1/models",
         "body": {"name": "one-body-model", "description": "", "notes": "", "labels": ["a", "b"],
                  "workspaceId": ws_id}},
    ]  # fmt: skip


def test_create_sends_the_body_a_commit_sends(writer_api: Api) -> None:
    """Workspace/Project/Model.create and session.add + commit build one body (creation_call):
    empty pools and empty metadata are left out (the master reads them as absent), a project
    without a key sends none (the master makes one)."""
    api = writer_api
    recorder = _record(api)
    ws = api(api.Workspace.create("one-body", default_compute_pool="", session=api.session))
    project = api(api.Project.create(ws, "keyless", description="d"))
    model = api(api.Model.create(
        "one-body-model", workspace=ws, labels=("b", "a", "b"), metadata={}, session=api.session
    ))  # fmt: skip
    assert _creations(recorder) == _one_body_requests(ws.id)
    assert project.key and model.metadata == {} and set(model.labels) == {"a", "b"}
    # the same objects made by their constructors and added: the same requests
    for obj in (project, model, ws):
        api(obj.delete())
    recorder.sent.clear()
    again = api.Workspace(name="one-body", default_compute_pool="")
    api.session.add(api.Project(name="keyless", workspace=again, description="d"))
    api.session.add(api.Model(
        name="one-body-model", workspace=again, labels=("b", "a", "b"), metadata={}
    ))  # fmt: skip
    api(api.session.commit())
    committed = _creations(recorder)  # the project and the model concurrently: any order
    assert sorted(committed, key=json.dumps) == sorted(_one_body_requests(again.id), key=json.dumps)


def test_create_refusals_name_the_bad_value_and_send_nothing(writer_api: Api) -> None:
    api = writer_api
    recorder = _record(api)
    ws = api.Workspace(name="not-yet")
    with pytest.raises(NotLoaded, match=r"Project.create\(workspace\): the Workspace 'not-yet'"):
        api(api.Project.create(ws, "orphan", session=api.session))
    with pytest.raises(NotLoaded, match=r"Model.create\(workspace\): the Workspace 'not-yet'"):
        api(api.Model.create("orphan", workspace=ws, session=api.session))
    # PostProject refuses an explicit empty key (ValidateProjectKey); None: the master makes one
    with pytest.raises(InvalidValue, match=r"Project\(key\) cannot be empty"):
        api(api.Project.create(1, "p", key="", session=api.session))
    with pytest.raises(InvalidValue, match=r"Project\(key\) cannot be empty"):
        api.Project(name="p", workspace=1, key="")
    # projects.namemax: 80 characters (not bytes, unlike a workspace's name)
    with pytest.raises(InvalidValue, match="Project.name must be at most 80 characters"):
        api(api.Project.create(1, "p" * 81, session=api.session))
    assert api.Project(name="é" * 80, workspace=1).name == "é" * 80
    with pytest.raises(InvalidType, match=r"Model.metadata must be dict\[str, Any\], not list"):
        api(api.Model.create("m", metadata=[("a", 1)], session=api.session))
    with pytest.raises(InvalidType, match=r"Model.metadata must be dict\[str, Any\], not str"):
        api.Model(name="m", metadata="")
    nan = {"type": "shared_fs", "host_path": float("nan")}
    with pytest.raises(InvalidValue, match=r"checkpoint_storage_config\['host_path'\] .* not nan"):
        api(api.Workspace.create("w", checkpoint_storage_config=nan, session=api.session))
    with pytest.raises(InvalidType, match=r"Workspace.default_aux_pool must be str, not int"):
        api(api.Workspace.create("w", default_aux_pool=7, session=api.session))
    assert _creations(recorder) == []
