"""Downloading checkpoints and experiment code, safely.

``download_checkpoint`` follows the official client's ``Checkpoint.download``: only COMPLETED and
PARTIALLY_DELETED checkpoints; ``"direct"`` copies from the checkpoint storage named by the
experiment config when this machine can read it (``shared_fs`` at its host or container path,
``directory`` at its container path), ``"master"`` streams the archive the master builds
(``GET /checkpoints/{uuid}``), ``"auto"`` is direct when the storage is reachable here and
through the master otherwise. The checkpoint's metadata is written to ``metadata.json`` when the
checkpoint has none, as the official client does.

Unlike the official client, every download is checked (see :mod:`detorm._io._archive`): a
checkpoint's files, through the master or copied directly, must be exactly those its
``resources`` list (names and sizes); code, and a checkpoint without ``resources``, are capped
by ``max_size`` and by the compression ratio. The destination is checked, and the staging
directory next to it created, before any request is sent; nothing replaces anything there until
the download is complete; a destination that already holds a checkpoint is downloaded again
rather than trusted.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import io
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal

from .. import _progress
from .. import _wire as w
from .._io._archive import Extraction, Limits, Readable, destination_path, extract_into, staging
from .._plan._call import Call
from .._plan._call import path as url_path  # download_code has a parameter named path
from .._progress import Bar, check_progress, choose
from ..errors import DownloadError, InvalidType, InvalidValue, StreamInterrupted, UnsafeArchive
from ._effects import Op, blocking, close, open_stream, read, send

if TYPE_CHECKING:
    from .._resources._models import Checkpoint, Experiment
    from ._protocols import OpsSession as Session

__all__ = [
    "CHECKPOINT_MAX_SIZE",
    "CODE_MAX_SIZE",
    "DownloadMode",
    "Opened",
    "SourceFile",
    "check_max_size",
    "copy_files",
    "direct_source",
    "download_checkpoint",
    "download_code",
    "local_files",
    "progress_bar",
    "storage_roots",
]

DownloadMode = Literal["auto", "direct", "master"]

CODE_MAX_SIZE: Final = 128 << 20
"""Default ``max_size`` of ``download_code``: the master takes requests of up to 128 MiB and the
det CLI refuses code over 95 MiB (``MAX_HTTP_REQUEST_SIZE``, ``MAX_CONTEXT_SIZE``)."""
CHECKPOINT_MAX_SIZE: Final = 64 << 30
"""Default ``max_size`` of a checkpoint download, for a checkpoint without ``resources`` (the
files of one that has them must match them exactly, whatever their size)."""

SHARED_FS_CONTAINER_PATH: Final = "/determined_shared_fs"  # determined.common.constants
_DOWNLOADABLE: Final = (w.CheckpointState.COMPLETED, w.CheckpointState.PARTIALLY_DELETED)


# --- checkpoints ----------------------------------------------------------------------------


def download_checkpoint(
    session: Session,
    checkpoint: Checkpoint | str,
    path: str | os.PathLike[str],
    *,
    mode: DownloadMode = "auto",
    progress: bool | None = None,
    cache: bool = True,
    max_size: int = CHECKPOINT_MAX_SIZE,
) -> Op[Path]:
    """Download a checkpoint's files into ``path`` (a directory, created or merged into) and
    return it.

    The files must be exactly those of the checkpoint's ``resources`` (names and sizes); a
    checkpoint without ``resources`` may hold at most ``max_size`` bytes. A COMPLETED
    checkpoint read through the master is kept in the disk cache (its files can no longer
    change), so it is downloaded once; ``cache=False`` skips the cache.

    Raises :class:`~detorm.errors.InvalidValue` for a ``path`` that is a file or cannot be
    written (before anything is sent), :class:`~detorm.errors.DownloadError` for a checkpoint
    that is not COMPLETED or PARTIALLY_DELETED, a ``"direct"`` download whose storage this
    machine cannot read, or a corrupt archive, and :class:`~detorm.errors.UnsafeArchive` for
    files that are not the checkpoint's or would land outside ``path``.
    """
    if mode not in ("auto", "direct", "master"):
        raise InvalidValue(f"unknown download mode {mode!r}: use 'auto', 'direct' or 'master'")
    check_max_size(max_size)
    progress = choose(check_progress("download(progress)", progress), session.progress)
    uuid = checkpoint if isinstance(checkpoint, str) else checkpoint.uuid
    destination = destination_path(path)
    with staging(destination) as directory:
        wire = yield from _current_checkpoint(session, uuid)
        if wire.state not in _DOWNLOADABLE:
            raise DownloadError(
                f"checkpoint {uuid} is {wire.state.short}: only COMPLETED or PARTIALLY_DELETED"
                " checkpoints can be downloaded"
            )
        source = direct_source(_storage_config(wire), uuid)
        if mode == "direct" and source is None:
            raise DownloadError(_unreachable_message(_storage_config(wire), uuid))
        # The harness lists every file and directory it uploaded (StorageManager._list_directory)
        # and the master updates the list when files are removed; an empty map says nothing.
        limits = Limits(max_size=max_size, files=dict(wire.resources) or None)
        if mode == "direct" or (mode == "auto" and source is not None):
            assert source is not None
            extraction = Extraction(directory, limits, what=f"checkpoint {uuid}")
            yield from blocking(_copy_tree, source, extraction, progress)
        else:
            cache_key = _cache_key(wire) if cache and session._cache_enabled else None
            yield from _via_master(session, uuid, directory, limits, progress, cache_key)
        yield from blocking(_write_metadata, directory, destination, wire.metadata)
    return destination


def check_max_size(max_size: int) -> None:
    """``max_size`` is a positive number of bytes."""
    if isinstance(max_size, bool) or not isinstance(max_size, int):
        raise InvalidType(f"max_size must be an int (bytes), not {type(max_size).__name__}")
    if max_size <= 0:
        raise InvalidValue(f"max_size must be a positive number of bytes, not {max_size}")


def _cache_key(wire: w.Checkpoint) -> tuple[str, str] | None:
    """Cache completed checkpoints only; the key changes if files are ever removed."""
    if wire.state != w.CheckpointState.COMPLETED:
        return None
    files = json.dumps(sorted(wire.resources.items())).encode()
    return wire.uuid, hashlib.sha256(files).hexdigest()[:16]


def _current_checkpoint(session: Session, uuid: str) -> Op[w.Checkpoint]:
    """GetCheckpoint: the state, metadata and storage as they are now (merged into the
    session's identity map)."""
    from .._resources._models import Checkpoint

    call = Call("GET", url_path("/api/v1/checkpoints/{uuid}", uuid=uuid))
    response = yield from send(call)
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
    return next((root / uuid for root in storage_roots(storage) if (root / uuid).is_dir()), None)


def storage_roots(storage: Mapping[str, Any] | None) -> list[Path]:
    """Where a ``shared_fs`` or ``directory`` checkpoint storage may be on this machine, in the
    order the official client tries them (none for other kinds); they may not exist here."""
    if storage is None:
        return []
    kind = storage.get("type")
    candidates: list[Path] = []
    if kind == "shared_fs":
        host, sub = storage.get("host_path"), storage.get("storage_path")
        if isinstance(host, str) and os.path.isabs(host):
            for base in (host, SHARED_FS_CONTAINER_PATH):
                full = _full_storage_path(host, sub if isinstance(sub, str) else None, base)
                if full is not None:
                    candidates.append(Path(full))
    elif kind == "directory" and isinstance(storage.get("container_path"), str):
        candidates.append(Path(storage["container_path"]))
    return candidates


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
    session: Session,
    uuid: str,
    directory: Path,
    limits: Limits,
    progress: bool | None,
    cache_key: tuple[str, str] | None,
) -> Op[None]:
    """The archive the master builds, downloaded whole next to ``directory`` (and kept in the
    cache when ``cache_key`` is given), then extracted with the checks of ``limits``."""
    what = f"checkpoint {uuid}"
    if cache_key is not None:
        cached = yield from blocking(session.cache.open_file, "checkpoint", *cache_key)
        if cached is not None:
            with cached:
                yield from blocking(_extract_tar, cached, directory, limits, what)
            return
    with tempfile.NamedTemporaryFile(dir=directory.parent, prefix=".detorm-archive-") as archive:
        yield from _fetch_archive(session, uuid, archive, progress)
        yield from blocking(archive.seek, 0)
        yield from blocking(_extract_tar, archive, directory, limits, what)
        if cache_key is not None:
            yield from blocking(_keep_archive, session, cache_key, Path(archive.name))


def _fetch_archive(session: Session, uuid: str, file: IO[bytes], progress: bool | None) -> Op[None]:
    """``GET /checkpoints/{uuid}`` into ``file``, from the start again when it breaks off (the
    master has no ranges for checkpoints), as often as the retry policy allows."""
    call = Call("GET", url_path("/checkpoints/{uuid}", uuid=uuid))
    retries = session.transport.retry.retries
    for attempt in range(retries + 1):
        yield from blocking(_emptied, file)
        # An uncompressed tar: the master's default, and the only form sent with a length.
        stream = yield from open_stream(call, {"Accept": "application/x-tar"})
        length = stream.headers.get("content-length")
        try:
            with progress_bar(
                int(length) if length and length.isdigit() else None, progress, uuid
            ) as bar:
                while chunk := (yield from read(stream)):
                    yield from blocking(file.write, chunk)
                    bar(len(chunk))
        except StreamInterrupted:
            yield from close(stream)
            if attempt == retries:
                raise
            yield from session.transport.back_off(attempt)
            continue
        yield from close(stream)
        return


def _emptied(file: IO[bytes]) -> None:
    file.seek(0)
    file.truncate()


def _extract_tar(file: IO[bytes], directory: Path, limits: Limits, what: str) -> None:
    extract_into(file, directory, fmt="tar", limits=limits, what=what)


def _keep_archive(session: Session, key: tuple[str, str], archive: Path) -> None:
    session.cache.put_file("checkpoint", *key, source=archive)


# --- from shared storage -------------------------------------------------------------------------


def _copy_tree(source: Path, extraction: Extraction, progress: bool | None) -> None:
    """Copy a checkpoint directory with the checks of an archive's members (names, sizes
    against ``resources``, modes); a link must stay inside it, special files are refused."""
    copy_files(local_files(source), extraction, progress, source.name)
    extraction.finish()


@dataclass(frozen=True)
class Opened:
    """A file being copied: its bytes, and the size, mode and time to give the copy."""

    reader: Readable
    size: int
    mode: int = 0o644
    mtime: float | None = None


@dataclass(frozen=True)
class SourceFile:
    """One entry of a copy: ``name`` (relative, ``/``-separated, checked again as an archive
    member) and its size when listed; ``open`` is None for a directory."""

    name: str
    size: int
    open: Callable[[], contextlib.AbstractContextManager[Opened]] | None


def copy_files(
    files: Iterable[SourceFile], extraction: Extraction, progress: bool | None, label: str,
    *, snapshot: bool = False,
) -> None:  # fmt: skip
    """Write ``files`` through ``extraction`` (every name, size and mode checked as an archive
    member's is), counted on one progress bar. With ``snapshot`` (files that may be written
    meanwhile), a file is read up to the size it had when opened, so one still being appended to
    is copied as it was then, and one removed since it was listed (a writer's temporary file,
    renamed into place) is left out."""
    entries = list(files)
    with progress_bar(sum(entry.size for entry in entries), progress, label) as bar:
        for entry in entries:
            if entry.open is None:
                extraction.directory(entry.name)
                continue
            with contextlib.ExitStack() as stack:
                try:
                    opened = stack.enter_context(entry.open())
                except FileNotFoundError:
                    if snapshot:
                        continue
                    raise
                reader: Readable = _Reported(opened.reader, bar)
                if snapshot:
                    reader = _Bounded(reader, opened.size)
                extraction.file(
                    entry.name, opened.size, reader, mode=opened.mode, mtime=opened.mtime
                )


class _Reported:
    """A file whose reads are counted on a progress bar."""

    def __init__(self, file: Readable, on_bytes: Callable[[int], None]) -> None:
        self._file = file
        self._on_bytes = on_bytes

    def read(self, size: int = -1, /) -> bytes:
        data = self._file.read(size)
        self._on_bytes(len(data))
        return data


class _Bounded:
    """The first ``size`` bytes of a file."""

    def __init__(self, file: Readable, size: int) -> None:
        self._file = file
        self._left = size

    def read(self, size: int = -1, /) -> bytes:
        want = self._left if size < 0 else min(size, self._left)
        if want <= 0:
            return b""
        data = self._file.read(want)
        self._left -= len(data)
        return data


def local_files(
    source: Path, *, prefix: str = "", boundary: Path | None = None, what: str = "the checkpoint"
) -> Iterator[SourceFile]:
    """The entries under ``source``, named ``prefix`` + their relative path, directories first
    (see :func:`_walk`: links must stay inside ``boundary``, by default ``source``)."""
    for relative, size in _walk(source, boundary=boundary, what=what):
        path = source / relative
        name = prefix + relative.as_posix()
        if path.is_dir() and not path.is_symlink():
            yield SourceFile(name, 0, None)
        else:
            yield SourceFile(name, size, functools.partial(_open_local, path))


@contextlib.contextmanager
def _open_local(path: Path) -> Iterator[Opened]:
    with open(path, "rb") as reader:
        info = os.fstat(reader.fileno())
        yield Opened(reader, info.st_size, info.st_mode, info.st_mtime)


def _walk(
    source: Path, *, boundary: Path | None = None, what: str = "the checkpoint"
) -> Iterator[tuple[Path, int]]:
    """(relative path, size) of every entry under ``source``, directories first; a symbolic
    link must resolve inside ``boundary`` (by default ``source``), to a file."""
    base = os.path.realpath(boundary if boundary is not None else source)
    for root, dirs, files in os.walk(source):
        for name in sorted(dirs) + sorted(files):
            path = Path(root, name)
            relative = path.relative_to(source)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                resolved = os.path.realpath(path)
                if resolved != base and not resolved.startswith(base + os.sep):
                    raise UnsafeArchive(str(relative), f"symbolic link pointing outside {what}")
                if os.path.isdir(path):
                    raise UnsafeArchive(str(relative), "symbolic link to a directory")
                info = path.stat()
            elif not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise UnsafeArchive(str(relative), "device files, FIFOs and sockets are not copied")
            yield relative, info.st_size if stat.S_ISREG(info.st_mode) else 0


# --- experiment code --------------------------------------------------------------------------------


def download_code(
    session: Session, experiment: Experiment | int, path: str | os.PathLike[str], *,
    cache: bool = True, max_size: int = CODE_MAX_SIZE,
) -> Op[Path]:  # fmt: skip
    """Extract an experiment's model definition (GetModelDef, a base64 ``.tar.gz``) into ``path``.

    ``path`` must be a new or empty directory, like ``git clone``'s: the code lands whole, never
    mixed with files already there (the official client writes the ``.tar.gz`` itself into a
    directory instead). The code may hold at most ``max_size`` bytes once extracted. An
    experiment's code never changes: it is kept in the disk cache (``cache=False`` skips it).

    Raises :class:`~detorm.errors.InvalidValue` for a ``path`` that is a file, a non-empty
    directory or cannot be written (before anything is sent),
    :class:`~detorm.errors.DownloadError` for an experiment without code or a corrupt archive,
    and :class:`~detorm.errors.UnsafeArchive` for an archive that is too large or would write
    outside ``path``.
    """
    check_max_size(max_size)
    experiment_id = experiment if isinstance(experiment, int) else experiment.id
    what = f"the code of experiment {experiment_id}"
    use_cache = cache and session._cache_enabled
    with staging(path, merge=False) as directory:
        cached = (
            (yield from blocking(session.cache.get, "model_def", experiment_id))
            if use_cache
            else None
        )
        archive = cached if cached is not None else (yield from _model_definition(experiment_id))
        limits = Limits(max_size=max_size)
        yield from blocking(_extract_code, archive, directory, limits, what)
        if use_cache and cached is None:  # only code that extracted cleanly is kept
            yield from blocking(_keep_code, session, experiment_id, archive)
    return Path(path)


def _extract_code(archive: bytes, directory: Path, limits: Limits, what: str) -> None:
    extract_into(io.BytesIO(archive), directory, fmt="tar.gz", limits=limits, what=what)


def _keep_code(session: Session, experiment_id: int, archive: bytes) -> None:
    session.cache.set("model_def", experiment_id, value=archive)


def _model_definition(experiment_id: int) -> Op[bytes]:
    """GetModelDef: the ``.tar.gz`` the experiment was created with."""
    call = Call("GET", url_path("/api/v1/experiments/{id}/model_def", id=experiment_id))
    response = w.ModelDefResponse.model_validate_json((yield from send(call)).content)
    try:
        archive = base64.b64decode(response.b64_tgz, validate=True)  # Go's StdEncoding
    except binascii.Error as err:
        raise DownloadError(f"{call}: the model definition is not valid base64: {err}") from None
    if not archive:
        raise DownloadError(
            f"experiment {experiment_id} has no model definition (an unmanaged experiment?)"
        )
    return archive


# --- progress ------------------------------------------------------------------------------------------


def progress_bar(total: int | None, choice: bool | None, label: str) -> Bar:
    """A byte counter on stderr as ``choice`` asks (``detorm._progress``: None draws one only
    where someone watches)."""
    return _progress.progress_bar(total, label, unit="B", choice=choice)
