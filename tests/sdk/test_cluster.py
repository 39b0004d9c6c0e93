"""session.master_info / master_config / master_logs / cluster message / logout in both APIs,
against detorm.local (the same against canned replies: test_cluster_ops.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from detorm import ClusterMessage, LogLevel, MasterInfo, MasterLogEntry
from detorm._io._auth import TokenStore, config_dir
from detorm.errors import BadRequest, Forbidden, InvalidValue, Unauthenticated
from detorm.local._routes.master import CLUSTER_ID, CLUSTER_NAME, VERSION
from tests.sdk.apis import MODES, Api, Mode
from tests.sdk.conftest import Cluster


@pytest.fixture(params=MODES)
def admin_api(
    request: pytest.FixtureRequest, fresh_cluster: Cluster, environ: dict[str, str]
) -> Iterator[Api]:
    with Api(request.param, fresh_cluster.url, environ, user="admin", password="") as api:
        yield api


def test_master_info(admin_api: Api) -> None:
    api = admin_api
    info = api(api.session.master_info())
    assert isinstance(info, MasterInfo)
    assert info.version == VERSION == "0.38.1"
    assert info.cluster_id == CLUSTER_ID and info.cluster_name == CLUSTER_NAME
    assert info.cluster_message is None and info.sso_providers == ()


@pytest.mark.parametrize("mode", MODES)
def test_logout_ends_the_token_and_forgets_it(
    mode: Mode, fresh_cluster: Cluster, environ: dict[str, str]
) -> None:
    store = TokenStore(config_dir(environ, None))
    with Api(mode, fresh_cluster.url, environ, user="alice", password="secret") as api:
        assert api(api.session.whoami()).username == "alice"
        token = store.token_for(fresh_cluster.url, "alice")
        assert token is not None
        api(api.session.logout())
        assert store.token_for(fresh_cluster.url, "alice") is None
        # The master no longer knows the old token...
        with Api(mode, fresh_cluster.url, environ, user=None, password=None, token=token) as old:
            with pytest.raises(Unauthenticated):
                old(old.session.whoami())
        # ...and the session, which has a password, logs in again when next asked.
        assert api(api.session.whoami()).username == "alice"
        assert store.token_for(fresh_cluster.url, "alice") not in (None, token)


def test_master_config_is_for_admins(
    admin_api: Api, fresh_cluster: Cluster, environ: dict[str, str]
) -> None:
    config = admin_api(admin_api.session.master_config())
    assert config["cluster_name"] == CLUSTER_NAME and config["resource_manager"]["type"] == "agent"
    with Api(admin_api.mode, fresh_cluster.url, environ, user="alice", password="secret") as alice:
        with pytest.raises(Forbidden):
            alice(alice.session.master_config())
        with pytest.raises(Forbidden):
            alice(alice.session.cluster_message())  # admins only, even to read it


def test_the_cluster_message_is_set_read_shown_and_cleared(admin_api: Api) -> None:
    api = admin_api
    assert api(api.session.cluster_message()) is None
    start = datetime.now(UTC) - timedelta(minutes=1)
    api(api.session.set_cluster_message("upgrade at 5pm", start=start, duration=timedelta(hours=2)))
    message = api(api.session.cluster_message())
    assert isinstance(message, ClusterMessage) and message.message == "upgrade at 5pm"
    assert message.end is not None and message.start is not None
    assert message.end - message.start == timedelta(hours=2)
    assert abs(message.start - start) < timedelta(milliseconds=1)
    shown = api(api.session.master_info()).cluster_message  # started: GetMaster shows it
    assert shown is not None and shown.message == "upgrade at 5pm"
    api(api.session.set_cluster_message("no end"))  # replaces it; starts now
    again = api(api.session.cluster_message())
    assert again.message == "no end" and again.end is None
    api(api.session.clear_cluster_message())
    assert api(api.session.cluster_message()) is None
    assert api(api.session.master_info()).cluster_message is None


def test_the_masters_refusals_of_a_cluster_message_are_typed(admin_api: Api) -> None:
    api = admin_api
    past = datetime.now(UTC) - timedelta(days=2)
    with pytest.raises(BadRequest, match="end time must be after current time"):
        api(api.session.set_cluster_message("late", start=past, end=past + timedelta(days=1)))
    with pytest.raises(BadRequest, match="Go-formatted duration"):
        api(api.session.set_cluster_message("x", duration="2d"))  # Go has no days
    sent = api.session.requests_sent
    with pytest.raises(InvalidValue, match="at most 250 characters"):
        api(api.session.set_cluster_message("x" * 251))
    assert api.session.requests_sent == sent
    assert api(api.session.cluster_message()) is None


def test_master_logs(admin_api: Api) -> None:
    api = admin_api
    # The master logs who set it. Twice: the followed read below takes two entries, and in a
    # fresh process (one test run alone, or an xdist worker) the log may hold nothing else.
    for message in ("for the log", "for the log, again"):
        api(api.session.set_cluster_message(message))
    last = api.list(api.session.master_logs(offset=-20))
    assert len(last) >= 2 and all(isinstance(e, MasterLogEntry) for e in last)
    assert any("cluster message set by" in str(e) for e in last)
    assert [e.id for e in last] == sorted(e.id for e in last)
    assert all(e.level in (LogLevel.INFO, LogLevel.WARNING, LogLevel.ERROR) for e in last)
    assert [e.id for e in api.list(api.session.master_logs(offset=-20, limit=2))] == [
        e.id for e in last[:2]
    ]
    # Followed: the master refuses a limit, so it is applied here and the stream closed.
    followed = api.list(api.session.master_logs(offset=-3, follow=True, limit=2))
    assert len(followed) == 2 and followed[0].id <= last[-1].id
