"""An experiment's TensorBoard files: downloaded from its checkpoint storage, or deleted.

Trials upload their TensorBoard files (event files, profiler traces) to the checkpoint storage of
their experiment's config, under the layout of the harness (``determined.tensorboard.build``)
and of the master's ``LaunchTensorboard`` (``api_tensorboard.go``)::

    <storage>/<cluster id>/tensorboard/experiment/<experiment id>/trial/<trial id>/<files>

where ``<storage>`` is the ``shared_fs`` storage path (``host_path`` joined with
``storage_path``), a ``directory`` storage's ``container_path``, or the ``prefix`` of an S3 or
GCS bucket (an Azure container has none, though a ``container`` of ``name/sub`` puts the files
under ``sub/``), and the cluster id is ``GET /api/v1/master``'s ``clusterId``.

Master 0.38.1 has no REST route that serves these files (its TensorBoard tasks read the storage
themselves), so :func:`download_tensorboard` reads the storage directly, as the official
TensorBoard fetchers (``determined.tensorboard.fetchers``) do: ``shared_fs`` and ``directory``
storage when this machine mounts it, S3, GCS and Azure through their client libraries, optional
extras imported only when needed (``pip install 'detorm[s3]'``, ``[gcs]``, ``[azure]``). Every
file goes through the checks of an archive member (:mod:`detorm._io._archive`) into a staging
directory, as a checkpoint download does.

No archive is involved: every storage holds the files one by one (files on disk, objects in a
bucket), and the master builds no TensorBoard archive. What an archive's corruption would be
here is a file shorter than listed, which raises :class:`~detorm.errors.DownloadError`
("truncated?"), or a read the storage's client fails, which raises it too.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

from .. import _wire as w
from .._io._archive import (
    ENTRY_COST,
    Extraction,
    Limits,
    Readable,
    destination_path,
    member_path,
    staging,
)
from .._plan._call import Call
from .._plan._call import path as url_path  # download_tensorboard has a parameter named path
from .._progress import check_progress, choose
from .._resources._inputs import check_id, check_iterable
from .._resources._models import Experiment, Trial
from ..errors import ConfigurationError, DetormError, DownloadError, InvalidValue, UnsafeArchive
from ._download import (
    Opened,
    SourceFile,
    check_max_size,
    copy_files,
    local_files,
    storage_roots,
)
from ._effects import Op, blocking, send

if TYPE_CHECKING:
    from ._protocols import OpsSession as Session

__all__ = [
    "EXTRAS",
    "TENSORBOARD_MAX_SIZE",
    "azure_client",
    "delete_tensorboard_files",
    "download_tensorboard",
    "gcs_client",
    "s3_client",
    "tensorboard_directory",
]

TENSORBOARD_MAX_SIZE: Final = 64 << 30
"""Default ``max_size`` of ``download_tensorboard``: the bytes all the files may hold (profiler
traces make TensorBoard directories large)."""

EXTRAS: Final = {
    "s3": ("boto3", "s3"),
    "gcs": ("google.cloud.storage", "gcs"),
    "azure": ("azure.storage.blob", "azure"),
}
"""Storage type: (the module its client needs, the detorm extra that installs it)."""


def tensorboard_directory(cluster_id: str, experiment_id: int, trial_id: int | None = None) -> str:
    """Where the files of an experiment (or of one of its trials) are, relative to the storage
    (``build.get_experiment_sync_path`` / ``get_sync_path``), ending with ``/``."""
    base = f"{cluster_id}/tensorboard/experiment/{experiment_id}/"
    return base if trial_id is None else f"{base}trial/{trial_id}/"


# --- DeleteTensorboardFiles ---------------------------------------------------------------------


def delete_tensorboard_files(session: Session, experiment: Experiment | int) -> Op[None]:
    """DeleteTensorboardFiles: the master starts a checkpoint GC task that removes the
    experiment's TensorBoard directory from its storage (the answer does not wait for it)."""
    experiment_id = _experiment_id(experiment)
    call = Call(
        "DELETE",
        url_path("/api/v1/experiments/{id}/tensorboard-files", id=experiment_id),
    )
    yield from send(call)


# --- download -----------------------------------------------------------------------------------


def download_tensorboard(
    session: Session,
    experiment: Experiment | int,
    path: str | os.PathLike[str],
    *,
    trials: Iterable[Trial | int] | None = None,
    progress: bool | None = None,
    max_size: int = TENSORBOARD_MAX_SIZE,
) -> Op[Path]:
    """Copy the TensorBoard files of an experiment (all its trials, or ``trials``) from its
    checkpoint storage into ``path`` (a directory, created or merged into) and return it.

    The files keep their layout below the experiment's directory: ``<path>/trial/<trial
    id>/<files as the trial uploaded them>``, so ``tensorboard --logdir <path>`` shows one run
    per trial. A file still being written is copied as it was when it was opened. A trial that
    uploaded no files adds none; at most ``max_size`` bytes in all.

    Raises :class:`~detorm.errors.InvalidValue` for a ``path`` that cannot be written, empty
    ``trials`` or a trial of another experiment (before anything is sent);
    :class:`~detorm.errors.ConfigurationError` when the storage's client library is not
    installed (the message names the extra); :class:`~detorm.errors.DownloadError` for a trial
    id the experiment does not have, a storage this machine cannot read (not mounted here, an
    unknown type) or a read that failed; :class:`~detorm.errors.UnsafeArchive` for more than
    ``max_size`` bytes, or a file, object key or link that would land outside ``path``.
    """
    check_max_size(max_size)
    destination = destination_path(path, "download_tensorboard(path)")
    progress = choose(check_progress("download_tensorboard(progress)", progress), session.progress)
    experiment_id = _experiment_id(experiment)
    wanted = _wanted_trials(trials, experiment_id)
    with staging(destination) as directory:
        exp = yield from session._fetch(Experiment, experiment_id)
        _check_trials(exp, wanted)
        storage = _storage_of(exp.config.get("checkpoint_storage"), experiment_id)
        cluster_id = yield from _cluster_id()
        base = tensorboard_directory(cluster_id, experiment_id)
        prefixes = (
            [base] if wanted is None else [tensorboard_directory(cluster_id, experiment_id, t)
                                           for t in wanted]
        )  # fmt: skip
        what = f"the TensorBoard files of experiment {experiment_id}"
        extraction = Extraction(directory, Limits(max_size=max_size), what=what)
        yield from blocking(_copy, storage, base, prefixes, extraction, progress, what)
    return destination


def _experiment_id(experiment: Experiment | int) -> int:
    if isinstance(experiment, Experiment):
        return experiment.id
    return check_id("experiment", experiment, what="an Experiment or an experiment id (an int)")


def _wanted_trials(trials: Iterable[Trial | int] | None, experiment_id: int) -> list[int] | None:
    """The trial ids asked for (None: the whole experiment), checked before anything is sent."""
    if trials is None:
        return None
    chosen = check_iterable("trials", trials, "Trial objects or trial ids")
    if not chosen:
        raise InvalidValue("trials is empty: pass None for all the experiment's trials")
    ids: set[int] = set()
    for trial in chosen:
        if isinstance(trial, Trial):
            if trial.experiment_id != experiment_id:
                raise InvalidValue(
                    f"trial {trial.id} belongs to experiment {trial.experiment_id}, not to"
                    f" experiment {experiment_id}"
                )
            ids.add(trial.id)
        else:
            ids.add(check_id("each trial", trial, what="a Trial or a trial id (an int)"))
    return sorted(ids)


def _check_trials(exp: Experiment, wanted: list[int] | None) -> None:
    unknown = sorted(set(wanted or ()) - set(exp.trial_ids))
    if unknown:
        shown = ", ".join(map(str, exp.trial_ids[:20])) or "none"
        raise DownloadError(
            f"experiment {exp.id} has no trial {', '.join(map(str, unknown))} (its trials: {shown})"
        )


def _cluster_id() -> Op[str]:
    """GetMaster's ``clusterId``: the first directory of the layout, so one path component."""
    call = Call("GET", "/api/v1/master")
    cluster_id = w.GetMasterResponse.model_validate_json((yield from send(call)).content).cluster_id
    if not cluster_id or "/" in cluster_id or "\\" in cluster_id or cluster_id in (".", ".."):
        raise DownloadError(
            f"{call}: the master's clusterId {cluster_id!r} is not a directory name"
        )
    return cluster_id


def _copy(
    storage: _Storage, base: str, prefixes: list[str], extraction: Extraction,
    progress: bool | None, what: str,
) -> None:  # fmt: skip
    """List every file first (so that too many bytes are refused before any is copied), then
    copy them, each read up to the size it was listed with."""
    files = [file for prefix in prefixes for file in storage.files(base, prefix)]
    for file in files:
        member_path(extraction.root, file.name)  # an unsafe name is refused before any read
    size = sum(file.size for file in files)
    total = size + ENTRY_COST * len(files)  # counted as the extraction counts it
    if total > extraction.limits.max_size:
        count = sum(1 for file in files if file.open is not None)
        raise UnsafeArchive(
            what,
            f"{count} files of {size} bytes in all at {storage.where} ({total} with"
            f" {ENTRY_COST} bytes per file or directory): more than"
            f" max_size={extraction.limits.max_size} bytes",
        )
    copy_files(files, extraction, progress, what, snapshot=True)


# --- storage ------------------------------------------------------------------------------------


class _Storage(Protocol):
    where: str
    """The storage, for messages (``/mnt/ckpts``, ``s3://bucket/prefix``...)."""

    def files(self, base: str, prefix: str) -> Iterator[SourceFile]:
        """The entries under ``prefix`` (a ``/``-terminated path relative to the storage),
        named relative to ``base`` (the experiment's directory, which ``prefix`` is in)."""
        ...


def _storage_of(config: object, experiment_id: int) -> _Storage:
    """The experiment's checkpoint storage as this machine can read it."""
    if not isinstance(config, Mapping) or not isinstance(config.get("type"), str):
        raise DownloadError(
            f"experiment {experiment_id} has no checkpoint_storage in its config (an unmanaged"
            " experiment?): there are no TensorBoard files to read"
        )
    kind = config["type"]
    if kind in ("shared_fs", "directory"):
        return _local_storage(config, kind, experiment_id)
    if kind == "s3":
        return _s3_storage(config)
    if kind == "gcs":
        return _gcs_storage(config)
    if kind == "azure":
        return _azure_storage(config)
    raise DownloadError(
        f"experiment {experiment_id} stores its files in {kind!r} checkpoint storage, which"
        " detorm cannot read (shared_fs, directory, s3, gcs and azure are read)"
    )


# --- shared_fs and directory --------------------------------------------------------------------


class _LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    def files(self, base: str, prefix: str) -> Iterator[SourceFile]:
        experiment_dir, directory = self._inside(base), self._inside(prefix)
        if not directory.is_dir():
            return  # nothing uploaded (yet)
        yield from local_files(
            directory,
            prefix=prefix[len(base) :],
            boundary=experiment_dir,
            what="the experiment's TensorBoard directory",
        )

    def _inside(self, relative: str) -> Path:
        """``root/relative``, refusing a symbolic link on the way (one could lead anywhere on
        this machine; the storage root itself may be a link, as a mount point often is)."""
        current = self.root
        for part in relative.strip("/").split("/"):
            current = current / part
            if current.is_symlink():
                raise UnsafeArchive(
                    str(current.relative_to(self.root)),
                    "a symbolic link in the TensorBoard layout of the checkpoint storage",
                )
        return current


def _local_storage(config: Mapping[str, Any], kind: str, experiment_id: int) -> _LocalStorage:
    candidates = storage_roots(config)
    root = next((c for c in candidates if c.is_dir()), None)
    if root is None:
        tried = " or ".join(map(str, candidates)) or "no usable host_path or container_path"
        raise DownloadError(
            f"the {kind} checkpoint storage of experiment {experiment_id} is not on this"
            f" machine (tried {tried}; is it mounted here?): the master serves no TensorBoard"
            " files, so they can only be read from the storage"
        )
    return _LocalStorage(root)


# --- object stores -------------------------------------------------------------------------------


class _ObjectStorage:
    """A bucket or container: objects listed by key prefix, each opened for reading.

    ``listing(prefix)`` yields (key, size, modified) and ``opening(key)`` a readable body; both
    are the client library's calls, whose errors become :class:`DownloadError`. Keys are
    untrusted names: one outside the prefix asked for is refused here, and each is checked as
    an archive member (no ``..``, not absolute) when written.
    """

    def __init__(
        self,
        where: str,
        key_prefix: str,
        listing: Callable[[str], Iterable[tuple[str, int, datetime | None]]],
        opening: Callable[[str], contextlib.AbstractContextManager[Readable]],
    ) -> None:
        self.where = where
        self._key_prefix = key_prefix
        self._listing = listing
        self._opening = opening

    def files(self, base: str, prefix: str) -> Iterator[SourceFile]:
        full_base, full_prefix = self._key_prefix + base, self._key_prefix + prefix
        with _as_download_error(f"listing {self.where}/{full_prefix}"):
            listed = list(self._listing(full_prefix))
        for key, size, modified in listed:
            if not isinstance(key, str) or not key.startswith(full_prefix):
                raise UnsafeArchive(
                    str(key), f"an object outside the prefix listed ({full_prefix})"
                )
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise DownloadError(f"{self.where}/{key}: the listing gives no size ({size!r})")
            name = key[len(full_base) :]
            if name.endswith("/"):
                yield SourceFile(name, 0, None)  # a "folder" placeholder object
                continue
            mtime = modified.timestamp() if isinstance(modified, datetime) else None
            yield SourceFile(name, size, functools.partial(self._open, key, size, mtime))

    @contextlib.contextmanager
    def _open(self, key: str, size: int, mtime: float | None) -> Iterator[Opened]:
        where = f"{self.where}/{key}"
        with contextlib.ExitStack() as stack:
            with _as_download_error(f"reading {where}"):
                reader = stack.enter_context(self._opening(key))
            yield Opened(_Guarded(reader, where), size, 0o644, mtime)


@contextlib.contextmanager
def _as_download_error(doing: str) -> Iterator[None]:
    """The client library's own errors (credentials, network, access...) as DownloadError."""
    try:
        yield
    except DetormError:
        raise
    except Exception as err:
        raise DownloadError(f"{doing}: {type(err).__name__}: {err}") from err


class _Guarded:
    """A body whose read errors are :class:`DownloadError`."""

    def __init__(self, reader: Readable, where: str) -> None:
        self._reader = reader
        self._where = where

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._reader.read(size)
        except Exception as err:
            raise DownloadError(f"reading {self._where}: {type(err).__name__}: {err}") from err


def _optional(kind: str) -> Any:
    """The client module of storage ``kind``, imported only now."""
    module, extra = EXTRAS[kind]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"reading TensorBoard files from {kind} storage needs {module}, which is not"
            f" installed: pip install 'detorm[{extra}]'"
        ) from None


def _text(config: Mapping[str, Any], key: str, kind: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise DownloadError(f"the {kind} checkpoint storage names no {key}")
    return value


def _optional_text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    return value if isinstance(value, str) and value else None


def _key_prefix(config: Mapping[str, Any], kind: str) -> str:
    """``storage.normalize_prefix`` of the harness, ending with ``/`` unless empty."""
    prefix = _optional_text(config, "prefix")
    if prefix is None:
        return ""
    if ".." in prefix.split("/"):  # the harness refuses such a prefix
        raise DownloadError(f"the {kind} checkpoint storage's prefix {prefix!r} contains '..'")
    normal = os.path.normpath(prefix).lstrip("/")
    return "" if normal in ("", ".") else normal + "/"


def _client(kind: str, make: Callable[[], Any], where: str) -> Any:
    _optional(kind)  # the clear error first, when the library is missing
    with _as_download_error(f"connecting to {where}"):
        return make()


def s3_client(config: Mapping[str, Any]) -> Any:
    """A boto3 S3 client for the storage, as the harness builds it (tests replace this)."""
    boto3 = _optional("s3")
    return boto3.client(
        "s3",
        endpoint_url=_optional_text(config, "endpoint_url"),
        aws_access_key_id=_optional_text(config, "access_key"),
        aws_secret_access_key=_optional_text(config, "secret_key"),
    )


def gcs_client(config: Mapping[str, Any]) -> Any:
    """A google-cloud-storage client with the application default credentials, as the harness
    uses (tests replace this)."""
    return _optional("gcs").Client()


def azure_client(config: Mapping[str, Any]) -> Any:
    """An azure-storage-blob service client from the storage's connection string or account
    URL and credential (tests replace this)."""
    blob = _optional("azure")
    connection_string = _optional_text(config, "connection_string")
    if connection_string is not None:
        return blob.BlobServiceClient.from_connection_string(connection_string)
    account_url = _optional_text(config, "account_url")
    if account_url is None:
        raise DownloadError(
            "the azure checkpoint storage names no connection_string or account_url"
        )
    return blob.BlobServiceClient(account_url, credential=_optional_text(config, "credential"))


def _s3_storage(config: Mapping[str, Any]) -> _ObjectStorage:
    bucket, prefix = _text(config, "bucket", "s3"), _key_prefix(config, "s3")
    client = _client("s3", lambda: s3_client(config), f"s3://{bucket}")

    def listing(key_prefix: str) -> Iterator[tuple[str, int, datetime | None]]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"], item["Size"], item.get("LastModified")

    @contextlib.contextmanager
    def opening(key: str) -> Iterator[Readable]:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield body
        finally:
            body.close()

    return _ObjectStorage(f"s3://{bucket}", prefix, listing, opening)


def _gcs_storage(config: Mapping[str, Any]) -> _ObjectStorage:
    bucket, prefix = _text(config, "bucket", "gcs"), _key_prefix(config, "gcs")
    client = _client("gcs", lambda: gcs_client(config), f"gs://{bucket}")

    def listing(key_prefix: str) -> Iterator[tuple[str, int, datetime | None]]:
        for blob in client.list_blobs(bucket, prefix=key_prefix):
            yield blob.name, blob.size, blob.updated

    def opening(key: str) -> contextlib.AbstractContextManager[Readable]:
        reader: contextlib.AbstractContextManager[Readable] = (
            client.bucket(bucket).blob(key).open("rb")
        )
        return reader

    return _ObjectStorage(f"gs://{bucket}", prefix, listing, opening)


def _azure_storage(config: Mapping[str, Any]) -> _ObjectStorage:
    # The harness uploads to container f"{container}/{trial path}" (AzureTensorboardManager):
    # the first segment is the container, the rest a prefix of the blob names.
    container, _, sub = _text(config, "container", "azure").strip("/").partition("/")
    prefix = _key_prefix({"prefix": sub}, "azure")
    service = _client("azure", lambda: azure_client(config), f"azure://{container}")
    client = service.get_container_client(container)

    def listing(key_prefix: str) -> Iterator[tuple[str, int, datetime | None]]:
        for blob in client.list_blobs(name_starts_with=key_prefix):
            yield blob.name, blob.size, blob.last_modified

    @contextlib.contextmanager
    def opening(key: str) -> Iterator[Readable]:
        yield client.download_blob(key)

    return _ObjectStorage(f"azure://{container}", prefix, listing, opening)
