"""Safe extraction of tar, tar.gz and zip archives read from a binary stream.

Checkpoints and experiment code arrive as archives from a master (or anything that answers like
one), so every member is checked before a byte of it is written:

* its path: absolute names, drive letters, ``..`` components (also with ``\\`` separators, the
  zip-slip spelling), NUL bytes, and names longer than the file system takes are refused;
* its type: regular files and directories; symbolic links only when they point inside the
  destination (lexically when created, and physically once every member is written, since a
  later link can redirect an earlier one); hard links only to a regular file already extracted;
  device files, FIFOs, sockets and sparse files are refused, and nothing is written through a
  link;
* its mode: set-uid, set-gid and sticky bits and group/other write bits are dropped, the owner
  can always read and write, and the umask applies;
* its size, against :class:`Limits`: when the exact contents are known (a checkpoint's
  ``resources``), a file must be listed there, once, with that size, and every listed file must
  arrive; otherwise the bytes written are capped (``max_size``) and so is the expansion of what
  was read (:data:`MAX_RATIO`, against decompression bombs). Bytes are counted as they are
  written, never taken from headers: a member can never write more than its header declares.

A corrupt or truncated archive (bad gzip data, a bad tar header, a zip without its central
directory, a CRC error, a tar stream without its end-of-archive marker) raises
:class:`~detorm.errors.DownloadError`; a refused member raises
:class:`~detorm.errors.UnsafeArchive`.

Extraction happens in a hidden staging directory next to the destination (:func:`staging`),
which replaces (or is merged into) the destination only when the whole archive passed; on any
error the staging directory is removed and the destination is untouched. Tar archives are read as
a stream (bounded memory: tar headers that would be read into memory are capped too); a zip
archive needs its central directory, so a stream that cannot seek is first spooled, within the
limits, to a temporary file next to the destination.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final, Literal, Protocol, Self

from ..errors import DownloadError, InvalidType, InvalidValue, UnsafeArchive

__all__ = [
    "ENTRY_COST",
    "MAX_RATIO",
    "ArchiveFormat",
    "Extraction",
    "Limits",
    "Readable",
    "destination_path",
    "extract_into",
    "member_path",
    "staging",
]

ArchiveFormat = Literal["tar", "tar.gz", "zip"]

MAX_RATIO: Final = 100
"""The most an archive without a known content list may expand: bytes written per byte read
(Apache POI's zip-bomb threshold). Deflate reaches about 1000:1 on zeros; source code and
weights compress far less."""

_RATIO_GRACE: Final = 1 << 20  # small archives of repetitive text may expand more than that
ENTRY_COST: Final = 512  # what each member counts towards max_size: a header, an inode
_MAX_EXTENDED_HEADER: Final = 1 << 20  # a PAX record set or GNU long name, read into memory
_MAX_TRAILER: Final = 1 << 20  # zeros after the end-of-archive marker (tar pads to a record)
_SPOOL_SLACK: Final = 1 << 20  # a spooled zip's headers and central directory
# Members are copied in small chunks: zipfile reads as many compressed bytes as it is asked to
# produce, so the expansion can only be measured one read behind.
_CHUNK: Final = 64 << 10
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
_NAME_MAX: Final = 255  # when the file system does not say (os.pathconf)
_PATH_MAX: Final = 4096
_TAR_FILES: Final = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_ZIP_METHODS: Final = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# What a corrupt archive raises from tarfile and zipfile (OSError is not here: it is the disk).
_CORRUPT: Final = (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, UnicodeDecodeError)


class Readable(Protocol):
    """Where a member's bytes are read from."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Limits:
    """What an archive may hold.

    ``files`` lists the exact contents when they are known (a checkpoint's ``resources``:
    relative name to size in bytes, directories ending in ``/``). Without it, ``max_size``
    caps the bytes written (every member also counts 512 bytes) and :data:`MAX_RATIO` the
    expansion of what was read.
    """

    max_size: int
    files: Mapping[str, int] | None = None

    def spool_limit(self) -> int:
        """The most a zip archive within these limits can take on disk before extraction."""
        if self.files is None:
            return self.max_size + _SPOOL_SLACK
        return sum(self.files.values()) + ENTRY_COST * len(self.files) + _SPOOL_SLACK


# --- the staging directory -------------------------------------------------------------------


def destination_path(path: object, where: str = "path") -> Path:
    """The ``path`` a download was given, checked before anything is sent: a str or a path
    object, without NUL (no OS takes one: the os calls would raise a bare ValueError)."""
    if not isinstance(path, str | os.PathLike):
        raise InvalidType(
            f"{where} must be a directory path (a str or a path object), not {type(path).__name__}"
        )
    target = Path(path)
    if "\x00" in str(target):
        raise InvalidValue(f"cannot download into {str(target)!r}: a path cannot hold a NUL")
    return target


@contextlib.contextmanager
def staging(destination: str | os.PathLike[str], *, merge: bool = True) -> Iterator[Path]:
    """An empty directory next to ``destination`` that becomes its content on success.

    ``destination`` must be a directory or not exist yet; with ``merge=False`` it must also be
    empty. Those checks, and the creation of the staging directory (and of missing parents),
    happen on entry: a destination that cannot be written raises
    :class:`~detorm.errors.InvalidValue` before the caller sends anything. On a clean exit the
    links inside are checked, then the directory is renamed to ``destination`` (or merged into
    it); on an exception everything created here, missing parents included, is removed.
    """
    target = destination_path(destination).absolute()
    created_parents = _missing_parents(target)
    _check_destination(target, merge=merge)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # The prefix is shortened so that a long destination name still leaves a valid name.
        temp = Path(
            tempfile.mkdtemp(prefix=f".{target.name[:32]}.", suffix=".partial", dir=target.parent)
        )
    except OSError as err:
        _remove_empty(created_parents)
        raise InvalidValue(f"cannot download into {target}: {err.strerror or err}") from None
    try:
        yield temp
        verify_links(temp)
        _install(temp, target, merge=merge)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        _remove_empty(created_parents)
        raise


def _check_destination(target: Path, *, merge: bool) -> None:
    if target.is_symlink():
        raise InvalidValue(
            f"cannot download into {target}: it is a symbolic link; pass the directory itself"
        )
    if target.exists() and not target.is_dir():
        raise InvalidValue(
            f"cannot download into {target}: it is a file; pass a directory (created if missing)"
        )
    if not merge and target.is_dir() and any(target.iterdir()):
        raise InvalidValue(
            f"cannot download into {target}: the directory is not empty; pass a new or empty"
            " directory"
        )


def _missing_parents(target: Path) -> list[Path]:
    """The parents of ``target`` that do not exist yet, innermost first; the nearest that
    exists must be a directory."""
    missing: list[Path] = []
    current = target.parent
    while not os.path.lexists(current):
        missing.append(current)
        current = current.parent
    if not current.is_dir():
        raise InvalidValue(f"cannot download into {target}: {current} is a file")
    name_max = _filesystem_limits(current)[0]
    if any(len(os.fsencode(part.name)) > name_max for part in [target, *missing]):
        raise InvalidValue(f"cannot download into {target}: a name longer than {name_max} bytes")
    return missing


def _remove_empty(directories: list[Path]) -> None:
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return


def _install(source: Path, target: Path, *, merge: bool) -> None:
    if not os.path.lexists(target):
        os.rename(source, target)
        return
    if target.is_symlink() or not target.is_dir():
        raise DownloadError(f"cannot download into {target}: it is no longer a directory")
    if not any(target.iterdir()):
        target.rmdir()
        os.rename(source, target)
        return
    if not merge:
        raise DownloadError(f"cannot download into {target}: files appeared there meanwhile")
    moves = _planned_moves(source, target)  # checks everything before moving anything
    for src, dst in moves:
        if src.is_dir() and not src.is_symlink():
            dst.mkdir(exist_ok=True)
        else:
            os.replace(src, dst)
    shutil.rmtree(source, ignore_errors=True)


def _planned_moves(source: Path, target: Path) -> list[tuple[Path, Path]]:
    """The (staged, final) pairs of a merge, parents first; refuses to write through a link
    that already exists in the destination, and to replace a directory with a file."""
    moves: list[tuple[Path, Path]] = []
    for root, dirs, files in os.walk(source):
        for name in sorted(dirs) + sorted(files):
            src = Path(root, name)
            dst = target / src.relative_to(source)
            staged_dir = src.is_dir() and not src.is_symlink()
            if os.path.lexists(dst):
                if dst.is_symlink() and staged_dir:
                    raise UnsafeArchive(
                        str(dst.relative_to(target)), "the destination has a symbolic link there"
                    )
                if dst.is_dir() and not dst.is_symlink() and not staged_dir:
                    raise DownloadError(f"cannot merge into {dst}: a directory, not a file")
                if staged_dir and not dst.is_dir():
                    raise DownloadError(f"cannot merge into {dst}: a file, not a directory")
            moves.append((src, dst))
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
    return moves


def verify_links(root: Path) -> None:
    """Every symbolic link under ``root`` resolves inside it (links can redirect each other)."""
    base = os.path.realpath(root)
    for current, dirs, files in os.walk(root):
        for entry in dirs + files:
            path = os.path.join(current, entry)
            if os.path.islink(path):
                resolved = os.path.realpath(path)
                if resolved != base and not resolved.startswith(base + os.sep):
                    name = os.path.relpath(path, root)
                    raise UnsafeArchive(name, "symbolic link resolving outside the destination")


# --- paths -----------------------------------------------------------------------------------


def member_path(root: Path, name: str) -> Path | None:
    """Where member ``name`` goes under ``root``; None for the root itself ("." or "./").

    Refuses NUL bytes, absolute names, drive letters and ``..`` with either separator, and
    names or paths longer than the file system under ``root`` takes.
    """
    if "\x00" in name:
        raise UnsafeArchive(_shown(name), "the name contains a NUL byte")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeArchive(_shown(name), "absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise UnsafeArchive(_shown(name), "the path leaves the destination ('..')")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if not parts:
        return None
    name_max, path_max = _filesystem_limits(root)
    if any(len(os.fsencode(part)) > name_max for part in parts):
        raise UnsafeArchive(_shown(name), f"a name longer than {name_max} bytes")
    target = root.joinpath(*parts)
    if len(os.fsencode(target)) >= path_max:
        raise UnsafeArchive(_shown(name), f"a path longer than {path_max - 1} bytes")
    return target


def _filesystem_limits(root: Path) -> tuple[int, int]:
    """The longest file name and path the file system under ``root`` takes."""
    try:
        return os.pathconf(root, "PC_NAME_MAX"), os.pathconf(root, "PC_PATH_MAX")
    except (OSError, ValueError):
        return _NAME_MAX, _PATH_MAX


def _shown(name: str) -> str:
    """A member name short enough for a message."""
    return name if len(name) <= 200 else f"{name[:200]}... ({len(name)} characters)"


def _normal(name: str) -> str:
    """A member or ``resources`` name as one comparable spelling: ``./a//b/`` is ``a/b``."""
    return "/".join(part for part in name.split("/") if part not in ("", "."))


# --- members -----------------------------------------------------------------------------------


class _Manifest:
    """The exact contents of a checkpoint (its ``resources``): files with their sizes, and the
    directories listed or holding a listed file."""

    def __init__(self, files: Mapping[str, int]) -> None:
        self.sizes: dict[str, int] = {}
        self.directories: set[str] = set()
        for name, size in files.items():
            key = _normal(name)
            if name.endswith("/"):
                self.directories.add(key)
            else:
                self.sizes[key] = size
            parts = key.split("/")
            self.directories.update("/".join(parts[:end]) for end in range(1, len(parts)))

    def check_file(self, key: str, size: int) -> None:
        listed = self.sizes.get(key)
        if listed is None:
            raise UnsafeArchive(_shown(key), "not one of the checkpoint's files (its resources)")
        if size != listed:
            raise UnsafeArchive(
                _shown(key), f"{size} bytes, where the checkpoint's resources list {listed}"
            )


class Extraction:
    """Members written into ``root`` one at a time, each checked before a byte is written.

    ``what`` names the archive in errors ("checkpoint 3f2a...", "the code of experiment 7").
    """

    def __init__(self, root: Path, limits: Limits, *, what: str) -> None:
        self.root = root
        self.what = what
        self.limits = limits
        self._manifest = _Manifest(limits.files) if limits.files is not None else None
        self._written = 0
        self._files_seen: set[str] = set()
        self._read: _Counted | None = None

    def reading(self, stream: IO[bytes]) -> _Counted:
        """``stream``, counted: the expansion of what is read from it is limited. (Not
        buffered: a read-ahead would count bytes the archive has not used yet.)"""
        self._read = _Counted(stream)
        return self._read

    def directory(self, name: str) -> None:
        target = self._place(name, "directory")
        if target is None:
            return
        self._spend(name, 0)
        _prepare(self.root, target, name)
        if not target.is_dir():
            target.mkdir()

    def file(
        self, name: str, size: int, source: Readable, *, mode: int, mtime: float | None
    ) -> None:
        """A regular file of ``size`` bytes read from ``source`` (which must hold exactly that)."""
        target = self._place(name, "file")
        if target is None:
            raise UnsafeArchive(name, "a file named like the destination itself")
        key = _normal(name)
        if self._manifest is not None:
            self._manifest.check_file(key, size)
            if key in self._files_seen:
                raise UnsafeArchive(_shown(key), "the archive holds this file twice")
        self._files_seen.add(key)
        self._spend(key, size)
        _prepare(self.root, target, name)
        if target.is_dir():
            raise UnsafeArchive(_shown(key), "the archive has both a directory and a file here")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(os.open(target, flags, _file_mode(mode)), "wb") as out:
            self._copy(key, source, size, out)
        if mtime is not None:
            with contextlib.suppress(OSError, OverflowError, ValueError):
                os.utime(target, (mtime, mtime))

    def symlink(self, name: str, link: str) -> None:
        target = self._place(name, "symbolic link")
        if target is None:
            raise UnsafeArchive(name, "a link named like the destination itself")
        if "\x00" in link or len(os.fsencode(link)) >= _filesystem_limits(self.root)[1]:
            raise UnsafeArchive(_shown(name), "a symbolic link to an impossible path")
        if link.startswith(("/", "\\")) or _DRIVE.match(link):
            raise UnsafeArchive(_shown(name), f"symbolic link to an absolute path ({link})")
        if _escapes(os.path.dirname(target.relative_to(self.root)), link):
            raise UnsafeArchive(
                _shown(name), f"symbolic link pointing outside the destination ({link})"
            )
        self._spend(name, 0)
        _prepare(self.root, target, name)
        if target.is_dir():
            raise UnsafeArchive(_shown(name), "the archive has both a directory and a link here")
        os.symlink(link, target)

    def hardlink(self, name: str, link: str) -> None:
        target = self._place(name, "hard link")
        if target is None:
            raise UnsafeArchive(name, "a link named like the destination itself")
        try:
            source = member_path(self.root, link)
        except UnsafeArchive as err:
            raise UnsafeArchive(
                _shown(name), f"hard link pointing outside the destination ({link}): {err.reason}"
            ) from None
        if source is None or source.is_symlink() or not source.is_file():
            raise UnsafeArchive(
                _shown(name), f"hard link to {link!r}, which is not a file extracted before it"
            )
        self._spend(name, 0)
        self._count(name, source.stat().st_size)  # it may become a copy
        _prepare(self.root, target, name)
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def finish(self) -> None:
        """Check that every file the limits list has arrived (a truncated stream can end cleanly
        between two members)."""
        if self._manifest is None:
            return
        missing = sorted(set(self._manifest.sizes) - self._files_seen)
        if missing:
            shown = ", ".join(missing[:5]) + (f"... ({len(missing)} in all)" if missing[5:] else "")
            raise DownloadError(
                f"{self.what}: {len(missing)} of the checkpoint's files are missing"
                f" (truncated?): {shown}"
            )

    # --- checks -------------------------------------------------------------------------------
    def _place(self, name: str, kind: str) -> Path | None:
        target = member_path(self.root, name)
        if self._manifest is None or target is None:
            return target
        if kind == "directory":
            if _normal(name) not in self._manifest.directories:
                raise UnsafeArchive(
                    _shown(name), "not one of the checkpoint's directories (its resources)"
                )
        elif kind != "file":
            raise UnsafeArchive(
                _shown(name), f"a {kind}, where a checkpoint holds only files and directories"
            )
        return target

    def _spend(self, key: str, size: int) -> None:
        """Count a member, and check the ``size`` its header declares, before writing it."""
        if self._manifest is None:
            self._written += ENTRY_COST
            self._check_total(key, self._written + size)

    def _copy(self, key: str, source: Readable, size: int, out: IO[bytes]) -> None:
        """Copy at most ``size`` bytes, each chunk counted before it is written."""
        copied = 0
        while chunk := source.read(_CHUNK):
            copied += len(chunk)
            if copied > size:
                raise UnsafeArchive(_shown(key), f"more bytes than the {size} declared for it")
            self._count(key, len(chunk))
            out.write(chunk)
        if copied < size:
            raise DownloadError(
                f"{self.what}: {_shown(key)} holds {copied} bytes, not the {size} declared for"
                " it (truncated?)"
            )

    def _count(self, key: str, count: int) -> None:
        """Count ``count`` bytes about to be written."""
        if self._manifest is None:
            self._written += count
            self._check_total(key, self._written)
            self._check_ratio(key)

    def _check_total(self, key: str, total: int) -> None:
        if total > self.limits.max_size:
            raise UnsafeArchive(
                _shown(key), f"the archive holds more than max_size={self.limits.max_size} bytes"
            )

    def _check_ratio(self, key: str) -> None:
        if self._read is None:  # not read from an archive (a directory copy)
            return
        if self._written > max(_RATIO_GRACE, MAX_RATIO * self._read.count):
            raise UnsafeArchive(
                _shown(key),
                f"the archive expands more than {MAX_RATIO} times ({self._written} bytes"
                f" from {self._read.count}): a decompression bomb?",
            )


class _Counted(io.RawIOBase):
    """A stream that counts the bytes read through it (what the archive really took)."""

    def __init__(self, inner: IO[bytes]) -> None:
        super().__init__()
        self._inner = inner
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        self.count += len(data)
        return len(data)

    def seekable(self) -> bool:
        return self._inner.seekable()

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()


def _prepare(root: Path, target: Path, name: str) -> None:
    """Create the parents of ``target``, refusing to go through a symbolic link or a file, and
    remove a previous file or link of the same name (a later member replaces an earlier one)."""
    current = root
    for part in target.relative_to(root).parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise UnsafeArchive(_shown(name), "the path goes through a symbolic link")
        if not current.exists():
            current.mkdir()
        elif not current.is_dir():
            raise UnsafeArchive(_shown(name), f"the path goes through a file ({part})")
    if target.is_symlink() or (os.path.lexists(target) and not target.is_dir()):
        target.unlink()


def _file_mode(mode: int) -> int:
    """Owner read/write always; execute bits kept; no set-id, sticky or group/other write.
    Files are created with it, so the umask applies too."""
    return (mode & 0o755) | 0o600


def _escapes(directory: str, link: str) -> bool:
    """Whether ``link``, relative to ``directory``, leaves the root lexically (with ``/`` as the
    separator, or with ``\\`` read as one, as a Windows extraction would)."""
    for spelling in {link, link.replace("\\", "/")}:
        where = os.path.normpath(os.path.join(directory, spelling))
        if where == ".." or where.startswith("../"):
            return True
    return False


# --- archives ----------------------------------------------------------------------------------


def extract_into(
    stream: IO[bytes], directory: Path, *, fmt: ArchiveFormat, limits: Limits, what: str
) -> None:
    """Extract every member into ``directory`` (normally a :func:`staging` directory).

    Raises :class:`~detorm.errors.UnsafeArchive` for a member refused, and
    :class:`~detorm.errors.DownloadError` for a corrupt or truncated archive.
    """
    if fmt not in ("tar", "tar.gz", "zip"):
        raise InvalidValue(f"unknown archive format {fmt!r}: expected 'tar', 'tar.gz' or 'zip'")
    extraction = Extraction(directory, limits, what=what)
    try:
        if fmt == "zip":
            _extract_zip(stream, extraction)
        else:
            mode: Literal["r|", "r|gz"] = "r|gz" if fmt == "tar.gz" else "r|"
            _extract_tar(extraction.reading(stream), extraction, mode)
    except _CORRUPT as err:
        reason = str(err) or type(err).__name__
        raise DownloadError(f"{what}: not a valid {fmt} archive: {reason}") from None
    extraction.finish()


# --- tar ---------------------------------------------------------------------------------------


class _TarHeader(tarfile.TarInfo):
    """A tar header read with more checks than tarfile makes.

    tarfile reads a PAX record set or a GNU long name into memory whatever its size, follows a
    chain of them by recursion whatever its length, and ends the archive quietly at a damaged
    header or at the end of the data; here the first two are refused and the others are errors
    (only an all-zero block ends an archive).
    """

    @classmethod
    def fromtarfile(cls, archive: tarfile.TarFile) -> Self:
        depth = _HEADER_CHAIN.get()
        if depth > _MAX_HEADER_CHAIN:
            raise UnsafeArchive(
                f"(the member at byte {archive.offset})",
                f"more than {_MAX_HEADER_CHAIN} extended headers in a row",
            )
        token = _HEADER_CHAIN.set(depth + 1)
        try:
            return super().fromtarfile(archive)
        finally:
            _HEADER_CHAIN.reset(token)

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        if len(buf) == tarfile.BLOCKSIZE and not buf.strip(b"\0"):
            return super().frombuf(buf, encoding, errors)  # the end-of-archive marker
        try:
            header = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as err:
            if len(buf) < tarfile.BLOCKSIZE:
                raise tarfile.ReadError("the data ends before the end-of-archive marker") from None
            raise tarfile.ReadError(f"damaged member header ({err})") from None
        if header.type in _EXTENDED_HEADERS and header.size > _MAX_EXTENDED_HEADER:
            raise UnsafeArchive(
                _shown(header.name), f"an extended header of {header.size} bytes (long names"
                f" and PAX records take at most {_MAX_EXTENDED_HEADER})",
            )  # fmt: skip
        return header


_HEADER_CHAIN: Final = contextvars.ContextVar("_HEADER_CHAIN", default=0)
_MAX_HEADER_CHAIN: Final = 8  # GNU and PAX writers put at most 3 before a member
_EXTENDED_HEADERS: Final = (
    tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK,
)  # fmt: skip


def _extract_tar(stream: _Counted, extraction: Extraction, mode: Literal["r|", "r|gz"]) -> None:
    with tarfile.open(fileobj=stream, mode=mode, tarinfo=_TarHeader) as archive:
        for member in archive:
            _extract_tar_member(archive, member, extraction)
        assert archive.fileobj is not None
        _expect_padding(archive.fileobj)


def _extract_tar_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, extraction: Extraction
) -> None:
    name = member.name
    if member.isdir():
        extraction.directory(name)
    elif member.type in _TAR_FILES:
        source = archive.extractfile(member)
        assert source is not None
        extraction.file(name, member.size, source, mode=member.mode, mtime=member.mtime)
    elif member.issym():
        extraction.symlink(name, member.linkname)
    elif member.islnk():
        extraction.hardlink(name, member.linkname)
    else:
        raise UnsafeArchive(_shown(name), f"{_tar_kind(member)} are not extracted")


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "device files"
    if member.isfifo():
        return "FIFOs"
    if member.issparse():
        return "sparse files"
    return f"members of type {member.type!r}"


def _expect_padding(stream: Any) -> None:
    """After the end-of-archive marker only zeros may follow (a writer pads to its record
    size); the stream is read to its end, so nothing of it goes unchecked."""
    remaining = _MAX_TRAILER + 1
    while chunk := stream.read(min(_CHUNK, remaining)):
        remaining -= len(chunk)
        if chunk.strip(b"\0") or remaining <= 0:
            raise tarfile.ReadError("data after the end-of-archive marker")


# --- zip ---------------------------------------------------------------------------------------


def _extract_zip(stream: IO[bytes], extraction: Extraction) -> None:
    with _seekable(stream, extraction) as source:
        with zipfile.ZipFile(extraction.reading(source)) as archive:
            for info in archive.infolist():
                _extract_zip_member(archive, info, extraction)


@contextlib.contextmanager
def _seekable(stream: IO[bytes], extraction: Extraction) -> Iterator[IO[bytes]]:
    """``stream``, or a copy of it spooled next to the destination (within the limits) when
    it cannot seek."""
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        yield stream
        return
    limit = extraction.limits.spool_limit()
    with tempfile.TemporaryFile(dir=extraction.root.parent) as spooled:
        size = 0
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise UnsafeArchive(
                    extraction.what, f"a zip archive larger than its limits allow ({limit} bytes)"
                )
            spooled.write(chunk)
        spooled.seek(0)
        yield spooled


def _extract_zip_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, extraction: Extraction
) -> None:
    name = info.filename
    unix_mode = info.external_attr >> 16
    kind = stat.S_IFMT(unix_mode)
    if info.is_dir() or kind == stat.S_IFDIR:
        extraction.directory(name)
        return
    if info.flag_bits & 0x1:
        raise DownloadError(f"{extraction.what}: {_shown(name)} is encrypted")
    if info.compress_type not in _ZIP_METHODS:
        raise DownloadError(
            f"{extraction.what}: {_shown(name)} uses compression method {info.compress_type}"
            " (only stored and deflated members are read)"
        )
    if kind == stat.S_IFLNK:
        with archive.open(info) as source:
            link = source.read(_PATH_MAX + 1)
        extraction.symlink(name, link.decode("utf-8", "surrogateescape"))
    elif kind in (0, stat.S_IFREG):
        with archive.open(info) as source:
            extraction.file(name, info.file_size, source, mode=unix_mode or 0o644, mtime=None)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        raise UnsafeArchive(_shown(name), "device files are not extracted")
    else:
        raise UnsafeArchive(_shown(name), f"members of file type {oct(kind)} are not extracted")
