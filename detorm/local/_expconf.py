"""Experiment configs (expconf v0) as the master parses, merges, defaults and checks them.

``parseCreateExperiment`` (``master/internal/core_experiment.go``) reads the YAML, checks it
against the JSON schema (``schemas.SaneBytes``: ``schemas/expconf/v0/*.json`` with the union,
checks, compareProperties and optionalRef extensions of ``master/pkg/schemas/extensions``),
merges the template under it, fills the defaults, and checks completeness (``schemas.IsComplete``:
the ``eventuallyRequired`` properties) and that the searcher is current (``AssertCurrent``).

The master's messages are the leaf errors of ``santhosh-tekuri/jsonschema`` v2, rendered
``<config>.path: message`` (``schemas.GetRenderedErrors``), sorted and joined by newlines; a key
that both ``searcher.json`` and the searcher's own member schema refuse (an unknown key, a
required ``metric``) is reported twice, as there. This module checks the parts of the schema that
matter to an experiment: the top-level properties, ``searcher`` (a union on ``name``),
``hyperparameters`` (a union on ``type``, grid ``count``), ``resources``, ``reproducibility``
and ``labels``. Approximations, where the Go libraries are not reproduced: the sub-schemas of
``environment``, ``checkpoint_storage``, ``bind_mounts`` and the other nested objects only get
their type checked (and their completeness is not checked); a length object's own messages
(``check-positive-length.json``) are paraphrased; YAML errors carry PyYAML's description, not
go-yaml's; the default name's pet words come from a short list.
"""

from __future__ import annotations

import copy
import json
import math
import random
from collections.abc import Mapping
from typing import Any, Final

import yaml

__all__ = [
    "SEARCHER_NAMES",
    "ConfigError",
    "assert_current",
    "completeness_errors",
    "merge",
    "normalize",
    "parse_config",
    "sanity_errors",
    "with_defaults",
]

SEARCHER_NAMES: Final = (
    "single", "random", "grid", "adaptive_asha", "async_halving", "custom", "adaptive",
    "adaptive_simple", "sync_halving",
)  # fmt: skip
"""The members of the searcher union (``schemas/expconf/v0/searcher.json``), EOL ones included."""

_SEARCHER_UNION_MESSAGE: Final = (
    "is not an object where object[\"name\"] is one of 'single', 'random', 'grid', 'custom',"
    " or 'adaptive_asha'"
)
_HPARAM_TYPE_CHECK: Final = (
    'if a hyperparameter object\'s ["type"] is set, it must be one of "int", "double", "log",'
    ' const", or "categorical"'
)

# experiment.json: each property's allowed JSON types (the nested schemas are checked apart)
_EXPERIMENT_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "bind_mounts": ("array", "null"), "checkpoint_policy": (), "checkpoint_storage": ("object", "null"),
    "data": ("object", "null"), "integrations": ("object", "null"), "data_layer": ("object", "null"),
    "debug": ("boolean", "null"), "description": ("string", "null"),
    "entrypoint": ("string", "array", "null"), "environment": ("object", "null"),
    "hyperparameters": ("object", "null"), "internal": ("null",), "labels": ("array", "null"),
    "log_policies": ("array", "null"), "retention_policy": ("object", "null"),
    "max_restarts": ("integer", "null"), "min_checkpoint_period": ("object", "null"),
    "min_validation_period": ("object", "null"), "name": ("string", "null"),
    "optimizations": ("object", "null"), "pbs": ("object", "null"),
    "perform_initial_validation": ("boolean", "null"), "preemption_timeout": ("integer", "null"),
    "profiling": ("object", "null"), "project": ("string", "null"),
    "records_per_epoch": ("integer", "null"), "reproducibility": ("object", "null"),
    "resources": ("object", "null"), "scheduling_unit": ("integer", "null"),
    "searcher": ("object", "null"), "security": ("object", "null"), "slurm": ("object", "null"),
    "tensorboard_storage": ("object", "null"), "workspace": ("string", "null"),
}  # fmt: skip
_EXPERIMENT_MINIMUM: Final = {"max_restarts": 0, "scheduling_unit": 1}

_RESOURCES_TYPES: Final[dict[str, tuple[str, ...]]] = {
    "agent_label": ("string", "null"), "devices": ("array", "null"),
    "is_single_node": ("boolean", "null"), "max_slots": ("integer", "null"),
    "native_parallel": ("boolean", "null"), "priority": ("integer", "null"),
    "resource_pool": ("string", "null"), "shm_size": ("integer", "string", "null"),
    "slots": ("integer", "null"), "slots_per_trial": ("integer", "null"),
    "weight": ("number", "null"),
}  # fmt: skip

# searcher.json lists every searcher's properties; each member schema allows only its own
_SEARCHER_COMMON: Final[dict[str, tuple[str, ...]]] = {
    "name": (), "metric": ("string", "null"), "smaller_is_better": ("boolean", "null"),
    "source_trial_id": ("integer", "null"), "source_checkpoint_uuid": ("string", "null"),
}  # fmt: skip
_OUTER_SEARCHER_KEYS: Final = frozenset({
    "bracket_rungs", "divisor", "max_concurrent_trials", "max_length", "max_rungs", "max_time",
    "time_metric", "max_trials", "mode", "name", "num_rungs", "stop_once", "metric",
    "smaller_is_better", "source_trial_id", "source_checkpoint_uuid", "budget",
    "train_stragglers", "unit",
})  # fmt: skip
_LENGTH: Final = ("object", "integer", "null")
_SEARCHER_MEMBERS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "single": {"max_length": _LENGTH},
    "grid": {"max_concurrent_trials": ("integer", "null"), "max_length": _LENGTH},
    "random": {
        "max_concurrent_trials": ("integer", "null"), "max_trials": ("integer", "null"),
        "max_length": _LENGTH,
    },
    "adaptive_asha": {
        "bracket_rungs": ("array", "null"), "max_trials": ("integer", "null"),
        "time_metric": ("string", "null"), "max_time": ("integer", "null"), "mode": (),
        "divisor": ("number", "null"), "max_rungs": ("integer", "null"),
        "max_concurrent_trials": ("integer", "null"), "max_length": _LENGTH,
        "stop_once": ("boolean", "null"),
    },
}  # fmt: skip
_SEARCHER_MINIMUM: Final = {"max_trials": 1, "max_concurrent_trials": 0, "max_rungs": 1}
_SEARCHER_REQUIRED_LATER: Final = {
    "single": ("metric",), "grid": ("metric",), "random": ("max_trials", "metric"),
    "adaptive_asha": ("max_trials", "metric"), "custom": ("metric",),
}  # fmt: skip

_HPARAM_MEMBERS: Final[dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]]]]] = {
    "int": (("type", "minval", "maxval"),
            {"type": (), "minval": ("integer",), "maxval": ("integer",), "count": ("integer", "null")}),
    "double": (("type", "minval", "maxval"),
               {"type": (), "minval": ("number",), "maxval": ("number",), "count": ("integer", "null")}),
    "log": (("type", "minval", "maxval", "base"),
            {"type": (), "minval": ("number",), "maxval": ("number",), "base": ("number",),
             "count": ("integer", "null")}),
    "const": (("type", "val"), {"type": (), "val": ()}),
    "categorical": (("type", "vals"), {"type": (), "vals": ("array",)}),
}  # fmt: skip


class ConfigError(Exception):
    """A config the master refuses with a plain error (HTTP 500) and this message."""


# --- reading ------------------------------------------------------------------------------------
def parse_config(text: str) -> Any:
    """``ParseAnyExperimentConfigYAML``'s first steps: YAML to JSON, then the version."""
    try:
        document = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError as err:  # go-yaml's wording differs (see the module docstring)
        problem = str(err).splitlines()[0] if str(err) else "invalid YAML"
        raise ConfigError(
            f"unable to convert yaml to json: not valid yaml: yaml: {problem}"
        ) from None
    document = _jsonable(document)
    # the version is read apart (an int field of its own struct); the schema then refuses the
    # key itself, experiment.json having no "version" property
    version = document.get("version", 0) if isinstance(document, dict) else 0
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise ConfigError(
            "unable to unmarshal json-formatted experiment config: json: cannot unmarshal"
            f" {_type(version)} into Go struct field .version of type int"
        )
    if version not in (0, None):
        raise ConfigError(f"invalid version: {version}")
    return document


def _jsonable(value: Any) -> Any:
    """``json.Marshal`` of what ghodss/yaml read: keys become strings, dates text."""
    if isinstance(value, dict):
        return {
            str(k).lower() if isinstance(k, bool) else str(k): _jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --- the sanity check (SaneBytes) ---------------------------------------------------------------
def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _matches(value: Any, types: tuple[str, ...]) -> bool:
    kind = _type(value)
    if not types or kind in types:
        return True
    if "integer" in types and kind == "number":
        return isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())
    return False


def _number(value: Any) -> str:
    return json.dumps(value)


class _Errors:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.lines.append(f"<config>{path}: {message}")


def _check_properties(
    errors: _Errors, path: str, obj: Mapping[str, Any], types: Mapping[str, tuple[str, ...]],
    minimum: Mapping[str, int] | None = None, additional: bool = False,
) -> None:  # fmt: skip
    for key, value in obj.items():
        if key not in types:
            continue
        if not _matches(value, types[key]):
            errors.add(
                f"{path}.{key}", f"expected {' or '.join(types[key])}, but got {_type(value)}"
            )
            continue
        low = (minimum or {}).get(key)
        if low is not None and _type(value) == "number" and value < low:
            errors.add(f"{path}.{key}", f"must be >= {low} but found {_number(value)}")
    unknown = [key for key in obj if key not in types]
    if unknown and not additional:
        names = ", ".join(json.dumps(key) for key in sorted(unknown))
        errors.add(path, f"additionalProperties {names} not allowed")


def sanity_errors(config: Any) -> list[str]:
    """The leaf errors of ``experiment.json``'s sanity validator, sorted as the master sorts them."""
    errors = _Errors()
    if not isinstance(config, dict):
        errors.add("", f"expected object, but got {_type(config)}")
        return errors.lines
    _check_properties(errors, "", config, _EXPERIMENT_TYPES, _EXPERIMENT_MINIMUM)
    if config.get("checkpoint_policy") not in (None, "best", "all", "none"):
        errors.add(".checkpoint_policy", 'value must be one of <nil>, "best", "all", "none"')
    labels = config.get("labels")
    if isinstance(labels, list):
        for index, label in enumerate(labels):
            if not isinstance(label, str):
                errors.add(f".labels[{index}]", f"expected string, but got {_type(label)}")
    if isinstance(config.get("resources"), dict):
        _check_resources(errors, config["resources"])
    reproducibility = config.get("reproducibility")
    if isinstance(reproducibility, dict):
        _check_properties(
            errors, ".reproducibility", reproducibility, {"experiment_seed": ("integer", "null")},
            {"experiment_seed": 0},
        )  # fmt: skip
    searcher = config.get("searcher")
    if isinstance(searcher, dict):
        _check_searcher(errors, searcher)
    hparams = config.get("hyperparameters")
    if isinstance(hparams, dict):
        for name, spec in hparams.items():
            _check_hparam(errors, f".hyperparameters.{name}", spec)
        if isinstance(searcher, dict) and searcher.get("name") == "grid":
            for name, spec in hparams.items():
                _check_grid(errors, f".hyperparameters.{name}", spec)
    return sorted(errors.lines)


def _check_resources(errors: _Errors, resources: Mapping[str, Any]) -> None:
    _check_properties(
        errors, ".resources", resources, _RESOURCES_TYPES, {"slots_per_trial": 0, "priority": 1}
    )
    priority: Any = resources.get("priority")
    if _type(priority) == "number" and priority > 99:
        errors.add(".resources.priority", f"must be <= 99 but found {_number(priority)}")


def _check_searcher(errors: _Errors, searcher: Mapping[str, Any]) -> None:
    """``searcher.json`` (every searcher's keys, the common ones typed), then the union member
    named by ``name``: its errors come on top, so an unknown key or a mistyped common key is
    reported twice, as on the master."""
    outer = {key: _SEARCHER_COMMON.get(key, ()) for key in _OUTER_SEARCHER_KEYS}
    _check_properties(errors, ".searcher", searcher, outer)
    if "name" not in searcher:
        return
    name = searcher["name"]
    members = _SEARCHER_MEMBERS.get(name) if isinstance(name, str) else None
    if members is None:
        if name not in SEARCHER_NAMES:  # no union key matches: the union's own message
            errors.add(".searcher", _SEARCHER_UNION_MESSAGE)
        return  # the EOL searchers parse; AssertCurrent refuses them later
    _check_properties(
        errors, ".searcher", searcher, {**_SEARCHER_COMMON, **members}, _SEARCHER_MINIMUM
    )
    if name == "adaptive_asha":
        _check_asha(errors, searcher)
    length = searcher.get("max_length")
    if length is not None and _matches(length, _LENGTH):
        _check_searcher_length(errors, length)


def _check_asha(errors: _Errors, searcher: Mapping[str, Any]) -> None:
    mode = searcher.get("mode")
    if mode not in (None, "aggressive", "standard", "conservative"):
        errors.add(
            ".searcher.mode",
            'value must be one of <nil>, "aggressive", "standard", "conservative"',
        )
    divisor: Any = searcher.get("divisor")
    if _type(divisor) == "number" and divisor <= 1:
        errors.add(".searcher.divisor", f"must be > 1 but found {_number(divisor)}")


def _check_searcher_length(errors: _Errors, length: Any) -> None:
    """``searcher-length.json``: a non-negative integer, or a length object with one unit.
    The object form's messages are approximated (check-positive-length.json)."""
    if _type(length) == "number":
        if length < 0:
            errors.add(".searcher.max_length", f"must be >= 0 but found {_number(length)}")
        return
    units = [key for key in length if key in ("batches", "records", "epochs")]
    if len(units) != 1 or len(length) != 1:
        errors.add(
            ".searcher.max_length", "must specify exactly one of batches, records, or epochs"
        )
        return
    value = length[units[0]]
    if not _matches(value, ("integer",)):
        errors.add(f".searcher.max_length.{units[0]}", f"expected integer, but got {_type(value)}")
    elif value < 0:
        errors.add(f".searcher.max_length.{units[0]}", f"must be >= 0 but found {_number(value)}")


def _check_hparam(errors: _Errors, path: str, spec: Any) -> None:
    """``hyperparameter.json``: a union on ``type``; a plain value is a const."""
    if not isinstance(spec, dict):
        return
    kind = spec.get("type")
    if "type" not in spec:
        for name, sub in spec.items():
            _check_hparam(errors, f"{path}.{name}", sub)
        return
    member = _HPARAM_MEMBERS.get(kind) if isinstance(kind, str) else None
    if member is None:
        errors.add(path, _HPARAM_TYPE_CHECK)
        return
    required, types = member
    missing = [json.dumps(key) for key in required if key not in spec]
    if missing:
        errors.add(path, f"missing properties: {', '.join(missing)}")
    _check_properties(errors, path, spec, types, {"count": 1})
    if kind == "log" and _type(spec.get("base")) == "number" and spec["base"] <= 0:
        errors.add(f"{path}.base", f"must be > 0 but found {_number(spec['base'])}")
    low: Any = spec.get("minval")
    high: Any = spec.get("maxval")
    if kind in ("int", "double", "log") and _type(low) == "number" and _type(high) == "number":
        if low >= high:
            errors.add(path, "minval must be less than maxval")


def _check_grid(errors: _Errors, path: str, spec: Any) -> None:
    """``check-grid-hyperparameter.json``: ranges need a ``count`` under grid search."""
    if isinstance(spec, list):
        for index, item in enumerate(spec):
            _check_grid(errors, f"{path}[{index}]", item)
    elif isinstance(spec, dict) and "type" not in spec:
        for name, sub in spec.items():
            _check_grid(errors, f"{path}.{name}", sub)
    elif isinstance(spec, dict):
        if spec["type"] in ("double", "log", "int") and spec.get("count") is None:
            errors.add(path, "grid search is in use but count was not provided")


# --- merging and defaults -----------------------------------------------------------------------
def merge(config: Mapping[str, Any], fallback: Mapping[str, Any]) -> dict[str, Any]:
    """``schemas.Merge(config, fallback)``: ``config`` wins; objects merge key by key; labels
    are a set. A union (searcher, a typed hyperparameter) of another member is not merged."""
    result = dict(config)
    for key, other in fallback.items():
        mine = result.get(key)
        if key not in result or mine is None:
            result[key] = copy.deepcopy(other)
        elif key == "labels" and isinstance(mine, list) and isinstance(other, list):
            result[key] = mine + [label for label in other if label not in mine]
        elif isinstance(mine, dict) and isinstance(other, dict) and _same_member(mine, other):
            result[key] = merge(mine, other)
    return result


def _same_member(mine: Mapping[str, Any], other: Mapping[str, Any]) -> bool:
    for tag in ("name", "type"):
        if tag in mine and tag in other and mine[tag] != other[tag]:
            return False
    return True


def _searcher_defaults(name: Any) -> dict[str, Any]:
    common: dict[str, Any] = {
        "metric": None, "smaller_is_better": True, "source_trial_id": None,
        "source_checkpoint_uuid": None,
    }  # fmt: skip
    if name == "single":
        return {**common, "max_length": None}
    if name in ("grid", "random"):
        extra: dict[str, Any] = {"max_concurrent_trials": 16, "max_length": None}
        if name == "random":
            extra["max_trials"] = None
        return {**common, **extra}
    if name == "adaptive_asha":
        return {
            **common, "bracket_rungs": [], "max_trials": None, "time_metric": None,
            "max_time": None, "mode": "standard", "divisor": 4, "max_rungs": 5,
            "max_concurrent_trials": 16, "max_length": None, "stop_once": None,
        }  # fmt: skip
    return common


def _pet_name(rng: random.Random) -> str:
    """``petname.Generate(3, "-")``: adverb-adjective-name (a few words of its lists)."""
    adverbs = ("quickly", "mostly", "freely", "gently", "boldly", "neatly", "openly", "calmly")
    adjectives = ("brave", "calm", "eager", "fair", "gentle", "happy", "jolly", "keen")
    names = ("otter", "falcon", "badger", "heron", "lynx", "marten", "osprey", "walrus")
    return "-".join(rng.choice(words) for words in (adverbs, adjectives, names))


def with_defaults(
    config: Mapping[str, Any], *, storage: Mapping[str, Any], pool: str, priority: int,
    seed: int, rng: random.Random,
) -> dict[str, Any]:  # fmt: skip
    """``schemas.WithDefaults`` after the master's merges (checkpoint storage, pool, priority)."""
    result = merge(config, {
        "bind_mounts": [], "checkpoint_policy": "best", "checkpoint_storage": dict(storage),
        "data": {}, "debug": False, "description": None, "entrypoint": None,
        "environment": {
            "image": {"cpu": "determinedai/pytorch-ngc:0.38.1", "cuda": "determinedai/pytorch-ngc:0.38.1",
                      "rocm": "determinedai/environments:rocm-5.0-pytorch-1.10-tf-2.7-rocm-622d512"},
            "environment_variables": {"cpu": [], "cuda": [], "rocm": []}, "force_pull_image": False,
            "pod_spec": None, "add_capabilities": [], "drop_capabilities": [], "ports": {},
            "proxy_ports": [], "registry_auth": None,
        },
        "hyperparameters": {}, "integrations": None, "labels": [], "log_policies": [],
        "max_restarts": 5, "min_checkpoint_period": {"batches": 0},
        "min_validation_period": {"batches": 0}, "name": f"Experiment ({_pet_name(rng)})",
        "optimizations": {
            "aggregation_frequency": 1, "average_aggregated_gradients": True,
            "average_training_metrics": True, "gradient_compression": False,
            "grad_updates_size_file": None, "mixed_precision": "O0",
            "tensor_fusion_threshold": 64, "tensor_fusion_cycle_time": 1,
            "auto_tune_tensor_fusion": False,
        },
        "perform_initial_validation": False, "pbs": {}, "preemption_timeout": None,
        "profiling": {"enabled": False, "begin_on_batch": 0, "end_after_batch": None, "sync_timings": True},
        "project": "", "records_per_epoch": 0, "reproducibility": {"experiment_seed": seed},
        "resources": {
            "resource_pool": pool, "slots_per_trial": 1, "max_slots": None, "priority": priority,
            "weight": 1, "native_parallel": False, "shm_size": None, "agent_label": None,
            "devices": [], "is_single_node": None,
        },
        "scheduling_unit": 100, "slurm": {}, "workspace": "",
    })  # fmt: skip
    if isinstance(result.get("resources"), dict):
        if not result["resources"].get("resource_pool"):
            result["resources"]["resource_pool"] = pool
        if result["resources"].get("priority") is None:
            result["resources"]["priority"] = priority
    if isinstance(result.get("reproducibility"), dict):
        if result["reproducibility"].get("experiment_seed") is None:
            result["reproducibility"]["experiment_seed"] = seed
    searcher = result.get("searcher")
    if isinstance(searcher, dict):
        result["searcher"] = merge(searcher, _searcher_defaults(searcher.get("name")))
    environment = result.get("environment")
    if isinstance(environment, dict):
        result["environment"] = _per_device(environment)
    return result


def _per_device(environment: Mapping[str, Any]) -> dict[str, Any]:
    """``EnvironmentImageMapV0``/``EnvironmentVariablesMapV0``: one image (or variable list)
    given for all devices is stored as a map with one entry per device type."""
    result = dict(environment)
    image = result.get("image")
    if isinstance(image, str):
        result["image"] = {"cpu": image, "cuda": image, "rocm": image}
    variables = result.get("environment_variables")
    if isinstance(variables, list):
        result["environment_variables"] = {
            "cpu": list(variables), "cuda": list(variables), "rocm": list(variables),
        }  # fmt: skip
    return result


# --- completeness and current searchers ---------------------------------------------------------
def completeness_errors(config: Mapping[str, Any]) -> list[str]:
    """``schemas.IsComplete``: the ``eventuallyRequired`` properties (after the defaults)."""
    errors = _Errors()
    for key in ("checkpoint_storage", "name", "hyperparameters", "reproducibility", "searcher"):
        if config.get(key) is None:
            errors.add("", f"{key} is a required property")
    searcher = config.get("searcher")
    if isinstance(searcher, dict):
        for key in ("name", "metric"):
            if searcher.get(key) is None:
                errors.add(".searcher", f"{key} is a required property")
        for key in _SEARCHER_REQUIRED_LATER.get(str(searcher.get("name")), ()):
            if searcher.get(key) is None:  # the union member repeats its own requirements
                errors.add(".searcher", f"{key} is a required property")
    return sorted(errors.lines)


def assert_current(searcher: Mapping[str, Any]) -> str | None:
    """``SearcherConfig.AssertCurrent``: removed searchers, and ASHA's time settings."""
    name = searcher.get("name")
    if name in ("adaptive_asha", "async_halving"):
        if searcher.get("max_time") is None or searcher.get("time_metric") is None:
            return f"the `{name}` searcher requires `max_time` and `time_metric` to be set"
    if name in ("sync_halving", "adaptive", "adaptive_simple", "custom"):
        return f"the '{name}' searcher has been removed and is not valid for new experiments"
    return None


def normalize(config: Mapping[str, Any]) -> dict[str, Any]:
    """A stored config read back into the master's struct and written again
    (``ActiveExperimentConfig``, then ``Value()``): keys the struct does not have are gone (at
    the top and in the searcher, the parts this module knows)."""
    result = {
        key: copy.deepcopy(value) for key, value in config.items() if key in _EXPERIMENT_TYPES
    }
    searcher = result.get("searcher")
    if isinstance(searcher, dict):
        members = _SEARCHER_MEMBERS.get(str(searcher.get("name")))
        if members is not None:
            result["searcher"] = {
                key: value
                for key, value in searcher.items()
                if key in _SEARCHER_COMMON or key in members
            }
    return result
