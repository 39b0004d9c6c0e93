"""detorm._io._auth: master URLs, credentials precedence and the det CLI token cache (auth.json).

The official client (determined 0.38.1) is the oracle: URL canonicalization, the password hash
and the config directory are compared with its functions, and auth.json is written by one client
and read by the other. Every test uses tmp_path and explicit environments, never the real home.
"""

from __future__ import annotations

import json
import os
import platform as platform_module
import shutil
import stat
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import filelock
import pytest
from determined.common import util as official_util
from determined.common.api import _util as official_api_util
from determined.common.api import authentication as official_auth
from determined.common.api import errors as official_errors

from detorm._io._auth import (
    DEFAULT_MASTER,
    Credentials,
    CredentialSource,
    Secret,
    TokenCacheWarning,
    TokenStore,
    _exclusive_lock,
    canonicalize_master_url,
    config_dir,
    default_master,
    resolve_credentials,
    salt_and_hash,
)

MASTER = "http://m.example:8080"
OTHER_MASTER = "https://other.example:443"
SECRET = "s3cr3t-Value"


@pytest.fixture
def auth_path(tmp_path: Path) -> Path:
    """auth.json in a config directory that does not exist yet."""
    return tmp_path / "config" / "determined" / "auth.json"


def read_json(path: Path) -> object:
    return json.loads(path.read_text())


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- canonicalize_master_url ----------------------------------------------------------------

ACCEPTED_URLS = [
    "localhost",
    "localhost:8080",
    "localhost:1234",
    "http://localhost",
    "https://localhost",
    "http://localhost:8080/",
    "https://host.example:8443/prefix/",
    "http://host/a/b//",
    "HOST.Example.COM",
    "127.0.0.1",
    "http://[::1]:8080",
    "http://host/a;params",
    "http://host?",
    "http://host#",
    "http://@host",
    "host:0",
    "HTTP://host",
    "  spaced  ",
]

REJECTED_URLS = [
    f"http://user:{SECRET}@host",
    f"user:{SECRET}@host",
    "http://user@host",
    f"http://:{SECRET}@host",
    f"http://host?token={SECRET}",
    f"http://host#{SECRET}",
    "http://",
    "",
    "https://",
    "http://host:abc",
    "http://host:99999",
    "http://[::1",
    f"http://user:{SECRET}@[::1",
]


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_canonical_url_equals_the_official_result(url: str) -> None:
    assert canonicalize_master_url(url) == official_api_util.canonicalize_master_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("localhost", "http://localhost:8080"),
        ("http://localhost", "http://localhost:80"),
        ("https://localhost", "https://localhost:443"),
        ("https://h.example:8443/prefix/", "https://h.example:8443/prefix"),
        ("HOST.Example.com:9", "http://host.example.com:9"),
    ],
)
def test_canonical_url_values(url: str, expected: str) -> None:
    assert canonicalize_master_url(url) == expected
    assert canonicalize_master_url(expected) == expected


@pytest.mark.parametrize("url", REJECTED_URLS)
def test_rejected_urls_are_rejected_by_both_clients_without_echoing_secrets(url: str) -> None:
    with pytest.raises(ValueError):
        official_api_util.canonicalize_master_url(url)
    with pytest.raises(ValueError) as caught:
        canonicalize_master_url(url)
    message = str(caught.value)
    assert message.startswith("invalid master URL")
    assert SECRET not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (f"http://user:{SECRET}@host", "must not contain a user name or password"),
        ("http://user@host", "must not contain a user name or password"),
        (f"http://host?token={SECRET}", "must not contain a query"),
        (f"http://host#{SECRET}", "must not contain a fragment"),
        (f"http://u@host?q={SECRET}#f", "a user name or password, a query, a fragment"),
        ("http://", "it has no host name"),
        ("http://host:abc", "its port is not a number"),
    ],
)
def test_rejection_names_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem) as caught:
        canonicalize_master_url(url)
    assert SECRET not in str(caught.value)


def test_rejection_shows_the_url_with_user_info_masked() -> None:
    with pytest.raises(ValueError) as caught:
        canonicalize_master_url(f"https://alice:{SECRET}@host:8443/x?q=1")
    assert "'https://***@host:8443/x?***'" in str(caught.value)


# --- default_master -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, DEFAULT_MASTER),
        ({"DET_MASTER": "m.example"}, "http://m.example:8080"),
        ({"DET_MASTER_ADDR": "https://a.example"}, "https://a.example:443"),
        ({"DET_MASTER": "m.example:1", "DET_MASTER_ADDR": "a.example"}, "http://m.example:1"),
        # An empty variable counts as unset (the official would fail to canonicalize "").
        ({"DET_MASTER": "", "DET_MASTER_ADDR": "a.example"}, "http://a.example:8080"),
    ],
)
def test_default_master(environ: dict[str, str], expected: str) -> None:
    assert default_master(environ) == expected


def test_default_master_is_the_loopback_address() -> None:
    # Deliberately not the official "localhost:8080" (see DEFAULT_MASTER).
    assert default_master({}) == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    "environ",
    [
        {"DET_MASTER": "m.example:1"},
        {"DET_MASTER_ADDR": "https://a.example/x/"},
        {"DET_MASTER": "m.example", "DET_MASTER_ADDR": "a.example"},
    ],
)
def test_default_master_agrees_with_the_official_variables(
    environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DET_MASTER", raising=False)
    monkeypatch.delenv("DET_MASTER_ADDR", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    official = official_api_util.canonicalize_master_url(official_api_util.get_default_master_url())
    assert default_master(environ) == official


def test_invalid_default_master_names_the_variable_and_hides_the_password() -> None:
    with pytest.raises(ValueError, match="^DET_MASTER_ADDR: invalid master URL") as caught:
        default_master({"DET_MASTER_ADDR": f"http://u:{SECRET}@h"})
    assert SECRET not in str(caught.value)


# --- salt_and_hash --------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["", "x", "Passw0rd!", "pässwörd ☃"])
def test_salt_and_hash_equals_the_official(password: str) -> None:
    assert salt_and_hash(password) == official_auth.salt_and_hash(password)


def test_salt_and_hash_values() -> None:
    assert salt_and_hash("") == ""
    hashed = salt_and_hash("x")
    assert len(hashed) == 128 and hashed != "x"
    assert salt_and_hash("y") != hashed


# --- config_dir -----------------------------------------------------------------------------

CONFIG_VARIABLES = ("DET_DEBUG_CONFIG_PATH", "XDG_CONFIG_HOME", "LOCALAPPDATA", "HOME")


@pytest.mark.parametrize(
    ("platform", "variables", "expected"),
    [
        ("Linux", {"XDG_CONFIG_HOME": "{tmp}/xdg"}, "{tmp}/xdg/determined"),
        ("Linux", {}, "{tmp}/home/.config/determined"),
        ("Linux", {"XDG_CONFIG_HOME": ""}, "determined"),  # the official's presence test
        (
            "Darwin",
            {"XDG_CONFIG_HOME": "{tmp}/xdg"},
            "{tmp}/home/Library/Application Support/determined",
        ),
        ("Windows", {"LOCALAPPDATA": "{tmp}/lad"}, "{tmp}/lad/determined"),
        ("Windows", {"XDG_CONFIG_HOME": "{tmp}/xdg"}, "{tmp}/home/.config/determined"),
        ("FreeBSD", {"LOCALAPPDATA": "{tmp}/lad"}, "{tmp}/home/.config/determined"),
        ("Linux", {"DET_DEBUG_CONFIG_PATH": "{tmp}/dbg", "XDG_CONFIG_HOME": "x"}, "{tmp}/dbg"),
        ("Darwin", {"DET_DEBUG_CONFIG_PATH": "{tmp}/dbg"}, "{tmp}/dbg"),
        ("Linux", {"DET_DEBUG_CONFIG_PATH": ""}, "{tmp}/home/.config/determined"),
    ],
)
def test_config_dir_equals_the_official(
    platform: str,
    variables: dict[str, str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = {"HOME": str(tmp_path / "home")}
    environ.update({k: v.format(tmp=tmp_path) for k, v in variables.items()})
    for name in CONFIG_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(platform_module, "system", lambda: platform)  # read by the official

    assert config_dir(environ, platform) == Path(expected.format(tmp=tmp_path))
    assert config_dir(environ, platform) == official_util.get_config_path()


def test_config_dir_defaults_to_this_machines_platform(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path)}
    assert config_dir(environ) == config_dir(environ, platform_module.system())


def test_default_token_store_lives_in_the_config_dir(tmp_path: Path) -> None:
    store = TokenStore.default({"HOME": str(tmp_path)}, "Linux")
    assert store.path == tmp_path / ".config" / "determined" / "auth.json"
    assert TokenStore(tmp_path).path == tmp_path / "auth.json"


# --- TokenStore: detorm alone ---------------------------------------------------------------


def test_missing_file_reads_as_empty_and_creates_nothing(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.token_for(MASTER, "alice") is None
        assert store.active_user(MASTER) is None
    assert not auth_path.parent.exists()


def test_store_then_read_back(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    store.store(MASTER, "alice", "ta", make_active=True)
    store.store(MASTER, "bob", "tb", make_active=False)
    store.store(OTHER_MASTER, "carol", "tc", make_active=True)

    assert store.token_for(MASTER, "alice") == "ta"
    assert store.token_for(MASTER, "bob") == "tb"
    assert store.token_for(MASTER, "carol") is None
    assert store.active_user(MASTER) == "alice"
    assert store.active_user(OTHER_MASTER) == "carol"
    assert read_json(auth_path) == {
        "version": 2,
        "masters": {
            MASTER: {"active_user": "alice", "tokens": {"alice": "ta", "bob": "tb"}},
            OTHER_MASTER: {"active_user": "carol", "tokens": {"carol": "tc"}},
        },
    }
    assert not auth_path.with_name("auth.json.temp").exists()
    assert auth_path.with_name("auth.json.lock").exists()  # kept, as filelock keeps it


def test_masters_are_canonicalized_as_keys(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    store.store("m.example", "alice", "ta", make_active=True)
    assert store.token_for("http://m.example:8080/", "alice") == "ta"
    assert store.active_user(MASTER) == "alice"
    assert list(read_json(auth_path)["masters"]) == [MASTER]  # type: ignore[index]


def test_drop_keeps_the_active_user_and_other_tokens(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    store.store(MASTER, "alice", "ta", make_active=True)
    store.store(MASTER, "bob", "tb", make_active=False)
    store.drop(MASTER, "alice")
    assert store.token_for(MASTER, "alice") is None
    assert store.token_for(MASTER, "bob") == "tb"
    assert store.active_user(MASTER) == "alice"  # as the official drop_user


def test_make_active_switches_the_active_user(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    store.store(MASTER, "alice", "ta", make_active=True)
    store.store(MASTER, "bob", "tb", make_active=True)
    store.store(MASTER, "alice", "ta2", make_active=False)
    assert store.active_user(MASTER) == "bob"
    assert store.token_for(MASTER, "alice") == "ta2"


def test_drop_without_a_file_writes_nothing(auth_path: Path) -> None:
    TokenStore(auth_path.parent).drop(MASTER, "alice")
    assert not auth_path.exists()


def test_store_refuses_empty_user_or_token(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    with pytest.raises(ValueError):
        store.store(MASTER, "", "t", make_active=False)
    with pytest.raises(ValueError):
        store.store(MASTER, "alice", "", make_active=False)
    assert not auth_path.exists()


# --- TokenStore: interplay with the official client -----------------------------------------


def test_official_client_reads_what_detorm_writes(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    store.store(MASTER, "alice", "ta", make_active=True)
    store.store(MASTER, "bob", "tb", make_active=False)

    official = official_auth.TokenStore(MASTER, auth_path)
    assert official.get_token("alice") == "ta"
    assert official.get_token("bob") == "tb"
    assert official.get_active_user() == "alice"
    assert sorted(official.get_all_users()) == ["alice", "bob"]
    assert auth_path.exists()  # the official deletes a file it finds corrupt
    official_auth.validate_token_store_v2(read_json(auth_path))


def test_detorm_reads_and_upgrades_the_official_first_write(auth_path: Path) -> None:
    official = official_auth.TokenStore(MASTER, auth_path)
    official.set_token("alice", "ta")
    assert read_json(auth_path) == {
        "version": 1,  # the official's first write stores version 1
        "masters": {MASTER: {"tokens": {"alice": "ta"}}},
    }

    store = TokenStore(auth_path.parent)
    assert store.token_for(MASTER, "alice") == "ta"
    assert store.active_user(MASTER) is None

    store.store(MASTER, "bob", "tb", make_active=True)
    written = read_json(auth_path)
    assert written == {
        "version": 2,
        "masters": {MASTER: {"active_user": "bob", "tokens": {"alice": "ta", "bob": "tb"}}},
    }
    again = official_auth.TokenStore(MASTER, auth_path)
    assert again.get_token("alice") == "ta" and again.get_active_user() == "bob"


def test_official_writes_after_detorm_are_read_by_detorm(auth_path: Path) -> None:
    store = TokenStore(auth_path.parent)
    store.store(MASTER, "alice", "ta", make_active=True)
    official = official_auth.TokenStore(MASTER, auth_path)
    official.set_token("bob", "tb")
    official.set_active("bob")
    official.drop_user("alice")
    assert store.active_user(MASTER) == "bob"
    assert store.token_for(MASTER, "bob") == "tb"
    assert store.token_for(MASTER, "alice") is None


def test_version_0_file_belongs_to_the_master_asked_for(auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    auth_path.write_text(json.dumps({"active_user": "alice", "tokens": {"alice": "t0"}}))
    store = TokenStore(auth_path.parent)
    assert store.active_user(MASTER) == "alice"
    assert store.token_for(OTHER_MASTER, "alice") == "t0"
    official = official_auth.TokenStore(MASTER, auth_path)
    assert official.get_active_user() == "alice" and official.get_token("alice") == "t0"


MESSY_V1 = {
    "version": 1,
    "masters": {
        "m.example:8080": {"active_user": "a", "tokens": {"a": "1"}},
        "http://m.example:8080/": {"active_user": "b", "tokens": {"b": "2", "a": "3"}},
        "http://u:p@other.example?x=1#y": {"tokens": {"c": "4"}},
        "http://bad:port": {"tokens": {"d": "5"}},
        "https://secure.example": {"active_user": "e"},
    },
}

STORE_FILES = {
    "v0": {"active_user": "alice", "tokens": {"alice": "t0", "bob": "t1"}},
    "v0-empty": {},
    "v1-messy": MESSY_V1,
    "v1-extra-top-level-key": {"version": 1, "extra": True},
    "v2": {
        "version": 2,
        "masters": {MASTER: {"tokens": {"zed": "old"}}, OTHER_MASTER: {"active_user": "x"}},
    },
}


@pytest.mark.parametrize("name", sorted(STORE_FILES))
@pytest.mark.parametrize("master", [MASTER, OTHER_MASTER])
def test_upgrades_match_the_official_shims(name: str, master: str, tmp_path: Path) -> None:
    """The same write on the same old file gives the same new file in both clients."""
    ours, theirs = tmp_path / "ours" / "auth.json", tmp_path / "theirs" / "auth.json"
    for path in (ours, theirs):
        path.parent.mkdir()
        path.write_text(json.dumps(STORE_FILES[name]))

    TokenStore(ours.parent).store(master, "zed", "tz", make_active=False)
    official_auth.TokenStore(master, theirs).set_token("zed", "tz")

    assert read_json(ours) == read_json(theirs)


@pytest.mark.parametrize("name", sorted(STORE_FILES))
def test_reads_match_the_official_reads(name: str, auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    auth_path.write_text(json.dumps(STORE_FILES[name]))
    masters = [MASTER, OTHER_MASTER, "http://m.example:80", "http://other.example:80"]
    for master in masters:
        official = official_auth.TokenStore(master, auth_path)
        store = TokenStore(auth_path.parent)
        assert store.active_user(master) == official.get_active_user()
        for user in ["a", "b", "c", "d", "e", "alice", "bob", "zed"]:
            assert store.token_for(master, user) == official.get_token(user)


def test_messy_v1_values(auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    auth_path.write_text(json.dumps(MESSY_V1))
    store = TokenStore(auth_path.parent)
    assert store.active_user(MASTER) == "a"  # the first active user of the merged entries
    assert store.token_for(MASTER, "a") == "3"  # the later entry's token wins
    # precanonicalize_v1_url drops the user info, query and fragment; http:// means port 80.
    assert store.token_for("http://other.example:80", "c") == "4"
    assert store.active_user("https://secure.example") == "e"


# --- locking --------------------------------------------------------------------------------


def test_detorm_waits_for_the_official_lock_and_keeps_its_write(auth_path: Path) -> None:
    official = official_auth.TokenStore(MASTER, auth_path)
    waiting = threading.Event()
    errors: list[BaseException] = []
    store = TokenStore(auth_path.parent, on_lock_wait=waiting.set)

    def detorm_write() -> None:
        try:
            store.store(MASTER, "bob", "tb", make_active=False)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    writer = threading.Thread(target=detorm_write)
    with official._persistent_store() as substore:  # holds auth.json.lock like set_token
        substore.setdefault("tokens", {})["alice"] = "ta"
        writer.start()
        assert waiting.wait(timeout=60), "detorm never found the lock held"
        assert not auth_path.exists()  # detorm has not written while the official held it
    writer.join(timeout=60)

    assert not writer.is_alive() and errors == []
    # detorm re-read after the official's write: both tokens are there.
    assert read_json(auth_path) == {
        "version": 2,
        "masters": {MASTER: {"tokens": {"alice": "ta", "bob": "tb"}}},
    }


def test_official_lock_is_refused_while_detorm_holds_it(auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    lock_path = auth_path.with_name("auth.json.lock")
    with _exclusive_lock(lock_path):
        with pytest.raises(filelock.Timeout):
            filelock.FileLock(str(lock_path), timeout=0).acquire()
    official_lock = filelock.FileLock(str(lock_path), timeout=0)
    official_lock.acquire()
    official_lock.release()


def test_detorm_read_waits_for_a_held_lock(auth_path: Path) -> None:
    TokenStore(auth_path.parent).store(MASTER, "alice", "ta", make_active=True)
    waiting = threading.Event()
    seen: list[str | None] = []
    store = TokenStore(auth_path.parent, on_lock_wait=waiting.set)
    reader = threading.Thread(target=lambda: seen.append(store.token_for(MASTER, "alice")))
    official = official_auth.TokenStore(MASTER, auth_path)
    with official._persistent_store() as substore:
        substore["tokens"]["alice"] = "new"
        reader.start()
        assert waiting.wait(timeout=60)
    reader.join(timeout=60)
    assert seen == ["new"]


# --- file modes -----------------------------------------------------------------------------


@pytest.fixture
def no_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_created_directory_is_0700_and_file_0600(auth_path: Path, no_umask: None) -> None:
    TokenStore(auth_path.parent).store(MASTER, "alice", "ta", make_active=True)
    assert mode_of(auth_path.parent) == 0o700
    assert mode_of(auth_path) == 0o600


def test_file_becomes_0600_after_an_official_write(auth_path: Path) -> None:
    official_auth.TokenStore(MASTER, auth_path).set_token("alice", "ta")
    auth_path.chmod(0o644)
    TokenStore(auth_path.parent).store(MASTER, "bob", "tb", make_active=False)
    assert mode_of(auth_path) == 0o600


def test_a_stale_temp_file_does_not_leak_its_mode(auth_path: Path, no_umask: None) -> None:
    auth_path.parent.mkdir(parents=True)
    temp = auth_path.with_name("auth.json.temp")
    temp.write_text("stale")
    temp.chmod(0o666)
    TokenStore(auth_path.parent).store(MASTER, "alice", "ta", make_active=True)
    assert mode_of(auth_path) == 0o600
    assert not temp.exists()


# --- corrupt files --------------------------------------------------------------------------

# (content, the official client reports it as corrupt rather than crashing)
CORRUPT_FILES = {
    "not-json": (b"not json {", True),
    "not-utf8": (b"\xff\xfe\x00", False),  # the official fails to decode it
    "a-list": (b"[]", True),
    "token-not-string": (b'{"version": 2, "masters": {"http://h:80": {"tokens": {"a": 1}}}}', True),
    "entry-extra-key": (b'{"version": 2, "masters": {"http://h:80": {"x": 1}}}', True),
    "version-3": (b'{"version": 3}', True),
    "version-0-key": (b'{"version": 0, "tokens": {}}', True),
    "non-canonical-v2": (b'{"version": 2, "masters": {"h": {}}}', True),
    "extra-with-masters": (b'{"version": 2, "masters": {}, "x": 1}', True),
    "version-string": (b'{"version": "2"}', False),  # the official raises a TypeError
    "v2-userinfo-key": (b'{"version": 2, "masters": {"http://u:p@h:80": {}}}', False),
}


@pytest.mark.parametrize("name", sorted(CORRUPT_FILES))
def test_corrupt_file_reads_as_empty_and_is_left_alone(name: str, auth_path: Path) -> None:
    content, _ = CORRUPT_FILES[name]
    auth_path.parent.mkdir(parents=True)
    auth_path.write_bytes(content)
    store = TokenStore(auth_path.parent)
    with pytest.warns(TokenCacheWarning, match="corrupt"):
        assert store.token_for("http://h:80", "a") is None
    with pytest.warns(TokenCacheWarning):
        assert store.active_user("http://h:80") is None
    assert auth_path.read_bytes() == content


@pytest.mark.parametrize("name", sorted(CORRUPT_FILES))
def test_corrupt_file_is_set_aside_on_write(name: str, auth_path: Path) -> None:
    content, _ = CORRUPT_FILES[name]
    auth_path.parent.mkdir(parents=True)
    auth_path.write_bytes(content)
    store = TokenStore(auth_path.parent)
    aside = auth_path.with_name("auth.json.corrupt")

    with pytest.warns(TokenCacheWarning, match="moved it to .*auth.json.corrupt"):
        store.store(MASTER, "alice", "ta", make_active=True)

    assert aside.read_bytes() == content
    assert official_auth.TokenStore(MASTER, auth_path).get_token("alice") == "ta"


OFFICIAL_DETECTS = sorted(name for name, (_, detected) in CORRUPT_FILES.items() if detected)


@pytest.mark.parametrize("name", OFFICIAL_DETECTS)
def test_what_detorm_calls_corrupt_the_official_calls_corrupt(name: str, auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    auth_path.write_bytes(CORRUPT_FILES[name][0])
    with pytest.raises(official_errors.CorruptTokenCacheException):
        official_auth.TokenStore(MASTER, auth_path)


def test_drop_on_a_corrupt_file_also_sets_it_aside(auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    auth_path.write_bytes(b"{")
    with pytest.warns(TokenCacheWarning, match="moved it"):
        TokenStore(auth_path.parent).drop(MASTER, "alice")
    assert auth_path.with_name("auth.json.corrupt").read_bytes() == b"{"
    assert read_json(auth_path) == {"version": 2, "masters": {}}


def test_earlier_corrupt_copies_are_never_overwritten(auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    store = TokenStore(auth_path.parent)
    for number, content in enumerate([b"first", b"second", b"third"]):
        auth_path.write_bytes(content)
        with pytest.warns(TokenCacheWarning):
            store.store(MASTER, "alice", f"t{number}", make_active=False)
    assert auth_path.with_name("auth.json.corrupt").read_bytes() == b"first"
    assert auth_path.with_name("auth.json.corrupt.1").read_bytes() == b"second"
    assert auth_path.with_name("auth.json.corrupt.2").read_bytes() == b"third"
    assert store.token_for(MASTER, "alice") == "t2"


def test_unreadable_file_reads_as_empty_with_a_warning(auth_path: Path) -> None:
    auth_path.mkdir(parents=True)  # a directory where the file should be
    with pytest.warns(TokenCacheWarning, match="could not read"):
        assert TokenStore(auth_path.parent).token_for(MASTER, "alice") is None


def test_corrupt_warnings_do_not_show_the_tokens_inside(auth_path: Path) -> None:
    auth_path.parent.mkdir(parents=True)
    content = {"version": 2, "masters": {MASTER: {"tokens": {"a": SECRET}, "x": 1}}}
    auth_path.write_text(json.dumps(content))
    store = TokenStore(auth_path.parent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store.token_for(MASTER, "a")
        store.store(MASTER, "b", "tb", make_active=False)
    assert len(caught) == 2
    assert all(SECRET not in str(warning.message) for warning in caught)


# --- resolve_credentials --------------------------------------------------------------------


@pytest.fixture
def store(auth_path: Path) -> TokenStore:
    """alice (active) and bob have cached tokens on MASTER."""
    token_store = TokenStore(auth_path.parent)
    token_store.store(MASTER, "alice", "token-alice", make_active=True)
    token_store.store(MASTER, "bob", "token-bob", make_active=False)
    return token_store


EVERYTHING_ELSE = {"DET_USER": "eve", "DET_PASS": "env-pass", "DET_USER_TOKEN": "token-eve"}


def test_token_argument_wins_over_everything(store: TokenStore) -> None:
    creds = resolve_credentials(
        master=MASTER, user="zoe", token="token-arg", environ=EVERYTHING_ELSE, store=store
    )
    expected = Credentials(
        MASTER, "zoe", CredentialSource.TOKEN_ARGUMENT, token=Secret("token-arg")
    )
    assert creds == expected


def test_token_argument_alone_has_no_user(store: TokenStore) -> None:
    creds = resolve_credentials(master=MASTER, token="token-arg", environ={}, store=store)
    assert creds.username is None and creds.password_hash is None
    assert creds.token == Secret("token-arg")


def test_user_and_password_arguments_win_over_a_cached_token(store: TokenStore) -> None:
    creds = resolve_credentials(
        master=MASTER, user="bob", password="pw", environ=EVERYTHING_ELSE, store=store
    )
    assert creds.source is CredentialSource.PASSWORD_ARGUMENTS
    assert creds.username == "bob" and creds.token is None
    assert creds.password_hash == Secret(official_auth.salt_and_hash("pw"))


def test_user_and_empty_password_arguments(store: TokenStore) -> None:
    creds = resolve_credentials(master=MASTER, user="bob", password="", environ={}, store=store)
    assert creds.source is CredentialSource.PASSWORD_ARGUMENTS
    assert creds.password_hash == Secret("")


def test_user_alone_uses_that_users_cached_token(store: TokenStore) -> None:
    creds = resolve_credentials(master=MASTER, user="bob", environ=EVERYTHING_ELSE, store=store)
    assert creds == Credentials(
        MASTER, "bob", CredentialSource.USER_CACHED_TOKEN, token=Secret("token-bob")
    )
    assert creds.from_cache


def test_user_alone_without_cached_token_logs_in_with_an_empty_password(store: TokenStore) -> None:
    creds = resolve_credentials(master=MASTER, user="zoe", environ=EVERYTHING_ELSE, store=store)
    expected = Credentials(
        MASTER, "zoe", CredentialSource.USER_EMPTY_PASSWORD, password_hash=Secret("")
    )
    assert creds == expected


def test_det_user_and_det_pass_win_over_det_user_token_and_the_cache(store: TokenStore) -> None:
    creds = resolve_credentials(master=MASTER, environ=EVERYTHING_ELSE, store=store)
    assert creds.source is CredentialSource.ENV_PASSWORD
    assert creds.username == "eve" and creds.password_hash == Secret(salt_and_hash("env-pass"))


def test_empty_det_pass_is_an_empty_password(store: TokenStore) -> None:
    creds = resolve_credentials(
        master=MASTER, environ={"DET_USER": "eve", "DET_PASS": ""}, store=store
    )
    assert creds.source is CredentialSource.ENV_PASSWORD and creds.password_hash == Secret("")


def test_det_user_token_wins_over_the_cached_active_user(store: TokenStore) -> None:
    environ = {"DET_USER": "eve", "DET_USER_TOKEN": "token-eve"}
    creds = resolve_credentials(master=MASTER, environ=environ, store=store)
    assert creds == Credentials(
        MASTER, "eve", CredentialSource.ENV_TOKEN, token=Secret("token-eve")
    )
    assert not creds.from_cache


@pytest.mark.parametrize(
    "environ",
    [
        {"DET_USER": "eve"},  # task containers set DET_USER: it alone changes nothing
        {"DET_PASS": "pw", "DET_USER_TOKEN": "t"},  # without DET_USER both are ignored
        {"DET_USER": "", "DET_PASS": "pw"},
        {"DET_USER": "eve", "DET_USER_TOKEN": ""},
    ],
)
def test_incomplete_environment_falls_through_to_the_active_user(
    environ: dict[str, str], store: TokenStore
) -> None:
    creds = resolve_credentials(master=MASTER, environ=environ, store=store)
    assert creds == Credentials(
        MASTER, "alice", CredentialSource.ACTIVE_USER_TOKEN, token=Secret("token-alice")
    )
    assert creds.from_cache and not creds.is_default_user


def test_active_user_without_a_token_falls_back_to_the_default_user(store: TokenStore) -> None:
    store.drop(MASTER, "alice")
    creds = resolve_credentials(master=MASTER, environ={}, store=store)
    assert creds.source is CredentialSource.DEFAULT_USER


def test_default_user_when_nothing_is_configured(auth_path: Path) -> None:
    creds = resolve_credentials(master=MASTER, environ={}, store=TokenStore(auth_path.parent))
    expected = Credentials(
        MASTER, "determined", CredentialSource.DEFAULT_USER, password_hash=Secret("")
    )
    assert creds == expected
    assert creds.is_default_user and not creds.from_cache


def test_no_store_skips_the_cache(store: TokenStore) -> None:
    assert resolve_credentials(master=MASTER, environ={}, store=None).is_default_user
    creds = resolve_credentials(master=MASTER, user="bob", environ={}, store=None)
    assert creds.source is CredentialSource.USER_EMPTY_PASSWORD


def test_cache_is_looked_up_for_the_canonical_master(store: TokenStore) -> None:
    by_argument = resolve_credentials(master="m.example", environ={}, store=store)
    by_environ = resolve_credentials(environ={"DET_MASTER": "m.example:8080/"}, store=store)
    for creds in (by_argument, by_environ):
        assert creds.master == MASTER and creds.token == Secret("token-alice")
    other = resolve_credentials(master="http://m.example", environ={}, store=store)
    assert other.master == "http://m.example:80" and other.is_default_user


def test_default_master_when_none_is_given(auth_path: Path) -> None:
    creds = resolve_credentials(environ={}, store=TokenStore(auth_path.parent))
    assert creds.master == DEFAULT_MASTER


def test_empty_user_and_token_arguments_count_as_not_given(store: TokenStore) -> None:
    creds = resolve_credentials(master=MASTER, user="", token="", environ={}, store=store)
    assert creds.source is CredentialSource.ACTIVE_USER_TOKEN


def test_token_and_password_together_are_refused(store: TokenStore) -> None:
    with pytest.raises(ValueError, match="either a token or a password") as caught:
        resolve_credentials(
            master=MASTER, user="bob", password=SECRET, token=SECRET, environ={}, store=store
        )
    assert SECRET not in str(caught.value)


def test_password_without_user_is_refused(store: TokenStore) -> None:
    with pytest.raises(ValueError, match="without a user name") as caught:
        resolve_credentials(master=MASTER, password=SECRET, environ={}, store=store)
    assert SECRET not in str(caught.value)


def test_credentials_need_exactly_one_secret() -> None:
    with pytest.raises(ValueError):
        Credentials(MASTER, "a", CredentialSource.TOKEN_ARGUMENT)
    with pytest.raises(ValueError):
        Credentials(
            MASTER, "a", CredentialSource.TOKEN_ARGUMENT,
            token=Secret("t"), password_hash=Secret("h"),
        )  # fmt: skip


# --- secrets never shown --------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"token": SECRET},
        {"user": "bob", "password": SECRET},
        {"user": "carol"},  # cached token SECRET
        {"environ": {"DET_USER": "eve", "DET_PASS": SECRET}},
        {"environ": {"DET_USER": "eve", "DET_USER_TOKEN": SECRET}},
        {},  # active user carol, cached token SECRET
    ],
)
def test_no_secret_in_credentials_repr(arguments: dict[str, object], auth_path: Path) -> None:
    token_store = TokenStore(auth_path.parent)
    token_store.store(MASTER, "carol", SECRET, make_active=True)
    environ = arguments.pop("environ", {})
    creds = resolve_credentials(
        master=MASTER,
        environ=environ,
        store=token_store,
        **arguments,  # type: ignore[arg-type]
    )
    hashed = salt_and_hash(SECRET)
    shown = [repr(creds), str(creds), creds.describe(), repr(token_store)]
    for text in shown:
        assert SECRET not in text and hashed not in text
    assert "Secret('***')" in repr(creds)
    assert creds.token == Secret(SECRET) or creds.password_hash == Secret(hashed)


@pytest.mark.parametrize(
    ("arguments", "environ", "expected"),
    [
        # The user argument's refused token: that user with an empty password.
        ({"user": "bob"}, {}, ("bob", CredentialSource.USER_EMPTY_PASSWORD)),
        # The active user's refused token: the next rule, the default user.
        ({}, {"DET_USER": "eve"}, ("determined", CredentialSource.DEFAULT_USER)),
        # Password credentials stay as they are.
        ({"user": "bob", "password": "pw"}, {}, ("bob", CredentialSource.PASSWORD_ARGUMENTS)),
        ({}, {"DET_USER": "eve", "DET_PASS": "pw"}, ("eve", CredentialSource.ENV_PASSWORD)),
    ],
)
def test_password_fallback_is_what_resolution_gives_without_the_token(
    arguments: dict[str, str],
    environ: dict[str, str],
    expected: tuple[str, CredentialSource],
    store: TokenStore,
) -> None:
    creds = resolve_credentials(master=MASTER, environ=environ, store=store, **arguments)
    fallback = creds.with_password_fallback()
    assert (fallback.username, fallback.source) == expected
    assert fallback.token is None and fallback.password_hash is not None
    assert creds.may_fall_back == (creds.token is not None)
    if creds.token is not None:  # the same answer as resolving once the token is dropped
        assert creds.username is not None
        store.drop(MASTER, creds.username)
        again = resolve_credentials(master=MASTER, environ=environ, store=store, **arguments)
        assert again == fallback


@pytest.mark.parametrize(
    "creds",
    [
        Credentials(MASTER, None, CredentialSource.TOKEN_ARGUMENT, token=Secret("t")),
        Credentials(MASTER, "eve", CredentialSource.ENV_TOKEN, token=Secret("t")),
    ],
)
def test_tokens_not_from_the_cache_have_no_fallback(creds: Credentials) -> None:
    assert not creds.may_fall_back and not creds.from_cache
    with pytest.raises(ValueError, match="no password fallback"):
        creds.with_password_fallback()


def test_sources_read_well_in_messages() -> None:
    expected = "the DET_USER and DET_USER_TOKEN environment variables"
    assert f"{CredentialSource.ENV_TOKEN}" == expected


def test_describe_says_who_and_where_from() -> None:
    creds = Credentials(MASTER, "eve", CredentialSource.ENV_PASSWORD, password_hash=Secret("h"))
    assert creds.describe() == "user 'eve' from the DET_USER and DET_PASS environment variables"
    anonymous = Credentials(MASTER, None, CredentialSource.TOKEN_ARGUMENT, token=Secret("t"))
    assert anonymous.describe() == "the token's user from the token argument"


def test_copying_a_store_directory_keeps_it_usable(auth_path: Path, tmp_path: Path) -> None:
    """A copied auth.json (e.g. into a container) works without its lock file."""
    TokenStore(auth_path.parent).store(MASTER, "alice", "ta", make_active=True)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(auth_path, copy / "auth.json")
    assert TokenStore(copy).token_for(MASTER, "alice") == "ta"
