"""The lookup cases of ``tests/sdk/lookups_e2e.py`` with the sync API (the async API's run in
``test_lookups_e2e_async.py``)."""

from __future__ import annotations

import pytest

from tests.sdk.apis import Mode
from tests.sdk.lookups_e2e import (  # noqa: F401 (pytest collects the cases and the fixture here)
    test_combinations_match_brute_force,
    test_every_lookup_matches_brute_force,
    test_every_ordering_matches_brute_force,
    test_hp_and_metric_orderings_run_and_match_brute_force,
    test_orderings_the_master_cannot_run_are_refused_by_order_by,
    world,
)


@pytest.fixture(scope="module")
def mode() -> Mode:
    return "sync"
