"""Names sort as the master's Postgres sorts them: glibc's en_US.UTF-8 collation, on every
route that orders by a name (the master's SQL ``ORDER BY``; Go-side sorts keep byte order)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from detorm._plan._collation import collation_key, text_compare
from detorm.local import LocalMaster, Seeder
from tests.conftest import login

NAMES = [
    "Uncategorized", "_TestWS", "_TestPatched", "alpha", "Alpha", "ALPHA", "al-pha", "al_pha",
    "alpha 2", "alpha10", "alpha9", "Ålpha", "älpha", "beta", "Bêta", "béta", "$cost", "1st",
    "10th", "2nd", "zeta", "Zürich", "x.y", "x-y", "xy",
]  # fmt: skip
GLIBC_ORDER = [
    "$cost", "10th", "1st", "2nd", "al-pha", "al_pha", "alpha", "Alpha", "ALPHA", "Ålpha",
    "älpha", "alpha10", "alpha 2", "alpha9", "beta", "béta", "Bêta", "_TestPatched", "_TestWS",
    "Uncategorized", "x-y", "x.y", "xy", "zeta", "Zürich",
]  # fmt: skip
"""``printf '%s\\n' NAMES | LC_ALL=en_US.UTF-8 sort`` with glibc 2.36 (Debian 12)."""

MIXED = ["Uncategorized", "_TestWS", "_TestPatched", "beta", "Bêta", "alpha10", "alpha9", "1st"]


def in_glibc_order(names: list[str]) -> list[str]:
    return [name for name in GLIBC_ORDER if name in names]


def test_the_collation_orders_names_as_glibc_en_us() -> None:
    assert sorted(NAMES, key=collation_key) == GLIBC_ORDER
    assert sorted(["Uncategorized", "_TestWS", "_TestPatched"], key=collation_key) == [
        "_TestPatched", "_TestWS", "Uncategorized",
    ]  # fmt: skip


def test_ties_of_the_collation_fall_back_to_the_bytes_and_unlisted_characters_sort_last() -> None:
    assert text_compare("a", "a") == 0
    assert text_compare("ab", "a\u00b7b") != 0  # U+00B7 is not in the table: ordered anyway
    assert sorted(["\u4e00", "z", "Z"], key=collation_key) == ["z", "Z", "\u4e00"]


@pytest.fixture(scope="module")
def api() -> Iterator[httpx.Client]:
    """Workspaces, projects (in the first new workspace), models (all labelled "Uncategorized"
    too), users and experiments named after MIXED."""
    with LocalMaster(process=False) as master:
        with Seeder(master.database) as seed:
            workspaces = [seed.workspace(name) for name in MIXED if name != "Uncategorized"]
            for index, name in enumerate(MIXED):
                seed.project(name, workspace=workspaces[0], description=name, key=f"K{index}")
                seed.model(name, description=name, labels=[name, "Uncategorized"])
                seed.user(name.lower(), display_name=name, password="pw")
                seed.experiment(project=1, name=name, labels=[name])
        client = login(master.url)
        try:
            yield client
        finally:
            client.close()


def names(response: httpx.Response, key: str, field: str = "name") -> list[Any]:
    assert response.status_code == 200, response.text
    return [item[field] for item in response.json()[key]]


def test_workspaces_and_projects_sort_by_name_in_the_collation(api: httpx.Client) -> None:
    by_name = {"sortBy": "SORT_BY_NAME"}
    assert names(api.get("/api/v1/workspaces", params=by_name), "workspaces") == in_glibc_order(
        MIXED
    )
    descending = {**by_name, "orderBy": "ORDER_BY_DESC"}
    assert names(api.get("/api/v1/workspaces", params=descending), "workspaces") == list(
        reversed(in_glibc_order(MIXED))
    )
    projects = "/api/v1/workspaces/2/projects"  # the first workspace seeded
    assert names(api.get(projects, params=by_name), "projects") == in_glibc_order(MIXED)
    by_description = {"sortBy": "SORT_BY_DESCRIPTION"}
    assert names(api.get(projects, params=by_description), "projects", "description") == (
        in_glibc_order(MIXED)
    )


def test_models_and_their_labels_sort_in_the_collation(api: httpx.Client) -> None:
    for sort_by in ("SORT_BY_NAME", "SORT_BY_DESCRIPTION"):
        listed = names(api.get("/api/v1/models", params={"sortBy": sort_by}), "models")
        assert listed == in_glibc_order(MIXED)
    # by the most models first (every model has "Uncategorized"), then by label
    labels = api.get("/api/v1/model/labels").json()["labels"]
    assert labels == ["Uncategorized", *in_glibc_order(MIXED[1:])]


def test_users_sort_by_names_in_the_collation(api: httpx.Client) -> None:
    expected = in_glibc_order(MIXED)
    for sort_by in ("SORT_BY_DISPLAY_NAME", "SORT_BY_NAME"):
        listed = names(api.get("/api/v1/users", params={"sortBy": sort_by}), "users", "displayName")
        assert [name for name in listed if name] == expected  # admin and determined have none
    by_username = api.get("/api/v1/users", params={"sortBy": "SORT_BY_USER_NAME"})
    assert names(by_username, "users", "username") == [
        "1st", "admin", "alpha10", "alpha9", "beta", "bêta", "determined", "_testpatched",
        "_testws", "uncategorized",
    ]  # fmt: skip


def test_experiments_and_runs_sort_by_name_in_the_collation(api: httpx.Client) -> None:
    expected = in_glibc_order(MIXED)
    listed = api.get("/api/v1/experiments", params={"sortBy": "SORT_BY_NAME"}).json()
    assert [e["name"] for e in listed["experiments"]] == expected
    searched = api.post("/api/v1/experiments-search", json={"sort": "name=asc"}).json()
    assert [row["experiment"]["name"] for row in searched["experiments"]] == expected
    labels = api.get("/api/v1/experiment/labels").json()["labels"]
    assert labels == expected
