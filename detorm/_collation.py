"""How the master's database orders text, for the SDK's client-side evaluation and detorm.local.

The master compares and sorts text in Postgres with the database's default collation, which the
official images and Helm chart create as ``en_US.UTF-8``. One approximation of it serves both
sides, so that a condition evaluated on the client agrees with the same condition pushed to the
master (or to detorm.local, which emulates Postgres with it).
"""

from __future__ import annotations

from functools import cmp_to_key
from typing import Any, Final

__all__ = ["collation_key", "text_compare", "text_sort_key"]


def collation_key(text: str) -> tuple[Any, ...]:
    """A sort key approximating glibc's en_US.UTF-8: letters compare case-insensitively first,
    punctuation before digits before letters, then lower case before upper case; deterministic,
    so different strings never compare equal."""
    primary = tuple(
        (2, c.lower()) if c.isalpha() else (1, c) if c.isdigit() else (0, c) for c in text
    )
    return (primary, text.swapcase(), text)


def text_compare(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b``."""
    if a == b:
        return 0
    return -1 if collation_key(a) < collation_key(b) else 1


text_sort_key: Final = cmp_to_key(text_compare)
"""``key=`` for sorts that must agree with the master's text ordering."""
