"""The lookup cases of ``tests/sdk/lookups_e2e.py`` with the async API (the sync API's run in
``test_lookups_e2e_sync.py``)."""

from __future__ import annotations

import pytest

from tests.sdk.apis import Mode
from tests.sdk.lookups_e2e import (  # noqa: F401 (pytest collects the cases and the fixture here)
    test_combinations_match_brute_force,
    test_every_lookup_matches_brute_force,
    test_every_ordering_matches_brute_force,
    test_hp_and_metric_orderings_run_and_match_brute_force,
    world,
)


@pytest.fixture(scope="module")
def mode() -> Mode:
    return "async"
