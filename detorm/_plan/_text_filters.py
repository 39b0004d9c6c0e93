"""Filters written as text (``state=ACTIVE``, ``hp.lr__gt=0.01``), as the ``detorm`` command
takes them, turned into the very lookups of ``Query.filter(...)``.

A text filter is ``<field>[__<lookup>]=<value>``. The field is spelled as in Python's keywords
(``hp__lr``, ``validation__loss__min``) or with dots as ``order_by()`` spells it (``hp.lr``,
``hp.optimizer.momentum``, ``validation.loss.min``, ``metadata.team``); both go through the
parsers of ``_conditions`` (``parse_lookup`` and the ``order_by`` field parser), so a field means
the same thing in a script and on the command line. The value is text: it is converted to the
field's type (ints, floats, booleans, comma-separated lists for ``__in`` and for a whole tag
set); a value that does not convert is handed over as text, so that the Python API's own check
refuses it with the message a script would get (``Experiment.id must be an int, not str
('abc')``). Quoting a value (``name='123'``) keeps it text.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ..errors import QueryError
from ._columns import COLUMNS, LOOKUPS
from ._conditions import FieldRef, Leaf, _ordering_ref, check_leaf, parse_lookup

__all__ = ["TRUE_WORDS", "filter_keys", "parse_text_filter"]

TRUE_WORDS: Final = frozenset({"true", "yes", "1"})
FALSE_WORDS: Final = frozenset({"false", "no", "0"})
_INT: Final = re.compile(r"[+-]?\d+")
EXAMPLE: Final = "a filter is <field>[__<lookup>]=<value>, e.g. state=ACTIVE or hp.lr__gt=0.01"


def parse_text_filter(resource: str, text: str) -> Leaf:
    """``"hp.lr__gt=0.01"`` -> the checked lookup ``filter(hp__lr__gt=0.01)`` makes.

    Raises QueryError (or InvalidType) naming the field, lookup or value that is wrong."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise QueryError(f"{text!r}: {EXAMPLE}")
    unchecked = _field_of(key)
    value = _typed_value(resource, unchecked.field, unchecked.lookup, raw)
    return check_leaf(resource, Leaf(unchecked.field, unchecked.lookup, value))


def _field_of(key: str) -> Leaf:
    """The field and lookup of a key (the value is filled in later)."""
    if "." not in key:
        return parse_lookup(key, None)  # the Python keyword spelling, as filter() parses it
    name, lookup = key, "exact"
    head, sep, tail = key.rpartition("__")
    if sep and tail in LOOKUPS:
        name, lookup = head, tail
    elif sep and "." not in tail:
        raise QueryError(f"{key!r}: unknown lookup {tail!r}; lookups are: {', '.join(LOOKUPS)}")
    return Leaf(_ordering_ref(name), lookup, None)  # the dotted spelling of order_by()


def _typed_value(resource: str, ref: FieldRef, lookup: str, raw: str) -> Any:
    if lookup == "isnull":
        return _bool(raw)
    if ref.kind != "column":
        if lookup == "in":
            return [_free_scalar(part) for part in _split(raw)]
        return _free_scalar(raw)
    col = COLUMNS[resource].get(ref.name)
    if col is None:
        return raw  # check_leaf names the resource's fields
    if lookup == "in":
        return [_scalar(col.kind, part) for part in _split(raw)]
    if col.kind == "set":
        return raw if lookup == "contains" else [] if raw == "" else _split(raw)
    return _scalar(col.kind, raw)


def _scalar(kind: str, raw: str) -> Any:
    text = _unquoted(raw)
    if text is not raw:
        return text
    if kind == "int" and _INT.fullmatch(raw.strip()):
        return int(raw)
    if kind == "float":
        return _number(raw)
    if kind == "bool":
        return _bool(raw)
    return raw


def _free_scalar(raw: str) -> Any:
    """A hyperparameter's, metric's or metadata's value: a number when it reads as one."""
    text = _unquoted(raw)
    return text if text is not raw else _number(raw)


def _number(raw: str) -> Any:
    text = raw.strip()
    if _INT.fullmatch(text):
        return int(text)
    try:
        return float(text)
    except ValueError:
        return raw


def _bool(raw: str) -> Any:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return raw  # refused by the Python check: "must be True or False, not str"


def _unquoted(raw: str) -> str:
    """The text inside matching quotes; ``raw`` itself (the same object) when unquoted."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",")]


def filter_keys(resource: str) -> list[str]:
    """Every ``field[__lookup]`` a text filter of ``resource`` can start with (completion)."""
    keys: list[str] = []
    for col in COLUMNS[resource].values():
        keys.append(col.name)
        keys += [f"{col.name}__{lookup}" for lookup in LOOKUPS if lookup in col.lookups]
    return keys
