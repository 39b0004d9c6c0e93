"""help() on a query lists its filter fields, their lookups and its orderings.

Checked against the generated typed keywords (``detorm/_plan/_lookups.py``), so the text and
what mypy accepts cannot drift apart."""

from __future__ import annotations

import pydoc
import re
from typing import get_args

import pytest

import detorm
import detorm.aio
from detorm._plan import _lookups
from detorm._plan._columns import COLUMNS

SYNC = [getattr(detorm, f"{name}Query") for name in COLUMNS]
ASYNC = [getattr(detorm.aio, f"Async{name}Query") for name in COLUMNS]


def _help(obj: object) -> str:
    """What ``help(obj)`` prints, without the class box's `` |  `` margin."""
    text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
    return re.sub(r"^ \|  ?", "", text, flags=re.M)


def _resource(cls: type) -> str:
    return cls.__name__.removeprefix("Async").removesuffix("Query")


def _field_rows(text: str) -> dict[str, set[str]]:
    """{field: lookups} from the help text's table (``    name   kind   exact, in, ...``)."""
    rows: dict[str, set[str]] = {}
    for match in re.finditer(r"^    (\w+) {2,}\S.*? {2,}([a-z, ]+)$", text, re.M):
        rows[match[1]] = set(match[2].split(", "))
    return rows


@pytest.mark.parametrize("query_class", SYNC + ASYNC, ids=lambda c: c.__name__)
def test_help_lists_every_filter_keyword_and_ordering(query_class: type) -> None:
    resource = _resource(query_class)
    text = _help(query_class)
    expected: dict[str, set[str]] = {}
    for key in getattr(_lookups, f"{resource}Lookups").__annotations__:
        field, _, lookup = key.partition("__")
        expected.setdefault(field, set()).add(lookup or "exact")
    assert _field_rows(text) == expected
    orderings = {key.lstrip("-") for key in get_args(getattr(_lookups, f"{resource}OrderKey"))}
    listed = text.split("Orderings of .order_by()", 1)[1]
    assert orderings == set(re.findall(r'"([a-z_]+)"', listed))


def test_help_on_a_query_object_names_hp_metrics_and_enum_values() -> None:
    text = _help(detorm.Experiment.query())
    assert "tags__contains" not in text  # lookups are listed per field, not as keywords
    assert re.search(r"^    tags +set of str +exact, contains, isnull$", text, re.M)
    assert '"hp.<name>"' in text and "metrics.<group>.<metric>" in text
    assert '"ACTIVE", "PAUSED"' in text.split("state values (ExperimentState):", 1)[1]
    assert '"metadata.<key>"' in _help(detorm.Trial.query())
    assert '"validation.<metric>.last"' in _help(detorm.Checkpoint.query())
    webhooks = _help(detorm.Webhook.query())
    assert "hp.<name>" not in webhooks  # only experiments and trials filter on hyperparameters


def test_a_query_class_keeps_its_own_docstring_above_the_fields() -> None:
    class ExperimentQuery(detorm.ExperimentQuery):
        """Experiments of my team."""

    assert ExperimentQuery.__doc__ is not None
    assert ExperimentQuery.__doc__.startswith("Experiments of my team.\n\nFilter fields of")
