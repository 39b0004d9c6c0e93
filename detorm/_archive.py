"""Safe extraction of tar, tar.gz and zip archives read from a binary stream.

Checkpoints and experiment code arrive as archives from a master (or anything that answers like
one), so every member is checked before anything is written:

* absolute names, drive letters and ``..`` components are refused (also with ``\\`` separators,
  the zip-slip spelling);
* symbolic links must point inside the destination (lexically when created, and physically once
  every member is written, since a later link can redirect an earlier one); hard links must name
  a regular file already extracted;
* nothing is written through a symbolic link, and device files, FIFOs and sockets are refused;
* set-uid, set-gid and sticky bits and group/other write bits are dropped.

Extraction happens in a hidden staging directory next to the destination, which replaces (or is
merged into) the destination only when the whole archive passed; on any error the staging
directory is removed and the destination is untouched. Tar archives are read as a stream (bounded
memory); a zip archive needs its central directory, so a stream that cannot seek is first spooled
to a temporary file next to the destination.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final, Literal

from .errors import UnsafeArchive

__all__ = ["ArchiveFormat", "extract", "extract_into", "staging"]

ArchiveFormat = Literal["tar", "tar.gz", "zip"]

_CHUNK: Final = 1 << 20
_DRIVE: Final = re.compile(r"^[A-Za-z]:")


# --- the staging directory -------------------------------------------------------------------


def extract(stream: IO[bytes], destination: str | os.PathLike[str], *, fmt: ArchiveFormat) -> Path:
    """Extract the archive read from ``stream`` into ``destination`` (created, or merged into).

    Raises :class:`~detorm.errors.UnsafeArchive` for a member that could write outside the
    destination; nothing of the archive is kept then, nor on any other error.
    """
    with staging(destination) as directory:
        extract_into(stream, directory, fmt=fmt)
    return Path(destination)


@contextlib.contextmanager
def staging(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """An empty directory next to ``destination`` that becomes its content on success.

    On a clean exit the links inside are checked, then the directory is renamed to
    ``destination`` (or merged into it when it already exists); on an exception everything
    created here, missing parent directories included, is removed.
    """
    target = Path(destination).absolute()
    created_parents = _make_parents(target.parent)
    try:
        temp = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        )
    except BaseException:
        _remove_empty(created_parents)
        raise
    try:
        yield temp
        verify_links(temp)
        _install(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        _remove_empty(created_parents)
        raise


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; the ones created, innermost first."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    directory.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(directories: list[Path]) -> None:
    for directory in directories:
        try:
            directory.rmdir()
        except OSError:
            return


def _install(source: Path, target: Path) -> None:
    if not os.path.lexists(target):
        os.rename(source, target)
        return
    if target.is_symlink() or not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a directory")
    if not any(target.iterdir()):
        target.rmdir()
        os.rename(source, target)
        return
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
                    raise IsADirectoryError(f"{dst} is a directory; the archive has a file there")
                if staged_dir and not dst.is_dir():
                    raise NotADirectoryError(f"{dst} is a file; the archive has a directory there")
            moves.append((src, dst))
        dirs[:] = [d for d in dirs if not Path(root, d).is_symlink()]
    return moves


# --- members ---------------------------------------------------------------------------------


def extract_into(stream: IO[bytes], directory: Path, *, fmt: ArchiveFormat) -> None:
    """Extract every member into ``directory`` (normally a :func:`staging` directory)."""
    if fmt == "tar":
        _extract_tar(stream, directory, "r|")
    elif fmt == "tar.gz":
        _extract_tar(stream, directory, "r|gz")
    elif fmt == "zip":
        _extract_zip(stream, directory)
    else:
        raise ValueError(f"unknown archive format {fmt!r}: expected 'tar', 'tar.gz' or 'zip'")


def member_path(root: Path, name: str) -> Path | None:
    """Where member ``name`` goes under ``root``; None for the root itself ("." or "./").

    Refuses absolute names, drive letters and ``..`` with either separator.
    """
    if "\x00" in name:
        raise UnsafeArchive(name, "the name contains a NUL byte")
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise UnsafeArchive(name, "absolute path")
    if ".." in re.split(r"[/\\]", name):
        raise UnsafeArchive(name, "the path leaves the destination ('..')")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    return root.joinpath(*parts) if parts else None


def _prepare(root: Path, target: Path, name: str) -> None:
    """Create the parents of ``target``, refusing to go through a symbolic link, and remove a
    previous file or link of the same name (a later member replaces an earlier one)."""
    current = root
    for part in target.relative_to(root).parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise UnsafeArchive(name, "the path goes through a symbolic link")
        if not current.exists():
            current.mkdir()
    if target.is_symlink() or (os.path.lexists(target) and not target.is_dir()):
        target.unlink()


def _make_dir(root: Path, target: Path, name: str) -> None:
    _prepare(root, target, name)
    if not target.is_dir():
        target.mkdir()


def _write_file(
    root: Path, target: Path, name: str, source: IO[bytes], mode: int, mtime: float | None
) -> None:
    _prepare(root, target, name)
    if target.is_dir():
        raise IsADirectoryError(f"{name}: the archive has both a directory and a file here")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o600)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)
    os.chmod(target, _file_mode(mode))
    if mtime is not None:
        with contextlib.suppress(OSError, OverflowError, ValueError):
            os.utime(target, (mtime, mtime))


def _file_mode(mode: int) -> int:
    """Owner read/write always; execute bits kept; no set-id, sticky or group/other write."""
    return (mode & 0o755) | 0o600


def _make_symlink(root: Path, target: Path, name: str, link: str) -> None:
    if link.startswith(("/", "\\")) or _DRIVE.match(link):
        raise UnsafeArchive(name, f"symbolic link to an absolute path ({link})")
    if _escapes(os.path.dirname(target.relative_to(root)), link):
        raise UnsafeArchive(name, f"symbolic link pointing outside the destination ({link})")
    _prepare(root, target, name)
    if target.is_dir():
        raise IsADirectoryError(f"{name}: the archive has both a directory and a link here")
    os.symlink(link, target)


def _escapes(directory: str, link: str) -> bool:
    """Whether ``link``, relative to ``directory``, leaves the root lexically (with ``/`` as the
    separator, or with ``\\`` read as one, as a Windows extraction would)."""
    for spelling in {link, link.replace("\\", "/")}:
        where = os.path.normpath(os.path.join(directory, spelling))
        if where == ".." or where.startswith("../"):
            return True
    return False


def _make_hardlink(root: Path, target: Path, name: str, link: str) -> None:
    try:
        source = member_path(root, link)
    except UnsafeArchive as err:
        raise UnsafeArchive(
            name, f"hard link pointing outside the destination ({link}): {err.reason}"
        ) from None
    if source is None or source.is_symlink() or not source.is_file():
        raise UnsafeArchive(name, f"hard link to {link!r}, which is not a file extracted before it")
    _prepare(root, target, name)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


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


# --- tar ---------------------------------------------------------------------------------------


def _extract_tar(stream: IO[bytes], root: Path, mode: Literal["r|", "r|gz"]) -> None:
    with tarfile.open(fileobj=stream, mode=mode) as archive:
        for member in archive:
            _extract_tar_member(archive, member, root)


def _extract_tar_member(archive: tarfile.TarFile, member: tarfile.TarInfo, root: Path) -> None:
    name = member.name
    target = member_path(root, name)
    if target is None:
        if member.isdir():
            return
        raise UnsafeArchive(name, "a non-directory member named like the destination itself")
    if member.isdir():
        _make_dir(root, target, name)
    elif member.isreg():
        source = archive.extractfile(member)
        assert source is not None
        _write_file(root, target, name, source, member.mode, member.mtime)
    elif member.issym():
        _make_symlink(root, target, name, member.linkname)
    elif member.islnk():
        _make_hardlink(root, target, name, member.linkname)
    else:
        raise UnsafeArchive(name, f"{_tar_kind(member)} are not extracted")


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.ischr() or member.isblk():
        return "device files"
    if member.isfifo():
        return "FIFOs"
    return f"members of type {member.type!r}"


# --- zip ---------------------------------------------------------------------------------------


def _extract_zip(stream: IO[bytes], root: Path) -> None:
    with _seekable(stream, root.parent) as source, zipfile.ZipFile(source) as archive:
        for info in archive.infolist():
            _extract_zip_member(archive, info, root)


@contextlib.contextmanager
def _seekable(stream: IO[bytes], spool_dir: Path) -> Iterator[IO[bytes]]:
    seekable = getattr(stream, "seekable", None)
    if seekable is not None and seekable():
        yield stream
        return
    with tempfile.TemporaryFile(dir=spool_dir) as spooled:
        shutil.copyfileobj(stream, spooled, _CHUNK)
        spooled.seek(0)
        yield spooled


def _extract_zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, root: Path) -> None:
    name = info.filename
    target = member_path(root, name)
    unix_mode = info.external_attr >> 16
    kind = stat.S_IFMT(unix_mode)
    if target is None:
        if info.is_dir():
            return
        raise UnsafeArchive(name, "a non-directory member named like the destination itself")
    if info.is_dir() or kind == stat.S_IFDIR:
        _make_dir(root, target, name)
    elif kind == stat.S_IFLNK:
        _make_symlink(root, target, name, archive.read(info).decode("utf-8", "surrogateescape"))
    elif kind in (0, stat.S_IFREG):
        with archive.open(info) as source:
            _write_file(root, target, name, source, unix_mode or 0o644, None)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        raise UnsafeArchive(name, "device files are not extracted")
    else:
        raise UnsafeArchive(name, f"members of file type {oct(kind)} are not extracted")
