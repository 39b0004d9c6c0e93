"""A local directory read into the ``files`` a launch request takes, exactly as the det CLI does.

``det cmd run --context DIR --include PATH`` (and notebooks, shells, TensorBoards, experiments'
model definitions) send the directory as a list of files: ``read_legacy_context`` in the CLI
(``determined.common.context`` 0.38.1), which :func:`read_context` reproduces entry for entry,
in the same order, so that a master (and anything comparing requests) sees the same thing:

* each entry is ``{"path", "type", "uid", "gid", "mtime", "mode", "content"}``: the path
  relative to the context (``/``-separated), ``type`` ``48`` for a file and ``53`` for a
  directory (tar's ``REGTYPE`` and ``DIRTYPE``), ``uid`` and ``gid`` 0, ``mtime`` the whole
  seconds and ``mode`` the ``st_mode`` (type bits included) of what the path leads to, and
  ``content`` the file's bytes in base64 (``""`` for a directory);
* the context directory is walked top-down in the order the file system lists it
  (``os.walk``): each directory's subdirectories first, then its files, then each subdirectory
  in turn; the context directory itself is not an entry;
* an include is sent under its name (the last component of its resolved path: ``../lib``
  becomes ``lib``): a file as one entry, a directory as an entry followed by its walk;
* what the ``.detignore`` of the context directory (or of an included directory) matches is
  left out, after the CLI's defaults (:data:`DEFAULT_DETIGNORE`: ``__pycache__/``, ``.git/``,
  ``*.py[co]``, terraform state...); a directory is tested both as ``dir`` and ``dir/``, the
  patterns are gitwildmatch (:mod:`._wildmatch`); ``.detignore`` files are never sent, and a
  ``.detignore`` below the top is not read;
* symbolic links to directories are sent as a directory entry and not followed; a file that
  cannot be opened or read (a dangling link, a socket, no permission) is skipped;
* two entries at the top with the same name (the context and an include, or two includes) are
  refused, and so is a context whose files exceed ``limit`` (:data:`MAX_CONTEXT_SIZE`, counted
  as the CLI counts: each file's base64 length ``// 4 * 3``).

Deliberate differences from the CLI, all refusals (:class:`~detorm.errors.ContextError`) where
the CLI would send something surprising, hang or fail less clearly:

* a symbolic link (to a file or a directory) whose target lies outside the directory being
  walked (the context directory, or the included directory it is in) is refused, naming the
  link: the CLI follows it and sends the target's content (a ``key -> ~/.ssh/id_rsa`` link in a
  cloned repository would upload the key). Links inside it are sent as the CLI sends them;
  links the ``.detignore`` leaves out, and dangling ones (skipped), are not checked;
* the size limit is checked before a file is read (from its size, then by reading at most what
  still fits), so a huge file is refused without reading it; the CLI reads each file whole
  first. The limit and the accounting are the CLI's, so the same contexts pass;
* FIFOs and device files are refused (the CLI blocks forever on a FIFO and reads a device);
  a context or include that is neither a file nor a directory is refused;
* every path is checked before anything is read (the CLI may read the whole context before
  finding that an include is missing); all refusals are :class:`~detorm.errors.ContextError`
  (the CLI raises ``ValueError``, ``OSError``, ``RuntimeError`` or pathspec's errors);
* nothing is printed: skipped files are reported by one :class:`ContextWarning`.

The ``.detignore`` patterns behave as pathspec 1.1's (the version installed with
``determined`` 0.38.1, which only asks for ``pathspec>=0.6.0``).
"""

from __future__ import annotations

import base64
import os
import stat
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ..errors import ContextError, InvalidType, InvalidValue
from ._wildmatch import PathSpec, PatternError

__all__ = [
    "DEFAULT_DETIGNORE",
    "MAX_CONTEXT_SIZE",
    "ContextWarning",
    "check_context_path",
    "read_context",
]


def check_context_path(where: str, value: object, what: str) -> None:
    """A model directory or include path, checked before anything is read or sent: a str or a
    path object of one, without NUL (no OS takes one: os.path.realpath would raise a bare
    ValueError)."""
    path = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(path, str):
        shown = type(value if path is None else path).__name__
        raise InvalidType(f"{where} must be {what} (a str or a path object), not {shown}")
    if "\x00" in path:
        raise InvalidValue(f"{where} cannot contain a NUL character (\\x00): {path!r}")


# determined.common.constants: the master takes requests and websocket messages of up to
# 128 MiB, base64 costs 4 bytes per 3, and 1 MiB is left for the rest of the message.
MAX_CONTEXT_SIZE: Final[int] = (128 * 1024 * 1024 // 8) * 6 - 1024 * 1024
"""The most file content (decoded) a context may hold: 95 MiB, the det CLI's limit."""

DEFAULT_DETIGNORE: Final[tuple[str, ...]] = (
    "__pycache__/",
    "*.py[co]",
    "*$py.class",
    "terraform",
    "terraform_data",
    "terraform.tfstate*",
    "terraform.tfvars*",
    ".terraform*",
    ".git/",
    ".vscode/",
    ".idea/",
    ".mypy_cache/",
    "/shared_fs",
)
"""The patterns the CLI applies before each ``.detignore`` (``constants.DEFAULT_DETIGNORE``)."""

_REGTYPE: Final = ord("0")  # tarfile.REGTYPE, as an int: the CLI sends ord() of it
_DIRTYPE: Final = ord("5")  # tarfile.DIRTYPE
_DETIGNORE: Final = ".detignore"
_CHUNK: Final = 64 << 10  # what is read at a time once a file turns out larger than it said
# A FIFO swapped in for a checked file must not block the open; O_NOFOLLOW keeps the open on
# the checked target, not on a link put there since.
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class ContextWarning(UserWarning):
    """Files of a context were skipped because they could not be read (as the det CLI does)."""


def read_context(
    root: str | os.PathLike[str] | None,
    includes: Iterable[str | os.PathLike[str]] = (),
    *,
    limit: int = MAX_CONTEXT_SIZE,
) -> list[dict[str, Any]]:
    """The files of ``root`` (a directory, or None) and of ``includes`` (files or directories,
    each sent under its name), as the det CLI's ``read_legacy_context`` lists them for a launch
    request's ``files``. See the module docstring for the rules and the deliberate
    differences; raises :class:`~detorm.errors.ContextError` for a context that cannot be sent.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidType(f"limit must be an int (bytes), not {type(limit).__name__}")
    if isinstance(includes, (str, bytes, os.PathLike)):
        # A lone path would be iterated character by character.
        raise InvalidType("includes must be a list of paths, not a single path")
    include_paths = [_fspath(path, "an include") for path in includes]
    root_path = None if root is None else _fspath(root, "the context directory")
    if root_path is None and not include_paths:
        return []
    # Every path is checked before any file is read.
    sources = [] if root_path is None else [_context_source(root_path)]
    sources += [_include_source(path) for path in include_paths]
    builder = _Builder(limit)
    for source in sources:
        builder.add(source)
    _refuse_duplicates(builder.entries)
    if builder.skipped:
        listed = ", ".join(builder.skipped)
        warnings.warn(
            f"skipped {len(builder.skipped)} file(s) of the context that could not be read, as"
            f" the det CLI does: {listed}",
            ContextWarning,
            stacklevel=2,
        )
    return builder.entries


# --- the paths asked for ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    """A resolved context directory (``prefix`` "") or include (``prefix`` its name)."""

    path: str
    prefix: str
    is_dir: bool


def _fspath(value: object, what: str) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidType(f"{what} must be a path (str or os.PathLike), not {type(value).__name__}")
    path = os.fspath(value)
    if not isinstance(path, str):
        raise InvalidType(f"{what} must be a str path, not {type(path).__name__}")
    return path


def _context_source(root: str) -> _Source:
    if os.path.isfile(root):
        raise ContextError(
            f"the context directory {root!r} is a file: pass a directory, or send the file as"
            " an include"
        )
    # The CLI resolves links and ".." first, and walks what they lead to.
    resolved = os.path.realpath(root)
    if not os.path.exists(resolved):
        raise ContextError(f"the context directory {root!r} does not exist ({resolved})")
    if not os.path.isdir(resolved):
        raise ContextError(f"the context directory {root!r} is not a directory ({resolved})")
    return _Source(resolved, "", is_dir=True)


def _include_source(include: str) -> _Source:
    resolved = os.path.realpath(include)
    # Sent under the resolved name: "lib/.." is the name of what it leads to, never "..".
    name = os.path.basename(resolved)
    if not name:
        raise ContextError(
            f"the include {include!r} has no name to be sent under ({resolved}): include the"
            " directories below it instead"
        )
    if not os.path.exists(resolved):
        raise ContextError(f"the include {include!r} does not exist ({resolved})")
    if os.path.isfile(resolved):
        return _Source(resolved, name, is_dir=False)
    if os.path.isdir(resolved):
        return _Source(resolved, name, is_dir=True)
    raise ContextError(f"the include {include!r} is neither a file nor a directory ({resolved})")


# --- building the list ----------------------------------------------------------------------


@dataclass
class _Builder:
    """The entries so far, and their size as the CLI counts it."""

    limit: int
    size: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def add(self, source: _Source) -> None:
        if not source.is_dir:
            self._file(source.prefix, source.path, source.path, skip_unreadable=False)
            return
        if source.prefix:
            # An included directory is an entry of its own; the context directory is not.
            self._dir(source.prefix, source.path, source.path)
        self._walk(source)

    def _walk(self, source: _Source) -> None:
        root = source.path
        spec = _ignore_spec(root)
        relative = {root: ""}  # each directory os.walk will visit -> its path from root
        for parent, dirs, files in os.walk(root):
            parent_rel = relative.pop(parent)
            kept = []
            for name in dirs:
                rel = _join(parent_rel, name)
                if spec.match_file(rel) or spec.match_file(rel + "/"):
                    continue
                kept.append(name)
                path = os.path.join(parent, name)
                relative[path] = rel
                self._dir(_join(source.prefix, rel), path, root)
            dirs[:] = kept  # ignored directories are not walked
            for name in files:
                rel = _join(parent_rel, name)
                if name == _DETIGNORE or spec.match_file(rel):
                    continue
                self._file(_join(source.prefix, rel), os.path.join(parent, name), root)

    def _dir(self, entry: str, path: str, root: str) -> None:
        if os.path.islink(path):
            _refuse_outside(entry, os.path.realpath(path), root, "directory")
        try:
            st = os.stat(path)  # a link's target, as the CLI
        except OSError as err:
            raise ContextError(f"cannot read the directory {path!r}: {err.strerror}") from None
        self._push(entry, _DIRTYPE, st, "", 0)

    def _file(self, entry: str, path: str, root: str, *, skip_unreadable: bool = True) -> None:
        target = path
        if os.path.islink(path):
            target = os.path.realpath(path)
            if os.path.exists(target):  # a dangling link is skipped below, as by the CLI
                _refuse_outside(entry, target, root, "file")
        try:
            fd = os.open(target, _OPEN_FLAGS)
        except OSError as err:
            self._unreadable(entry, path, err, skip=skip_unreadable)
            return
        try:
            content = self._read(entry, path, fd)
            st = os.fstat(fd)  # after reading, as the CLI
        except OSError as err:
            self._unreadable(entry, path, err, skip=skip_unreadable)
            return
        finally:
            os.close(fd)
        encoded = base64.b64encode(content).decode("ascii")
        self._push(entry, _REGTYPE, st, encoded, _cli_size(len(content)))

    def _read(self, entry: str, path: str, fd: int) -> bytes:
        """The file's bytes, refused as soon as they cannot fit in what is left of the limit."""
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ContextError(
                f"refusing to send {entry!r} ({path}): it is a {_kind(st.st_mode)}, not a regular"
                " file (the det CLI would block on it or read it without end); leave it out with"
                " a .detignore"
            )
        # The CLI refuses once size + 3 * ceil(n / 3) > limit: so n may be at most `room`.
        room = (self.limit - self.size) // 3 * 3
        if st.st_size > room:
            self._too_large(entry, st.st_size)
        # Read what the size says, then until the end, never more than room + 1 bytes: the
        # size may be wrong (a growing file, /proc), and os.read allocates what it is asked.
        chunks: list[bytes] = []
        read = 0
        while read <= room:
            chunk = os.read(fd, min(room + 1 - read, max(st.st_size + 1 - read, _CHUNK)))
            if not chunk:
                break
            chunks.append(chunk)
            read += len(chunk)
        if read > room:
            self._too_large(entry, read)
        return b"".join(chunks)

    def _push(self, entry: str, kind: int, st: os.stat_result, content: str, size: int) -> None:
        if self.size + size > self.limit:  # only a negative limit gets here: files are checked
            self._too_large(entry, size)
        self.entries.append(
            {
                "path": entry,
                "type": kind,
                "uid": 0,
                "gid": 0,
                "mtime": int(st.st_mtime),
                "mode": st.st_mode,
                "content": content,
            }
        )
        self.size += size

    def _too_large(self, entry: str, size: int) -> None:
        total = self.size + _cli_size(size)
        raise ContextError(
            f"the context is larger than the limit of {_human(self.limit)}: {entry!r}"
            f" ({_human(size)}) brings it to {_human(total)}. Leave files out with a .detignore"
            " in the context directory (or in an included directory), or include less"
        )

    def _unreadable(self, entry: str, path: str, err: OSError, *, skip: bool) -> None:
        reason = err.strerror or str(err)
        if not skip:  # an include named explicitly: the CLI fails too
            raise ContextError(f"cannot read the include {path!r}: {reason}") from None
        self.skipped.append(f"{entry!r} ({reason})")


def _ignore_spec(root: str) -> PathSpec:
    """The CLI's defaults, then the lines of ``root/.detignore`` if it is a file."""
    lines = list(DEFAULT_DETIGNORE)
    path = os.path.join(root, _DETIGNORE)
    if os.path.isfile(path):
        try:
            # As the CLI reads it: text mode, universal newlines, and the interpreter's default
            # encoding (the locale's, or UTF-8 in UTF-8 mode: not quite encoding="locale").
            with open(path) as file:
                lines.extend(file)
        except (OSError, UnicodeDecodeError) as err:
            raise ContextError(f"cannot read {path!r}: {err}") from None
    try:
        return PathSpec(lines)
    except PatternError as err:
        raise ContextError(f"{path!r}: {err}") from None


def _refuse_outside(entry: str, target: str, root: str, what: str) -> None:
    """Refuse a link whose (resolved) target lies outside ``root``: the CLI would send it."""
    try:
        if os.path.commonpath([root, target]) == root:
            return
    except ValueError:  # another drive (Windows): outside
        pass
    raise ContextError(
        f"refusing to send {entry!r}: it is a symbolic link to the {what} {target!r}, outside"
        f" {root!r} (the det CLI would send what it points to). Copy what it points to into the"
        f" directory, include it explicitly, or leave the link out with a .detignore"
    )


def _refuse_duplicates(entries: list[dict[str, Any]]) -> None:
    # Only the top level can collide: the context's entries and the includes' names.
    top = Counter(e["path"] for e in entries if "/" not in e["path"].rstrip("/"))
    duplicates = [path for path, count in top.items() if count > 1]
    if duplicates:
        names = ", ".join(repr(d) for d in duplicates)
        raise ContextError(
            f"duplicate path(s) at the top of the context: {names} (the context directory and an"
            " include, or two includes, both have it); rename one, or leave one out"
        )


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _cli_size(length: int) -> int:
    """What a file of ``length`` bytes counts for the CLI: len(base64) // 4 * 3."""
    return -(-length // 3) * 3


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _human(size: int) -> str:
    if abs(size) < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if abs(value) < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"
