"""Creating, running and reading runs with odd arguments: Experiment.create and
validate_config, fork, continue_training, the waits, trial queries' move_to, metrics of odd
groups, profiler metrics and TensorBoard downloads.

The property: a result; or an input error raised before any request; or, for a well-formed
value only the master can judge (a config, a project id, an experiment's state), the master's
answer as a typed error - never an untyped exception, and nothing created when refused.

Create, fork and continue change what they act on: they run against a master of their own
(``writer``), not the package's shared one.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from detorm import Experiment, Trial
from detorm.errors import (
    APIError,
    BadRequest,
    ContextError,
    DetormError,
    DownloadError,
    Forbidden,
    InvalidConfig,
    InvalidState,
    InvalidType,
    NotFound,
    UnsafeArchive,
)
from detorm.local import LocalMaster
from tests.sdk.apis import Api, Mode
from tests.sdk.conftest import Cluster, seed_cluster

from .conftest import GENERATED, INPUT_ERRORS, World
from .strategies import ANY_VALUE, EDGE_INTS, NUMBERS, ODD_FLOATS, ODD_TEXT, SCALARS, mostly

# Each example of create, fork and continue may run a CreateExperiment: fewer examples, so
# that this file runs in well under a minute.
FEW = settings(GENERATED, max_examples=20)

PROFILER_GROUPS = ["gpu", "cpu", "memory", "disk", "network"]


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def writer(mode: Mode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A master of this module's own (the seeded cluster), for the calls that create and
    continue experiments; its objects are the single-trial ``bert-tiny`` experiment (ERROR:
    continuable) and its first trial."""
    home = tmp_path_factory.mktemp(f"bad-input-writer-{mode}")
    environ = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / "config")}
    with LocalMaster(process=False) as master:
        cluster: Cluster = seed_cluster(master)
        with Api(mode, master.url, environ) as api:
            s = api.session
            experiment = api(s.get(api.of(Experiment), cluster.experiments["bert-tiny"]))
            trial = api(s.get(api.of(Trial), experiment.trial_ids[0]))
            yield World(cluster, api, {api.of(Experiment): experiment, api.of(Trial): trial})


@pytest.fixture(scope="module")
def empty_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of the calls given relative paths ("../x", "yes"): they must
    not read or write next to the repository."""
    return tmp_path_factory.mktemp("cwd")


@contextmanager
def working_directory(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    before = os.getcwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def outcome(
    session: Any, action: Callable[[], Any], answers: tuple[type[DetormError], ...] = ()
) -> Any:
    """Run ``action``: its result; the input error it raised before sending anything; or one
    of ``answers``, the typed errors by which the master (or the object's state, read again)
    refuses a well-formed call. Anything else fails the test: an untyped exception, an input
    error raised after a request was sent, another API error."""
    before = session.requests_sent
    try:
        result = action()
    except DetormError as err:
        if isinstance(err, (*INPUT_ERRORS, ContextError)) and session.requests_sent == before:
            assert isinstance(err, ValueError)
            event(f"refused: {type(err).__name__}")
            return err
        assert isinstance(err, answers), f"neither refused before sending nor answered: {err!r}"
        assert not isinstance(err, INPUT_ERRORS), f"an input error after sending: {err!r}"
        event(f"answered: {type(err).__name__}")
        return err
    event("done")
    return result


def experiment_count(world: World) -> int:
    api = world.api
    return int(api(api.Experiment.query(world.session).count()))


# --- values -----------------------------------------------------------------------------------
def _base_config() -> dict[str, Any]:
    return {
        "name": "bad-input",
        "entrypoint": "python3 train.py",
        "searcher": {"name": "single", "metric": "validation_loss", "max_length": 10},
        "hyperparameters": {"lr": 0.001},
    }


ODD_KEYS = st.one_of(ODD_TEXT, EDGE_INTS, st.none(), st.booleans(), st.tuples(ODD_TEXT))
NON_JSON = st.one_of(
    ODD_FLOATS, st.builds(object), st.sets(ODD_TEXT, max_size=2), st.binary(max_size=3),
    st.just(range(2)), st.just(10**30), st.just(-(2**63) - 1),
)  # fmt: skip
ODD_DICTS = st.one_of(
    st.dictionaries(ODD_KEYS, SCALARS, max_size=3),
    st.builds(lambda key, value: _base_config() | {key: value}, ODD_TEXT, NON_JSON),
    st.builds(
        lambda value: _base_config() | {"hyperparameters": {"lr": value}},
        st.one_of(NON_JSON, ODD_TEXT, EDGE_INTS),
    ),
    st.builds(
        lambda value: _base_config() | {"searcher": {"name": "single", "max_length": value}},
        st.one_of(EDGE_INTS, ODD_FLOATS, ODD_TEXT),
    ),
    st.builds(lambda key: {key: _base_config()}, ODD_KEYS),
)
CONFIGS = st.one_of(ANY_VALUE, ODD_DICTS, ODD_TEXT.map(Path), st.just(_base_config()))
PROJECTS = st.one_of(st.none(), EDGE_INTS, ODD_TEXT, st.booleans(), ODD_FLOATS, ANY_VALUE)
TEMPLATES = st.one_of(st.none(), ODD_TEXT, st.just("no such template"), ANY_VALUE)
PATHS = st.one_of(st.none(), ODD_TEXT, ODD_TEXT.map(Path), st.just("/nonexistent/x"), ANY_VALUE)
INCLUDES = st.one_of(
    st.just(()),
    st.lists(st.one_of(ODD_TEXT, ODD_TEXT.map(Path), EDGE_INTS, st.none()), max_size=2),
    st.builds(lambda: iter(["x"])),
    ODD_TEXT,
    ANY_VALUE,
)
SECONDS = st.one_of(
    st.none(), NUMBERS, st.booleans(), ODD_TEXT, st.just(-1), st.just(-0.5), st.just(0),
    st.just(math.nan), st.just(math.inf), st.just(10**30), st.just(0.01), ANY_VALUE,
)  # fmt: skip
OVERRIDES: st.SearchStrategy[Any] = st.one_of(st.none(), st.just({}), ODD_DICTS, ANY_VALUE)
MAX_LENGTHS = st.one_of(
    st.none(), EDGE_INTS, st.booleans(), ODD_FLOATS, ODD_TEXT,
    st.dictionaries(st.sampled_from(["batches", "epochs", "records", "steps", ""]),
                    st.one_of(EDGE_INTS, ODD_TEXT, st.booleans()), max_size=2),
    ANY_VALUE,
)  # fmt: skip
GROUPS = st.one_of(
    st.sampled_from(["validation", "training", *PROFILER_GROUPS, "", "a.b", "x", "GPU"]),
    ODD_TEXT,
    ANY_VALUE,
)


def one_broken(
    valid: Callable[[], dict[str, Any]], odd: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Keyword arguments of a call: well-formed ones (``valid()``, made afresh) but one, drawn
    from its odd values. (With every argument odd at once, nearly every call is refused for
    the type of one of them, and the master never sees an odd config.)"""
    return st.sampled_from(sorted(odd)).flatmap(
        lambda name: odd[name].map(lambda value: valid() | {name: value})
    )


MODEL_DIR = "<the model directory>"
"""Stands for a real model directory (a fixture: strategies are made before it exists)."""


def model_directory(root: Path) -> Path:
    model = root / "model"
    model.mkdir(exist_ok=True)
    (model / "train.py").write_text("print('training')\n")
    return model


CREATE_ARGUMENTS = one_broken(
    lambda: {"config": _base_config(), "model_dir": MODEL_DIR, "project": None,
             "template": None, "activate": False, "includes": ()},
    {
        "config": CONFIGS,
        "model_dir": st.one_of(PATHS, st.just("model/train.py")),
        "project": st.one_of(PROJECTS, st.sampled_from([1, 2, 10**6])),
        "template": TEMPLATES,
        "activate": ANY_VALUE,
        "includes": INCLUDES,
    },
)  # fmt: skip


# --- create and validate ------------------------------------------------------------------------
@FEW
@given(arguments=CREATE_ARGUMENTS)
def test_create(writer: World, empty_directory: Path, arguments: dict[str, Any]) -> None:
    api, session = writer.api, writer.session
    config, model_dir = arguments.pop("config"), arguments.pop("model_dir")
    if model_dir == MODEL_DIR:
        model_dir = model_directory(empty_directory)
    before = experiment_count(writer)
    with working_directory(empty_directory):
        result = outcome(
            session,
            lambda: api(api.Experiment.create(config, model_dir, **arguments, session=session)),
            answers=(APIError,),
        )
    created = 0 if isinstance(result, Exception) else 1
    assert experiment_count(writer) == before + created  # nothing created when refused
    if created:
        assert isinstance(result, api.Experiment) and result.id is not None
        assert isinstance(arguments["activate"], bool)
    if isinstance(result, APIError):
        assert isinstance(result, InvalidConfig | NotFound | BadRequest | Forbidden), result


@FEW
@given(
    arguments=one_broken(
        lambda: {"config": _base_config(), "project": None, "template": None},
        {"config": CONFIGS, "project": PROJECTS, "template": TEMPLATES},
    )
)
def test_validate_config(writer: World, empty_directory: Path, arguments: dict[str, Any]) -> None:
    api, session = writer.api, writer.session
    config = arguments.pop("config")
    before = experiment_count(writer)
    with working_directory(empty_directory):
        result = outcome(
            session,
            lambda: api(api.Experiment.validate_config(config, **arguments, session=session)),
            answers=(NotFound, BadRequest, Forbidden),
        )
    if not isinstance(result, Exception):
        assert isinstance(result, list) and all(isinstance(m, str) for m in result)
    assert experiment_count(writer) == before  # validation creates nothing


# --- fork and continue --------------------------------------------------------------------------
@FEW
@given(
    arguments=one_broken(
        lambda: {"config_overrides": None, "project": None, "activate": False},
        {"config_overrides": OVERRIDES, "project": PROJECTS, "activate": ANY_VALUE},
    )
)
def test_fork(writer: World, arguments: dict[str, Any]) -> None:
    api, session = writer.api, writer.session
    parent = writer[Experiment]
    overrides = arguments.pop("config_overrides")
    before = experiment_count(writer)
    result = outcome(session, lambda: api(parent.fork(overrides, **arguments)), answers=(APIError,))
    created = 0 if isinstance(result, Exception) else 1
    assert experiment_count(writer) == before + created  # nothing created when refused
    if created:
        assert isinstance(result, api.Experiment) and result.id != parent.id
    if not isinstance(arguments["activate"], bool):
        assert isinstance(result, InvalidType)


@FEW
@given(
    on=st.sampled_from(["experiment", "trial"]),
    arguments=one_broken(
        lambda: {"config_overrides": {"description": "continued"}, "max_length": 5},
        {"config_overrides": OVERRIDES, "max_length": MAX_LENGTHS},
    ),
)
def test_continue_training(writer: World, on: str, arguments: dict[str, Any]) -> None:
    # The master's rules on the experiment's state (read again first) answer a well-formed
    # call: InvalidState once an example has continued it.
    api, session = writer.api, writer.session
    target = writer[Experiment] if on == "experiment" else writer[Trial]
    overrides = arguments.pop("config_overrides")
    outcome(
        session,
        lambda: api(target.continue_training(overrides, **arguments)),
        answers=(APIError, InvalidState),
    )


# --- waits ------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _valid_seconds(value: Any, *, zero: bool) -> bool:
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return (
        math.isfinite(value)
        and (0 <= value if zero else 0 < value)
        and value <= threading.TIMEOUT_MAX
    )


@GENERATED
@given(
    call=st.sampled_from(["experiment.wait", "trial.wait", "await_first_trial"]),
    timeout=SECONDS,
    interval=SECONDS,
)
def test_waits(world: World, call: str, timeout: Any, interval: Any) -> None:
    # The shared experiment and trial have ended (and the experiment has trials): a wait with
    # valid arguments answers after one poll.
    api, session = world.api, world.session
    experiment, trial = world[Experiment], world[Trial]
    assert experiment.state.is_terminal and trial.state.is_terminal
    waits = {
        "experiment.wait": lambda: api(experiment.wait(timeout, interval=interval)),
        "trial.wait": lambda: api(trial.wait(timeout, interval=interval)),
        "await_first_trial": lambda: api(experiment.await_first_trial(timeout, interval=interval)),
    }
    result = outcome(session, waits[call])
    valid = _valid_seconds(timeout, zero=True) and _valid_seconds(interval, zero=False)
    if not valid:
        assert isinstance(result, INPUT_ERRORS), f"timeout={timeout!r} interval={interval!r}"
        if not _is_number(timeout) and timeout is not None:  # checked first
            assert isinstance(result, InvalidType)
    elif isinstance(result, Exception):
        assert timeout is not None and interval is not None  # only a huge value: refused


# --- trial queries' run actions -----------------------------------------------------------------
@GENERATED
@given(
    project=st.one_of(PROJECTS, st.just(1)),
    skip_multitrial=mostly(st.booleans()),
)
def test_trial_query_move_to(world: World, project: Any, skip_multitrial: Any) -> None:
    api, session = world.api, world.session
    # A query matching nothing: a move with valid arguments only searches.
    nothing = api.Trial.query(session).filter(id=10**6)
    result = outcome(
        session,
        lambda: api(nothing.move_to(project, skip_multitrial=skip_multitrial)),
        answers=(APIError,),
    )
    valid_project = isinstance(project, int) and not isinstance(project, bool)
    if not (valid_project and isinstance(skip_multitrial, bool)):
        assert isinstance(result, INPUT_ERRORS)
    if not valid_project:
        assert isinstance(result, InvalidType)


# --- metrics --------------------------------------------------------------------------------------
@GENERATED
@given(read=st.sampled_from(["trial.metrics", "session.metrics"]), group=GROUPS)
def test_metrics_of_odd_groups(world: World, read: str, group: Any) -> None:
    api, session, trial = world.api, world.session, world[Trial]

    def run() -> Any:
        if read == "trial.metrics":
            return api.list(trial.metrics(group))
        return api.list(session.metrics([trial.id], group))

    result = outcome(session, run)
    if not isinstance(group, str):
        assert isinstance(result, InvalidType)


NAMES = st.one_of(
    st.none(),
    st.sampled_from(["gpu_util", "cpu_util_simple", "memory_free"]),
    st.lists(st.one_of(ODD_TEXT, st.sampled_from(["gpu_util", "x"])), max_size=2),
    ODD_TEXT,
    ANY_VALUE,
)


@GENERATED
@given(
    names=NAMES,
    groups=st.one_of(
        st.none(), GROUPS, st.lists(st.one_of(GROUPS, st.sampled_from(PROFILER_GROUPS)), max_size=2)
    ),
)
def test_profiler_metrics(world: World, names: Any, groups: Any) -> None:
    api, session, trial = world.api, world.session, world[Trial]
    outcome(session, lambda: api.list(trial.profiler_metrics(names, groups=groups)))


# --- TensorBoard files ----------------------------------------------------------------------------
@GENERATED
@given(
    arguments=one_broken(
        lambda: {"path": "downloaded", "trials": None, "max_size": 2**20, "progress": False},
        {
            "path": PATHS,
            "trials": st.one_of(
                st.just([]), st.lists(st.one_of(EDGE_INTS, ODD_TEXT), max_size=2), ANY_VALUE
            ),
            "max_size": st.one_of(EDGE_INTS, ANY_VALUE),
            "progress": ANY_VALUE,
        },
    )
)
def test_download_tensorboard(
    world: World, empty_directory: Path, arguments: dict[str, Any]
) -> None:
    # The shared experiment's storage is not mounted here: a well-formed call reads it and
    # fails (DownloadError), after one GET of the experiment.
    api, session, experiment = world.api, world.session, world[Experiment]
    path = arguments.pop("path")
    with working_directory(empty_directory):
        result = outcome(
            session,
            lambda: api(experiment.download_tensorboard(path, **arguments)),
            answers=(DownloadError, UnsafeArchive),
        )
    if not isinstance(result, Exception):
        assert isinstance(result, Path)
    progress = arguments["progress"]
    if not isinstance(path, str | os.PathLike) or not (progress is None or type(progress) is bool):
        assert isinstance(result, InvalidType), f"{path!r}, {arguments} gave {result!r}"
