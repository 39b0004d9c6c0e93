"""Text filters (``hp.lr__gt=0.01``) make the very lookups of ``filter(hp__lr__gt=0.01)``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from detorm import Experiment, Model, Trial
from detorm._plan._conditions import FieldRef, Leaf, check_leaf, parse_lookup
from detorm._plan._text_filters import parse_text_filter
from detorm.errors import InvalidType, QueryError


def python_leaf(resource: str, key: str, value: Any) -> Leaf:
    """What Python's filter(**{key: value}) checks and keeps."""
    return check_leaf(resource, parse_lookup(key, value))


@pytest.mark.parametrize(
    ("resource", "text", "key", "value"),
    [
        ("Experiment", "state=ACTIVE", "state", "ACTIVE"),
        ("Experiment", "state__in=ACTIVE, PAUSED", "state__in", ["ACTIVE", "PAUSED"]),
        ("Experiment", "id=12", "id", 12),
        ("Experiment", "id__in=1,2,3", "id__in", [1, 2, 3]),
        ("Experiment", "id__gte=-4", "id__gte", -4),
        ("Experiment", "name__contains=bert", "name__contains", "bert"),
        ("Experiment", "name='123'", "name", "123"),
        ("Experiment", "name=123", "name", "123"),
        ("Experiment", "description=", "description", ""),
        ("Experiment", "archived=false", "archived", False),
        ("Experiment", "archived=True", "archived", True),
        ("Experiment", "progress__gt=0.5", "progress__gt", 0.5),
        ("Experiment", "end_time__isnull=yes", "end_time__isnull", True),
        ("Experiment", "tags=prod,cv", "tags", ["prod", "cv"]),
        ("Experiment", "tags=", "tags", []),
        ("Experiment", "tags__contains=prod", "tags__contains", "prod"),
        (
            "Experiment", "start_time__gt=2024-01-02T03:04:05Z", "start_time__gt",
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        ),
        ("Experiment", "hp.lr__gt=0.01", "hp__lr__gt", 0.01),
        ("Experiment", "hp__lr__gt=0.01", "hp__lr__gt", 0.01),
        ("Experiment", "hp.layers=3", "hp__layers", 3),
        ("Experiment", "hp.optimizer.name=adam", "hp__optimizer__name", "adam"),
        ("Experiment", "hp.optimizer.name='3'", "hp__optimizer__name", "3"),
        ("Experiment", "hp.lr__in=0.1,0.01", "hp__lr__in", [0.1, 0.01]),
        ("Experiment", "validation.loss.min__lt=0.3", "validation__loss__min__lt", 0.3),
        ("Experiment", "validation__loss__min__lt=0.3", "validation__loss__min__lt", 0.3),
        ("Trial", "metadata.team=nlp", "metadata__team", "nlp"),
        ("Trial", "experiment_id=7", "experiment_id", 7),
        ("Model", "labels__contains=prod", "labels__contains", "prod"),
    ],
)  # fmt: skip
def test_a_text_filter_is_the_python_lookup(resource: str, text: str, key: str, value: Any) -> None:
    assert parse_text_filter(resource, text) == python_leaf(resource, key, value)


def test_dotted_metric_names_keep_their_dots() -> None:
    # The keyword spelling cannot name "val.loss"; the dotted one reads it as order_by() does.
    leaf = parse_text_filter("Experiment", "validation.val.loss.min__lt=1")
    assert leaf.field == FieldRef("metric", "val.loss", group="validation", aggregate="min")
    assert (leaf.lookup, leaf.value) == ("lt", 1)


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("state", QueryError, "'state': a filter is <field>[__<lookup>]=<value>"),
        ("=3", QueryError, "'=3': a filter is <field>[__<lookup>]=<value>"),
        ("id=abc", InvalidType, "Experiment.id must be an int, not str ('abc')"),
        ("id=1.5", InvalidType, "Experiment.id must be an int, not str ('1.5')"),
        ("archived=maybe", InvalidType, "Experiment.archived must be True or False, not str"),
        ("nope=1", QueryError, "Experiment has no field 'nope'; fields you can filter on:"),
        ("name__near=x", QueryError, "'name__near': unknown lookup 'near'"),
        ("hp.lr__near=1", QueryError, "'hp.lr__near': unknown lookup 'near'"),
        ("state=NOPE", QueryError, "Experiment.state: 'NOPE' is not a ExperimentState"),
        ("state__gt=ACTIVE", QueryError, "Experiment.state does not support the lookup 'gt'"),
        ("hp.lr__gt=big", InvalidType, "hp.lr__gt must be a number, not str ('big')"),
        ("progress=nan", QueryError, "Experiment.progress must be a finite number, not nan"),
        ("start_time__gt=yesterday", QueryError, "not an RFC 3339 timestamp: 'yesterday'"),
        ("validation.loss__lt=1", QueryError, "order by a metric as <group>.<metric>."),
    ],
)  # fmt: skip
def test_bad_text_filters_are_refused_naming_what_is_wrong(
    text: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        parse_text_filter("Experiment", text)
    assert message in str(raised.value)


def test_python_refuses_the_same_values_with_the_same_message() -> None:
    with pytest.raises(InvalidType) as text_error:
        parse_text_filter("Experiment", "id=abc")
    with pytest.raises(InvalidType) as python_error:
        Experiment.query().filter(id="abc")  # type: ignore[arg-type]
    assert str(text_error.value) == str(python_error.value)


def test_hyperparameters_and_metrics_only_where_the_master_filters_them() -> None:
    with pytest.raises(QueryError, match="Model cannot be filtered on hp"):
        parse_text_filter("Model", "hp.lr=1")
    assert parse_text_filter("Trial", "hp.lr__lt=1").field == FieldRef("hp", "lr")
    assert Trial.query().filter(parse_text_filter("Trial", "hp.lr__lt=1")) is not None
    assert Model.query().filter(parse_text_filter("Model", "name=x")) is not None
