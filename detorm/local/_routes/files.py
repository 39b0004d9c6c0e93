"""Downloads: checkpoint archives and experiment code.

* ``GET /checkpoints/{uuid}`` (Echo, ``core_checkpoint.go``): the checkpoint's files as one
  archive, by the ``Accept`` header: ``application/x-tar`` (also for none, ``*/*`` and
  ``application/*``; sent with a Content-Length computed beforehand, the master's "dry run"),
  ``application/gzip`` or ``application/zip``; anything else is 415. The files are read from the
  storage named by the experiment config (``checkpoints.NewDownloader``, ``LocalDownloader``):
  every regular file under ``<storage>/<uuid>/``, in ``filepath.Walk`` order. The first 16 KiB
  are produced before the status is sent (the master's ``delayWriter``), so a storage error up
  to there is still a 500.
* GetModelDef (base64 ``.tar.gz``), GetModelDefTree, GetModelDefFile (``api_experiment.go``,
  ``cache/cache.go``), and the Echo routes ``GET /experiments/{id}/model_def`` and
  ``GET /experiments/{id}/file/download?path=`` (``core_experiment.go``).

Echo routes answer errors as ``{"message": ...}`` (``api.JSONErrorHandler``) and authenticate in
``user.ProcessAuthentication``: the ``Authorization`` header, else the ``auth`` cookie.
"""

from __future__ import annotations

import base64
import io
import json
import os
import posixpath
import re
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any, Final

from sqlmodel import Session
from starlette.requests import cookie_parser
from starlette.responses import Response, StreamingResponse

from detorm._wire import ModelDefResponse, Timestamp, WireModel

from .. import _tables as t
from .._app import Ctx, _user_for_token, echo, rpc
from .._errors import ApiError, not_found
from .._sniff import detect_content_type
from .._storage import (
    CheckpointStorage,
    StorageUnavailable,
    UnsupportedStorage,
    gzip_stream,
    read_stream,
    tar_end,
    tar_header,
    tar_padding,
)
from .checkpoints import go_uuid

__all__ = ["checkpoint_archive", "model_def_tree"]

X_TAR: Final = "application/x-tar"
GZIP: Final = "application/gzip"
ZIP: Final = "application/zip"
_DELAY_BYTES: Final = 16 * 1024  # core_checkpoint.go: newDelayWriter(content, 16*1024)
_CACHE_DIR: Final = "/var/cache/determined/exp_model_def"  # the master's default cache_dir
_CLEAN_NAME: Final = re.compile(r"[^A-Za-z0-9_ \-()\[\].{}]+")


# --- Echo plumbing ---------------------------------------------------------------------------


class EchoError(Exception):
    """``echo.NewHTTPError(status, message)``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def echo_error_response(status: int, message: str) -> Response:
    """``c.JSON(code, {"message": msg})``: Go's encoder escapes HTML characters and ends the
    body with a newline."""
    text = json.dumps({"message": message}, ensure_ascii=False, separators=(",", ":"))
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(char, escaped)
    return Response(text.encode() + b"\n", status, media_type="application/json")


def echo_user(ctx: Ctx) -> t.UserRow:
    """``ProcessAuthentication``: 401 ``Unauthorized`` without a valid token, 403 for an
    inactive user."""
    headers = ctx.extra["headers"]
    header = headers.get("authorization")
    if header is not None:
        if not header.startswith("Bearer "):
            raise EchoError(401, "Unauthorized")
        token = header[len("Bearer ") :]
    else:
        token = cookie_parser(headers.get("cookie", "")).get("auth", "")
        if not token:
            raise EchoError(401, "Unauthorized")
    user = _user_for_token(ctx.db, "Bearer " + token)
    if user is None:
        raise EchoError(401, "Unauthorized")
    if not user.active:
        raise EchoError(403, "user not active")
    return user


def _go_atoi(name: str, text: str) -> int:
    """``api.BindArgs`` of an ``int`` field (``strconv.Atoi``, 64-bit)."""
    if text == "":
        raise EchoError(400, f"missing parameter: {name}")
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit():
        reason = "invalid syntax"
    elif not -(2**63) <= int(text) < 2**63:
        reason = "value out of range"
    else:
        return int(text)
    raise EchoError(
        400, f"unable to parse to int: {text}: strconv.Atoi: parsing {json.dumps(text)}: {reason}"
    )


def _go_error(err: OSError) -> str:
    """An ``*fs.PathError`` as Go prints it: ``open /x: no such file or directory``."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    reason = reason[:1].lower() + reason[1:]
    operation = getattr(err, "go_op", "open")
    return f"{operation} {err.filename}: {reason}" if err.filename else reason


# --- GET /checkpoints/{uuid} ----------------------------------------------------------------------


@echo("GET", r"/checkpoints/(?P<checkpoint_uuid>[^/]+)")
def checkpoint_archive(ctx: Ctx) -> Response:
    try:
        return _checkpoint_archive(ctx)
    except EchoError as err:
        return echo_error_response(err.status, err.message)


@dataclass(frozen=True)
class _File:
    path: str  # relative to the checkpoint directory, "/"-separated
    size: int


def _checkpoint_archive(ctx: Ctx) -> Response:
    echo_user(ctx)
    mime = ctx.extra["headers"].get("accept") or ""
    if mime in ("", "*/*", "application/*"):
        mime = X_TAR
    if mime not in (X_TAR, GZIP, ZIP):
        raise EchoError(415, f"unsupported media type to download a checkpoint: '{mime}'")
    text = ctx.path["checkpoint_uuid"]
    try:
        checkpoint_id = go_uuid(text)
    except ValueError as err:
        raise EchoError(400, f"unable to parse checkpoint UUID {text}: {err}") from None
    row = ctx.db.get(t.CheckpointRow, checkpoint_id)
    if row is None:
        raise EchoError(404, f"checkpoint '{text}' not found")
    storage = CheckpointStorage.of(ctx.app.db.path)
    directory = _checkpoint_directory(ctx.db, storage, row, checkpoint_id, mime)
    files = _list_or_fail(directory, checkpoint_id, mime)
    body = _archive_body(mime, directory, files)
    try:
        first = _first_bytes(body, _DELAY_BYTES)
    except OSError as err:
        raise EchoError(500, _download_failure(checkpoint_id, _go_error(err))) from None
    headers = {"Content-Length": str(_tar_length(files))} if mime == X_TAR else None
    return StreamingResponse(chain([first], body), 200, headers=headers, media_type=mime)


def _checkpoint_directory(
    db: Session, storage: CheckpointStorage, row: t.CheckpointRow, checkpoint_id: str, mime: str
) -> str:
    """``<storage>/<uuid>/`` as ``NewLocalDownloader`` cleans it."""
    try:
        prefix = storage.prefix(_storage_config(db, row))
    except UnsupportedStorage as err:
        raise EchoError(400, str(err)) from None
    except ValueError as err:  # a shared_fs config without host_path
        raise EchoError(400, str(err)) from None
    except StorageUnavailable as err:
        # The master would read the bucket; detorm.local has no cloud storage to read.
        reason = f"detorm.local cannot read {err} checkpoint storage"
        if mime == X_TAR:
            raise EchoError(
                500, f"unable to list checkpoint {checkpoint_id} files: {reason}"
            ) from None
        raise EchoError(500, f"unable to download checkpoint {checkpoint_id}: {reason}") from None
    path = posixpath.normpath("/" + prefix.rstrip("/") + "/" + checkpoint_id)
    return ("/" + path.lstrip("/")).rstrip("/") + "/"


def _storage_config(db: Session, row: t.CheckpointRow) -> Any:
    # getCheckpointStorageConfig: the experiment config's checkpoint_storage (detorm.local has
    # no storage backends table, so storage_id is not followed).
    trial = db.get(t.TrialRow, row.trial_id) if row.trial_id is not None else None
    experiment = db.get(t.ExperimentRow, trial.experiment_id) if trial is not None else None
    config = experiment.config if experiment is not None else None
    return config.get("checkpoint_storage") if isinstance(config, dict) else None


def _list_or_fail(directory: str, checkpoint_id: str, mime: str) -> list[_File]:
    try:
        return walk_files(directory)
    except OSError as err:
        reason = _go_error(err)
        if mime == X_TAR:  # the dry run lists the files first
            raise EchoError(
                500, f"unable to list checkpoint {checkpoint_id} files: {reason}"
            ) from None
        raise EchoError(500, _download_failure(checkpoint_id, reason)) from None


def _download_failure(checkpoint_id: str, reason: str) -> str:
    return (
        f"unable to download checkpoint {checkpoint_id}: checkpoint archive failed, please verify"
        f" that file system checkpoint storage is available to the server: {reason}"
    )


def walk_files(directory: str) -> list[_File]:
    """``LocalDownloader.ListFiles``: ``filepath.Walk`` (lexical order, depth first) keeping the
    non-directories. detorm.local keeps only regular files: a link or a FIFO would need the
    master's exact failure modes."""
    try:
        os.lstat(directory)
    except OSError as err:
        err.filename = directory
        err.go_op = "lstat"  # type: ignore[attr-defined]
        raise
    files: list[_File] = []
    _walk(directory, "", files)
    return files


def _walk(directory: str, relative: str, files: list[_File]) -> None:
    for name in sorted(os.listdir(directory), key=os.fsencode):
        path = os.path.join(directory, name)
        info = os.lstat(path)
        rel = relative + name
        if stat.S_ISDIR(info.st_mode):
            _walk(path, rel + "/", files)
        elif stat.S_ISREG(info.st_mode):
            files.append(_File(rel, info.st_size))


def _tar_length(files: list[_File]) -> int:
    """``archive.DryRunLength``: headers, padded contents and the two closing blocks."""
    total = sum(len(tar_header(f.path, f.size)) + f.size + len(tar_padding(f.size)) for f in files)
    return total + len(tar_end())


def _archive_body(mime: str, directory: str, files: list[_File]) -> Iterator[bytes]:
    if mime == ZIP:
        return _zip_stream(directory, files)
    tar = _tar_stream(directory, files)
    return gzip_stream(tar) if mime == GZIP else tar


def _tar_stream(directory: str, files: list[_File]) -> Iterator[bytes]:
    for entry in files:
        yield tar_header(entry.path, entry.size)
        yield from read_stream(Path(directory, entry.path), entry.size)
        yield tar_padding(entry.size)
    yield tar_end()


class _Sink(io.RawIOBase):
    """What ``zipfile`` writes, collected until the stream hands it on."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.pending.append(chunk)
        return len(chunk)

    def drain(self) -> Iterator[bytes]:
        if self.pending:
            data, self.pending = b"".join(self.pending), []
            yield data


def _zip_stream(directory: str, files: list[_File]) -> Iterator[bytes]:
    # zipArchiveWriter: zip.Writer.Create (deflate, data descriptors: the output is a stream).
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry in files:
            info = zipfile.ZipInfo(entry.path)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = entry.size
            with archive.open(info, "w") as out:
                for chunk in read_stream(Path(directory, entry.path), entry.size):
                    out.write(chunk)
                    yield from sink.drain()
            yield from sink.drain()
    yield from sink.drain()


def _first_bytes(body: Iterator[bytes], limit: int) -> bytes:
    collected: list[bytes] = []
    size = 0
    for chunk in body:
        collected.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(collected)


# --- experiment code ----------------------------------------------------------------------------


def _experiment(db: Session, experiment_id: int) -> t.ExperimentRow:
    """``GetExperimentAndCheckCanDoActions``: 404 ``experiment 'N' not found``."""
    row = db.get(t.ExperimentRow, experiment_id)
    if row is None:
        raise not_found(f"experiment '{experiment_id}' not found")
    return row


@dataclass
class _Item:
    """One tar member as ``archive.FromTarGz`` reads it."""

    path: str
    is_dir: bool
    content: bytes
    modified: datetime


@dataclass
class _Node:
    item: _Item
    files: list[_Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return posixpath.basename(self.item.path) or self.item.path


def _read_model_def(tgz: bytes | None) -> list[_Item]:
    """``archive.FromTarGz``, with Go's messages for the usual failures."""
    data = tgz or b""
    if not data:
        raise ValueError("EOF")  # gzip.NewReader on no bytes
    if not data.startswith(b"\x1f\x8b"):
        raise ValueError("gzip: invalid header")
    items: list[_Item] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                items.append(_item(archive, member))
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ValueError("unexpected EOF" if isinstance(err, EOFError) else str(err)) from None
    return items


def _item(archive: tarfile.TarFile, member: tarfile.TarInfo) -> _Item:
    if member.isreg() and member.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
        source = archive.extractfile(member)
        content = source.read() if source is not None else b""
    elif member.issym():
        content = member.linkname.encode()
    else:
        content = b""
    modified = datetime.fromtimestamp(member.mtime, tz=UTC)
    return _Item(member.name, member.isdir(), content, modified)


def _cached_files(experiment_id: int, items: list[_Item]) -> dict[str, bytes]:
    """What ``FileCache.getOrCreateFolder`` writes to its cache directory: each path must stay
    inside it, and a file needs its directory to have been written before it."""
    directories = {"."}
    contents: dict[str, bytes] = {}
    for item in items:
        where = posixpath.normpath(f"/{experiment_id}/{item.path}")
        relative = posixpath.relpath(where, f"/{experiment_id}")
        if relative.startswith(".."):
            raise ValueError(f"{item.path} is not a valid path")
        if item.is_dir:
            directories.add(relative)
            continue
        parent = posixpath.dirname(relative) or "."
        if parent not in directories:
            reason = "not a directory" if parent in contents else "no such file or directory"
            raise ValueError(f"open {_CACHE_DIR}/{experiment_id}/{relative}: {reason}")
        contents[relative] = item.content
    return contents


def model_def_tree(experiment_id: int, tgz: bytes | None) -> list[dict[str, Any]]:
    """``FileTreeNested``: the members nested by path, in archive order."""
    items = _read_model_def(tgz)
    _cached_files(experiment_id, items)
    root: list[_Node] = []
    for item in items:
        _insert(root, item.path.split("/"), _Node(item))
    return [_node_json(node) for node in root]


def _insert(level: list[_Node], parts: list[str], node: _Node) -> None:
    """``insertToTree``. A member whose parent is not in the tree (``./x``, ``a/`` names)
    would be nested into itself on the master, a cycle its JSON encoder never finishes;
    detorm.local leaves it where it was appended."""
    if not parts:
        return
    for existing in level:
        if existing.name == parts[0]:
            _insert(existing.files, parts[1:], node)
            return
    level.append(node)


def _node_json(node: _Node) -> dict[str, Any]:
    item = node.item
    return {
        "path": item.path,
        "name": node.name,
        "modifiedTime": Timestamp.from_datetime(item.modified).rfc3339(),
        "contentLength": len(item.content),
        "isDir": item.is_dir,
        "contentType": detect_content_type(item.content),
        "files": [_node_json(child) for child in node.files],
    }


def model_def_file(experiment_id: int, tgz: bytes | None, path: str) -> bytes:
    """``FileContent``: a file (not a directory) of the model definition, by exact path."""
    items = _read_model_def(tgz)
    contents = _cached_files(experiment_id, items)
    for item in items:
        if item.path == path and not item.is_dir:
            relative = posixpath.relpath(
                posixpath.normpath(f"/{experiment_id}/{path}"), f"/{experiment_id}"
            )
            return contents.get(relative, item.content)
    raise ValueError("file does not exist")  # fs.ErrNotExist


class _FileRequest(WireModel):
    experiment_id: int = 0
    path: str = ""


@rpc("GetModelDef", experiment_id=int)
def get_model_def(ctx: Ctx) -> ModelDefResponse:
    row = _experiment(ctx.db, ctx.path["experiment_id"])
    return ModelDefResponse(b64_tgz=base64.b64encode(row.model_definition or b"").decode())


@rpc("GetModelDefTree", experiment_id=int)
def get_model_def_tree(ctx: Ctx) -> dict[str, Any]:
    row = _experiment(ctx.db, ctx.path["experiment_id"])
    try:
        return {"files": model_def_tree(ctx.path["experiment_id"], row.model_definition)}
    except ValueError as err:  # plain Go errors: Unknown, reported as Internal
        raise ApiError.from_plain(str(err)) from None


@rpc("GetModelDefFile", experiment_id=int)
def get_model_def_file(ctx: Ctx) -> dict[str, Any]:
    body = ctx.body(_FileRequest)
    row = _experiment(ctx.db, ctx.path["experiment_id"])
    try:
        content = model_def_file(ctx.path["experiment_id"], row.model_definition, body.path)
    except ValueError as err:
        raise ApiError.from_plain(str(err)) from None
    return {"file": base64.b64encode(content).decode()}


# --- the Echo routes of experiment code -------------------------------------------------------------


def _echo_experiment(ctx: Ctx) -> t.ExperimentRow:
    """``echoGetExperimentAndCheckCanDoActions``: Echo's 404 ``experiment 'N' not found``."""
    echo_user(ctx)
    experiment_id = _go_atoi("experiment_id", ctx.path["experiment_id"])
    row = ctx.db.get(t.ExperimentRow, experiment_id)
    if row is None:
        raise EchoError(404, f"experiment '{experiment_id}' not found")
    return row


@echo("GET", r"/experiments/(?P<experiment_id>[^/]+)/model_def")
def experiment_model_def(ctx: Ctx) -> Response:
    try:
        row = _echo_experiment(ctx)
    except EchoError as err:
        return echo_error_response(err.status, err.message)
    name = (row.config or {}).get("name") if isinstance(row.config, dict) else None
    clean = ("_" + _CLEAN_NAME.sub("", str(name if name is not None else row.name)))[:50]
    disposition = f'attachment; filename="exp{row.id}{clean}_model_def.tar.gz"'
    return Response(
        row.model_definition or b"", 200, headers={"Content-Disposition": disposition},
        media_type="application/x-gtar",
    )  # fmt: skip


@echo("GET", r"/experiments/(?P<experiment_id>[^/]+)/file/download")
def experiment_file_download(ctx: Ctx) -> Response:
    try:
        row = _echo_experiment(ctx)
        path = ctx.query.get_str("path")  # c.QueryParam: the first value, "" when absent
        if path == "":
            raise EchoError(400, "missing parameter: path")
        assert row.id is not None
        try:
            content = model_def_file(row.id, row.model_definition, path)
        except ValueError as err:  # a plain error: Echo's 500
            raise EchoError(500, str(err)) from None
    except EchoError as err:
        return echo_error_response(err.status, err.message)
    disposition = f'attachment; filename="exp{row.id}/{path}"'
    return Response(
        content, 200, headers={"Content-Disposition": disposition},
        media_type=detect_content_type(content),
    )  # fmt: skip
