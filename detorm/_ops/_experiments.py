"""Experiments: create (or only validate) one, fork one, continue one or its trial, wait for
them. Each is one op, run by both APIs.

Wire facts (master 0.38.1, ``master/internal/api_experiment.go`` and ``core_experiment.go``):

* ``CreateExperiment`` (``POST /api/v1/experiments``) takes the config as YAML *text* (the
  master parses it: ``expconf.ParseAnyExperimentConfigYAML``), the model definition as the det
  CLI's list of files, ``projectId`` (used only when > 1: else the config's ``workspace`` and
  ``project``, else Uncategorized), ``template`` (a name), ``parentId``, ``activate`` and
  ``validateOnly``. It answers the experiment as GetExperiment shows it, the active config and
  launch ``warnings``; with ``validateOnly`` an empty experiment. A config file is sent as its
  text, unparsed, as ``det experiment create`` sends it (comments included: the master keeps
  it as ``originalConfig``); a dict is sent as JSON, which is YAML (see :func:`config_text`).
* Most config refusals of ``parseCreateExperiment`` are plain Go errors, so the master answers
  500 (gRPC Unknown) with ``invalid experiment configuration: ...`` and the schema's messages
  one per line, ``<config>.path: message``; a few are 400s. :func:`config_errors` recognises
  them, and the ops raise :class:`~detorm.errors.InvalidConfig` with the messages.
* With ``parentId`` (a fork) the master copies the parent's model definition and ignores the
  request's: a fork cannot change the code (create a new experiment for that).
* ``ContinueExperiment`` (``POST /api/v1/experiments/continue``, ``{id, overrideConfig}``)
  restarts a terminal (COMPLETED, CANCELED, ERROR) experiment of the ``single``, ``grid`` or
  ``random`` searcher; an override config only for ``single`` (the one-trial experiment,
  whose trial it continues), without ``project`` or ``workspace``; a COMPLETED grid or random
  search only when some of its trials did not complete. The master merges the override into
  the experiment's active config. These rules are checked here before anything is sent, on
  the experiment as just read (the trials' states are the master's to check).
"""

from __future__ import annotations

import copy
import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from .. import _wire as w
from .._io._context import check_context_path, read_context
from .._plan._call import Call
from .._resources._inputs import (
    check_int,
    check_iterable,
    check_json_object,
    check_text,
    require,
    shown,
)
from .._resources._models import Experiment, Project, Trial
from .._resources._tasks import Template, check_template_name
from ..errors import APIError, InvalidConfig, InvalidState, InvalidType, InvalidValue, LaunchWarning
from ._effects import Op, blocking, send
from ._polling import poll_until

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

E = TypeVar("E", bound=Experiment)
T = TypeVar("T", bound=Trial)

__all__ = [
    "ConfigSource",
    "await_first_trial",
    "config_errors",
    "config_text",
    "continue_training",
    "create_experiment",
    "fork_experiment",
    "validate_config",
    "wait_experiment",
    "wait_trial",
]

ConfigSource = Mapping[str, Any] | str | os.PathLike[str]
"""An experiment config: a dict (an ``ExperimentConfig``), or the path of a YAML or JSON file."""

_CREATE: Final = "/api/v1/experiments"
_CONTINUE: Final = "/api/v1/experiments/continue"
# model.TerminalStates: what ContinueExperiment accepts (DELETED is terminal, not continuable).
_CONTINUABLE: Final = frozenset(
    {w.ExperimentState.COMPLETED, w.ExperimentState.CANCELED, w.ExperimentState.ERROR}
)
_CONTINUABLE_SEARCHERS: Final = ("single", "grid", "random")
# searcher-length.json: an int, or one of these keys (length.json) with an int >= 1.
_LENGTH_UNITS: Final = ("batches", "records", "epochs")
# What parseCreateExperiment reports as plain errors (500) about the config itself.
_CONFIG_ERROR_PREFIXES: Final = (
    "invalid experiment configuration",
    "invalid resource configuration",
    "<config>",
    "managed experiments require entrypoint",
    "workspace and project must both be included in config",
    "parsing continue experiment request: invalid experiment configuration",
    "parsing override config",
)
# YAML 1.1 reads only printable characters, and reads U+0085, U+2028 and U+2029 as line
# breaks (folded into a space inside a quoted scalar): those are sent as \u escapes. (JSON
# already escapes the C0 controls; the master's go-yaml refuses escaped surrogates, clearly.)
_NOT_YAML_PRINTABLE: Final = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")
_BARE_EXPONENT: Final = re.compile(r"^(-?\d+)(e[-+]\d+)$")


# --- the config -----------------------------------------------------------------------------
def config_text(where: str, config: object) -> Op[str]:
    """The config as the YAML text CreateExperiment takes: a file's text as it is (read off the
    event loop), a dict as JSON (YAML 1.2 is a superset of JSON; the master's YAML 1.1
    parser reads what :func:`yaml_json` writes the same way)."""
    if isinstance(config, str | os.PathLike):
        return (yield from blocking(_read_config_file, where, config))
    if isinstance(config, Mapping):
        return yaml_json(where, dict(config))
    raise InvalidType(
        f"{where} must be a dict (an ExperimentConfig) or the path of a YAML or JSON file, not"
        f" {type(config).__name__} ({shown(config)})"
    )


def _read_config_file(where: str, source: str | os.PathLike[str]) -> str:
    path = os.fspath(source)
    if not isinstance(path, str):
        raise InvalidType(f"{where} must be a str path, not {type(path).__name__}")
    check_text(where, path)
    if not os.path.isfile(path):
        state = "is a directory" if os.path.isdir(path) else "does not exist"
        raise InvalidValue(
            f"{where}: the config file {path!r} {state} ({os.path.abspath(path)}); pass the path"
            " of a YAML or JSON file, or the config as a dict"
        )
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidValue(f"{where}: cannot read the config file {path!r}: {err}") from None
    if "\x00" in text:
        raise InvalidValue(f"{where}: the config file {path!r} holds a NUL character")
    return text


def yaml_json(where: str, config: dict[str, Any]) -> str:
    """JSON text that every YAML parser reads as the same values: characters YAML cannot
    hold raw are escaped, and floats always have a fraction (``1.0e-05``: YAML 1.1 parsers
    such as PyYAML read ``1e-05`` as a string)."""
    check_json_object(where, config)
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", _json(config))


def _json(value: Any) -> str:
    # json.dumps formats floats with float.__repr__ whatever their class: hence this writer.
    if isinstance(value, float):
        return _BARE_EXPONENT.sub(r"\1.0\2", json.dumps(value))
    if isinstance(value, Mapping):  # any mapping, as check_json_object takes (not only dicts)
        items = (f"{json.dumps(key, ensure_ascii=False)}: {_json(v)}" for key, v in value.items())
        return "{" + ", ".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_json(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``overrides`` merged into a copy of ``base``, object by object (``schemas.Merge``: the
    override's values win; lists and other values are replaced whole)."""
    result = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def config_errors(err: APIError) -> list[str] | None:
    """The master's messages when ``err`` refuses a config (one per problem), else None: a
    CreateExperiment 400 (InvalidArgument), or a message of :data:`_CONFIG_ERROR_PREFIXES`
    (ContinueExperiment's other 400s are about the experiment's state: they stay BadRequest)."""
    message = err.message
    if not message.startswith(_CONFIG_ERROR_PREFIXES) and (
        err.status != 400 or err.path == _CONTINUE
    ):
        return None
    start = message.find("<config>")
    lines = message[start:].splitlines() if start >= 0 else [message]
    return [line for line in lines if line.strip()] or [message]


def _send_config(call: Call) -> Op[bytes]:
    """Send a call that carries a config; the master's refusal of it as InvalidConfig."""
    try:
        response = yield from send(call)
    except APIError as err:
        found = config_errors(err)
        if found is None:
            raise
        raise InvalidConfig(
            errors=found, method=err.method, path=err.path, status=err.status,
            message=err.message, reason=err.reason, body=err.body,
        ) from err  # fmt: skip
    return response.content


def _warn(experiment_id: int, codes: Iterable[str]) -> None:
    for code in codes:
        if code == "LAUNCH_WARNING_CURRENT_SLOTS_EXCEEDED":  # the official client's words
            text = (
                "it requires more slots than currently available. You may need to increase"
                " cluster resources in order for it to run"
            )
        else:
            text = code
        warnings.warn(f"experiment {experiment_id}: {text}", LaunchWarning, stacklevel=2)


# --- create, validate -----------------------------------------------------------------------
def _project_id(where: str, project: object) -> int:
    if isinstance(project, Project):
        return int(project.pk)  # a new project (no id yet) raises NotLoaded
    return check_int(where, project, low=1, high=2**31 - 1, what="a Project or its id (an int)")


def _template_name(where: str, template: object) -> str:
    if isinstance(template, Template):
        return template.name
    return check_template_name(where, template)


def create_body(
    where: str,
    text: str,
    *,
    project: Project | int | None,
    template: Template | str | None,
    activate: bool,
) -> dict[str, Any]:
    """The CreateExperiment request without its files (checked before anything is sent)."""
    require(f"{where}(activate)", activate, bool, "a bool")
    body: dict[str, Any] = {"config": text, "activate": activate}
    if project is not None:
        body["projectId"] = _project_id(f"{where}(project)", project)
    if template is not None:
        body["template"] = _template_name(f"{where}(template)", template)
    return body


def _created(session: Session, cls: type[E], content: bytes) -> E:
    response = w.CreateExperimentResponse.model_validate_json(content)
    assert response.experiment is not None
    experiment = session.merge(cls, Experiment.values_from_wire(response.experiment, view="single"))
    experiment._fetched = True
    _warn(experiment.id, response.warnings)
    return experiment


def _model_paths(where: str, model_dir: object, includes: object) -> list[str | os.PathLike[str]]:
    """The include paths, after the types of ``model_dir`` and ``includes`` are checked (the
    files are read when the op runs: missing ones are a ContextError then)."""
    if model_dir is not None:
        check_context_path(f"{where}(model_dir)", model_dir, "a directory path")
    if isinstance(includes, str | bytes | os.PathLike):
        raise InvalidType(f"{where}(includes) must be a list of paths, not one path")
    listed = check_iterable(f"{where}(includes)", includes, "a list of paths")
    for path in listed:
        check_context_path(f"{where}(includes) item", path, "a path")
    return listed


def create_experiment(
    session: Session,
    cls: type[E],
    config: object,
    model_dir: str | os.PathLike[str] | None,
    *,
    includes: Iterable[str | os.PathLike[str]] = (),
    project: Project | int | None = None,
    template: Template | str | None = None,
    activate: bool = True,
) -> Op[E]:
    """CreateExperiment; the new experiment, complete, in the identity map. The model
    directory and includes are read as ``det experiment create`` reads them (``.detignore``,
    the size limit: :class:`~detorm.errors.ContextError`), off the event loop."""
    where = "Experiment.create"
    paths = _model_paths(where, model_dir, includes)
    text = yield from config_text(f"{where}(config)", config)
    body = create_body(where, text, project=project, template=template, activate=activate)
    if model_dir is not None or paths:
        body["modelDefinition"] = yield from blocking(read_context, model_dir, paths)
    content = yield from _send_config(Call("POST", _CREATE, body=body))
    return _created(session, cls, content)


def validate_config(
    config: object,
    *,
    project: Project | int | None = None,
    template: Template | str | None = None,
) -> Op[list[str]]:
    """CreateExperiment with ``validateOnly``: the master's messages, empty when valid."""
    where = "Experiment.validate_config"
    text = yield from config_text(f"{where}(config)", config)
    body = create_body(where, text, project=project, template=template, activate=False)
    body["validateOnly"] = True
    try:
        yield from _send_config(Call("POST", _CREATE, body=body))
    except InvalidConfig as err:
        return err.errors
    return []


def _as_dict(overrides: Mapping[str, Any]) -> Mapping[str, Any]:
    """A mapping of overrides as a dict (the signatures take any Mapping; check_json_object
    checks what else it is)."""
    return dict(overrides) if isinstance(overrides, Mapping) else overrides


# --- fork -----------------------------------------------------------------------------------
def fork_experiment(
    session: Session,
    parent: E,
    overrides: Mapping[str, Any] | None,
    *,
    project: Project | int | None = None,
    activate: bool = True,
) -> Op[E]:
    """A new experiment of the parent's code and config (read again first: its active config
    and project now), ``overrides`` merged in, as the WebUI's fork sends it. It goes to
    ``project``, else to the parent's project, unless the overrides name a workspace and
    project."""
    where = "Experiment.fork"
    if overrides is not None:
        overrides = _as_dict(overrides)
        check_json_object(f"{where}(config_overrides)", overrides)
    # Checked again in create_body, but before the parent is read: bad input sends nothing.
    create_body(where, "", project=project, template=None, activate=activate)
    yield from session._refresh(parent)
    # The parent's config names the project it was created in, which it may have left since.
    base = {k: v for k, v in parent.config.items() if k not in ("project", "workspace")}
    config = merged(base, overrides or {})
    named = overrides is not None and ("project" in overrides or "workspace" in overrides)
    if project is None and not named:
        project = parent.project_id
    text = yaml_json(f"{where}(config_overrides)", config)
    body = create_body(where, text, project=project, template=None, activate=activate)
    body["parentId"] = parent.id
    content = yield from _send_config(Call("POST", _CREATE, body=body))
    return _created(session, type(parent), content)


# --- continue -------------------------------------------------------------------------------
def _searcher_name(experiment: Experiment) -> str:
    searcher = experiment.config.get("searcher") or {}
    return str(searcher.get("name", "")) if isinstance(searcher, Mapping) else ""


def _max_length(where: str, value: object) -> int | dict[str, int]:
    if isinstance(value, Mapping):
        if len(value) != 1 or next(iter(value)) not in _LENGTH_UNITS:
            raise InvalidValue(
                f"{where} must be an int or a dict of one of {', '.join(_LENGTH_UNITS)} (as"
                f" {{'batches': 1000}}), not {shown(value)}"
            )
        ((unit, length),) = value.items()
        return {unit: check_int(f"{where}[{unit!r}]", length, low=1, high=2**63 - 1)}
    return check_int(f"{where}", value, low=0, high=2**63 - 1, what="an int or a dict")


def continue_overrides(
    where: str, overrides: Mapping[str, Any] | None, max_length: object
) -> dict[str, Any]:
    """The override config: ``overrides`` with ``searcher.max_length`` set when given."""
    result: dict[str, Any] = {}
    if overrides is not None:
        overrides = _as_dict(overrides)
        check_json_object(f"{where}(config_overrides)", overrides)
        for key in ("project", "workspace"):
            if key in overrides:
                raise InvalidValue(
                    f"{where}(config_overrides) cannot set {key!r}: the master refuses it; move"
                    " the experiment first (experiment.move_to(project))"
                )
        result = merged({}, overrides)
    if max_length is not None:
        length = _max_length(f"{where}(max_length)", max_length)
        result = merged(result, {"searcher": {"max_length": length}})
    return result


def _check_continuable(
    where: str, experiment: Experiment, trial: Trial | None, overrides: bool
) -> None:
    state = experiment.state
    if state not in _CONTINUABLE:
        raise InvalidState(
            f"{where}: experiment {experiment.id} is {state.short}; only a COMPLETED, CANCELED"
            " or ERROR experiment can be continued (wait for it: experiment.wait(), or kill it)"
        )
    searcher = _searcher_name(experiment)
    if searcher not in _CONTINUABLE_SEARCHERS:
        raise InvalidState(
            f"{where}: experiment {experiment.id} uses the {searcher!r} searcher; the master"
            " continues only single, grid and random ones"
        )
    if trial is not None and searcher != "single":
        raise InvalidState(
            f"{where}: trial {trial.id} is one of the trials of experiment {experiment.id} (a"
            f" {searcher} search); the master continues the trial of a single-trial experiment"
            " only: experiment.continue_training() resumes the search's unfinished trials, and"
            " experiment.fork() starts a new one"
        )
    if overrides and searcher != "single":
        raise InvalidState(
            f"{where}: experiment {experiment.id} is a {searcher} search; the master takes"
            " config overrides (and max_length) only for a single-trial experiment"
        )


def continue_training(
    session: Session,
    target: Experiment | Trial,
    overrides: Mapping[str, Any] | None,
    max_length: object,
) -> Op[None]:
    """ContinueExperiment of an experiment, or of a trial's experiment. The experiment is read
    again first, to check the master's rules on its state now; the experiment (and the trial)
    then hold what the master answers."""
    trial = target if isinstance(target, Trial) else None
    where = f"{type(target).__name__}.continue_training"
    override = continue_overrides(where, overrides, max_length)
    if isinstance(target, Experiment):
        experiment: Experiment = target
    else:
        experiment = yield from session._resolve(Experiment, target.experiment_id)
    yield from session._refresh(experiment)
    _check_continuable(where, experiment, trial, bool(override))
    # The det CLI sends "{}" when there is nothing to override; so does this.
    body = {"id": experiment.id, "overrideConfig": yaml_json(where, override)}
    content = yield from _send_config(Call("POST", _CONTINUE, body=body))
    response = w.ContinueExperimentResponse.model_validate_json(content)
    if response.experiment is not None:
        values = Experiment.values_from_wire(response.experiment, view="single")
        session.merge(type(experiment), values)
    else:
        yield from session._refresh(experiment)
    if trial is not None:
        yield from session._refresh(trial)
    _warn(experiment.id, response.warnings)


# --- wait -----------------------------------------------------------------------------------
def _never_ends_paused(kind: str, key: int, state: w.WireEnum) -> None:
    # As the official client's Experiment.wait: a paused experiment stays so until someone
    # activates it. (A trial's PAUSED is not checked: the master pauses trials for its own
    # reasons too.)
    if state.short == "PAUSED":
        raise InvalidState(
            f"{kind} {key} is PAUSED: it will not end until it is activated (experiment.activate())"
        )


def _ended(kind: str) -> Callable[[Any], bool]:
    def ended(obj: Experiment | Trial) -> bool:
        if obj.state.is_terminal:
            return True
        if isinstance(obj, Experiment):
            _never_ends_paused(kind, obj.id, obj.state)
        return False

    return ended


def _still(kind: str) -> Callable[[Any], str]:
    return lambda obj: f"{kind} {obj.id} is still {obj.state.short}"


def wait_experiment(
    session: Session, experiment: Experiment, timeout: float | None, interval: float | None
) -> Op[w.ExperimentState]:
    """Poll the experiment until it is COMPLETED, CANCELED, ERROR or DELETED."""
    yield from poll_until(
        session, experiment, _ended("experiment"), _still("experiment"),
        timeout=timeout, interval=interval,
    )  # fmt: skip
    return experiment.state


def wait_trial(
    session: Session, trial: Trial, timeout: float | None, interval: float | None
) -> Op[w.TrialState]:
    """Poll the trial until it is COMPLETED, CANCELED or ERROR."""
    yield from poll_until(
        session, trial, _ended("trial"), _still("trial"), timeout=timeout, interval=interval
    )
    return trial.state


def await_first_trial(
    session: Session,
    experiment: Experiment,
    cls: type[T],
    timeout: float | None,
    interval: float | None,
) -> Op[T]:
    """Poll the experiment until the master has created a trial; that trial (the lowest id),
    complete. An experiment that ends (or is paused) without one is an InvalidState."""

    def has_trial(exp: Experiment) -> bool:
        if exp.trial_ids:
            return True
        if exp.state.is_terminal:
            raise InvalidState(f"experiment {exp.id} ended {exp.state.short} without a trial")
        _never_ends_paused("experiment", exp.id, exp.state)
        return False

    yield from poll_until(
        session, experiment, has_trial,
        lambda exp: f"experiment {exp.id} has no trial yet (it is {exp.state.short})",
        timeout=timeout, interval=interval, where="await_first_trial",
    )  # fmt: skip
    return (yield from session._fetch(cls, min(experiment.trial_ids)))
