"""Notebook and terminal display: short reprs, Jupyter HTML tables, no request sent by either,
no secret shown, every text escaped."""

from __future__ import annotations

import re
from typing import Any

import pytest

import detorm
import detorm.aio
from detorm import ExperimentState, TrialState
from detorm._plan._edits import BulkResult
from detorm._resources._base import Resource, construct
from tests.sdk.apis import Api
from tests.sdk.conftest import Cluster

# Every resource class of both APIs.
CLASSES: list[type[Resource]] = sorted(
    {
        getattr(module, name)
        for module in (detorm, detorm.aio)
        for name in dir(module)
        if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), Resource)
        and getattr(module, name) is not Resource
    },
    key=lambda cls: (cls.__module__, cls.__name__),
)  # fmt: skip


def displays(obj: Any) -> list[str]:
    """Every way a terminal or a notebook shows ``obj``."""
    shown = [repr(obj), str(obj)]
    if hasattr(obj, "_repr_html_"):
        shown.append(obj._repr_html_())
    return shown


def sent_while_displaying(session: Any, *objects: Any) -> int:
    before = session.requests_sent
    for obj in objects:
        displays(obj)
    return int(session.requests_sent - before)


# --- reprs: declared per class, rendered once ---------------------------------------------------
def test_every_resource_class_declares_the_fields_its_repr_shows() -> None:
    assert len(CLASSES) >= 2 * 17  # the sync and async classes of every resource
    for cls in CLASSES:
        declared = cls._repr_fields
        assert declared, cls
        assert set(declared) <= set(cls.model_fields), (cls, declared)
        assert cls._key_field in declared, cls  # the identity comes first in what is shown
        assert "__repr__" not in vars(cls) and "_repr_html_" not in vars(cls), cls


def test_the_short_repr_names_the_class_and_its_identifying_fields() -> None:
    exp = construct(
        detorm.Experiment,
        {"id": 155, "name": "mnist", "state": ExperimentState.COMPLETED, "description": "x"},
        None,
    )
    assert repr(exp) == str(exp) == "Experiment(id=155, name='mnist', state=COMPLETED)"
    trial = construct(
        detorm.aio.Trial, {"id": 12, "experiment_id": 155, "state": TrialState.ACTIVE}, None
    )
    assert repr(trial) == "Trial(id=12, experiment_id=155, state=ACTIVE)"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_objects_with_unloaded_fields_display_without_raising(cls: type[Resource]) -> None:
    key = "abc-1" if cls.model_fields[cls._key_field].annotation == "str" else 7
    only_key = construct(cls, {cls._key_field: key}, None)
    assert repr(only_key) == f"{cls.__name__}({cls._key_field}={key!r})"
    html = only_key._repr_html_()
    assert "not loaded: " in html and html.count("<tr>") == 2  # the header, the key
    empty = construct(cls, {}, None)  # nothing loaded at all (not even the key)
    assert repr(empty) == f"{cls.__name__}(new)"
    assert "<table" in empty._repr_html_()


def test_new_objects_say_so_and_show_what_their_creation_will_send() -> None:
    ws = detorm.Workspace(name="scratch")
    assert repr(ws) == "Workspace(new, name='scratch')"
    assert repr(detorm.aio.Project(name="q", workspace=ws)) == "Project(new, name='q')"
    model = detorm.Model(name="m", labels={"a"})
    html = model._repr_html_()
    assert "new: created on the master by session.add() then session.commit()" in html
    assert "not loaded: id," in html  # server fields are unknown until the commit
    assert "Model(new, name=&#x27;m&#x27;)" in html


def test_reprs_of_objects_read_from_the_master_send_no_request(api: Api, cluster: Cluster) -> None:
    session = api.session
    exp = api(session.get(api.of(detorm.Experiment), cluster.experiments["resnet-base"]))
    trial = api.list(exp.trials)[0]
    objects: list[Any] = [
        exp, trial, *api.list(trial.checkpoints), *api.list(api.of(detorm.Workspace).query(session)),
        *api.list(api.of(detorm.Project).query(session)), *api.list(api.of(detorm.User).query(session)),
        *api.list(api.of(detorm.ResourcePool).query(session)),
        *api.list(api.of(detorm.Agent).query(session)),
    ]  # fmt: skip
    assert {type(o).__name__ for o in objects} >= {
        "Experiment", "Trial", "Checkpoint", "Workspace", "Project", "User", "ResourcePool",
        "Agent",
    }  # fmt: skip
    assert sent_while_displaying(session, *objects) == 0
    assert repr(exp) == f"Experiment(id={exp.id}, name='resnet-base', state=COMPLETED)"
    assert repr(trial) == f"Trial(id={trial.id}, experiment_id={exp.id}, state={trial.state.short})"
    for obj in objects:
        assert repr(obj).startswith(f"{type(obj).__name__}({obj._key_field}=")
    # the experiment's table holds every loaded field, in declaration order, and names the rest
    html = exp._repr_html_()
    cells = re.findall(r"<tr><td>([a-z_]+)</td>", html)
    assert cells == [name for name in type(exp).model_fields if name in exp.loaded_fields]
    missing = [name for name in type(exp).model_fields if name not in exp.loaded_fields]
    assert missing and html.endswith(
        f"<div><small>not loaded: {', '.join(missing)}</small></div></div>"
    )


# --- HTML: escaped, and no secret ---------------------------------------------------------------
SCRIPT = "<script>alert('x')</script>"


def test_every_text_of_an_html_view_is_escaped(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    exp = writer.get(detorm.Experiment, fresh_cluster.experiments["resnet-base"])
    exp.name = SCRIPT
    exp.tags.add("<b>")
    query = detorm.Experiment.query(writer).filter(name=SCRIPT)
    views = [
        exp._repr_html_(), writer.pending()._repr_html_(), query._repr_html_(),
        query.explain()._repr_html_(), BulkResult("archive", {1: "", 2: SCRIPT})._repr_html_(),
    ]  # fmt: skip
    for html in views:
        assert "<script>" not in html and "<b>" not in html
        assert "&lt;script&gt;" in html
    assert "Experiment(id=" in repr(exp) and repr(exp).endswith(
        f"name={SCRIPT!r}, state=COMPLETED)"
    )


def test_secrets_never_show(writer: detorm.Session) -> None:
    storage = {"type": "s3", "bucket": "b", "access_key": "AKIA-SECRET-1", "secret_key": "sk-2",
               "endpoint_url": "https://user:pw-3@s3.example.com"}  # fmt: skip
    ws = construct(
        detorm.Workspace, {"id": 4, "name": "w", "checkpoint_storage_config": storage}, None
    )
    hook = construct(
        detorm.Webhook,
        {"id": 1, "name": "slack", "url": "https://hooks.slack.com/services/T0/B0/hook-token-4"},
        None,
    )
    shown = "\n".join([*displays(ws), *displays(hook), *displays(writer)])
    token = writer.transport.token
    assert token is not None
    for secret in ("AKIA-SECRET-1", "sk-2", "pw-3", "hook-token-4", token.reveal()):
        assert secret not in shown
    assert "https://hooks.slack.com/***" in shown and "https://***@s3.example.com" in shown
    assert "&#x27;bucket&#x27;: &#x27;b&#x27;" in ws._repr_html_()  # the rest is shown


# --- queries, plans, streams, bulk results, sessions --------------------------------------------
def test_a_query_displays_its_plan_without_running(api: Api, cluster: Cluster) -> None:
    Experiment = api.of(detorm.Experiment)
    query = Experiment.query(api.session).filter(state="ACTIVE").order_by("-start_time")[:5]
    before = api.session.requests_sent
    html = query._repr_html_()
    assert "GET" in html and "/api/v1/experiments?states=STATE_ACTIVE" in html
    assert "not run: a display sends no request" in html
    assert re.match(r"<(Async)?ExperimentQuery where state exact", repr(query))
    # a query the master cannot answer still displays, saying why
    unplanned = api.of(detorm.Checkpoint).query(api.session)._repr_html_()
    assert (
        "cannot be planned: the master lists checkpoints per experiment or per trial" in unplanned
    )
    assert api.session.requests_sent == before
    assert len(api(query.all())) == 1  # rows only when asked
    assert api.session.requests_sent > before


def test_a_metrics_stream_displays_what_it_reads_without_reading(
    api: Api, cluster: Cluster
) -> None:
    trials = cluster.trials["resnet-base"]
    stream = api.session.metrics(trials, "validation")
    assert sent_while_displaying(api.session, stream) == 0
    assert (
        repr(stream) == f"{type(stream).__name__}(trials={trials}, group='validation', cache=True)"
    )
    html = stream._repr_html_()
    ids = "&amp;".join(f"trialIds={t}" for t in sorted(trials))
    assert f"GET /api/v1/trials/metrics/trial_metrics?{ids}&amp;group=validation" in html
    by_query = api.session.metrics(api.of(detorm.Trial).query(api.session).filter(id=trials[0]))
    assert re.search(
        r"<td>trials</td><td>&lt;(Async)?TrialQuery where id exact", by_query._repr_html_()
    )
    profiler = api.of(detorm.Trial)
    samples = api(api.session.get(profiler, trials[0])).profiler_metrics(groups="gpu")
    assert (
        repr(samples) == f"{type(samples).__name__}(trial={trials[0]}, names=None, groups=['gpu'])"
    )
    assert sent_while_displaying(api.session, by_query, samples) == 0


def test_the_pending_plan_displays_each_call_and_its_changes(
    writer: detorm.Session, fresh_cluster: Cluster
) -> None:
    assert "pending: nothing to send" in writer.pending()._repr_html_()
    exp = writer.get(detorm.Experiment, fresh_cluster.experiments["resnet-base"])
    exp.description = "better"
    exp.tags.add("reviewed")
    writer.add(detorm.Workspace(name="fresh"))
    plan = writer.pending()
    before = writer.requests_sent
    html = plan._repr_html_()
    assert writer.requests_sent == before
    assert repr(plan) == "<FlushPlan: 3 call(s)>"
    assert "pending: 3 call(s)" in html
    assert f"/api/v1/experiments/{exp.id}/labels/reviewed" in html
    assert "description &#x27;resnet-base sweep&#x27; -&gt; &#x27;better&#x27;" in html
    assert "POST" in html and "create Workspace" in html


def test_a_bulk_result_displays_each_outcome() -> None:
    result = BulkResult("archive", {3: "", 1: "", 2: "experiment is not terminal"})
    html = result._repr_html_()
    assert "archive: 2 ok, 1 failed" in html
    assert re.findall(r"<tr><td>(\d)</td><td>([^<]*)</td></tr>", html) == [
        ("1", "ok"), ("2", "failed: experiment is not terminal"), ("3", "ok"),
    ]  # fmt: skip


def test_a_session_displays_its_master_and_user(api: Api, cluster: Cluster) -> None:
    html = api.session._repr_html_()
    assert f"<td>master</td><td>{cluster.url}</td>" in html
    assert "<td>user</td><td>determined</td>" in html
    assert "<td>disk cache</td><td>on</td>" in html


def test_long_tables_are_cut(api: Api) -> None:
    result = BulkResult("kill", {i: "" for i in range(1, 121)})
    html = result._repr_html_()
    assert html.count("<tr>") == 1 + 50 and "... 70 more" in html
