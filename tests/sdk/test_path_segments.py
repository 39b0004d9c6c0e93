"""User data in URL paths: each value is exactly one segment of the route it names (``path()``),
checked against the master's decoding (detorm.local's ``request_path`` and route table) and end to
end through the unit of work."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import detorm
from detorm import Agent, Checkpoint, Experiment, Model, ModelVersion, Task
from detorm._plan._call import Call, path
from detorm._plan._loading import single_fetch
from detorm._resources._base import Resource
from detorm.errors import InvalidValue
from detorm.local import Seeder
from detorm.local._app import _find_route
from detorm.local._go import request_path
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster

# (method, template, proto name of {v}, operation): the SDK's templates that take user strings
TEMPLATES = [
    ("PUT", "/api/v1/experiments/{id}/labels/{v}", "label", "PutExperimentLabel"),
    ("DELETE", "/api/v1/experiments/{id}/labels/{v}", "label", "DeleteExperimentLabel"),
    ("GET", "/api/v1/models/{v}", "model_name", "GetModel"),
    ("GET", "/api/v1/models/{v}/versions", "model_name", "GetModelVersions"),
    ("GET", "/api/v1/checkpoints/{v}", "checkpoint_uuid", "GetCheckpoint"),
    ("POST", "/api/v1/checkpoints/{v}/metadata", "checkpoint.uuid", "PostCheckpointMetadata"),
]
HOSTILE = [".", "..", "...", "%", "%2F", "%2E%2E", "?", "#", " ", "naïve ✓", "a+b", "a&b=c", "{v}"]


def reached(call: Call) -> tuple[str | None, dict[str, str]]:
    """The operation and path parameters the master reads from ``call``, as httpx sends it."""
    raw = httpx.Request(call.method, "http://master.test" + call.path).url.raw_path.decode()
    url_path, _ = request_path(raw)
    route, params = _find_route(call.method, url_path.removesuffix("/")[1:].split("/"))
    return (route.op if route is not None else None), params


@settings(derandomize=True, database=None, deadline=None, max_examples=300)
@given(st.text(st.characters(codec="utf-8")))
@example("..")
@example("../../26")
@example("a:b")
@example("a/")
def test_a_value_is_one_segment_of_the_route_it_names(value: str) -> None:
    for method, template, name, operation in TEMPLATES:
        if value == "" or "/" in value:
            with pytest.raises(InvalidValue, match="must be non-empty and hold no '/'"):
                path(template, id=7, v=value)
            continue
        op, params = reached(Call(method, path(template, id=7, v=value)))
        if ":" in value and template.endswith("{v}"):
            assert op is None  # read as a verb no route has: 501, never another route
        else:
            assert (op, params[name]) == (operation, value)


def test_a_value_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(InvalidValue, match="not UTF-8"):
        path("/api/v1/models/{name}", name="\ud800")


@pytest.mark.parametrize("value", HOSTILE)
def test_single_fetches_keep_a_hostile_key_in_one_segment(value: str) -> None:
    fetches: list[tuple[type[Resource], object, str, str]] = [
        (Model, value, "GetModel", "model_name"),
        (Checkpoint, value, "GetCheckpoint", "checkpoint_uuid"),
        (ModelVersion, (value, 3), "GetModelVersion", "model_name"),
        (Task, value, "GetTask", "task_id"),
        (Agent, value, "GetAgent", "agent_id"),
    ]
    for cls, key, operation, name in fetches:
        call, _ = single_fetch(cls, key)
        op, params = reached(call)
        assert (op, params[name]) == (operation, value)


# --- end to end: labels through the unit of work ------------------------------------------------
def labels_by_experiment(session: detorm.Session) -> dict[int, set[str]]:
    return {e.id: set(e.tags) for e in Experiment.query(session).all()}


def other_session(cluster: Cluster, environ: dict[str, str]) -> detorm.Session:
    return detorm.Session(cluster.url, user="determined", password="", environ=environ, cache=False)


# "/", ":" and the attack cannot be one segment: they go through PatchExperiment's labels list.
@pytest.mark.parametrize(
    "label",
    [
        ".",
        "..",
        "%",
        "%2F",
        "?",
        "#",
        " ",
        "naïve ✓",
        "a+b",
        "a&b=c",
        "a/b",
        "/",
        "env:prod",
        "../../1",
    ],
)
def test_a_label_with_url_syntax_is_added_listed_and_removed(
    writer_api: Api, fresh_cluster: Cluster, environ: dict[str, str], label: str
) -> None:
    api = writer_api
    exp = api(api.session.get(api.Experiment, fresh_cluster.experiments["resnet-base"]))
    with other_session(fresh_cluster, environ) as other:
        before = labels_by_experiment(other)
    exp.tags.add(label)
    api(api.session.commit())
    assert set(exp.tags) == {"prod", "cv", label}
    tagged = api(api.Experiment.query(api.session).filter(tags__contains=label).all())
    assert [e.id for e in tagged] == [exp.id]
    with other_session(fresh_cluster, environ) as other:
        assert labels_by_experiment(other) == {**before, exp.id: {"prod", "cv", label}}
    exp.tags.discard(label)
    api(api.session.commit())
    with other_session(fresh_cluster, environ) as other:
        assert labels_by_experiment(other) == before


def test_a_label_cannot_address_another_experiment(
    writer_api: Api, fresh_cluster: Cluster, environ: dict[str, str]
) -> None:
    api = writer_api
    victim = fresh_cluster.experiments["bert-base"]
    attack = f"../../{victim}"  # unescaped, httpx resolves it to /api/v1/experiments/<victim>
    with Seeder(fresh_cluster.master.database) as seed:
        carrier = seed.experiment(project=fresh_cluster.projects["vision"], labels=[attack])
    with other_session(fresh_cluster, environ) as other:
        before = labels_by_experiment(other)
    carrying = api(api.session.get(api.Experiment, carrier))
    target = api(api.session.get(api.Experiment, fresh_cluster.experiments["resnet-base"]))
    carrying.tags.discard(attack)  # a DELETE that would have deleted the victim
    target.tags.add(attack)  # a PUT aimed at the victim
    # Neither label route can carry the label: both go through PatchExperiment's list.
    assert [f"{p.call.method} {p.call.path}" for p in api.session.pending()] == [
        f"PATCH /api/v1/experiments/{carrier}",
        f"PATCH /api/v1/experiments/{target.id}",
    ]
    api(api.session.commit())
    with other_session(fresh_cluster, environ) as other:
        assert labels_by_experiment(other) == {
            **before,
            carrier: set(),
            target.id: {"prod", "cv", attack},
        }
        assert set(other.get(Experiment, victim).tags) == {"prod", "nlp"}
