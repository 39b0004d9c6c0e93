"""Text in the order of the master's Postgres: glibc's en_US.UTF-8 collation.

One ordering serves the SDK (conditions it evaluates itself agree with the same conditions
pushed to the master) and detorm.local (its SQL's ``COLLATE pgtext`` and its sorts).

Postgres compares text with its database's collation, en_US.UTF-8 in the master's official
deployments (the ``postgres`` Docker images, Debian with glibc 2.28 or later). Names sort by
base letter first, ignoring case, accents and most punctuation (``_TestWS`` sorts with
``TestWS``, after ``st`` and before ``Uncategorized``), then by accents, then by case (lower
first), then by the punctuation itself; where the collation ties, Postgres compares the bytes.

The characters of ``_collation_table.py`` (Latin, Greek, Cyrillic, punctuation and currency
signs, generated from glibc's own ``strxfrm``: scripts/gen_collation.py) sort exactly as glibc
sorts them. Any other character (a combining mark, ``·``, CJK, an emoji) sorts after all of them
by code point: an approximation.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from ._collation_table import WEIGHTS

__all__ = ["collation_key", "text_compare"]

_AFTER_LISTED: Final = "\uffff"  # above every weight of the table
_, _BASE_ACCENT, _LOWER_CASE, _ = WEIGHTS["a"]


@lru_cache(maxsize=1 << 16)
def collation_key(text: str) -> tuple[str, str]:
    """A key that orders strings as Postgres orders them (``sorted(names, key=...)``)."""
    levels: tuple[list[str], ...] = ([], [], [], [])
    for char in text:
        weights = WEIGHTS.get(char) or _unlisted(char)
        for level, weight in zip(levels, weights, strict=True):
            level.append(weight)
    # the levels, as glibc's strxfrm writes them (weights are above the separator U+0001)
    return "\x01".join("".join(level) for level in levels), text


def _unlisted(char: str) -> tuple[str, str, str, str]:
    return (_AFTER_LISTED + char, _BASE_ACCENT, _LOWER_CASE, "\x01" + _AFTER_LISTED + char)


def text_compare(a: str, b: str) -> int:
    """``strcoll``, then the bytes: the ``COLLATE pgtext`` of detorm.local's SQL."""
    key_a, key_b = collation_key(a), collation_key(b)
    return (key_a > key_b) - (key_a < key_b)
