"""Master URL, credentials and the det CLI token cache ``auth.json``, as in Determined 0.38.1.

Everything here is compatible with the official client (``determined.common.api``): the same
canonical master URLs (the key of the token cache), the same salted password hash, the same
config directory, and an ``auth.json`` that both clients read and write under the same lock.
This module does no network I/O: the session sends the login or ``/api/v1/me`` requests.

Precedence of credentials (``resolve_credentials``), first match wins:

1. arguments: a token; or a user and a password; or a user alone (that user's cached token,
   else an empty password);
2. ``DET_USER`` + ``DET_PASS``;
3. ``DET_USER`` + ``DET_USER_TOKEN`` (set by the master in task containers);
4. the token cached in ``auth.json`` for the master's active user (``det user login``);
5. the default user ``determined`` with an empty password.
"""

from __future__ import annotations

import enum
import errno
import hashlib
import hmac
import json
import os
import platform as _platform
import re
import stat
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn, Protocol, TypedDict
from urllib import parse

__all__ = [
    "DEFAULT_MASTER",
    "DEFAULT_USER",
    "CredentialSource",
    "Credentials",
    "MasterOrigin",
    "MemoryTokenStore",
    "Secret",
    "TokenCache",
    "TokenCacheWarning",
    "TokenStore",
    "canonicalize_master_url",
    "check_master_url",
    "config_dir",
    "default_master",
    "forget_ephemeral_master",
    "is_ephemeral_master",
    "master_origin",
    "register_ephemeral_master",
    "resolve_credentials",
    "salt_and_hash",
    "token_cache_for",
]

# The official client falls back to "localhost:8080" (common/api/_util.py); detorm uses the
# loopback address on purpose (our issue asks for it), so a det CLI login made without
# DET_MASTER is cached under "http://localhost:8080" and is not found by detorm's default.
DEFAULT_MASTER: Final = "http://127.0.0.1:8080"
DEFAULT_USER: Final = "determined"  # common/constants.py DEFAULT_DETERMINED_USER

# common/api/authentication.py: the client hashes before sending ({"isHashed": true}).
_PASSWORD_SALT: Final = "GubPEmmotfiK9TMD6Zdw"
_STORE_VERSION: Final = 2
_FILE_MODE: Final = 0o600
_DIR_MODE: Final = 0o700
_WINDOWS_LOCK_POLL_SECONDS: Final = 0.05


class TokenCacheWarning(UserWarning):
    """``auth.json`` could not be used as is (corrupt or unreadable); detorm carried on."""


# --- master URL ----------------------------------------------------------------------------


def canonicalize_master_url(url: str) -> str:
    """The canonical form of a master URL, equal to the official ``canonicalize_master_url``.

    Adds a scheme (``http``) and an explicit port (80 for http, 443 for https, 8080 when no
    scheme was given) and strips a trailing ``/``. A user name, password, query or fragment is
    refused with a ``ValueError`` naming the problem; messages never echo a password.
    """
    url, default_port = _with_scheme(url)
    parsed = _parse_url(url)
    shown = _shown(parsed)
    if not parsed.hostname:
        raise ValueError(f"invalid master URL {shown}: it has no host name")
    forbidden = _forbidden_parts(parsed)
    if forbidden:
        raise ValueError(f"invalid master URL {shown}: it must not contain {forbidden}")
    try:
        # `or`, not `is None`: an explicit port 0 becomes the default port, as in the official.
        port = parsed.port or default_port
    except ValueError:
        message = f"invalid master URL {shown}: its port is not a number in 0-65535"
        raise ValueError(message) from None
    netloc = f"{parsed.hostname}:{port}"
    return parse.urlunparse((parsed.scheme, netloc, parsed.path, "", "", "")).rstrip("/")


def _with_scheme(url: str) -> tuple[str, int]:
    # The official checks the prefix case-sensitively; anything else gets "http://" prepended.
    if url.startswith("https://"):
        return url, 443
    if url.startswith("http://"):
        return url, 80
    return f"http://{url}", 8080


def _parse_url(url: str) -> parse.ParseResult:
    try:
        return parse.urlparse(url)
    except ValueError as error:
        # Some of urllib's messages quote the whole network location, password included.
        detail = "" if "@" in url else f": {error}"
        raise ValueError(f"invalid master URL{detail}") from None


def _shown(parsed: parse.ParseResult) -> str:
    """The URL for an error message, with any user info, query or fragment masked."""
    _, at, host = parsed.netloc.rpartition("@")
    masked_userinfo = "***@" if at else ""
    query = "?***" if parsed.query else ""
    fragment = "#***" if parsed.fragment else ""
    return repr(f"{parsed.scheme}://{masked_userinfo}{host}{parsed.path}{query}{fragment}")


def _forbidden_parts(parsed: parse.ParseResult) -> str:
    # Truthiness as in the official: an empty "user@", "?" or "#" is accepted and dropped.
    parts = []
    if parsed.username or parsed.password:
        parts.append("a user name or password")
    if parsed.query:
        parts.append("a query")
    if parsed.fragment:
        parts.append("a fragment")
    return ", ".join(parts)


# A scheme-like prefix ("htp:/", "ftp://", "HTTP://"): the official client would prepend
# "http://" and send to a host named after the scheme; detorm refuses it (see check_master_url).
_SCHEME_PREFIX: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):/")
_SCHEMES: Final = ("http", "https")
_URL_FORMS: Final = "a master URL is http://host:port, https://host:port or host:port"


def check_master_url(url: str) -> None:
    """Refuse a master URL that the official client would turn into a request to the wrong
    host, and one it refuses (``canonicalize_master_url``): a ``ValueError`` naming the value
    (a password in it masked) and the forms that work.

    What the det CLI accepts keeps working: ``host``, ``host:port``, ``http://host[:port][/path]``
    and ``https://...``. Refused beyond the official's checks: a scheme other than ``http`` or
    ``https`` (``ftp://``, ``HTTP://``, a typo such as ``htp:/oops``) and ``http:/`` with one
    slash, which the official would read as a host named ``http`` (or ``htp``) on port 8080.
    """
    match = _SCHEME_PREFIX.match(url)
    if match is not None:
        scheme = match.group(1)
        shown = _masked(url)
        if scheme in _SCHEMES and not url.startswith(f"{scheme}://"):
            raise ValueError(
                f"invalid master URL {shown}: {scheme}: must be followed by two slashes "
                f"({scheme}://host:port)"
            )
        if scheme not in _SCHEMES:
            hint = (
                f" (schemes are lowercase: {scheme.lower()}://)"
                if scheme.lower() in _SCHEMES
                else ""
            )
            raise ValueError(
                f"invalid master URL {shown}: its scheme {scheme!r} is not http or https{hint};"
                f" {_URL_FORMS}"
            )
    canonicalize_master_url(url)


def _masked(url: str) -> str:
    """``url`` for an error message, any user info (a password), query or fragment masked."""
    url = _QUERY_OR_FRAGMENT.sub(lambda match: f"{match.group(0)[0]}***", url, count=1)
    head, at, tail = url.rpartition("@")
    if not at:
        return repr(url)
    scheme, sep, _ = head.partition("://")
    return repr(f"{scheme}{sep}***@{tail}" if sep else f"***@{tail}")


_QUERY_OR_FRAGMENT: Final = re.compile(r"[?#].*", re.DOTALL)


@dataclass(frozen=True)
class MasterOrigin:
    """Where a session's master URL came from, for messages: ``url`` is the canonical URL,
    ``source`` e.g. "the master argument", "DET_MASTER", or "the default"."""

    url: str
    source: str

    def describe(self) -> str:
        """E.g. "http://host:8080 (from DET_MASTER)"."""
        return f"{self.url} (from {self.source})"


def master_origin(master: str | None, environ: Mapping[str, str]) -> MasterOrigin:
    """The master to use and where it came from: the argument, else ``DET_MASTER``, else
    ``DET_MASTER_ADDR``, else :data:`DEFAULT_MASTER`. A malformed value raises ``ValueError``
    naming where it came from (see :func:`check_master_url`)."""
    if master is not None:
        # An explicit "" is a malformed URL, not "use the default".
        return MasterOrigin(_checked(master, "master"), "the master argument")
    for name in ("DET_MASTER", "DET_MASTER_ADDR"):
        value = environ.get(name)
        if value:  # an empty variable counts as unset (the official would fail on it)
            return MasterOrigin(_checked(value, name), name)
    source = "the default: neither a master argument nor DET_MASTER was given"
    return MasterOrigin(canonicalize_master_url(DEFAULT_MASTER), source)


def _checked(url: str, name: str) -> str:
    try:
        check_master_url(url)
        return canonicalize_master_url(url)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def default_master(environ: Mapping[str, str]) -> str:
    """``DET_MASTER``, else ``DET_MASTER_ADDR``, else ``DEFAULT_MASTER``; canonicalized.

    An empty variable counts as unset (the official would fail on it).
    """
    for name in ("DET_MASTER", "DET_MASTER_ADDR"):
        value = environ.get(name)
        if value:
            try:
                return canonicalize_master_url(value)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
    return canonicalize_master_url(DEFAULT_MASTER)


# --- password -------------------------------------------------------------------------------


def salt_and_hash(password: str) -> str:
    """The password as the client sends it: SHA-512 hex of salt + password ("" stays "")."""
    if not password:
        return password
    return hashlib.sha512((_PASSWORD_SALT + password).encode()).hexdigest()


# --- config directory -----------------------------------------------------------------------


def config_dir(environ: Mapping[str, str], platform: str | None = None) -> Path:
    """The det CLI config directory, as ``determined.common.util.get_config_path`` computes it.

    ``platform`` is a ``platform.system()`` value ("Linux", "Darwin", "Windows"...; default: this
    machine's). The home directory is taken from ``environ`` the way ``Path.home()`` takes it
    from ``os.environ``.
    """
    if platform is None:
        platform = _platform.system()
    debug_path = environ.get("DET_DEBUG_CONFIG_PATH")
    if debug_path:
        return Path(debug_path)
    # Substring tests and presence (not truthiness) checks, exactly as the official does.
    if "Linux" in platform and "XDG_CONFIG_HOME" in environ:
        base = Path(environ["XDG_CONFIG_HOME"])
    elif "Darwin" in platform:
        base = _home(environ) / "Library" / "Application Support"
    elif "Windows" in platform and "LOCALAPPDATA" in environ:
        base = Path(environ["LOCALAPPDATA"])
    else:
        base = _home(environ) / ".config"
    return base / "determined"


def _home(environ: Mapping[str, str]) -> Path:
    """``Path.home()`` computed from ``environ`` (os.path.expanduser's rules for this OS)."""
    if os.name == "nt":
        if "USERPROFILE" in environ:
            return Path(environ["USERPROFILE"])
        if "HOMEPATH" in environ:
            return Path(environ.get("HOMEDRIVE", ""), environ["HOMEPATH"])
        return Path.home()
    if "HOME" in environ:
        return Path(environ["HOME"].rstrip("/") or "/")
    return _password_database_home()


def _password_database_home() -> Path:
    if sys.platform == "win32":
        return Path.home()
    else:
        import pwd

        return Path(pwd.getpwuid(os.getuid()).pw_dir)


# --- lock on auth.json.lock -----------------------------------------------------------------
# The official client locks with filelock.FileLock(auth.json.lock). On POSIX that is flock(2)
# on the lock file, which stays in place; on Windows it locks byte 0 of the file. Taking the
# same kind of lock on the same file makes detorm and the det CLI exclude each other.

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, 0, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _wait_lock(fd: int) -> None:
        # msvcrt has no blocking lock without a retry limit: poll, as filelock does.
        while not _try_lock(fd):
            time.sleep(_WINDOWS_LOCK_POLL_SECONDS)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    _CONTENDED: Final = frozenset({errno.EACCES, errno.EAGAIN, errno.EWOULDBLOCK})

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in _CONTENDED:
                return False
            raise
        return True

    def _wait_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _acquire_lock(lock_path: Path, on_wait: Callable[[], None] | None) -> int:
    """Lock ``lock_path`` exclusively (waiting as long as needed); returns the open descriptor."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            if not _try_lock(fd):
                if on_wait is not None:
                    on_wait()
                    on_wait = None
                _wait_lock(fd)
            if _is_current_file(fd, lock_path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the lock file was replaced while we waited: lock the new one


def _is_current_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _release_lock(fd: int) -> None:
    try:
        _unlock(fd)
    finally:
        os.close(fd)


@contextmanager
def _exclusive_lock(lock_path: Path, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    fd = _acquire_lock(lock_path, on_wait)
    try:
        yield
    finally:
        _release_lock(fd)


# --- auth.json ------------------------------------------------------------------------------


class _Entry(TypedDict, total=False):
    """One master's part of auth.json (only these two keys are allowed by the official)."""

    active_user: str
    tokens: dict[str, str]


_Masters = dict[str, _Entry]


class _Corrupt(Exception):
    """auth.json is not a token store the official client accepts (reason never has secrets)."""


def _parse_store(raw: bytes, master: str) -> _Masters:
    """auth.json (version 0, 1 or 2) as version 2 masters; version 0 is given to ``master``.

    Mirrors ``TokenStore._load_store_file`` and its validators and shims. Where the official
    would crash instead (a non-number version, a v2 key that cannot be canonicalized) this
    reports the file as corrupt.
    """
    try:
        data: object = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise _Corrupt("it is not valid UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise _Corrupt("it is not a JSON object")
    version = data.get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise _Corrupt("its version is not a number")
    if version < 1:
        # shim_store_v0: a v0 file holds one master's entry, given to the master being asked.
        return _shim_v1({master: _entry(data)})
    _check_top_level_keys(data)
    masters = _dict_of_entries(data.get("masters", {}))
    if version == 1:
        return _shim_v1(masters)
    if version == _STORE_VERSION:
        _check_canonical_keys(masters)
        return masters
    raise _Corrupt(f"its version {version} is not one detorm knows (0, 1 or 2)")


def _check_top_level_keys(data: dict[object, object]) -> None:
    # Quirk kept from validate_token_store_v1/v2: a *strict superset* test, so an extra key
    # counts only when both "version" and "masters" are present too.
    if set(data) > {"version", "masters"}:
        raise _Corrupt("it has unexpected top-level keys")


def _dict_of_entries(masters: object) -> _Masters:
    if not isinstance(masters, dict):
        raise _Corrupt('its "masters" is not an object')
    return {str(url): _entry(entry) for url, entry in masters.items()}


def _entry(obj: object) -> _Entry:
    """validate_one_master_entry: only "active_user" (a string) and "tokens" (strings)."""
    if not isinstance(obj, dict):
        raise _Corrupt("a master entry is not an object")
    if set(obj) - {"active_user", "tokens"}:
        raise _Corrupt("a master entry has unexpected keys")
    entry = _Entry()
    if "active_user" in obj:
        active_user = obj["active_user"]
        if not isinstance(active_user, str):
            raise _Corrupt("an active_user is not a string")
        entry["active_user"] = active_user
    if "tokens" in obj:
        entry["tokens"] = _tokens(obj["tokens"])
    return entry


def _tokens(obj: object) -> dict[str, str]:
    if not isinstance(obj, dict):
        raise _Corrupt('a "tokens" is not an object')
    tokens: dict[str, str] = {}
    for user, token in obj.items():
        if not isinstance(user, str) or not isinstance(token, str):
            raise _Corrupt("a token is not a string")
        tokens[user] = token
    return tokens


def _check_canonical_keys(masters: _Masters) -> None:
    for url in masters:
        try:
            canonical = canonicalize_master_url(url)
        except ValueError:
            canonical = None
        if canonical != url:
            raise _Corrupt("a master URL in it is not canonical")


def _shim_v1(masters: _Masters) -> _Masters:
    """shim_store_v1: canonicalize the URLs, merging entries that become the same master."""
    grouped: dict[str, list[_Entry]] = {}
    for url, entry in masters.items():
        try:
            canonical = canonicalize_master_url(_precanonicalize_v1_url(url))
        except ValueError:
            continue  # the official drops such a master rather than failing
        grouped.setdefault(canonical, []).append(entry)
    return {url: _merge_entries(entries) for url, entries in grouped.items()}


def _merge_entries(entries: list[_Entry]) -> _Entry:
    # Later entries' tokens win; the first active user wins (as in shim_store_v1).
    tokens: dict[str, str] = {}
    for entry in entries:
        tokens.update(entry.get("tokens", {}))
    merged = _Entry(tokens=tokens)
    active_users = [entry["active_user"] for entry in entries if "active_user" in entry]
    if active_users:
        merged["active_user"] = active_users[0]
    return merged


def _precanonicalize_v1_url(url: str) -> str:
    """precanonicalize_v1_url: drop what old clients tolerated (user info, query, fragment)."""
    url, default_port = _with_scheme(url)
    parsed = parse.urlparse(url)
    netloc = f"{parsed.hostname}:{parsed.port or default_port}"
    return parse.urlunparse((parsed.scheme, netloc, parsed.path, "", "", "")).rstrip("/")


def _store_json(masters: _Masters) -> str:
    # Same layout as the official's json.dump(store, f, indent=4, sort_keys=True); ASCII only,
    # so the official reads it whatever its locale encoding is.
    return json.dumps({"masters": masters, "version": _STORE_VERSION}, indent=4, sort_keys=True)


class TokenCache(Protocol):
    """What a session needs of a token cache: :class:`TokenStore` (the det CLI's auth.json) or
    :class:`MemoryTokenStore` (a local master's: never on disk)."""

    def token_for(self, master: str, username: str) -> str | None: ...
    def active_user(self, master: str) -> str | None: ...
    def store(self, master: str, username: str, token: str, *, make_active: bool) -> None: ...
    def drop(self, master: str, username: str) -> None: ...


class MemoryTokenStore:
    """Tokens kept in this process only: the cache of sessions to a detorm.local master
    started by this process (:func:`register_ephemeral_master`), whose tokens must never reach
    the user's real det CLI cache (its port changes every run, and a test's logins are not the
    user's). It never reads or writes a file."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], str] = {}
        self._active: dict[str, str] = {}

    def __repr__(self) -> str:
        return "MemoryTokenStore()"

    def token_for(self, master: str, username: str) -> str | None:
        return self._tokens.get((canonicalize_master_url(master), username))

    def active_user(self, master: str) -> str | None:
        return self._active.get(canonicalize_master_url(master))

    def store(self, master: str, username: str, token: str, *, make_active: bool) -> None:
        if not username or not token:
            raise ValueError("MemoryTokenStore.store needs a non-empty user name and token")
        url = canonicalize_master_url(master)
        self._tokens[(url, username)] = token
        if make_active:
            self._active[url] = username

    def drop(self, master: str, username: str) -> None:
        self._tokens.pop((canonicalize_master_url(master), username), None)


# Masters this process started for a test or a script (detorm.local's LocalMaster), by
# canonical URL, each with the in-memory token cache its sessions share.
_EPHEMERAL: Final[dict[str, MemoryTokenStore]] = {}


def register_ephemeral_master(url: str) -> None:
    """Sessions to ``url`` keep their tokens in memory, not in auth.json, until
    :func:`forget_ephemeral_master` (LocalMaster calls both)."""
    _EPHEMERAL.setdefault(canonicalize_master_url(url), MemoryTokenStore())


def forget_ephemeral_master(url: str) -> None:
    _EPHEMERAL.pop(canonicalize_master_url(url), None)


def is_ephemeral_master(url: str) -> bool:
    return canonicalize_master_url(url) in _EPHEMERAL


def token_cache_for(master: str, environ: Mapping[str, str]) -> TokenCache:
    """The token cache of a session to ``master`` reading ``environ``: the in-memory one of a
    local master this process started, when ``environ`` names a real det CLI config
    directory of the user (that of ``os.environ``, or the default one under the account's
    home, which an ``environ`` without ``HOME`` names); else ``auth.json`` in ``environ``'s
    config directory.

    An ``environ`` naming another config directory (a test's) keeps the file, so that the
    token cache itself can be tested against a local master."""
    directory = config_dir(environ, None)
    ephemeral = _EPHEMERAL.get(canonicalize_master_url(master))
    if ephemeral is not None and directory in _real_config_dirs():
        return ephemeral
    return TokenStore(directory)


def _real_config_dirs() -> set[Path]:
    return {config_dir(os.environ, None), config_dir({}, None)}


class TokenStore:
    """The det CLI token cache ``auth.json``, shared with the official client and det CLI.

    Reads never fail: a missing, unreadable or corrupt file reads as empty (the last two with a
    :class:`TokenCacheWarning`). Writes are read-modify-write under the official client's lock
    (``auth.json.lock``), go through ``auth.json.temp`` and a rename, always write version 2
    with mode 0600, and move a corrupt file aside to ``auth.json.corrupt`` (with a warning)
    instead of deleting it. Writes raise ``OSError`` when the directory is not writable.
    """

    def __init__(self, directory: Path, *, on_lock_wait: Callable[[], None] | None = None) -> None:
        """The store in ``directory`` (see :func:`config_dir`). ``on_lock_wait`` is called once
        when another process holds the lock and this store is about to wait for it."""
        self.path = directory / "auth.json"
        self._lock_path = directory / "auth.json.lock"
        self._temp_path = directory / "auth.json.temp"
        self._on_lock_wait = on_lock_wait

    @classmethod
    def default(
        cls, environ: Mapping[str, str] | None = None, platform: str | None = None
    ) -> TokenStore:
        """The store the det CLI uses (``<config_dir>/auth.json``)."""
        return cls(config_dir(os.environ if environ is None else environ, platform))

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    # reading

    def token_for(self, master: str, username: str) -> str | None:
        """The cached token of ``username`` on ``master``, if any."""
        return self._read_entry(master).get("tokens", {}).get(username)

    def active_user(self, master: str) -> str | None:
        """The user ``det user login`` made active on ``master``, if any."""
        return self._read_entry(master).get("active_user")

    def _read_entry(self, master: str) -> _Entry:
        url = canonicalize_master_url(master)
        return self._read(url).get(url, _Entry())

    def _read(self, master: str) -> _Masters:
        try:
            raw = self._read_bytes_under_lock()
        except OSError as error:
            self._warn(f"could not read {self.path} ({error.strerror}); ignoring it")
            return {}
        if raw is None:
            return {}
        try:
            return _parse_store(raw, master)
        except _Corrupt as corrupt:
            self._warn(f"{self.path} is corrupt ({corrupt}); ignoring it")
            return {}

    def _read_bytes_under_lock(self) -> bytes | None:
        if not self.path.exists():
            return None
        try:
            fd: int | None = _acquire_lock(self._lock_path, self._on_lock_wait)
        except OSError:
            # E.g. a read-only config directory. Writers replace the file by a rename, so an
            # unlocked read still sees a whole file.
            fd = None
        try:
            return self._read_bytes()
        finally:
            if fd is not None:
                _release_lock(fd)

    def _read_bytes(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    # writing

    def store(self, master: str, username: str, token: str, *, make_active: bool) -> None:
        """Cache ``token`` for ``username`` on ``master``; ``make_active`` also makes that user
        the master's active user (what ``det user login`` does)."""
        if not username or not token:
            raise ValueError("TokenStore.store needs a non-empty user name and token")

        def change(entry: _Entry) -> bool:
            tokens = entry.setdefault("tokens", {})
            changed = tokens.get(username) != token
            tokens[username] = token
            if make_active and entry.get("active_user") != username:
                entry["active_user"] = username
                changed = True
            return changed

        self._update(master, change)

    def drop(self, master: str, username: str) -> None:
        """Forget the token of ``username`` on ``master``; the active user stays (as in the
        official ``drop_user``)."""

        def change(entry: _Entry) -> bool:
            return entry.get("tokens", {}).pop(username, None) is not None

        self._update(master, change)

    def _update(self, master: str, change: Callable[[_Entry], bool]) -> None:
        url = canonicalize_master_url(master)
        self._make_directory()
        with _exclusive_lock(self._lock_path, self._on_lock_wait):
            masters, was_corrupt = self._load_for_update(url)
            entry = masters.setdefault(url, _Entry())
            changed = change(entry)
            if not entry:
                del masters[url]
            if changed or was_corrupt:
                self._write(masters)

    def _make_directory(self) -> None:
        directory = self.path.parent
        if directory.is_dir():
            return
        directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        directory.chmod(_DIR_MODE)  # mkdir's mode is reduced by the umask

    def _load_for_update(self, master: str) -> tuple[_Masters, bool]:
        raw = self._read_bytes()
        if raw is None:
            return {}, False
        try:
            return _parse_store(raw, master), False
        except _Corrupt as corrupt:
            aside = self._set_aside()
            self._warn(f"{self.path} was corrupt ({corrupt}); moved it to {aside} and started anew")
            return {}, True

    def _set_aside(self) -> Path:
        aside = self.path.with_name(self.path.name + ".corrupt")
        number = 0
        while aside.exists():  # never overwrite an earlier corrupt copy
            number += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt.{number}")
        os.replace(self.path, aside)
        return aside

    def _write(self, masters: _Masters) -> None:
        with suppress(FileNotFoundError):
            self._temp_path.unlink()  # a stale temp file could have a wider mode
        fd = os.open(self._temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        if hasattr(os, "fchmod"):
            os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)  # exactly 0600, whatever the umask
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(_store_json(masters))
            file.flush()
            os.fsync(file.fileno())
        os.replace(self._temp_path, self.path)

    @staticmethod
    def _warn(message: str) -> None:
        # stacklevel 4 points at the public TokenStore method that ran into the problem.
        warnings.warn(f"det token cache: {message}", TokenCacheWarning, stacklevel=4)


# --- credentials ----------------------------------------------------------------------------


class CredentialSource(enum.StrEnum):
    """Where credentials came from; ``str()`` reads well in an error message."""

    TOKEN_ARGUMENT = "the token argument"
    PASSWORD_ARGUMENTS = "the user and password arguments"
    USER_CACHED_TOKEN = "the det CLI token cache (auth.json) for the user argument"
    USER_EMPTY_PASSWORD = "the user argument with an empty password (no cached token)"
    ENV_PASSWORD = "the DET_USER and DET_PASS environment variables"
    ENV_TOKEN = "the DET_USER and DET_USER_TOKEN environment variables"
    ACTIVE_USER_TOKEN = "the det CLI token cache (auth.json) for its active user"
    DEFAULT_USER = "the default user 'determined' with an empty password"


_CACHED_SOURCES: Final = frozenset(
    {CredentialSource.USER_CACHED_TOKEN, CredentialSource.ACTIVE_USER_TOKEN}
)


class Secret:
    """A token or password hash. Every rendering shows ``***``; it cannot be pickled or copied.

    Only :meth:`reveal` gives the value, and it is called only where the ``Authorization``
    header or the login body is built. Two secrets are equal when their values are (compared in
    constant time); a secret never equals a plain string.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself: only to put it on the wire."""
        return self._value

    def fingerprint(self) -> str:
        """The SHA-256 hex digest of the value: tells secrets apart without showing them."""
        return hashlib.sha256(self._value.encode()).hexdigest()

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __reduce__(self) -> NoReturn:
        # Pickles end up in files, caches and other processes: a secret stays in this one.
        raise TypeError("a detorm secret (token or password hash) cannot be pickled or copied")


# What an HTTP header value can carry without being refused by the HTTP library: printable
# ASCII. A token with a space, newline or non-ASCII character would fail at the first request,
# with the header value (the token) quoted in the error.
_SENDABLE_TOKEN: Final = re.compile(r"[!-~]+")


@dataclass(frozen=True)
class Credentials:
    """Who to be on ``master``: a ``token`` to use as is, or a ``password_hash`` to log in with.

    ``username`` is None only for a bare token argument (the master knows whose it is). Both
    secrets are :class:`Secret` values, so no rendering of the credentials shows them.
    """

    master: str
    username: str | None
    source: CredentialSource
    token: Secret | None = None
    password_hash: Secret | None = None

    def __post_init__(self) -> None:
        if (self.token is None) == (self.password_hash is None):
            raise ValueError("Credentials need exactly one of a token and a password hash")
        if self.token is not None and not _SENDABLE_TOKEN.fullmatch(self.token.reveal()):
            raise ValueError(
                f"the token from {self.source} cannot be sent in an HTTP header: a token is "
                "printable ASCII with no spaces or line breaks"
            )

    @property
    def from_cache(self) -> bool:
        """The token came from auth.json (drop it there if the master refuses it)."""
        return self.source in _CACHED_SOURCES

    @property
    def is_default_user(self) -> bool:
        """Nothing was configured; a refused login means "please log in" (the official turns
        its 403 into an UnauthenticatedException)."""
        return self.source is CredentialSource.DEFAULT_USER

    @property
    def may_fall_back(self) -> bool:
        """A refused cached token can be replaced by a password login (see
        :meth:`with_password_fallback`)."""
        return self.source in _CACHED_SOURCES

    def with_password_fallback(self) -> Credentials:
        """The credentials once a refused cached token is dropped: what resolve_credentials
        gives without it. The user argument's token falls back to that user with an empty
        password; the active user's token to the default user. Password credentials are
        returned unchanged; any other token has no fallback (ValueError)."""
        if self.password_hash is not None:
            return self
        if self.source is CredentialSource.USER_CACHED_TOKEN:
            source, username = CredentialSource.USER_EMPTY_PASSWORD, self.username
        elif self.source is CredentialSource.ACTIVE_USER_TOKEN:
            source, username = CredentialSource.DEFAULT_USER, DEFAULT_USER
        else:
            raise ValueError(f"a token from {self.source} has no password fallback")
        return Credentials(self.master, username, source, password_hash=Secret(salt_and_hash("")))

    def describe(self) -> str:
        """E.g. "user 'alice' from the DET_USER and DET_PASS environment variables"."""
        who = f"user {self.username!r}" if self.username is not None else "the token's user"
        return f"{who} from {self.source}"


def resolve_credentials(
    *,
    master: str | None = None,
    user: str | None = None,
    password: str | None = None,
    token: str | None = None,
    environ: Mapping[str, str],
    store: TokenCache | None,
) -> Credentials:
    """Pick the credentials for ``master`` (None: ``default_master(environ)``).

    See the module docstring for the precedence. An empty user or token counts as not given;
    an empty password is a real (empty) password. ``store=None`` skips the token cache.
    """
    url = canonicalize_master_url(master) if master else default_master(environ)
    return (
        _from_arguments(url, user or None, password, token or None, store)
        or _from_environment(url, environ)
        or _from_active_user(url, store)
        or Credentials(url, DEFAULT_USER, CredentialSource.DEFAULT_USER, password_hash=Secret(""))
    )


def _from_arguments(
    url: str, user: str | None, password: str | None, token: str | None, store: TokenCache | None
) -> Credentials | None:
    if token is not None:
        if password is not None:
            raise ValueError("give either a token or a password, not both")
        return Credentials(url, user, CredentialSource.TOKEN_ARGUMENT, token=Secret(token))
    if user is None:
        if password is not None:
            raise ValueError("a password was given without a user name: pass user= as well")
        return None
    if password is not None:
        hashed = Secret(salt_and_hash(password))
        return Credentials(url, user, CredentialSource.PASSWORD_ARGUMENTS, password_hash=hashed)
    cached = store.token_for(url, user) if store is not None else None
    if cached:
        return Credentials(url, user, CredentialSource.USER_CACHED_TOKEN, token=Secret(cached))
    return Credentials(url, user, CredentialSource.USER_EMPTY_PASSWORD, password_hash=Secret(""))


def _from_environment(url: str, environ: Mapping[str, str]) -> Credentials | None:
    env_user = environ.get("DET_USER")
    if not env_user:
        return None
    if "DET_PASS" in environ:  # presence: DET_PASS="" is the (default) empty password
        hashed = Secret(salt_and_hash(environ["DET_PASS"]))
        return Credentials(url, env_user, CredentialSource.ENV_PASSWORD, password_hash=hashed)
    env_token = environ.get("DET_USER_TOKEN")
    if env_token:
        return Credentials(url, env_user, CredentialSource.ENV_TOKEN, token=Secret(env_token))
    return None


def _from_active_user(url: str, store: TokenCache | None) -> Credentials | None:
    if store is None:
        return None
    active_user = store.active_user(url)
    if not active_user:
        return None
    cached = store.token_for(url, active_user)
    if not cached:
        return None
    return Credentials(url, active_user, CredentialSource.ACTIVE_USER_TOKEN, token=Secret(cached))
