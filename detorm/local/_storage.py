"""Checkpoint storage and experiment code of detorm.local.

A real cluster's trials write checkpoints to the storage their experiment config names; the
master only reads them back (``GET /checkpoints/{uuid}``) and a client on a machine that mounts
the storage reads them directly. detorm.local keeps a ``shared_fs`` storage next to its database,
``<database dir>/checkpoints/<uuid>/<files>``, and the :class:`~detorm.local.Seeder` points the
experiment config it builds at it, so both kinds of download work on this machine. A config given
to the Seeder is stored as given; if it keeps the placeholder storage of ``default_config()``
(``/tmp`` + ``determined-checkpoint``, as the demo's do, whose rows must not depend on where the
database lives), detorm.local reads that storage here too, and only a direct read misses it.

The Seeder writes the files of every checkpoint it creates, eagerly, so that a direct read of the
shared storage (which detorm.local never sees) finds them. To keep large seeds cheap, the on-disk
size of each file is exactly its ``resources`` size but only small files get content: a file up to
:data:`SMALL_FILE` bytes holds deterministic bytes (``metadata.json`` holds the checkpoint's
metadata as JSON, padded with spaces), a larger one is a sparse file of zeros that takes no disk
blocks. That costs about 40 µs and one directory per checkpoint, and a download moves the full
declared size, as on a real cluster.

This module also builds the default model definition (a ``.tar.gz`` holding ``model_def.py`` and
the submitted config) and the tar encoding the master's Go code writes (``archive/tar``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tarfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "SHARED_FS_CONTAINER_PATH",
    "SMALL_FILE",
    "STORAGE_DIRNAME",
    "CheckpointStorage",
    "StorageUnavailable",
    "UnsupportedStorage",
    "default_model_definition",
    "is_placeholder",
    "gzip_stream",
    "read_stream",
    "storage_prefix",
    "tar_end",
    "tar_header",
    "tar_padding",
]

STORAGE_DIRNAME: Final = "checkpoints"
SMALL_FILE: Final = 64 * 1024
SHARED_FS_CONTAINER_PATH: Final = "/determined_shared_fs"  # expconf.DefaultSharedFSContainerPath

# default_config() names this storage; the Seeder points it at the database's own directory.
_PLACEHOLDER_HOST: Final = "/tmp"
_PLACEHOLDER_STORAGE: Final = "determined-checkpoint"


class CheckpointStorage:
    """The ``shared_fs`` checkpoint storage of one detorm.local database."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._root_exists = False

    @classmethod
    def of(cls, database_path: str | os.PathLike[str]) -> CheckpointStorage:
        """The storage next to the database file at ``database_path``."""
        return cls(Path(database_path).absolute().parent / STORAGE_DIRNAME)

    def directory(self, uuid: str) -> Path:
        return self.root / uuid

    # --- the experiment config ----------------------------------------------------------------
    def localize(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with the placeholder storage of ``default_config()`` pointed here.

        Any other ``checkpoint_storage`` (s3, another directory...) is left as given.
        """
        result = dict(config)
        storage = result.get("checkpoint_storage")
        if isinstance(storage, Mapping) and is_placeholder(storage):
            result["checkpoint_storage"] = {
                **storage, "host_path": str(self.root.parent), "storage_path": self.root.name,
            }  # fmt: skip
        return result

    def prefix(self, config: Mapping[str, Any] | None) -> str:
        """:func:`storage_prefix`, except that the placeholder storage of ``default_config()``
        (kept by configs given to the Seeder explicitly, such as the demo's, which must not
        depend on where the database is) means this storage."""
        if isinstance(config, Mapping) and is_placeholder(config):
            return str(self.root)
        return storage_prefix(config)

    # --- writing ---------------------------------------------------------------------------------
    # Plain os calls and cached name checks: the Seeder writes tens of thousands of these.
    def write_checkpoint(
        self, uuid: str, resources: Mapping[str, int], metadata: Mapping[str, Any] | None = None
    ) -> None:
        """Write a checkpoint's files: one per ``resources`` entry, of exactly that size
        (``name/`` entries are directories). Replaces what the directory held."""
        directory = self._fresh(uuid)
        for name, size in resources.items():
            relative = _relative(name)
            target = f"{directory}/{relative}"
            if name.endswith("/"):
                os.makedirs(target, exist_ok=True)
                continue
            if "/" in relative:
                os.makedirs(os.path.dirname(target), exist_ok=True)
            _write_sized(
                target, int(size), lambda n=name, s=int(size): _content(uuid, n, s, metadata)
            )

    def write_files(self, uuid: str, files: Mapping[str, bytes]) -> None:
        """Write a checkpoint's files with the given contents (tests, demos)."""
        directory = self._fresh(uuid)
        for name, content in files.items():
            target = Path(directory, _relative(name))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)

    def delete(self, uuid: str, names: Iterable[str] | None = None) -> None:
        """Remove a checkpoint's files (all of them, or the given ones), as the checkpoint GC
        task does on a real cluster."""
        directory = self.directory(_component(uuid))
        if names is None:
            shutil.rmtree(directory, ignore_errors=True)
            return
        for name in names:
            path = directory / _relative(name)
            if path.is_file() or path.is_symlink():
                path.unlink()

    def _fresh(self, uuid: str) -> str:
        if not self._root_exists:
            self.root.mkdir(parents=True, exist_ok=True)
            self._root_exists = True
        directory = f"{self.root}/{_component(uuid)}"
        try:
            os.mkdir(directory)
        except FileExistsError:
            shutil.rmtree(directory)
            os.mkdir(directory)
        return directory


@functools.lru_cache(maxsize=4096)
def _relative(name: str) -> str:
    """A file name of ``resources`` as a clean relative path (no ``..``, not absolute)."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if name.startswith("/") or ".." in parts or not parts:
        raise ValueError(
            f"checkpoint file names are relative paths inside the checkpoint: {name!r}"
        )
    return "/".join(parts)


def _component(uuid: str) -> str:
    if not uuid or "/" in uuid or uuid in (".", ".."):
        raise ValueError(f"not a checkpoint uuid: {uuid!r}")
    return uuid


def _write_sized(target: str, size: int, content: Any) -> None:
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if size <= SMALL_FILE:
            view = memoryview(content())
            while view:
                view = view[os.write(fd, view) :]
        else:
            os.ftruncate(fd, size)  # sparse: the size is real, the blocks are not
    finally:
        os.close(fd)


def _content(uuid: str, name: str, size: int, metadata: Mapping[str, Any] | None) -> bytes:
    if name == "metadata.json" and metadata is not None:
        text = json.dumps(dict(metadata), sort_keys=True).encode()
        if len(text) <= size:
            return text + b" " * (size - len(text))
    seed = hashlib.sha256(f"{uuid}/{name}".encode()).digest()
    return (seed * (size // len(seed) + 1))[:size]


# --- where the master reads a checkpoint ----------------------------------------------------


def is_placeholder(storage: Mapping[str, Any]) -> bool:
    """Whether a ``checkpoint_storage`` is the one ``default_config()`` writes."""
    return (
        storage.get("type") == "shared_fs"
        and storage.get("host_path") == _PLACEHOLDER_HOST
        and storage.get("storage_path") == _PLACEHOLDER_STORAGE
    )


class UnsupportedStorage(Exception):
    """A storage type the master cannot proxy (``checkpoints.NewDownloader``)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"checkpoint download via master is not supported for {kind}")


class StorageUnavailable(Exception):
    """A storage type the master proxies from a cloud bucket, which detorm.local cannot reach."""


def storage_prefix(config: Mapping[str, Any] | None) -> str:
    """The directory holding checkpoint directories, as ``checkpoints.NewDownloader`` computes
    it: for ``shared_fs`` the container path when it exists on the master's machine, else the
    host path (``PathInContainerOrHost``); for ``directory`` its ``container_path``."""
    kind = config.get("type") if isinstance(config, Mapping) else None
    if kind == "shared_fs":
        assert config is not None
        return _shared_fs_prefix(config)
    if kind == "directory":
        assert config is not None
        return str(config.get("container_path") or "")
    if kind in ("s3", "gcs"):
        raise StorageUnavailable(kind)
    raise UnsupportedStorage(kind if kind == "azure" else "unknown")


def _shared_fs_prefix(config: Mapping[str, Any]) -> str:
    host = config.get("host_path")
    if not isinstance(host, str):
        raise ValueError("host_path must be set")
    storage = config.get("storage_path")
    if not isinstance(storage, str):
        container, on_host = SHARED_FS_CONTAINER_PATH, host
    elif os.path.isabs(storage):
        relative = os.path.relpath(storage, host)
        container, on_host = os.path.join(SHARED_FS_CONTAINER_PATH, relative), storage
    else:
        container, on_host = (
            os.path.join(SHARED_FS_CONTAINER_PATH, storage),
            os.path.join(host, storage),
        )
    return os.path.normpath(container) if os.path.exists(container) else os.path.normpath(on_host)


# --- tar and gzip as Go writes them -------------------------------------------------------------

_BLOCK: Final = 512


def tar_header(
    name: str, size: int, *, mode: int = 0o666, mtime: int = 0, kind: bytes = tarfile.REGTYPE
) -> bytes:
    """A header like Go's ``tar.Writer``: USTAR (with the prefix field) when the name fits,
    else PAX. The master's checkpoint archives use mode 0666, no owner and no time."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = mtime
    info.type = kind
    try:
        return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "surrogateescape")
    except ValueError:  # a name too long for USTAR
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_padding(size: int) -> bytes:
    return b"\0" * (-size % _BLOCK)


def tar_end() -> bytes:
    """``tar.Writer.Close``: two zero blocks, no padding to a 10 KiB record (unlike Python)."""
    return b"\0" * (2 * _BLOCK)


def gzip_stream(chunks: Iterator[bytes], level: int = 6) -> Iterator[bytes]:
    """Gzip a stream as Go's ``gzip.Writer`` frames it: no name, time 0, OS byte 255."""
    yield b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    crc, length = 0, 0
    for chunk in chunks:
        crc = zlib.crc32(chunk, crc)
        length += len(chunk)
        compressed = compressor.compress(chunk)
        if compressed:
            yield compressed
    yield compressor.flush()
    yield (crc & 0xFFFFFFFF).to_bytes(4, "little") + (length & 0xFFFFFFFF).to_bytes(4, "little")


# --- experiment code ----------------------------------------------------------------------------

_MODEL_DEF: Final = '''"""{name}: the model definition detorm.local seeded for this experiment."""

import determined.pytorch as det_torch


class Trial(det_torch.PyTorchTrial):
    def __init__(self, context: det_torch.PyTorchTrialContext) -> None:
        self.context = context
'''


def default_model_definition(name: str, config_text: str, mtime: int) -> bytes:
    """A small ``.tar.gz`` like the one ``det experiment create`` submits: ``model_def.py`` and
    the submitted config, with names as the master stores them (no ``./``, no trailing ``/``)."""
    files = {
        "const.yaml": config_text.encode(),
        "model_def.py": _MODEL_DEF.format(name=name.replace('"', "'")).encode(),
    }
    tar = bytearray()
    for path, content in files.items():
        tar += tar_header(path, len(content), mode=0o644, mtime=mtime)
        tar += content + tar_padding(len(content))
    tar += tar_end()
    return b"".join(gzip_stream(iter([bytes(tar)])))


def read_stream(path: Path, size: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Exactly ``size`` bytes of a file, in chunks (a file that shrank is an error)."""
    with open(path, "rb") as handle:
        remaining = size
        while remaining > 0:
            data = handle.read(min(chunk, remaining))
            if not data:
                raise OSError(f"read {path}: file shorter than its listed size")
            remaining -= len(data)
            yield data
