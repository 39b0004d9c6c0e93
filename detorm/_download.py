"""Downloading checkpoints and experiment code, safely.

``download_checkpoint`` follows the official client's ``Checkpoint.download``: only COMPLETED and
PARTIALLY_DELETED checkpoints; ``"direct"`` copies from the checkpoint storage named by the
experiment config when this machine can read it (``shared_fs`` at its host or container path,
``directory`` at its container path), ``"master"`` streams the archive the master builds
(``GET /checkpoints/{uuid}``), ``"auto"`` is direct when the storage is reachable here and
through the master otherwise. The checkpoint's metadata is written to ``metadata.json`` when the
checkpoint has none, as the official client does.

Unlike the official client, every download is checked (see :mod:`detorm._archive`), lands in a
staging directory first, and replaces nothing until it is complete; a destination that already
holds a checkpoint is downloaded again rather than trusted.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal

from . import _wire as w
from ._archive import extract, extract_into, staging
from ._transport import Call, body_chunks
from ._transport import path as url_path  # download_code has a parameter named path
from .errors import DownloadError, InvalidValue, UnsafeArchive

if TYPE_CHECKING:
    from ._resources._models import Checkpoint, Experiment
    from ._session import Session

__all__ = ["DownloadMode", "direct_source", "download_checkpoint", "download_code"]

DownloadMode = Literal["auto", "direct", "master"]

SHARED_FS_CONTAINER_PATH: Final = "/determined_shared_fs"  # determined.common.constants
_DOWNLOADABLE: Final = (w.CheckpointState.COMPLETED, w.CheckpointState.PARTIALLY_DELETED)
_CHUNK: Final = 1 << 20


# --- checkpoints ----------------------------------------------------------------------------


def download_checkpoint(
    session: Session,
    checkpoint: Checkpoint | str,
    path: str | os.PathLike[str],
    *,
    mode: DownloadMode = "auto",
    progress: bool = False,
    cache: bool = True,
) -> Path:
    """Download a checkpoint's files into ``path`` and return it.

    A COMPLETED checkpoint read through the master is kept in the disk cache (its files can
    no longer change), so it is downloaded once; ``cache=False`` skips the cache.

    Raises :class:`~detorm.errors.DownloadError` for a checkpoint that is not COMPLETED or
    PARTIALLY_DELETED, or a ``"direct"`` download whose storage this machine cannot read, and
    :class:`~detorm.errors.UnsafeArchive` for an archive that would write outside ``path``.
    """
    if mode not in ("auto", "direct", "master"):
        raise InvalidValue(f"unknown download mode {mode!r}: use 'auto', 'direct' or 'master'")
    uuid = checkpoint if isinstance(checkpoint, str) else checkpoint.uuid
    wire = _current_checkpoint(session, uuid)
    if wire.state not in _DOWNLOADABLE:
        raise DownloadError(
            f"checkpoint {uuid} is {wire.state.short}: only COMPLETED or PARTIALLY_DELETED"
            " checkpoints can be downloaded"
        )
    source = direct_source(_storage_config(wire), uuid)
    if mode == "direct" and source is None:
        raise DownloadError(_unreachable_message(_storage_config(wire), uuid))
    destination = Path(path)
    cache_key = _cache_key(wire) if cache and session._cache_enabled else None
    with staging(destination) as directory:
        if mode == "direct" or (mode == "auto" and source is not None):
            assert source is not None
            _copy_tree(source, directory, progress)
        else:
            _via_master(session, uuid, directory, progress, cache_key)
        _write_metadata(directory, destination, wire.metadata)
    return destination


def _cache_key(wire: w.Checkpoint) -> tuple[str, str] | None:
    """Cache completed checkpoints only; the key changes if files are ever removed."""
    if wire.state != w.CheckpointState.COMPLETED:
        return None
    files = json.dumps(sorted(wire.resources.items())).encode()
    return wire.uuid, hashlib.sha256(files).hexdigest()[:16]


def _current_checkpoint(session: Session, uuid: str) -> w.Checkpoint:
    """GetCheckpoint: the state, metadata and storage as they are now (merged into the
    session's identity map)."""
    from ._resources._models import Checkpoint

    call = Call("GET", url_path("/api/v1/checkpoints/{uuid}", uuid=uuid))
    response = session.transport.send(call)
    wire = w.CheckpointResponse.model_validate_json(response.content).checkpoint
    assert wire is not None
    session.merge(Checkpoint, Checkpoint.values_from_wire(wire))
    return wire


def _storage_config(wire: w.Checkpoint) -> Mapping[str, Any] | None:
    config = wire.training.experiment_config if wire.training is not None else None
    storage = (config or {}).get("checkpoint_storage")
    return storage if isinstance(storage, Mapping) else None


def direct_source(storage: Mapping[str, Any] | None, uuid: str) -> Path | None:
    """Where this machine can read the checkpoint directly, if it can (the candidates of the
    official ``_find_shared_fs_path``: the host path, then the container path)."""
    if storage is None:
        return None
    kind = storage.get("type")
    candidates: list[Path] = []
    if kind == "shared_fs":
        host, sub = storage.get("host_path"), storage.get("storage_path")
        if isinstance(host, str) and os.path.isabs(host):
            for base in (host, SHARED_FS_CONTAINER_PATH):
                full = _full_storage_path(host, sub if isinstance(sub, str) else None, base)
                if full is not None:
                    candidates.append(Path(full, uuid))
    elif kind == "directory" and isinstance(storage.get("container_path"), str):
        candidates.append(Path(storage["container_path"], uuid))
    return next((c for c in candidates if c.is_dir()), None)


def _full_storage_path(host: str, storage_path: str | None, base: str) -> str | None:
    """``shared._full_storage_path``: ``storage_path`` must stay under ``host_path``."""
    if storage_path is None:
        return base
    absolute = os.path.normpath(os.path.join(host, storage_path))
    if not absolute.startswith(host):
        return None
    return os.path.join(base, os.path.relpath(absolute, host))


def _unreachable_message(storage: Mapping[str, Any] | None, uuid: str) -> str:
    kind = storage.get("type") if storage is not None else None
    if kind in ("shared_fs", "directory"):
        return (
            f"checkpoint {uuid} is not in its {kind} storage on this machine (is the storage"
            " mounted here?); use mode='master' to download it through the master"
        )
    return (
        f"checkpoint {uuid} is stored in {kind or 'unknown'} storage, which detorm reads only"
        " through the master: use mode='master' or 'auto'"
    )


def _write_metadata(directory: Path, destination: Path, metadata: Mapping[str, Any] | None) -> None:
    # Checkpoints older than 0.18 have no metadata.json; the official client writes one.
    if (directory / "metadata.json").exists() or (destination / "metadata.json").exists():
        return
    (directory / "metadata.json").write_text(json.dumps(dict(metadata or {}), indent=2))


# --- through the master -----------------------------------------------------------------------------


def _via_master(
    session: Session, uuid: str, directory: Path, progress: bool, cache_key: tuple[str, str] | None
) -> None:
    if cache_key is not None:
        cached = session.cache.open_file("checkpoint", *cache_key)
        if cached is not None:
            with cached:
                extract_into(cached, directory, fmt="tar")
            return
    call = Call("GET", url_path("/checkpoints/{uuid}", uuid=uuid))
    # An uncompressed tar: the master's default, and the only form sent with a Content-Length.
    response = session.transport.open_stream(call, headers={"Accept": "application/x-tar"})
    with tempfile.NamedTemporaryFile(dir=directory.parent, prefix=".detorm-archive-") as copy:
        try:
            length = response.headers.get("content-length")
            with _bar(int(length) if length and length.isdigit() else None, progress, uuid) as bar:
                # A connection lost midway raises StreamInterrupted (a TransportError).
                chunks = _teed(body_chunks(call, response, _CHUNK), copy if cache_key else None)
                reader = io.BufferedReader(_ResponseReader(chunks, bar), _CHUNK)
                extract_into(reader, directory, fmt="tar")
        finally:
            response.close()
        if cache_key is not None:
            copy.flush()
            session.cache.put_file("checkpoint", *cache_key, source=Path(copy.name))


def _teed(chunks: Iterator[bytes], copy: IO[bytes] | None) -> Iterator[bytes]:
    """The chunks, also written to ``copy`` (the archive kept for the cache)."""
    for chunk in chunks:
        if copy is not None:
            copy.write(chunk)
        yield chunk


class _ResponseReader(io.RawIOBase):
    """A readable binary stream over response chunks (what tarfile reads)."""

    def __init__(self, chunks: Iterator[bytes], on_bytes: Callable[[int], None]) -> None:
        self._chunks = chunks
        self._pending = b""
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._on_bytes(len(chunk))
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


# --- from shared storage -------------------------------------------------------------------------


def _copy_tree(source: Path, directory: Path, progress: bool) -> None:
    """Copy a checkpoint directory; a link must stay inside it, special files are refused."""
    files = list(_walk(source))
    total = sum(size for _, size in files)
    with _bar(total, progress, source.name) as bar:
        for relative, _ in files:
            src, dst = source / relative, directory / relative
            if src.is_dir() and not src.is_symlink():
                dst.mkdir(parents=True, exist_ok=True)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            _copy_file(src, dst, bar)


def _walk(source: Path) -> Iterator[tuple[Path, int]]:
    """(relative path, size) of every entry under ``source``, directories first."""
    base = os.path.realpath(source)
    for root, dirs, files in os.walk(source):
        for name in sorted(dirs) + sorted(files):
            path = Path(root, name)
            relative = path.relative_to(source)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                resolved = os.path.realpath(path)
                if resolved != base and not resolved.startswith(base + os.sep):
                    raise UnsafeArchive(
                        str(relative), "symbolic link pointing outside the checkpoint"
                    )
                if os.path.isdir(path):
                    raise UnsafeArchive(str(relative), "symbolic link to a directory")
                info = path.stat()
            elif not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise UnsafeArchive(str(relative), "device files, FIFOs and sockets are not copied")
            yield relative, info.st_size if stat.S_ISREG(info.st_mode) else 0


def _copy_file(src: Path, dst: Path, bar: _Progress) -> None:
    with open(src, "rb") as reader, open(dst, "wb") as writer:
        while chunk := reader.read(_CHUNK):
            writer.write(chunk)
            bar(len(chunk))
    shutil.copystat(src, dst)


# --- experiment code --------------------------------------------------------------------------------


def download_code(
    session: Session, experiment: Experiment | int, path: str | os.PathLike[str], *,
    cache: bool = True,
) -> Path:  # fmt: skip
    """Extract an experiment's model definition (GetModelDef, a base64 ``.tar.gz``) into ``path``.

    An experiment's code never changes: it is kept in the disk cache (``cache=False`` skips it).
    """
    experiment_id = experiment if isinstance(experiment, int) else experiment.id
    use_cache = cache and session._cache_enabled
    archive = session.cache.get("model_def", experiment_id) if use_cache else None
    if archive is None:
        call = Call("GET", url_path("/api/v1/experiments/{id}/model_def", id=experiment_id))
        response = w.ModelDefResponse.model_validate_json(session.transport.send(call).content)
        archive = base64.b64decode(response.b64_tgz)
        if archive and use_cache:
            session.cache.set("model_def", experiment_id, value=archive)
    if not archive:
        raise DownloadError(
            f"experiment {experiment_id} has no model definition (an unmanaged experiment?)"
        )
    return extract(io.BytesIO(archive), path, fmt="tar.gz")


# --- progress ------------------------------------------------------------------------------------------


class _Progress:
    """A byte counter drawn on stderr: tqdm when installed, else a plain text bar."""

    def __init__(self, total: int | None, label: str, enabled: bool) -> None:
        self.total = total
        self.label = label
        self.done = 0
        self._enabled = enabled
        self._tqdm: Any = None
        self._drawn = 0.0
        if enabled and importlib.util.find_spec("tqdm") is not None:
            from tqdm import tqdm  # type: ignore[import-untyped, unused-ignore]

            self._tqdm = tqdm(total=total, unit="B", unit_scale=True, desc=label, file=sys.stderr)

    def __call__(self, count: int) -> None:
        self.done += count
        if not self._enabled:
            return
        if self._tqdm is not None:
            self._tqdm.update(count)
        elif time.monotonic() - self._drawn >= 0.1:
            self._draw()

    def _draw(self, end: str = "") -> None:
        self._drawn = time.monotonic()
        megabytes = f"{self.done / 1e6:.1f}"
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "#" * int(share * 30)
            line = f"\r{self.label} [{bar:<30}] {share:4.0%} {megabytes}/{self.total / 1e6:.1f} MB"
        else:
            line = f"\r{self.label} {megabytes} MB"
        sys.stderr.write(line + end)
        sys.stderr.flush()

    def close(self) -> None:
        if not self._enabled:
            return
        if self._tqdm is not None:
            self._tqdm.close()
        else:
            self._draw("\n")

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _bar(total: int | None, enabled: bool, label: str) -> _Progress:
    return _Progress(total, label, enabled)
