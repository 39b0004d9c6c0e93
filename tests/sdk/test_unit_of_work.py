"""The unit of work: recorded edits, the flush plan, commit, rollback, partial failures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import detorm
from detorm import Experiment, Model, Note, Project, Workspace
from detorm.errors import CommitError, InvalidValue
from detorm.local import LocalMaster, Seeder
from detorm.local._tables import FaultRow
from tests.conftest import NO_HOME
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster, seed_cluster


def calls(session: detorm.Session) -> list[str]:
    return [f"{p.call.method} {p.call.path}" for p in session.pending()]


def test_assignments_are_validated_at_once(writer: detorm.Session, fresh_cluster: Cluster) -> None:
    exp = writer.get(Experiment, fresh_cluster.experiments["resnet-base"])
    with pytest.raises(InvalidValue, match="name"):
        exp.name = "   "
    with pytest.raises(InvalidValue, match="priority"):
        exp.priority = 0
    with pytest.raises(InvalidValue):
        exp.weight = "heavy"  # type: ignore[assignment]
    with pytest.raises(InvalidValue, match="tag"):
        exp.tags = {"ok", ""}
    with pytest.raises(AttributeError, match="read-only"):
        exp.state = "PAUSED"  # type: ignore[assignment]
    with pytest.raises(InvalidValue, match=r"Experiment.project must be a Project or its id"):
        exp.project = Workspace.query(writer)  # type: ignore[assignment]
    with pytest.raises(AttributeError, match=r"Experiment.trials is read-only"):
        exp.trials = []  # type: ignore[assignment]
    with pytest.raises(AttributeError, match=r"Trial.experiment is read-only"):
        exp.trials.first().experiment = exp  # type: ignore[union-attr]
    with pytest.raises(AttributeError, match="Experiment has no attribute 'projct'"):
        exp.projct = 3
    assert writer.dirty == [] and writer.requests_sent == 3


def test_pending_plan_sends_only_real_changes(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    exp = writer.get(Experiment, fresh_cluster.experiments["resnet-base"])
    exp.name = exp.name  # no change
    assert writer.dirty == []
    exp.description = "new description"
    exp.priority = 42
    exp.tags.add("reviewed")
    exp.tags.discard("cv")
    assert writer.dirty == [exp]
    assert calls(writer) == [
        f"PATCH /api/v1/experiments/{exp.id}",
        f"PUT /api/v1/experiments/{exp.id}/labels/reviewed",
        f"DELETE /api/v1/experiments/{exp.id}/labels/cv",
    ]
    patch = next(iter(writer.pending())).call
    assert patch.body == {
        "id": exp.id,
        "description": "new description",
        "resources": {"priority": 42},
    }
    exp.description = "resnet-base sweep"  # back to the server value: dropped from the plan
    assert calls(writer)[0] == f"PATCH /api/v1/experiments/{exp.id}"
    assert next(iter(writer.pending())).call.body == {"id": exp.id, "resources": {"priority": 42}}


def test_commit_applies_and_objects_hold_server_state(
    writer_api: Api, fresh_cluster: Cluster
) -> None:
    api = writer_api
    exp = api(api.session.get(api.Experiment, fresh_cluster.experiments["resnet-base"]))
    exp.name = "resnet-renamed"
    exp.notes = "## notes"
    exp.tags = {"prod", "reviewed"}
    applied = api(api.session.commit())
    assert {c.field for c in applied} == {"name", "notes", "tags"}
    assert api.session.dirty == []
    again = detorm.Session(
        fresh_cluster.url,
        user="determined",
        password="",
        environ=NO_HOME,
        cache=False,
    )
    fresh = again.get(Experiment, exp.id)
    assert (fresh.name, fresh.notes, set(fresh.tags)) == (
        "resnet-renamed",
        "## notes",
        {"prod", "reviewed"},
    )
    again.close()


def test_tags_are_edited_label_by_label_and_keep_concurrent_edits(
    writer_api: Api, fresh_cluster: Cluster
) -> None:
    api = writer_api
    exp = api(api.session.get(api.Experiment, fresh_cluster.experiments["bert-base"]))
    other = detorm.Session(
        fresh_cluster.url,
        user="determined",
        password="",
        environ=NO_HOME,
        cache=False,
    )
    theirs = other.get(Experiment, exp.id)
    theirs.tags.add("theirs")
    other.commit()
    other.close()
    exp.tags.add("mine")
    exp.tags.add("mine too")
    before = api.session.requests_sent
    api(api.session.commit())
    assert api.session.requests_sent - before == 2  # one PUT per label, sent concurrently
    assert set(exp.tags) == {"prod", "nlp", "mine", "mine too", "theirs"}  # theirs survived
    assert api.session.dirty == []


def test_rollback_and_begin(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    exp = api(api.session.get(api.Experiment, fresh_cluster.experiments["gpt-mini"]))
    exp.name = "changed"
    exp.tags.add("x")
    api(api.session.rollback())
    assert exp.name == "gpt-mini" and set(exp.tags) == {"nlp", "gen"} and api.session.dirty == []
    with pytest.raises(RuntimeError):
        with api.begin():
            exp.description = "lost"
            raise RuntimeError("boom")
    assert exp.description == "gpt-mini sweep" and api.session.dirty == []
    with api.begin():
        exp.description = "kept"
    assert api.session.dirty == []
    assert api(api(api.session.get(api.Experiment, exp.id)).refresh()).description == "kept"
    exp.description = "saved"
    api(exp.save())
    assert api.session.dirty == []


def test_moves_are_one_bulk_request_per_destination(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    nlp = writer.get(Project, fresh_cluster.projects["nlp"])
    vision_rows = Experiment.query(writer).filter(project_id=fresh_cluster.projects["vision"]).all()
    for exp in vision_rows:
        exp.project = nlp
    assert calls(writer) == [
        f"POST /api/v1/projects/{fresh_cluster.projects['vision']}/experiments/move"
    ]
    before = writer.requests_sent
    writer.commit()
    assert writer.requests_sent - before == 1
    assert all(
        e.project_id == nlp.id and e.project is nlp and e.project_name == "nlp" for e in vision_rows
    )
    assert sorted(e.id for e in nlp.experiments) == sorted([*fresh_cluster.experiments.values()])


def test_archive_is_grouped_and_partial_failure_keeps_the_rest_pending(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    done = writer.get(Experiment, fresh_cluster.experiments["resnet-base"])
    running = writer.get(Experiment, fresh_cluster.experiments["vit-small"])
    done.archived = True
    running.archived = True  # the master refuses: not in a terminal state
    done.name = "archived-resnet"
    assert len([c for c in calls(writer) if c.endswith("/experiments/archive")]) == 1
    with pytest.raises(CommitError) as info:
        writer.commit()
    error = info.value
    assert [c.key for c, _ in error.failed] == [running.id]
    assert "terminal" in str(error)
    assert {(c.key, c.field) for c in error.applied} == {(done.id, "archived"), (done.id, "name")}
    assert writer.dirty == [running] and done.archived and running.archived
    # Retrying sends only what failed.
    assert calls(writer) == [
        f"POST /api/v1/projects/{fresh_cluster.projects['vision']}/experiments/archive"
    ]
    writer.rollback(running)
    assert writer.dirty == [] and running.archived is False


@pytest.fixture
def faulty() -> Iterator[tuple[Cluster, detorm.Session]]:
    with LocalMaster(process=False, enable_faults=True) as master:
        cluster = seed_cluster(master)
        with detorm.Session(
            master.url,
            user="determined",
            password="",
            environ=NO_HOME,
            cache=False,
        ) as session:
            yield cluster, session


def test_failed_request_changes_nothing_and_retry_sends_only_it(
    faulty: tuple[Cluster, detorm.Session],
) -> None:
    cluster, session = faulty
    a = session.get(Experiment, cluster.experiments["resnet-base"])
    b = session.get(Experiment, cluster.experiments["bert-base"])
    a.name, b.name = "a-renamed", "b-renamed"
    with Seeder(cluster.master.database) as seed:
        seed.db.add(
            FaultRow(
                method="PATCH",
                path_regex=f"/api/v1/experiments/{b.id}",
                status=500,  # not 503: a refused PATCH is retried (and would succeed)
                message="overloaded",
                remaining=1,
            )
        )
    with pytest.raises(CommitError) as info:
        session.commit()
    assert [(c.key, c.field) for c, _ in info.value.failed] == [(b.id, "name")]
    assert "overloaded" in str(info.value)
    assert session.dirty == [b] and b.name == "b-renamed"
    assert calls(session) == [f"PATCH /api/v1/experiments/{b.id}"]
    session.commit()
    assert session.dirty == []
    assert session.get(Experiment, b.id).refresh().name == "b-renamed"


def test_per_id_failure_inside_a_bulk_response_keeps_only_that_move_pending(
    faulty: tuple[Cluster, detorm.Session],
) -> None:
    cluster, session = faulty
    nlp = session.get(Project, cluster.projects["nlp"])
    moving = Experiment.query(session).filter(project_id=cluster.projects["vision"]).all()
    stuck = moving[0]
    for exp in moving:
        exp.project = nlp
    with Seeder(cluster.master.database) as seed:
        seed.db.add(
            FaultRow(
                path_regex=".*/experiments/move", ids=[stuck.id], message="db locked", remaining=1
            )
        )
    with pytest.raises(CommitError) as info:
        session.commit()
    assert [(c.key, c.field) for c, _ in info.value.failed] == [(stuck.id, "project_id")]
    assert "db locked" in str(info.value)
    assert {c.key for c in info.value.applied} == {e.id for e in moving[1:]}
    assert session.dirty == [stuck] and stuck.project_id == nlp.id  # still pending, visibly
    assert all(e.project is nlp and e not in session.dirty for e in moving[1:])
    assert stuck.refresh().project_id == nlp.id  # the local edit survives a refresh
    assert calls(session) == [
        f"POST /api/v1/projects/{cluster.projects['vision']}/experiments/move"
    ]
    session.commit()
    assert session.dirty == [] and stuck.project_name == "nlp"
    assert {e.id for e in moving} <= {e.id for e in nlp.experiments}


def test_projects_workspaces_models(writer: detorm.Session, fresh_cluster: Cluster) -> None:
    with Seeder(fresh_cluster.master.database) as seed:
        other = seed.workspace("other", owner="determined")
        mine = seed.project(
            "mine", workspace=fresh_cluster.workspaces["research"], owner="determined"
        )
        model_id = seed.model("classifier", labels=["a"], metadata={"k": 1})
    project = writer.get(Project, mine)
    project.description = "language"
    project.notes = (Note("plan", "ship it"),)
    project.workspace = writer.get(Workspace, other)
    model = writer.get(Model, model_id)
    model.labels.add("b")
    model.metadata["owner"] = "alice"  # in-place edits are tracked too
    writer.commit()
    project.refresh()
    model.refresh()
    assert (project.description, project.notes, project.workspace_id) == (
        "language",
        (Note("plan", "ship it"),),
        other,
    )
    assert set(model.labels) == {"a", "b"} and model.metadata == {"k": 1, "owner": "alice"}


def test_bulk_actions_on_queries(writer_api: Api, fresh_cluster: Cluster) -> None:
    api = writer_api
    ids = fresh_cluster.experiments
    query = api.Experiment.query(api.session).filter(
        project_id=fresh_cluster.projects["nlp"], state="COMPLETED"
    )
    assert api(query.count()) == 1
    api(api.session.whoami())
    before = api.session.requests_sent
    result = api(query.archive())
    assert api.session.requests_sent - before == 1
    assert result.succeeded == [ids["bert-base"]] and not result.failed
    assert api(api(api.session.get(api.Experiment, ids["bert-base"])).refresh()).archived
    vits = api.Experiment.query(api.session).filter(name__contains="vit")
    moved = api(vits.move_to(fresh_cluster.projects["nlp"]))
    assert sorted(moved.succeeded) == sorted([ids["vit-small"], ids["vit-large"]])
    paused = api(api.Experiment.query(api.session).filter(name="vit-small").pause())
    assert paused.succeeded == [ids["vit-small"]]
    assert api(api.session.get(api.Experiment, ids["vit-small"])).state == "STATE_PAUSED"
    bert = api(api.session.get(api.Experiment, ids["bert-base"]))
    api(bert.unarchive())
    assert not bert.archived
    api(bert.move_to(fresh_cluster.projects["vision"]))
    assert bert.project_id == fresh_cluster.projects["vision"]
