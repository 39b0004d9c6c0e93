"""What a commit sends, and what it claims, when other sessions write and responses get lost.

* A session sends only its own changes: never a label, key or value another session changed
  since this one read it (every collection the unit of work tracks, generated from the models).
* After a successful commit nothing is dirty and a second commit sends nothing (every editable
  field of every resource, generated from the models).
* A request whose answer was lost has an unknown outcome: it is reported as such, stays pending,
  and the next commit reads the object first and sends only what the master does not hold yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Final

import httpx
import pytest

import detorm
from detorm import (
    Checkpoint,
    Command,
    Experiment,
    Job,
    Model,
    ModelVersion,
    Note,
    Notebook,
    Project,
    Shell,
    Template,
    Tensorboard,
    User,
    Workspace,
)
from detorm._api._sync import RESOURCES
from detorm._resources._base import Resource, TagSet
from detorm.errors import CommitError
from detorm.local import Seeder
from tests.conftest import NO_HOME
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster


def _session(cluster: Cluster) -> detorm.Session:
    return detorm.Session(
        cluster.url, user="determined", password="", environ=NO_HOME, cache=False
    )


def _calls(session: detorm.Session) -> list[str]:
    return [f"{p.call.method} {p.call.path}" for p in session.pending()]


# detorm.local has one resource pool, so a job cannot change pool there (test_tasks.py checks
# the request, and that the master's refusal leaves the edit pending) and a workspace's pools
# cannot change either (test_rp_bindings.py tests them against a mock master).
_ONE_POOL: Final = {("Job", "resource_pool"), ("Workspace", "resource_pools")}


def _collection_fields() -> list[tuple[type[Resource], str]]:
    """Every field the unit of work tracks as a collection: tag sets and editable dicts."""
    found = []
    for resource in RESOURCES:
        for name, info in resource.model_fields.items():
            is_dict = getattr(info.annotation, "__origin__", None) is dict
            if info.annotation is TagSet or (is_dict and name in resource._editable):
                found.append((resource, name))
    return [(r, n) for r, n in found if (r.__name__, n) not in _ONE_POOL]


@pytest.fixture
def registry(fresh_cluster: Cluster) -> dict[type[Resource], Any]:
    """A key of one object of each editable resource in the fresh cluster."""
    trial = fresh_cluster.trials["resnet-base"][0]
    with Seeder(fresh_cluster.master.database) as seed:
        uuid = seed.checkpoint(trial, total_batches=250, metadata={"seen": 1, "gone": 2})
        model = seed.model("classifier", labels=["seen", "gone"], metadata={"seen": 1, "gone": 2})
        version = seed.model_version(
            model, uuid, labels=["seen", "gone"], metadata={"seen": 1, "gone": 2}
        )
        own_workspace = seed.workspace("own", owner="determined")
        own_project = seed.project("own", workspace=own_workspace, owner="determined")
        other_workspace = seed.workspace("elsewhere", owner="determined")
        seed.project("spare", workspace=other_workspace, owner="determined")
    with _session(fresh_cluster) as s:
        launched: dict[type[Resource], Any] = {
            Template: Template.create("registry", {"seen": 1, "gone": 2}, session=s).name,
            Command: Command.launch("sleep 600", session=s).id,
            Shell: Shell.launch(session=s).id,
            Notebook: Notebook.launch(session=s).id,
            Tensorboard: Tensorboard.launch(experiments=[1], session=s).id,
        }
        launched[Job] = s.get(Command, launched[Command]).job_id
        launched[User] = s.whoami().id
    return {
        **launched,
        Experiment: fresh_cluster.experiments["vit-small"],
        Checkpoint: uuid,
        Model: model,
        ModelVersion: (model, version),
        Project: own_project,
        Workspace: own_workspace,
    }


# --- 1. concurrent sessions ------------------------------------------------------------------
def test_the_audit_scenario_does_not_resurrect_a_label(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    a = writer.get(Experiment, fresh_cluster.experiments["bert-base"])
    with _session(fresh_cluster) as other:
        b = other.get(Experiment, a.id)
        b.tags.add("theirs")
        other.commit()
        a.tags.add("first")
        writer.commit()
        b.tags.discard("theirs")
        other.commit()
    a.tags.add("second")
    a.description = "described"
    assert not any("theirs" in call for call in _calls(writer))
    writer.commit()
    assert writer.dirty == [] and _calls(writer) == []  # nothing of theirs to put back
    with _session(fresh_cluster) as check:
        assert set(check.get(Experiment, a.id).tags) == {"prod", "nlp", "first", "second"}


@pytest.mark.parametrize(
    ("resource", "name"), _collection_fields(), ids=lambda v: getattr(v, "__name__", v)
)
def test_a_commit_sends_only_this_sessions_collection_edits(
    fresh_cluster: Cluster, registry: dict[type[Resource], Any], resource: type[Resource], name: str
) -> None:
    """Another session adds an element and removes one this session saw; this session adds its
    own: the master ends with all three edits, whatever this session saw before."""
    key = registry[resource]
    with _session(fresh_cluster) as mine, _session(fresh_cluster) as theirs:
        obj = mine.get(resource, key)
        before = obj.__dict__[name]
        assert before, f"{resource.__name__}.{name} needs elements for this test"
        seen = next(iter(before))
        other = theirs.get(resource, key)
        _add(other, name, "theirs")
        _remove(other, name, seen)
        theirs.commit()
        _add(obj, name, "mine")
        mine.commit()
        expected = (set(before) - {seen}) | {"theirs", "mine"}
        with _session(fresh_cluster) as check:
            assert set(check.get(resource, key).__dict__[name]) == expected
        assert mine.dirty == []


def _add(obj: Resource, name: str, element: str) -> None:
    collection = obj.__dict__[name]
    if isinstance(collection, TagSet):
        collection.add(element)
    else:
        collection[element] = element


def _remove(obj: Resource, name: str, element: str) -> None:
    collection = obj.__dict__[name]
    if isinstance(collection, TagSet):
        collection.discard(element)
    else:
        del collection[element]


def test_a_label_both_sessions_remove_is_not_put_back(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    mine = writer.get(Experiment, fresh_cluster.experiments["gpt-mini"])
    with _session(fresh_cluster) as other:
        theirs = other.get(Experiment, mine.id)
        theirs.tags.discard("gen")
        other.commit()
    mine.tags.discard("gen")
    mine.tags.add("new")
    writer.commit()
    assert writer.dirty == [] and writer.pending().calls == ()
    with _session(fresh_cluster) as check:
        assert set(check.get(Experiment, mine.id).tags) == {"nlp", "new"}


# --- 2. nothing stays dirty ------------------------------------------------------------------
# The session's user is not an admin: a user's activity, admin flag and agent user and group are
# an admin's to change (test_users_writes.py edits them as one).
_ADMIN_ONLY: Final = {
    ("User", n) for n in ("active", "admin", "agent_uid", "agent_gid", "agent_user", "agent_group")
}


def _editable_fields() -> list[tuple[type[Resource], str]]:
    return [
        (r, n)
        for r in RESOURCES
        for n in sorted(r._editable)
        if (r.__name__, n) not in _ONE_POOL | _ADMIN_ONLY
    ]


def _new_value(obj: Resource, name: str, others: dict[str, int]) -> Any:
    """A value different from the current one that the master accepts, from the field's type
    (and the master's range rules where it has them)."""
    current = obj.__dict__[name]
    annotation = type(obj).model_fields[name].annotation
    if name in others:
        return others[name]
    if name == "priority":
        return (current or 0) % 98 + 1
    if name == "key":
        return "EDKEY"  # a project key: at most 5 letters or digits, unique
    if name in ("default_compute_pool", "default_aux_pool"):
        return "" if current else "default"  # detorm.local's one pool
    if name == "checkpoint_storage_config":
        return {"type": "shared_fs", "host_path": "/tmp/edited"}
    if name in ("weight", "max_slots"):
        return (current or 1) + 1
    if annotation is bool:
        return not current
    if annotation is str:
        return f"{current}-edited"
    if annotation is TagSet:
        return TagSet([*current, "edited"])
    if getattr(annotation, "__origin__", None) is dict:
        return {**current, "edited": True}
    if name == "notes" and isinstance(current, tuple):
        return (*current, Note("edited", "a new note"))
    raise AssertionError(f"no rule to change {type(obj).__name__}.{name}: add one")


@pytest.mark.parametrize(
    ("resource", "name"), _editable_fields(), ids=lambda v: getattr(v, "__name__", v)
)
def test_after_a_commit_nothing_is_dirty_and_nothing_is_sent_again(
    writer_api: Api,
    fresh_cluster: Cluster,
    registry: dict[type[Resource], Any],
    resource: type[Resource],
    name: str,
) -> None:
    api = writer_api
    key = registry[resource]
    if (resource, name) == (Experiment, "archived"):
        key = fresh_cluster.experiments["resnet-base"]  # only a terminal experiment archives
    obj = api(api.session.get(getattr(api, resource.__name__), key))
    with _session(fresh_cluster) as probe:
        spare_workspace = next(w for w in Workspace.query(probe) if w.name == "elsewhere")
        spare_project = next(iter(spare_workspace.projects))
    others = {"project_id": spare_project.id, "workspace_id": spare_workspace.id}
    value = _new_value(obj, name, others)
    setattr(obj, name, value)
    assert api.session.dirty == [obj]
    api(api.session.commit())
    assert api.session.dirty == [] and api.session.pending().calls == ()
    before = api.session.requests_sent
    assert api(api.session.commit()) == []
    assert api.session.requests_sent == before
    with _session(fresh_cluster) as check:
        stored = check.get(resource, key).__dict__[name]
        assert (set(stored) if isinstance(stored, TagSet) else stored) == (
            set(value) if isinstance(value, TagSet) else value
        )


# --- 3. lost responses -----------------------------------------------------------------------
class LoseResponses(httpx.BaseTransport):
    """The master handles the request, then the connection drops before its answer arrives."""

    def __init__(self, inner: httpx.BaseTransport, lose: Callable[[httpx.Request], bool]) -> None:
        self.inner, self.lose, self.lost = inner, lose, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.lose(request):
            return response
        response.read()
        response.close()
        self.lost += 1
        raise httpx.ReadError("connection reset by peer", request=request)


@pytest.fixture
def losing(writer: detorm.Session) -> Iterator[Callable[[Callable[[httpx.Request], bool]], None]]:
    client = writer.transport._client
    real = client._transport

    def lose(which: Callable[[httpx.Request], bool]) -> None:
        client._transport = LoseResponses(real, which)

    yield lose
    client._transport = real


def test_a_lost_answer_is_unknown_and_the_next_commit_only_checks(
    writer: detorm.Session,
    fresh_cluster: Cluster,
    losing: Callable[[Callable[[httpx.Request], bool]], None],
) -> None:
    nlp = writer.get(Project, fresh_cluster.projects["nlp"])
    moved = writer.get(Experiment, fresh_cluster.experiments["resnet-base"])
    renamed = writer.get(Experiment, fresh_cluster.experiments["vit-large"])
    refused = writer.get(Experiment, fresh_cluster.experiments["vit-small"])
    moved.project = nlp
    renamed.name = "renamed"
    refused.archived = True  # the master refuses: not terminal
    losing(lambda r: r.method in ("PATCH", "POST") and not r.url.path.endswith("/archive"))
    with pytest.raises(CommitError) as info:
        writer.commit()
    error = info.value
    assert {(c.key, c.field) for c, _ in error.unknown} == {
        (moved.id, "project_id"), (renamed.id, "name")
    }  # fmt: skip
    assert [(c.key, c.field) for c, _ in error.failed] == [(refused.id, "archived")]
    assert error.applied == []
    assert "UNKNOWN" in str(error) and "FAILED" in str(error)
    assert set(writer.dirty) == {moved, renamed, refused}
    # The next commit reads the two objects first; the master has both changes: only the
    # refused archive is sent again.
    losing(lambda r: False)
    plan = writer.pending()
    assert set(plan.reads) == {moved, renamed}
    writer.rollback(refused)
    sent: list[str] = []
    client = writer.transport._client
    real = client._transport
    client._transport = _Recording(real, sent)
    writer.commit()
    client._transport = real
    assert sent == [
        f"GET /api/v1/experiments/{moved.id}",
        f"GET /api/v1/experiments/{renamed.id}",
    ] or sent == [f"GET /api/v1/experiments/{renamed.id}", f"GET /api/v1/experiments/{moved.id}"]
    assert writer.dirty == [] and moved.project_name == "nlp" and renamed.name == "renamed"


class _Recording(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, sent: list[str]) -> None:
        self.inner, self.sent = inner, sent

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(f"{request.method} {request.url.path}")
        return self.inner.handle_request(request)


def test_an_unknown_change_the_master_did_not_apply_is_sent_again(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    exp = writer.get(Experiment, fresh_cluster.experiments["bert-base"])
    exp.description = "new"
    client = writer.transport._client
    real = client._transport

    def gateway_timeout(request: httpx.Request) -> httpx.Response:
        return httpx.Response(504, json={"error": {"code": 4, "reason": "DeadlineExceeded"}})

    client._transport = httpx.MockTransport(gateway_timeout)
    with pytest.raises(CommitError) as info:
        writer.commit()
    client._transport = real
    assert [c.field for c, _ in info.value.unknown] == ["description"]
    assert [str(p.call) for p in writer.pending()] == [
        f'PATCH /api/v1/experiments/{exp.id} {{"description":"new","id":{exp.id}}}'
    ]
    writer.commit()
    assert writer.dirty == []
    with _session(fresh_cluster) as check:
        assert check.get(Experiment, exp.id).description == "new"


def test_a_label_sent_in_the_whole_list_keeps_concurrent_labels(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    """A label the label routes cannot carry ("a/b") replaces the whole list: read just before."""
    mine = writer.get(Experiment, fresh_cluster.experiments["resnet-wide"])
    with _session(fresh_cluster) as other:
        theirs = other.get(Experiment, mine.id)
        theirs.tags.add("theirs")
        theirs.tags.discard("cv")
        other.commit()
    mine.tags.add("team/vision")
    plan = writer.pending()
    assert list(plan.reads) == [mine] and [p.call.method for p in plan] == ["PATCH"]
    writer.commit()
    assert writer.dirty == [] and set(mine.tags) == {"theirs", "team/vision"}
    with _session(fresh_cluster) as check:
        assert set(check.get(Experiment, mine.id).tags) == {"theirs", "team/vision"}
