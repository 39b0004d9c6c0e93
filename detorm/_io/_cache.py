"""The disk cache: immutable data kept between processes (diskcache, in the user cache dir).

Only data that can no longer change is stored: metrics and summaries of trials in a terminal
state, hyperparameters, checkpoints of finished trials, experiment code. Keys name the master,
the user, the kind of data and its id, so two clusters or two users never share entries. Every
entry carries a checksum; a corrupt entry is discarded and fetched again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Final

import diskcache

__all__ = ["DiskCache", "default_cache_dir"]

_MAGIC: Final = b"detorm1:"
_DIGEST: Final = 32


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$DETORM_CACHE_DIR``, else the platform's user cache directory ``/detorm``."""
    env = os.environ if environ is None else environ
    if env.get("DETORM_CACHE_DIR"):
        return Path(env["DETORM_CACHE_DIR"])
    if sys.platform == "darwin":
        return Path(env.get("HOME", str(Path.home()))) / "Library" / "Caches" / "detorm"
    if sys.platform == "win32":
        return Path(env.get("LOCALAPPDATA", str(Path.home()))) / "detorm" / "Cache"
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", str(Path.home()))) / ".cache")
    return Path(base) / "detorm"


def _seal(payload: bytes) -> bytes:
    return _MAGIC + hashlib.sha256(payload).digest() + payload


def _open(sealed: object) -> bytes | None:
    if not isinstance(sealed, bytes) or not sealed.startswith(_MAGIC):
        return None
    digest = sealed[len(_MAGIC) : len(_MAGIC) + _DIGEST]
    payload = sealed[len(_MAGIC) + _DIGEST :]
    return payload if hashlib.sha256(payload).digest() == digest else None


class DiskCache:
    """Byte values under tuple keys, verified on read. Opened lazily on first use."""

    def __init__(self, directory: Path | None = None, *, namespace: tuple[str, ...] = ()) -> None:
        self.directory = directory or default_cache_dir()
        self.namespace = namespace
        self._cache: diskcache.Cache | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _store(self) -> diskcache.Cache:
        with self._lock:
            if self._cache is None:
                self._cache = diskcache.Cache(str(self.directory), size_limit=2**33)
            return self._cache

    def _key(self, kind: str, *parts: object) -> str:
        return "\x1f".join([*self.namespace, kind, *(str(p) for p in parts)])

    def get(self, kind: str, *parts: object) -> bytes | None:
        """The stored bytes, or None (missing, or corrupt and now discarded)."""
        key = self._key(kind, *parts)
        store = self._store()
        try:
            sealed = store.get(key)
        except Exception:  # an unreadable entry is a corrupt entry
            sealed = b"corrupt"
        if sealed is None:
            self.misses += 1
            return None
        payload = _open(sealed)
        if payload is None:
            store.delete(key)
            self.misses += 1
            return None
        self.hits += 1
        return payload

    def set(self, kind: str, *parts: object, value: bytes) -> None:
        self._store().set(self._key(kind, *parts), _seal(value))

    def put_file(self, kind: str, *parts: object, source: Path) -> None:
        """Store a (large) file without reading it into memory; its digest is kept beside it."""
        digest = hashlib.sha256()
        with open(source, "rb") as reader:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
        store = self._store()
        key = self._key(kind, *parts)
        with open(source, "rb") as reader:
            store.set(key, reader, read=True)
        store.set(key + "\x1fsha256", digest.hexdigest())

    def open_file(self, kind: str, *parts: object) -> BinaryIO | None:
        """A stored file, verified, rewound; None when missing or corrupt (then discarded)."""
        key = self._key(kind, *parts)
        store = self._store()
        expected = store.get(key + "\x1fsha256")
        try:
            handle = store.get(key, read=True)
        except Exception:  # an unreadable entry is a corrupt entry
            handle = None
        if handle is None or not isinstance(expected, str):
            self.misses += 1
            return None
        digest = hashlib.sha256()
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
        if digest.hexdigest() != expected:
            handle.close()
            store.delete(key)
            store.delete(key + "\x1fsha256")
            self.misses += 1
            return None
        handle.seek(0)
        self.hits += 1
        return handle  # type: ignore[no-any-return]

    def clear(self) -> int:
        """Remove every entry (of every master and user); returns how many."""
        return self._store().clear()

    def close(self) -> None:
        with self._lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    def __len__(self) -> int:
        return len(self._store())
