"""Task config policies on detorm.local, as ``api_config_policies.go`` and ``configpolicy/*.go``
behave on an OSS master (basic authorization: admins and workspace owners write, anyone reads)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import select

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from tests.conftest import error_of, login

GLOBAL = "/api/v1/config-policies/global/{}"
WORKSPACE = "/api/v1/config-policies/workspaces/{}/{}"
CODES = {400: (3, "InvalidArgument"), 403: (7, "PermissionDenied"), 404: (5, "NotFound")}
CODES[500] = (13, "Internal")


@dataclass
class World:
    api: httpx.Client  # "determined", not an admin
    admin: httpx.Client
    mine: int  # owned by determined
    theirs: int  # owned by admin
    master: LocalMaster


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        mine = seed.workspace("mine", owner="determined")
        theirs = seed.workspace("theirs", owner="admin")
    admin = login(local_master.url, "admin")
    try:
        yield World(api, admin, mine, theirs, local_master)
    finally:
        admin.close()


def failure(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    code, reason = CODES[status]
    assert error_of(response) == {"code": code, "reason": reason, "error": message}


def put(client: httpx.Client, url: str, text: str) -> httpx.Response:
    return client.put(url, json={"configPolicies": text})


def policies(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"configPolicies"}
    return body["configPolicies"]


YAML = """
invariant_config:
  description: fixed
  resources:
    max_slots: 4.0
constraints:
  priority_limit: 10
  resources:
    max_slots: 4
"""


def test_put_get_delete_global_policies(world: World) -> None:
    url = GLOBAL.format("EXPERIMENT")
    assert policies(world.api.get(url)) == {}
    expected = {
        "constraints": {"priority_limit": 10, "resources": {"max_slots": 4}},
        "invariant_config": {"description": "fixed", "resources": {"max_slots": 4}},
    }
    assert policies(put(world.admin, url, YAML)) == expected
    assert policies(world.api.get(url)) == expected
    assert list(world.api.get(url).json()["configPolicies"]) == sorted(expected)  # protojson
    assert policies(world.api.get(GLOBAL.format("NTSC"))) == {}
    assert world.admin.delete(url).json() == {}
    assert policies(world.api.get(url)) == {}


def test_put_replaces_every_part(world: World) -> None:
    url = WORKSPACE.format(world.mine, "NTSC")
    policies(put(world.api, url, '{"constraints": {"priority_limit": 3}}'))
    assert policies(put(world.api, url, "constraints:\n  resources: {max_slots: 2}\n")) == {
        "constraints": {"resources": {"max_slots": 2}}
    }
    assert policies(world.api.get(url)) == {"constraints": {"resources": {"max_slots": 2}}}
    assert policies(world.api.get(WORKSPACE.format(world.theirs, "NTSC"))) == {}


def test_permissions(world: World) -> None:
    failure(
        put(world.api, GLOBAL.format("EXPERIMENT"), YAML),
        403,
        "rpc error: code = PermissionDenied desc = user does not have permission",
    )
    failure(
        world.api.delete(GLOBAL.format("EXPERIMENT")),
        403,
        "rpc error: code = PermissionDenied desc = user does not have permission",
    )
    failure(
        put(world.api, WORKSPACE.format(world.theirs, "EXPERIMENT"), YAML),
        403,
        "only admins may set config policies for workspaces",
    )
    assert policies(put(world.admin, WORKSPACE.format(world.mine, "EXPERIMENT"), YAML))
    failure(
        world.api.get(WORKSPACE.format(999, "EXPERIMENT")),
        404,
        "rpc error: code = NotFound desc = workspace '999' not found",
    )


def test_workload_types(world: World) -> None:
    failure(put(world.admin, GLOBAL.format("TRIAL"), YAML), 400, "invalid workload type: TRIAL")
    failure(world.admin.delete(GLOBAL.format("TRIAL")), 400, "invalid workload type: TRIAL.")
    failure(
        world.admin.get(GLOBAL.format("TRIAL")),
        500,
        "rpc error: code = InvalidArgument desc = invalid workload type: TRIAL.",
    )
    failure(put(world.admin, GLOBAL.format("NTSC"), ""), 400, "no specified config policies")


PREFIX = "invalid experiment config policy: error unmarshaling JSON: while decoding JSON: json: "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo: 1", PREFIX + 'unknown field "foo"'),
        ("constraints: {priority_limit: 1, other: 2}", PREFIX + 'unknown field "other"'),
        (
            # keys are decoded in sorted order: "constraints" before "zzz"
            "zzz: 1\nconstraints: {priority_limit: x}",
            PREFIX + "cannot unmarshal string into Go struct field Constraints.constraints"
            ".priority_limit of type int",
        ),
        (
            "constraints: {resources: {max_slots: 1.5}}",
            PREFIX + "cannot unmarshal number 1.5 into Go struct field ResourceConstraints"
            ".constraints.resources.max_slots of type int",
        ),
        (
            "[1, 2]",
            PREFIX + "cannot unmarshal array into Go value of type"
            " configpolicy.ExperimentConfigPolicies",
        ),
        (
            (
                "invariant_config: {resources: {slots_per_trial: 8}}\n"
                "constraints: {resources: {max_slots: 4}}"
            ),
            (
                "rpc error: code = InvalidArgument desc = invalid experiment config policy:"
                " invariant config has 8 slots per trial. violates constraints max slots of 4."
            ),
        ),
        (
            "invariant_config: {resources: {priority: 8}}\nconstraints: {priority_limit: 4}",
            (
                "rpc error: code = InvalidArgument desc = invalid experiment config policy:"
                " invariant config & constraints are trying to set the priority limit."
            ),
        ),
        (
            "constraints: {priority_limit: '%d'}",
            PREFIX  # a value is not in the message: its "%d" is harmless
            + "cannot unmarshal string into Go struct field Constraints.constraints.priority_limit"
            " of type int",
        ),
    ],
)
def test_experiment_policies_are_validated(world: World, text: str, message: str) -> None:
    failure(put(world.admin, GLOBAL.format("EXPERIMENT"), text), 400, message)
    assert policies(world.admin.get(GLOBAL.format("EXPERIMENT"))) == {}


def test_a_percent_in_the_message_is_a_go_format_verb(world: World) -> None:
    failure(
        put(world.admin, GLOBAL.format("EXPERIMENT"), "a%d: 1"),
        400,
        PREFIX + 'unknown field "a%!d(MISSING)"',
    )


def test_workspace_invariants_must_fit_global_constraints(world: World) -> None:
    policies(
        put(world.admin, GLOBAL.format("EXPERIMENT"), "constraints: {resources: {max_slots: 2}}")
    )
    failure(
        put(
            world.api,
            WORKSPACE.format(world.mine, "EXPERIMENT"),
            "invariant_config: {resources: {max_slots: 3}}",
        ),
        400,
        "rpc error: code = InvalidArgument desc = invalid experiment config policy: workspace"
        " invariant_config conflicts with global constraints: invariant config & constraints are"
        " trying to set the max slots.",
    )


def test_ntsc_policies_have_no_invariant_config(world: World) -> None:
    failure(
        put(world.admin, GLOBAL.format("NTSC"), "invariant_config: {description: x}"),
        400,
        "rpc error: code = InvalidArgument desc = not supported: invariant config policies for"
        ' tasks is not yet supported, \n\t\t  please remove "invariant_config" section and try'
        " again.",
    )


def test_a_deleted_workspace_takes_its_policies(world: World) -> None:
    policies(put(world.api, WORKSPACE.format(world.mine, "NTSC"), "constraints: {}"))
    policies(put(world.admin, WORKSPACE.format(world.theirs, "NTSC"), "constraints: {}"))
    assert world.api.delete(f"/api/v1/workspaces/{world.mine}").status_code == 200
    with world.master.database.session() as db:
        kept = db.exec(select(t.TaskConfigPolicyRow.workspace_id)).all()
    assert kept == [world.theirs]
