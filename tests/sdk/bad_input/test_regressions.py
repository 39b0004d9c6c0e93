"""The malformed inputs named in the issue, and those the generated tests found: each was
accepted, escaped untyped, or reached the master before; each is now refused (or answered) at
once."""

from __future__ import annotations

import math
import re
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

import pytest

import detorm
import detorm.aio
from detorm import Checkpoint, Experiment, Model, Trial, Workspace, hp
from detorm.errors import (
    ConfigurationError,
    InvalidAttribute,
    InvalidType,
    InvalidValue,
    QueryError,
)
from tests.sdk.apis import Mode

from .conftest import World


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def api_module(mode: Mode) -> ModuleType:
    return detorm if mode == "sync" else detorm.aio


def session_class(mode: Mode) -> Any:
    return detorm.Session if mode == "sync" else detorm.aio.AsyncSession


def open_session(mode: Mode, environ: dict[str, str], **options: Any) -> Any:
    return session_class(mode)("http://127.0.0.1:9", token="t", environ=environ, **options)


# --- session options ---------------------------------------------------------------------------
def test_retry_that_is_not_a_retry_policy(mode: Mode, environ: dict[str, str]) -> None:
    with pytest.raises(InvalidType, match="retry must be a detorm.RetryPolicy or None, not str"):
        open_session(mode, environ, retry="x")


@pytest.mark.parametrize("timeout", [-1, 0, math.nan, math.inf])
def test_timeout_that_cannot_work(mode: Mode, environ: dict[str, str], timeout: float) -> None:
    with pytest.raises(ConfigurationError, match="timeout must be a"):
        open_session(mode, environ, timeout=timeout)


def test_timeout_of_the_wrong_type(mode: Mode, environ: dict[str, str]) -> None:
    with pytest.raises(InvalidType, match="timeout must be a number, not str"):
        open_session(mode, environ, timeout="abc")
    with pytest.raises(InvalidType, match="timeout"):
        api_module(mode).connect("http://127.0.0.1:9", token="t", timeout="abc")


def test_cache_neither_bool_nor_path(mode: Mode, environ: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(InvalidType, match="cache must be True, False or a directory path"):
        open_session(mode, environ, cache=123)
    with pytest.raises(ConfigurationError, match="names no directory"):
        open_session(mode, environ, cache="")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(ConfigurationError, match="is not a directory"):
        open_session(mode, environ, cache=tmp_path / "a-file")


def test_verify_with_a_missing_ca_file(mode: Mode, environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="no CA bundle file or directory"):
        open_session(mode, environ, verify="/missing.pem")


def test_max_connections(mode: Mode, environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="max_connections"):
        open_session(mode, environ, max_connections=0)
    with pytest.raises(InvalidType, match="max_connections must be an int, not str"):
        open_session(mode, environ, max_connections="x")


@pytest.mark.parametrize("master", ["", "http://host\x00name", "http://a\x01b"])
def test_malformed_master_urls(mode: Mode, environ: dict[str, str], master: str) -> None:
    with pytest.raises(ConfigurationError, match="invalid master URL"):
        session_class(mode)(master, token="t", environ=environ)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"user": "u", "password": b"hunter2"}, "password must be a str or None, not bytes"),
        ({"token": b"hunter2"}, "token must be a str or None, not bytes"),
        ({"master": b"http://u:hunter2@host"}, "master must be a str or None, not bytes"),
        ({"environ": {"DET_PASS": b"hunter2"}}, "environ['DET_PASS'] must be a str, not bytes"),
    ],
)
def test_secrets_of_the_wrong_type_are_not_shown(
    mode: Mode, environ: dict[str, str], options: dict[str, object], named: str
) -> None:
    options = {"master": "http://127.0.0.1:9", "environ": environ, **options}
    with pytest.raises(InvalidType) as info:
        session_class(mode)(**options)
    assert named in str(info.value) and "hunter2" not in str(info.value)


def test_retry_policy_fields() -> None:
    with pytest.raises(InvalidType, match="RetryPolicy.backoff must be a number"):
        detorm.RetryPolicy(backoff="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="RetryPolicy.retries"):
        detorm.RetryPolicy(retries=-1)
    with pytest.raises(ConfigurationError, match="RetryPolicy.deadline"):
        detorm.RetryPolicy(deadline=math.inf)


# --- queries -----------------------------------------------------------------------------------
def test_progress_compared_with_infinity(world: World) -> None:
    before = world.session.requests_sent
    with pytest.raises(QueryError, match="Experiment.progress must be a finite number"):
        query = world.api.Experiment.query(world.session)
        world.api(query.filter(progress__gt=float("inf")).first())
    assert world.session.requests_sent == before


def test_values_of_the_wrong_type_in_filters(mode: Mode) -> None:
    experiments = api_module(mode).Experiment.query(None)
    with pytest.raises(InvalidType, match="Experiment.id must be an int, not str"):
        experiments.filter(id="3")
    with pytest.raises(InvalidType, match="compares the whole set"):
        experiments.filter(tags="a")


def test_ids_beyond_int32_in_filters(mode: Mode) -> None:
    with pytest.raises(QueryError, match=r"Experiment.id must be an int in -2147483648\.\."):
        api_module(mode).Experiment.query(None).filter(id__gt=2**31)


def test_hyperparameters_compared_with_a_bool(world: World) -> None:
    before = world.session.requests_sent
    with pytest.raises(InvalidType, match="hp.lr must be a number or a str, not bool"):
        query = world.api.Experiment.query(world.session)
        world.api(query.filter(hp.lr == False).first())  # noqa: E712
    assert world.session.requests_sent == before


def test_ordering_experiments_by_run_metadata(mode: Mode) -> None:
    with pytest.raises(QueryError, match="Experiment cannot be ordered by run metadata"):
        api_module(mode).Experiment.query(None).order_by("metadata.team")


def test_index_past_the_end_of_an_in_memory_listing(world: World) -> None:
    api = world.api
    workspaces = api.Workspace.query(world.session)
    with pytest.raises(IndexError):
        api(workspaces[50])
    with pytest.raises(IndexError):
        api(workspaces[-50])
    everything = [w.id for w in api.list(workspaces)]
    assert [w.id for w in api.list(workspaces[-50:])] == everything
    assert api.list(workspaces[50:]) == []


def test_negative_slice_start_before_the_first_row(world: World) -> None:
    api = world.api
    experiments = api.Experiment.query(world.session).order_by("id")
    assert [e.id for e in api.list(experiments[-50:])] == [e.id for e in api.list(experiments)]


def test_offsets_beyond_int32(world: World) -> None:
    with pytest.raises(QueryError, match="the query index must be an int in"):
        world.api(world.api.Experiment.query(world.session)[2**31])


# --- assignments -------------------------------------------------------------------------------
def test_max_slots_beyond_int32(world: World) -> None:
    exp = world[Experiment]
    int32 = re.escape("Experiment.max_slots must be an int in 0..2147483647, not 2147483648")
    with pytest.raises(InvalidValue, match=int32):
        exp.max_slots = 2**31
    with pytest.raises(InvalidValue, match="Experiment.max_slots must be an int in 0"):
        exp.max_slots = 2**63
    assert world.session.dirty == []


def test_archived_yes_is_not_an_archive(world: World) -> None:
    exp = world[Experiment]
    with pytest.raises(InvalidType, match="Experiment.archived must be bool, not str"):
        exp.archived = "yes"
    assert len(world.session.pending()) == 0 and exp.archived is False


@pytest.mark.parametrize(
    ("name", "value"), [("priority", True), ("priority", 5.0), ("max_slots", "3"), ("weight", "1")]
)
def test_no_lax_conversion(world: World, name: str, value: object) -> None:
    with pytest.raises(InvalidType, match=f"Experiment.{name} must be"):
        setattr(world[Experiment], name, value)
    assert world.session.dirty == []


@pytest.mark.parametrize("name", ["two  spaces", "a/b", "a\\b", "123"])
def test_model_names_the_master_refuses(world: World, name: str) -> None:
    with pytest.raises(InvalidValue, match="a model name cannot hold"):
        world[Model].name = name
    assert world.session.dirty == []


def test_workspace_name_longer_than_80_bytes(world: World) -> None:
    with pytest.raises(InvalidValue, match="Workspace.name must be at most 80 bytes"):
        world[Workspace].name = "é" * 41
    world[Workspace].name = "x" * 80  # the longest name the master takes
    world.rollback()


def test_weight_that_json_cannot_carry(world: World) -> None:
    with pytest.raises(InvalidValue, match="Experiment.weight must be a finite number"):
        world[Experiment].weight = math.inf
    assert world.session.dirty == []


def test_read_only_and_unknown_attributes(world: World) -> None:
    exp = world[Experiment]
    with pytest.raises(InvalidAttribute, match="Experiment.state is read-only; editable fields"):
        exp.state = "ACTIVE"
    with pytest.raises(InvalidAttribute, match="Experiment has no attribute 'nmae'; editable"):
        exp.nmae = "x"
    with pytest.raises(InvalidAttribute, match="Trial.experiment is read-only"):
        world[Trial].experiment = exp


def test_metadata_edited_in_place_with_nan(world: World) -> None:
    model = world[Model]
    with pytest.raises(InvalidValue, match=r"metadata\['score'\] must be a finite number"):
        model.metadata["score"] = math.nan
    assert "score" not in model.metadata and world.session.dirty == []


def test_tags_added_in_place_change_nothing_when_one_is_bad(world: World) -> None:
    tags = world[Experiment].tags
    before = set(tags)
    with pytest.raises(InvalidValue, match="non-empty"):
        tags |= {"fine", ""}
    assert set(tags) == before and world.session.dirty == []


# --- reads and actions ---------------------------------------------------------------------------
def test_metrics_of_things_that_are_not_trials(world: World) -> None:
    session, api = world.session, world.api
    before = session.requests_sent
    with pytest.raises(InvalidType, match="each trial must be a Trial or a trial id"):
        session.metrics(["a"])  # refused when called: a stream is never made
    with pytest.raises(InvalidType, match="each trial must be a Trial or a trial id"):
        api(session.summaries([None]))
    assert session.requests_sent == before


def test_get_with_a_key_of_the_wrong_type(world: World) -> None:
    before = world.session.requests_sent
    with pytest.raises(InvalidType, match="the Experiment key must be an id"):
        world.api(world.session.get(world.api.Experiment, "abc"))
    assert world.session.requests_sent == before


def test_move_to_a_project_that_is_not_one(world: World) -> None:
    api = world.api
    before = world.session.requests_sent
    with pytest.raises(InvalidType, match=r"move_to\(project\) must be a Project or its id"):
        api(world[Experiment].move_to("x"))
    with pytest.raises(InvalidType, match=r"move_to\(project\)"):
        api(api.Experiment.query(world.session).move_to(None))
    assert world.session.requests_sent == before


def test_logs_limit_zero_is_no_lines(world: World) -> None:
    trial, api = world[Trial], world.api
    before = world.session.requests_sent
    assert api.list(trial.logs(limit=0)) == [] and api.list(trial.logs(tail=0)) == []
    assert world.session.requests_sent == before


def test_logs_limit_applies_to_a_followed_stream(world: World) -> None:
    # The master's batch processor ignores the limit of a followed stream.
    entries = world.api.list(world[Trial].logs(follow=True, limit=1))
    assert [e.message for e in entries] == ["loading data"]


def test_logs_arguments_of_the_wrong_type(world: World) -> None:
    trial = world[Trial]
    with pytest.raises(InvalidType, match="follow must be True or False"):
        trial.logs(follow="yes")
    with pytest.raises(InvalidType, match="levels must be a list"):
        trial.logs(levels="INFO")
    with pytest.raises(InvalidType, match="each level must be a LogLevel or a level name"):
        trial.logs(levels=[5])


# --- runs and experiments ---------------------------------------------------------------------
def test_fork_checks_project_and_activate_before_reading_the_parent(world: World) -> None:
    exp, api = world[Experiment], world.api
    before = world.session.requests_sent
    with pytest.raises(InvalidType, match=r"Experiment.fork\(activate\) must be a bool"):
        api(exp.fork(activate=None))
    with pytest.raises(InvalidType, match=r"Experiment.fork\(project\) must be a Project or its"):
        api(exp.fork(project="vision"))
    with pytest.raises(InvalidValue, match=r"Experiment.fork\(project\) must be an int in 1\.\."):
        api(exp.fork(project=2**31))
    assert world.session.requests_sent == before


def test_download_paths_and_progress_of_the_wrong_type(world: World, tmp_path: Path) -> None:
    # Path(None) raised a bare TypeError in the three downloads.
    exp, api = world[Experiment], world.api
    before = world.session.requests_sent
    with pytest.raises(InvalidType, match="path must be a directory path"):
        api(exp.download_code(None))
    with pytest.raises(InvalidType, match="path must be a directory path"):
        api(world[Checkpoint].download(3))
    with pytest.raises(InvalidType, match=r"download_tensorboard\(path\) must be a directory path"):
        api(exp.download_tensorboard(None))
    with pytest.raises(InvalidType, match=r"download_tensorboard\(path\) must be a directory path"):
        api(exp.download_tensorboard(b"out"))
    with pytest.raises(
        InvalidType, match=r"download_tensorboard\(progress\) must be True, False or None"
    ):
        api(exp.download_tensorboard(tmp_path / "out", progress="yes"))
    assert world.session.requests_sent == before and not (tmp_path / "out").exists()


def test_paths_with_a_nul(world: World, tmp_path: Path) -> None:
    # The os calls raised a bare ValueError ("embedded null byte") for these.
    api, session, exp = world.api, world.session, world[Experiment]
    (tmp_path / "model").mkdir()
    config = {"name": "x", "entrypoint": "python3 train.py"}
    before = session.requests_sent

    def create(*args: Any, **kwargs: Any) -> Any:
        return api(api.Experiment.create(*args, **kwargs, activate=False, session=session))

    with pytest.raises(InvalidValue, match=r"Experiment.create\(model_dir\) cannot contain a NUL"):
        create(config, str(tmp_path / "mo\x00del"))
    with pytest.raises(InvalidValue, match=r"Experiment.create\(includes\) item cannot contain"):
        create(config, tmp_path / "model", includes=[str(tmp_path / "a\x00b")])
    with pytest.raises(InvalidValue, match=r"Experiment.create\(config\) cannot contain a NUL"):
        create(str(tmp_path / "config\x00.yaml"), tmp_path / "model")
    with pytest.raises(InvalidValue, match=r"Command.launch\(context\) cannot contain a NUL"):
        api(api.Command.launch("true", context=str(tmp_path / "a\x00b"), session=session))
    with pytest.raises(InvalidValue, match="a path cannot hold a NUL"):
        api(exp.download_tensorboard(str(tmp_path / "tb\x00")))
    with pytest.raises(InvalidValue, match="a path cannot hold a NUL"):
        api(exp.download_code(str(tmp_path / "code\x00")))
    assert session.requests_sent == before and sorted(tmp_path.iterdir()) == [tmp_path / "model"]


def test_configs_and_overrides_of_any_mapping(world: World) -> None:
    # A mapping inside a config escaped the JSON writer as a TypeError; overrides given as a
    # Mapping (as the signatures say) were refused for not being a dict.
    api, session, exp = world.api, world.session, world[Experiment]
    config = {
        "name": "x", "entrypoint": "python3 train.py",
        "searcher": {"name": "single", "metric": "loss", "max_length": 1},
        "hyperparameters": MappingProxyType({"lr": 0.1}),
    }  # fmt: skip
    assert api(api.Experiment.validate_config(config, session=session)) == []
    before = session.requests_sent
    with pytest.raises(InvalidValue, match=r"fork\(config_overrides\)\['lr'\] must be a finite"):
        api(exp.fork(MappingProxyType({"lr": math.nan})))
    with pytest.raises(InvalidValue, match=r"continue_training\(config_overrides\) cannot set"):
        api(exp.continue_training(MappingProxyType({"project": "other"})))
    assert session.requests_sent == before


def test_profiler_groups_that_are_not_names(world: World) -> None:
    trial = world[Trial]
    with pytest.raises(InvalidType, match="each group must be a profiler group, among cpu"):
        trial.profiler_metrics(groups=[None])
    with pytest.raises(InvalidValue, match="'GPU' is not a profiler group"):
        trial.profiler_metrics(groups=["GPU"])
