"""Users created and edited on detorm.local, as ``api_user.go`` and ``UserAuthZBasic`` do."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from detorm._wire import Timestamp
from detorm.local import LocalMaster
from tests.conftest import error_of, login


@pytest.fixture
def admin(local_master: LocalMaster) -> Iterator[httpx.Client]:
    client = login(local_master.url, "admin")
    try:
        yield client
    finally:
        client.close()


def create(
    client: httpx.Client, username: str, password: str = "", **user: object
) -> httpx.Response:
    body = {"user": {"username": username, "active": True, **user}, "password": password}
    return client.post("/api/v1/users", json=body)


def created(client: httpx.Client, username: str, password: str = "", **user: object) -> int:
    response = create(client, username, password, **user)
    assert response.status_code == 200, response.text
    user_id: int = response.json()["user"]["id"]
    return user_id


def can_login(master: LocalMaster, username: str, password: str) -> httpx.Response:
    return httpx.post(
        master.url + "/api/v1/auth/login", json={"username": username, "password": password}
    )


# --- PostUser -------------------------------------------------------------------------------


def test_admin_creates_a_user_who_logs_in_with_the_password(
    admin: httpx.Client, local_master: LocalMaster
) -> None:
    response = create(admin, "  alice ", "Secret123", displayName="Alice", admin=False)
    assert response.status_code == 200, response.text
    user = response.json()["user"]
    assert (user["username"], user["displayName"], user["active"], user["admin"]) == (
        "alice", "Alice", True, False,
    )  # fmt: skip
    assert can_login(local_master, "alice", "Secret123").status_code == 200
    assert can_login(local_master, "alice", "wrong").status_code == 401


def test_a_hashed_password_is_stored_as_sent(
    admin: httpx.Client, local_master: LocalMaster
) -> None:
    from detorm.local._db import client_hash

    body = {"user": {"username": "bob", "active": True}, "password": client_hash("pw"),
            "isHashed": True}  # fmt: skip
    assert admin.post("/api/v1/users", json=body).status_code == 200
    assert can_login(local_master, "bob", "pw").status_code == 200


def test_non_admins_cannot_create_users(api: httpx.Client) -> None:
    response = create(api, "mallory")
    assert response.status_code == 403
    assert error_of(response)["error"] == "only admin privileged users can create users"


def test_a_duplicate_username_is_the_masters_echo_error_seen_by_grpc(admin: httpx.Client) -> None:
    response = create(admin, "determined")
    assert response.status_code == 500
    assert error_of(response) == {
        "code": 13, "reason": "Internal", "error": "code=400, message=user already exists",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("a", "Display name or username value has minimum length."),
        ("   ", "Display name or username value has minimum length."),
        ("zoë", "Display name and username cannot contain non-ASCII characters."),
        ("Admin", "Non-admin user cannot be renamed 'admin'"),
        ("DETERMINED", "User cannot be renamed 'determined'"),
    ],
)
def test_usernames_are_checked_as_clear_username_does(
    admin: httpx.Client, username: str, message: str
) -> None:
    response = create(admin, username)
    assert response.status_code == 400
    assert error_of(response)["error"] == message


def test_missing_user_and_remote_password_are_rejected(admin: httpx.Client) -> None:
    response = admin.post("/api/v1/users", json={"password": "x"})
    assert error_of(response)["error"] == "must specify user to create"
    response = create(admin, "sso", "x", remote=True)
    assert error_of(response)["error"] == "cannot set password for remote user"


def test_agent_user_group_needs_all_four_fields(admin: httpx.Client) -> None:
    response = create(admin, "carol", agentUserGroup={"agentUid": 1000})
    assert response.status_code == 400
    assert (
        error_of(response)["error"]
        == "agentUid, agentGid, agentUser and agentGroup cannot be empty"
    )
    group = {"agentUid": 1000, "agentGid": 1001, "agentUser": "carol", "agentGroup": "staff"}
    response = create(admin, "carol", agentUserGroup=group)
    assert response.json()["user"]["agentUserGroup"] == group


# --- PatchUser ------------------------------------------------------------------------------


def test_admin_edits_names_activity_and_agent_group(admin: httpx.Client) -> None:
    user_id = created(admin, "dave", "pw")
    group = {"agentUid": 7, "agentGid": 8, "agentUser": "d", "agentGroup": "g"}
    response = admin.patch(
        f"/api/v1/users/{user_id}",
        json={"username": "david", "displayName": "David", "admin": True, "active": False,
              "agentUserGroup": group},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    user = response.json()["user"]
    assert (user["username"], user["displayName"], user["admin"], user["active"]) == (
        "david", "David", True, False,
    )  # fmt: skip
    assert user["agentUserGroup"] == group
    assert admin.get(f"/api/v1/users/{user_id}").json()["user"]["username"] == "david"


def test_a_user_renames_themselves_but_cannot_make_themselves_admin(api: httpx.Client) -> None:
    response = api.patch("/api/v1/users/2", json={"displayName": "Det"})
    assert response.json()["user"]["displayName"] == "Det"
    response = api.patch("/api/v1/users/2", json={"admin": True})
    assert response.status_code == 403
    assert error_of(response)["error"] == "only admin privileged users can update users"
    response = api.patch("/api/v1/users/1", json={"displayName": "Boss"})
    assert response.status_code == 403
    assert error_of(response)["error"] == (
        "only admin privileged users can set another user's display name"
    )
    assert api.get("/api/v1/users/2").json()["user"]["admin"] is False


def test_display_names_may_not_echo_another_users_name(
    api: httpx.Client, admin: httpx.Client
) -> None:
    created(admin, "ivy")
    response = api.patch("/api/v1/users/2", json={"displayName": " IVY "})
    assert response.status_code == 400
    assert error_of(response)["error"] == (
        "can not change display name to IVY found a similar username or display name"
    )
    response = api.patch("/api/v1/users/2", json={"displayName": "Admin"})
    assert error_of(response)["error"] == "Non-admin user cannot be renamed 'admin'"


def test_set_user_password_takes_a_bare_json_string(admin: httpx.Client) -> None:
    response = admin.post("/api/v1/users/2/password", json=5)
    assert response.status_code == 400
    assert (
        error_of(response)["error"] == "json: cannot unmarshal number into Go value of type string"
    )


def test_renaming_onto_an_existing_username_fails(admin: httpx.Client) -> None:
    user_id = created(admin, "erin")
    response = admin.patch(f"/api/v1/users/{user_id}", json={"username": "determined"})
    assert error_of(response)["error"] == "User cannot be renamed 'determined'"
    created(admin, "frank")
    response = admin.patch(f"/api/v1/users/{user_id}", json={"username": "frank"})
    assert response.status_code == 500
    assert "duplicate key value violates unique constraint" in error_of(response)["error"]


def test_patch_without_a_body_and_of_a_missing_user(admin: httpx.Client) -> None:
    assert error_of(admin.patch("/api/v1/users/2"))["error"] == "must provide user"
    response = admin.patch("/api/v1/users/999", json={"displayName": "x"})
    assert (response.status_code, error_of(response)["error"]) == (404, "user not found")


def test_a_password_change_ends_the_users_sessions(
    api: httpx.Client, local_master: LocalMaster
) -> None:
    response = api.patch("/api/v1/users/2", json={"password": "N3wPassword"})
    assert response.status_code == 200, response.text
    assert api.get("/api/v1/me").status_code == 401  # the session went with the old password
    assert can_login(local_master, "determined", "").status_code == 401
    assert can_login(local_master, "determined", "N3wPassword").status_code == 200


def test_only_admins_set_other_users_passwords(api: httpx.Client, admin: httpx.Client) -> None:
    response = api.post("/api/v1/users/1/password", json="x")
    assert response.status_code == 403
    assert error_of(response)["error"] == (
        "only admin privileged users can change other user's passwords"
    )
    response = admin.post("/api/v1/users/2/password", json="Pass1234")
    assert response.status_code == 200, response.text
    assert response.json()["user"]["username"] == "determined"


def test_set_user_password_hashes_the_plain_password(
    admin: httpx.Client, local_master: LocalMaster
) -> None:
    assert admin.post("/api/v1/users/2/password", json="Pass1234").status_code == 200
    assert can_login(local_master, "determined", "Pass1234").status_code == 200


# --- activation -----------------------------------------------------------------------------


def test_a_deactivated_user_can_neither_log_in_nor_use_a_session(
    api: httpx.Client, admin: httpx.Client, local_master: LocalMaster
) -> None:
    response = admin.patch("/api/v1/users/2", json={"active": False})
    assert response.json()["user"]["active"] is False
    me = api.get("/api/v1/me")
    assert (me.status_code, error_of(me)["error"]) == (403, "user does not have permission")
    login_response = can_login(local_master, "determined", "")
    assert login_response.status_code == 403
    assert error_of(login_response)["error"] == "user is not active"


def test_patch_users_sets_activity_in_bulk(admin: httpx.Client, api: httpx.Client) -> None:
    first, second = created(admin, "gina"), created(admin, "hank")
    response = admin.patch(
        "/api/v1/users", json={"userIds": [first, second, 999], "activate": False}
    )
    assert response.status_code == 200, response.text
    # the master checks no existence: an unknown id is reported done
    assert response.json() == {"results": [
        {"error": "", "id": first}, {"error": "", "id": second}, {"error": "", "id": 999},
    ]}  # fmt: skip
    users = admin.get("/api/v1/users", params={"active": "false"}).json()["users"]
    assert sorted(u["username"] for u in users) == ["gina", "hank"]
    denied = api.patch("/api/v1/users", json={"userIds": [first], "activate": True}).json()
    assert denied == {"results": [{"error": "only admin privileged users can update users",
                                   "id": first}]}  # fmt: skip
    assert admin.get(f"/api/v1/users/{first}").json()["user"]["active"] is False


def test_patch_users_takes_more_ids_than_sqlite_binds(admin: httpx.Client) -> None:
    ids = [created(admin, "jill"), *range(10_000, 50_000)]
    response = admin.patch("/api/v1/users", json={"userIds": ids, "activate": False})
    assert response.status_code == 200, response.text[:200]
    assert len(response.json()["results"]) == len(ids)
    assert admin.get(f"/api/v1/users/{ids[0]}").json()["user"]["active"] is False


def test_modified_at_moves_only_when_the_row_is_updated(admin: httpx.Client) -> None:
    user_id = created(admin, "kim")
    before = admin.get(f"/api/v1/users/{user_id}").json()["user"]["modifiedAt"]
    same = admin.patch(f"/api/v1/users/{user_id}", json={"username": "kim"}).json()["user"]
    assert same["modifiedAt"] == before  # an unchanged name lists no column
    changed = admin.patch(f"/api/v1/users/{user_id}", json={"active": True}).json()["user"]
    assert Timestamp.parse(changed["modifiedAt"]) > Timestamp.parse(before)
