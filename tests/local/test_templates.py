"""Config templates on detorm.local, as ``master/internal/templates/api.go`` behaves (basic, OSS
authorization: every user may do everything to every template)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlmodel import select

from detorm.local import LocalMaster, Seeder
from detorm.local import _tables as t
from detorm.local._errors import ApiError, Code
from detorm.local._routes.templates import template_config
from tests.conftest import error_of, login

PKEY = 'ERROR: duplicate key value violates unique constraint "templates_pkey" (SQLSTATE 23505)'


@dataclass
class World:
    api: httpx.Client  # "determined", not an admin
    admin: httpx.Client
    master: LocalMaster
    research: int  # owned by admin
    attic: int  # owned by admin, archived


@pytest.fixture
def world(local_master: LocalMaster, api: httpx.Client) -> Iterator[World]:
    with Seeder(local_master.database) as seed:
        research = seed.workspace("research", owner="admin")
        attic = seed.workspace("attic", owner="admin", archived=True)
    admin = login(local_master.url, "admin")
    try:
        yield World(api, admin, local_master, research, attic)
    finally:
        admin.close()


def template(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"template"}
    inner: dict[str, Any] = body["template"]
    return inner


def failure(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    codes = {400: (3, "InvalidArgument"), 404: (5, "NotFound"), 500: (13, "Internal")}
    code, reason = codes[status]
    assert error_of(response) == {"code": code, "reason": reason, "error": message}


def create(client: httpx.Client, name: str, config: Any = None, **fields: Any) -> dict[str, Any]:
    body = {"config": {"description": name} if config is None else config, **fields}
    return template(client.post(f"/api/v1/templates/{name}", json=body))


def stored(world: World) -> dict[str, tuple[str, int]]:
    """The templates table: name -> (config text, workspace id)."""
    with world.master.database.transaction(write=False) as db:
        rows = db.exec(select(t.TemplateRow)).all()
    return {row.name: (row.config, row.workspace_id) for row in rows}


def listed(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [tpl["name"] for tpl in response.json()["templates"]]


# --- PostTemplate --------------------------------------------------------------------------------


def test_post_creates_in_the_default_workspace_and_answers_the_stored_row(world: World) -> None:
    # the path names the template; the body's name is overridden
    body = {"name": "other", "config": {"resources": {"slots_per_trial": 2}}}
    created = template(world.api.post("/api/v1/templates/gpu", json=body))
    assert created == {
        "name": "gpu",
        "config": {"resources": {"slots_per_trial": 2}},
        "workspaceId": 1,  # 0 (absent) means the Uncategorized workspace
    }
    assert template(world.api.get("/api/v1/templates/gpu")) == created
    assert create(world.api, "here", workspaceId=world.research)["workspaceId"] == world.research


def test_post_stores_the_config_as_jsonb_gives_it_back(world: World) -> None:
    # json.Marshal(AsMap()) into jsonb, read back through a Struct: keys sorted, numbers doubles,
    # Go's string escapes; no negative zero in jsonb
    body = (
        b'{"config": {"b": [1.0, 2.50, 1e21, 1E-7, 0.000001, -0.0, 12345678901234567890],'
        b' "a": {"z": null, "y": true, "html": "<a href=\\"x\\">&</a>\\u2028"}}}'
    )
    response = world.api.post("/api/v1/templates/raw", content=body)
    assert response.status_code == 200
    assert response.content == (
        b'{"template":{"name":"raw","config":{"a":{"html":"\\u003ca href=\\"x\\"\\u003e\\u0026'
        b'\\u003c/a\\u003e\\u2028","y":true,"z":null},"b":[1,2.5,1e+21,1e-7,0.000001,0,'
        b'12345678901234567000]},"workspaceId":1}}'
    )
    # a missing or null config is an empty Struct: {}
    assert create(world.api, "empty", {})["config"] == {}
    nothing = world.api.post("/api/v1/templates/nothing", json={"workspaceId": 1})
    assert template(nothing)["config"] == {}
    assert template(world.api.post("/api/v1/templates/null", json={"config": None}))["config"] == {}
    assert template(world.api.post("/api/v1/templates/bare", content=b""))["config"] == {}


def test_post_refuses_an_existing_name_with_the_postgres_error(world: World) -> None:
    create(world.api, "dup")
    failure(
        world.api.post("/api/v1/templates/dup", json={"config": {}}),
        500,
        f"failed to create template dup: {PKEY}",
    )
    # names are case-sensitive
    assert create(world.api, "DUP")["name"] == "DUP"


@pytest.mark.parametrize("workspace", [99, -1])
def test_post_into_a_missing_workspace_is_a_404(world: World, workspace: int) -> None:
    response = world.api.post("/api/v1/templates/x", json={"config": {}, "workspaceId": workspace})
    failure(response, 404, f"workspace '{workspace}' not found")
    assert "x" not in stored(world)


def test_post_into_an_archived_workspace_is_a_404(world: World) -> None:
    # workspace.Exists only counts workspaces that are not archived
    response = world.api.post(
        "/api/v1/templates/x", json={"config": {}, "workspaceId": world.attic}
    )
    failure(response, 404, f"workspace '{world.attic}' not found")


def test_post_needs_a_name(world: World) -> None:
    # "%2F" unescapes to "/", and the trailing slash is trimmed: the name is ""
    failure(world.api.post("/api/v1/templates/%2F", json={}), 400, "name is required")


@pytest.mark.parametrize(
    ("config", "kind"), [("5", "number"), ("[1]", "array"), ('"text"', "string"), ("true", "bool")]
)
def test_a_config_that_is_not_an_object_is_a_400(world: World, config: str, kind: str) -> None:
    message = f"bad StructValue: json: cannot unmarshal {kind} into Go value of type map[string]json.RawMessage"
    response = world.api.post("/api/v1/templates/x", content=f'{{"config": {config}}}'.encode())
    failure(response, 400, message)
    failure(world.api.patch("/api/v1/templates/x", content=config.encode()), 400, message)
    assert stored(world) == {}


def test_bad_fields_fail_in_the_gateway(world: World) -> None:
    response = world.api.post("/api/v1/templates/x", json={"workspaceId": "one"})
    assert response.status_code == 400 and error_of(response)["code"] == 3
    response = world.api.post("/api/v1/templates/x", content=b'{"config": {"n": 1e400}}')
    failure(
        response, 400, 'bad value in StructValue for key "n": unrecognized type for Value "1e400"'
    )


def test_jsonb_refuses_a_nul_in_the_config(world: World) -> None:
    # json.Marshal writes it as \u0000, which jsonb cannot store
    nul = "ERROR: unsupported Unicode escape sequence (SQLSTATE 22P05)"
    failure(
        world.api.post("/api/v1/templates/x", json={"config": {"a": ["\x00"]}}),
        500,
        f"failed to create template x: {nul}",
    )
    create(world.api, "x")
    failure(
        world.api.patch("/api/v1/templates/x", json={"k\x00": 1}),
        500,
        f"failed to update template: {nul}",
    )
    failure(world.api.put("/api/v1/templates/x", json={"config": {"a": "\x00"}}), 500, nul)
    assert template(world.api.get("/api/v1/templates/x"))["config"] == {"description": "x"}


def test_bun_drops_nul_characters_from_names(world: World) -> None:
    # bun writes strings into the SQL text without their NULs
    assert create(world.api, "a%00b")["name"] == "ab"
    assert template(world.api.get("/api/v1/templates/a%00b"))["name"] == "ab"
    failure(
        world.api.post("/api/v1/templates/%00ab", json={}),
        500,
        f"failed to create template \x00ab: {PKEY}",
    )


def test_configs_nest_as_deep_as_go_reads(world: World) -> None:
    depth = 2_000
    config = '{"a":' * depth + "1" + "}" * depth
    response = world.api.post("/api/v1/templates/deep", content=f'{{"config":{config}}}'.encode())
    assert response.status_code == 200, response.text[:300]
    expected = f'{{"template":{{"name":"deep","config":{config},"workspaceId":1}}}}'
    assert world.api.get("/api/v1/templates/deep").text == expected


# --- GetTemplate ---------------------------------------------------------------------------------


def test_get_an_unknown_template_is_a_404(world: World) -> None:
    failure(world.api.get("/api/v1/templates/nope"), 404, "template 'nope' not found")
    failure(world.api.get("/api/v1/templates/%2F"), 400, "name is required")


def test_templates_need_a_login(world: World) -> None:
    create(world.api, "x")
    anonymous = httpx.Client(base_url=world.master.url)
    with anonymous:
        for response in (
            anonymous.get("/api/v1/templates"),
            anonymous.get("/api/v1/templates/x"),
            anonymous.delete("/api/v1/templates/x"),
        ):
            assert response.status_code == 401
            assert error_of(response)["code"] == 16
    assert "x" in stored(world)


# --- GetTemplates --------------------------------------------------------------------------------


@pytest.fixture
def several(world: World) -> World:
    create(world.api, "beta", workspaceId=world.research)
    create(world.api, "Alpha")
    create(world.api, "alpha_2", workspaceId=world.research)
    create(world.api, "gamma")
    return world


def test_list_orders_by_name_whatever_the_sort(several: World) -> None:
    api = several.api
    # en_US collation: case is only a tie-break
    assert listed(api.get("/api/v1/templates")) == ["Alpha", "alpha_2", "beta", "gamma"]
    descending = ["gamma", "beta", "alpha_2", "Alpha"]
    assert listed(api.get("/api/v1/templates", params={"orderBy": "ORDER_BY_DESC"})) == descending
    assert listed(
        api.get("/api/v1/templates", params={"sortBy": "SORT_BY_NAME", "orderBy": 2})
    ) == (descending)
    # sortBy is parsed, then ignored
    assert (
        listed(api.get("/api/v1/templates", params={"sortBy": "SORT_BY_UNSPECIFIED"}))[0] == "Alpha"
    )
    bad = api.get("/api/v1/templates", params={"sortBy": "SORT_BY_WORKSPACE"})
    failure(bad, 400, "SORT_BY_WORKSPACE is not a valid apiv1.GetTemplatesRequest_SortBy")
    body = api.get("/api/v1/templates").json()
    assert body["templates"][0] == {
        "name": "Alpha",
        "config": {"description": "Alpha"},
        "workspaceId": 1,
    }
    assert body["pagination"] == {
        "offset": 0,
        "limit": 0,
        "startIndex": 0,
        "endIndex": 4,
        "total": 4,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # name ILIKE '%%' || name || '%%': a substring in any case, its wildcards live
        ({"name": "ALPHA"}, ["Alpha", "alpha_2"]),
        ({"name": "ph"}, ["Alpha", "alpha_2"]),
        ({"name": "a_2"}, ["alpha_2"]),  # "_" is a wildcard: any one character
        ({"name": "a_p"}, ["Alpha", "alpha_2"]),
        ({"name": "a%a"}, ["Alpha", "alpha_2", "gamma"]),
        ({"name": "\\_"}, ["alpha_2"]),  # an escaped wildcard
        ({"name": "zeta"}, []),
        ({"name": ""}, ["Alpha", "alpha_2", "beta", "gamma"]),
        ({"workspaceIds": "1"}, ["Alpha", "gamma"]),
        ({"workspaceIds": "R"}, ["alpha_2", "beta"]),  # R: the research workspace
        ({"workspace_ids": ["1", "R"]}, ["Alpha", "alpha_2", "beta", "gamma"]),
        ({"workspaceIds": "99"}, []),
        ({"workspaceIds": "1", "name": "g"}, ["gamma"]),
    ],
)
def test_list_filters(several: World, params: dict[str, Any], expected: list[str]) -> None:
    research = str(several.research)
    for key, value in params.items():
        if key.startswith("workspace"):
            values = value if isinstance(value, list) else [value]
            params[key] = [research if v == "R" else v for v in values]
    assert listed(several.api.get("/api/v1/templates", params=params)) == expected


def test_list_filters_by_workspace(several: World) -> None:
    response = several.api.get("/api/v1/templates", params={"workspaceIds": several.research})
    assert response.json()["pagination"]["total"] == 2
    bad = several.api.get("/api/v1/templates", params={"workspaceIds": "x"})
    assert bad.status_code == 400 and error_of(bad)["code"] == 3


@pytest.fixture
def many(world: World) -> World:
    """105 templates t000..t104, straight into the database."""
    with world.master.database.transaction(write=True) as db:
        for i in range(105):
            db.add(t.TemplateRow(name=f"t{i:03d}", config="{}", workspace_id=1))
    return world


def page(world: World, **params: Any) -> tuple[list[str], dict[str, int]]:
    response = world.api.get("/api/v1/templates", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    return [tpl["name"] for tpl in body["templates"]], body["pagination"]


def names(first: int, end: int) -> list[str]:
    return [f"t{i:03d}" for i in range(first, end)]


@pytest.mark.parametrize(
    ("params", "rows", "indices"),
    [
        ({}, (0, 100), (0, 100)),  # limit 0 is a page of 100
        ({"offset": 100}, (100, 105), (100, 105)),
        ({"offset": 3, "limit": 2}, (3, 5), (3, 5)),
        ({"offset": 104, "limit": 5}, (104, 105), (104, 105)),
        ({"offset": -3}, (102, 105), (102, 105)),
        ({"offset": 105}, (105, 105), (105, 105)),
        ({"offset": 500, "limit": 5}, (105, 105), (105, 105)),  # out of range: empty, not a 400
        ({"offset": -500}, (105, 105), (105, 105)),
        ({"limit": -1, "offset": 2}, (2, 105), (2, 105)),  # everything
        # bunutils.Paginate asks for LIMIT end - start, and bun writes no LIMIT unless positive:
        # a count-only page (-2) and any limit below it list every row from the offset on
        ({"limit": -2, "offset": 100}, (100, 105), (100, 100)),
        ({"limit": -7, "offset": 101}, (101, 105), (101, 94)),
        ({"limit": -2, "offset": 105}, (105, 105), (105, 105)),
    ],
)
def test_list_paginates_like_bunutils_paginate(
    many: World, params: dict[str, int], rows: tuple[int, int], indices: tuple[int, int]
) -> None:
    listed_names, pagination = page(many, **params)
    assert listed_names == names(*rows)
    assert pagination == {
        "offset": params.get("offset", 0),
        "limit": params.get("limit", 0),
        "startIndex": indices[0],
        "endIndex": indices[1],
        "total": 105,
    }


def test_pagination_counts_the_filtered_rows(many: World) -> None:
    listed_names, pagination = page(many, name="t10", limit=2, orderBy="ORDER_BY_DESC")
    assert listed_names == ["t104", "t103"]
    assert pagination == {"offset": 0, "limit": 2, "startIndex": 0, "endIndex": 2, "total": 5}


# --- PutTemplate ---------------------------------------------------------------------------------


def test_put_of_a_new_name_creates_it_and_echoes_the_request(world: World) -> None:
    # the response is the request's template, not the stored row
    assert template(world.api.put("/api/v1/templates/new", json={})) == {
        "name": "new",
        "config": None,
        "workspaceId": 0,
    }
    assert template(world.api.get("/api/v1/templates/new")) == {
        "name": "new",
        "config": {},
        "workspaceId": 1,
    }
    # the request's Struct keeps a negative zero; jsonb does not
    answer = world.api.put("/api/v1/templates/neg", json={"config": {"z": -0.0}})
    assert answer.status_code == 200 and '"config":{"z":-0}' in answer.text
    assert template(world.api.get("/api/v1/templates/neg"))["config"] == {"z": 0}
    failure(
        world.api.put("/api/v1/templates/x", json={"workspaceId": 77}),
        404,
        "workspace '77' not found",
    )
    failure(world.api.put("/api/v1/templates/%2F", json={}), 400, "name is required")


def test_put_of_an_existing_name_updates_what_it_is_given(world: World) -> None:
    create(world.api, "tpl", {"old": 1})
    updated = template(world.api.put("/api/v1/templates/tpl", json={"config": {"new": 2}}))
    assert updated == {"name": "tpl", "config": {"new": 2}, "workspaceId": 1}
    moved = template(world.api.put("/api/v1/templates/tpl", json={"workspaceId": world.research}))
    assert moved == {"name": "tpl", "config": {"new": 2}, "workspaceId": world.research}
    failure(
        world.api.put(
            "/api/v1/templates/tpl", json={"config": {"x": 1}, "workspaceId": world.attic}
        ),
        404,
        f"workspace '{world.attic}' not found",
    )
    # neither: bun updates every column of an empty model.Template, config NULL included
    failure(
        world.api.put("/api/v1/templates/tpl", json={"config": None}),
        500,
        'ERROR: null value in column "config" of relation "templates" violates not-null'
        " constraint (SQLSTATE 23502)",
    )
    assert stored(world)["tpl"] == ('{"new":2}', world.research)


# --- PatchTemplateConfig ------------------------------------------------------------------------


def test_patch_config_replaces_the_whole_config(world: World) -> None:
    create(world.api, "tpl", {"a": 1, "b": {"c": 2}}, workspaceId=world.research)
    patched = template(world.api.patch("/api/v1/templates/tpl", json={"b": {"d": 3}}))
    assert patched == {"name": "tpl", "config": {"b": {"d": 3}}, "workspaceId": world.research}
    # an empty body (or null) is an empty Struct
    assert template(world.api.patch("/api/v1/templates/tpl", content=b""))["config"] == {}
    assert template(world.api.patch("/api/v1/templates/tpl", content=b"null"))["config"] == {}


def test_patch_config_of_an_unknown_template_is_a_500(world: World) -> None:
    # TemplateByName's bare db.ErrNotFound
    failure(world.api.patch("/api/v1/templates/nope", json={"a": 1}), 500, "not found")
    failure(world.api.patch("/api/v1/templates/%2F", json={"a": 1}), 400, "name is required")


# --- PatchTemplateName --------------------------------------------------------------------------


def test_rename(world: World) -> None:
    create(world.api, "old", {"k": "v"}, workspaceId=world.research)
    create(world.api, "taken")
    rename = "/api/v1/template/rename"
    renamed = template(world.api.patch(rename, json={"oldName": "old", "newName": "new"}))
    assert renamed == {"name": "new", "config": {"k": "v"}, "workspaceId": world.research}
    failure(world.api.get("/api/v1/templates/old"), 404, "template 'old' not found")
    assert (
        template(world.api.patch(rename, json={"old_name": "new", "new_name": "new"}))["name"]
        == "new"
    )
    failure(
        world.api.patch(rename, json={"oldName": "new", "newName": "taken"}),
        500,
        f"failed to update template name: {PKEY}",
    )
    failure(world.api.patch(rename, json={"oldName": "nope", "newName": "x"}), 500, "not found")
    failure(world.api.patch(rename, json={}), 500, "not found")
    # nothing checks the new name: "" is taken, and then no route but this one reaches it
    assert template(world.api.patch(rename, json={"oldName": "new", "newName": ""}))["name"] == ""
    assert "" in listed(world.api.get("/api/v1/templates"))
    assert stored(world)[""] == ('{"k":"v"}', world.research)


# --- DeleteTemplate -----------------------------------------------------------------------------


def test_delete(world: World) -> None:
    create(world.api, "tpl")
    response = world.api.delete("/api/v1/templates/tpl")
    assert response.status_code == 200 and response.json() == {}
    assert stored(world) == {}
    failure(world.api.delete("/api/v1/templates/tpl"), 500, "not found")
    failure(world.api.delete("/api/v1/templates/%2F"), 500, "error deleting template: empty name")


def test_deleting_a_workspace_deletes_its_templates(world: World) -> None:
    create(world.api, "kept")
    create(world.api, "gone", workspaceId=world.research)
    response = world.admin.delete(f"/api/v1/workspaces/{world.research}")
    assert response.status_code == 200, response.text
    assert set(stored(world)) == {"kept"}


# --- permissions --------------------------------------------------------------------------------


def test_any_user_may_do_anything_to_any_template(world: World) -> None:
    # basic authorization: templates and workspaces are everyone's
    create(world.admin, "admins", {"x": 1}, workspaceId=world.research)
    assert template(world.api.get("/api/v1/templates/admins"))["config"] == {"x": 1}
    assert listed(world.api.get("/api/v1/templates")) == ["admins"]
    template(world.api.patch("/api/v1/templates/admins", json={"x": 2}))
    template(world.api.put("/api/v1/templates/admins", json={"workspaceId": 1}))
    rename = {"oldName": "admins", "newName": "mine"}
    template(world.api.patch("/api/v1/template/rename", json=rename))
    created = create(world.api, "in-admins-workspace", workspaceId=world.research)
    assert created["workspaceId"] == world.research
    assert world.api.delete("/api/v1/templates/mine").status_code == 200
    assert set(stored(world)) == {"in-admins-workspace"}


# --- launches -----------------------------------------------------------------------------------


def test_template_config_reads_a_template_for_a_launch(world: World) -> None:
    # UnmarshalTemplateConfig (commands and experiments launched with a template)
    create(world.api, "tpl", {"a": [1, 2.5, None], "b": "<x>"})
    depth = 3_000
    deep = '{"a":' * depth + "[]" + "}" * depth
    response = world.api.post("/api/v1/templates/deep", content=f'{{"config":{deep}}}'.encode())
    assert response.status_code == 200, response.text[:300]
    with world.master.database.transaction(write=False) as db:
        assert template_config(db, "tpl") == {"a": [1, 2.5, None], "b": "<x>"}
        nested = template_config(db, "deep")
        with pytest.raises(ApiError) as raised:
            template_config(db, "nope")
    for _ in range(depth):
        nested = nested["a"]
    assert nested == []
    assert raised.value.code == Code.NOT_FOUND
    assert raised.value.message == "template 'nope' not found"
