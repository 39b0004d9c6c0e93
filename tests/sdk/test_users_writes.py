"""Users written through both APIs against detorm.local: User.create (PostUser), edits through
the unit of work (PatchUser) and set_password (SetUserPassword), and the master's refusals."""

from __future__ import annotations

import pytest

from detorm.errors import CommitError, Forbidden, InvalidType, Unauthenticated
from tests.conftest import NO_HOME
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster


@pytest.mark.parametrize("mode", MODES)
def test_create_edit_and_set_a_password(
    mode: Mode, fresh_cluster: Cluster, environ: dict[str, str]
) -> None:
    with Api(mode, fresh_cluster.url, environ, user="admin", password="") as api:
        user = api(api.User.create(
            "carol", password="first-Secret-1", display_name="Carol", session=api.session
        ))  # fmt: skip
        assert isinstance(user, api.User) and user.username == "carol"
        assert user.display_name == "Carol" and not user.admin and user.active
        assert "first-Secret-1" not in repr(user)
        user.display_name = "Carol C."
        user.agent_user, user.agent_uid = "carol", 1001
        user.agent_group, user.agent_gid = "staff", 50
        assert [f"{p.call.method} {p.call.path}" for p in api.session.pending()] == [
            f"PATCH /api/v1/users/{user.id}"
        ]
        (planned,) = api.session.pending()
        assert planned.call.body == {
            "displayName": "Carol C.",
            "agentUserGroup": {
                "agentUid": 1001, "agentGid": 50, "agentUser": "carol", "agentGroup": "staff"
            },
        }  # fmt: skip
        api(api.session.commit())
        again = api(api.session.get(api.User, user.id))
        assert again is user
        fresh = Api(mode, fresh_cluster.url, environ, user="admin", password="")
        with fresh:
            read = api(fresh.session.get(fresh.User, user.id))
            assert read.display_name == "Carol C." and read.agent_uid == 1001
            assert read.agent_group == "staff"
        with Api(mode, fresh_cluster.url, environ, user="carol", password="first-Secret-1") as c:
            me = c(c.session.whoami())
            assert me.username == "carol"
        api(user.set_password("second-Secret-2"))
        nowhere = NO_HOME  # no token store: each session logs in
        with pytest.raises(Unauthenticated), Api(
            mode, fresh_cluster.url, nowhere, user="carol", password="first-Secret-1"
        ) as c:
            c(c.session.whoami())
        with Api(mode, fresh_cluster.url, nowhere, user="carol", password="second-Secret-2") as c:
            assert c(c.session.whoami()).username == "carol"
        user.active, user.admin = False, True
        api(user.save())
        assert api(user.refresh()).active is False and user.admin is True


@pytest.mark.parametrize("mode", MODES)
def test_refusals(mode: Mode, fresh_cluster: Cluster, environ: dict[str, str]) -> None:
    with Api(mode, fresh_cluster.url, environ, user="alice", password="secret") as api:
        with pytest.raises(Forbidden, match="only admin privileged users can create users"):
            api(api.User.create("mallory", password="x", session=api.session))
        me = api(api.session.whoami())
        me.admin = True  # not alice's to grant
        with pytest.raises(CommitError, match="only admin privileged users") as caught:
            api(api.session.commit())
        assert [str(c) for c, _ in caught.value.failed] == [f"User {me.id}: admin False -> True"]
        api(api.session.rollback())
        with pytest.raises(InvalidType, match="must be a str, not int"):
            api(me.set_password(1234))
