"""Safe extraction (``detorm._archive``): good archives land whole, malicious ones leave nothing."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from detorm._archive import ArchiveFormat, extract, member_path
from detorm.errors import DetormError, UnsafeArchive

# --- building archives -------------------------------------------------------------------------

Member = tuple[str, bytes] | tarfile.TarInfo


def tar_bytes(*members: Member, gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT
    ) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                name, content = member
                info = tarfile.TarInfo(name)
                info.size = len(content)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def special(name: str, kind: bytes, *, link: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = mode
    return info


def zip_bytes(*members: tuple[str, bytes] | tuple[str, bytes, int]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member in members:
            info = zipfile.ZipInfo(member[0])
            if len(member) == 3:
                info.external_attr = member[2] << 16
            archive.writestr(info, member[1])
    return buffer.getvalue()


class OneWay(io.RawIOBase):
    """A stream that can only be read forwards, like an HTTP body."""

    def __init__(self, data: bytes) -> None:
        self._source = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._source.read(min(len(buffer), 1000))
        buffer[: len(data)] = data
        return len(data)


def one_way(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(OneWay(data))


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under root: file contents, ``-> target`` for links, ``/`` for directories."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[key] = "/"
        else:
            out[key] = path.read_bytes()
    return out


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the destinations, which no archive may touch."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "keep.txt").write_text("keep")
    return directory


def assert_nothing_left(tmp_path: Path, outside: Path) -> None:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outside"]  # no destination, no staging
    assert tree(outside) == {"keep.txt": b"keep"}


# --- good archives --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "zip"])
def test_extracts_files_and_directories_from_a_one_way_stream(
    tmp_path: Path, fmt: ArchiveFormat
) -> None:
    files = [
        ("./model/weights.bin", b"\x00\x01" * 5000),
        ("metadata.json", b'{"a": 1}'),
        ("empty", b""),
    ]
    data = zip_bytes(*files) if fmt == "zip" else tar_bytes(*files, gz=fmt == "tar.gz")
    result = extract(one_way(data), tmp_path / "out", fmt=fmt)
    assert result == tmp_path / "out"
    assert tree(result) == {
        "empty": b"", "metadata.json": b'{"a": 1}', "model": "/", "model/weights.bin": b"\x00\x01" * 5000,
    }  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_links_inside_the_destination_are_kept(tmp_path: Path) -> None:
    data = tar_bytes(
        ("data/a.txt", b"A"),
        special("data/latest", tarfile.SYMTYPE, link="a.txt"),
        special("top", tarfile.SYMTYPE, link="data/a.txt"),
        special("copy.txt", tarfile.LNKTYPE, link="data/a.txt"),
    )
    out = extract(io.BytesIO(data), tmp_path / "out", fmt="tar")
    assert tree(out) == {
        "copy.txt": b"A", "data": "/", "data/a.txt": b"A", "data/latest": "-> a.txt",
        "top": "-> data/a.txt",
    }  # fmt: skip


def test_modes_lose_set_id_and_foreign_write_bits_but_keep_execute(tmp_path: Path) -> None:
    run = special("run.sh", tarfile.REGTYPE, mode=0o6777)
    plain = special("plain.txt", tarfile.REGTYPE, mode=0o400)
    out = extract(io.BytesIO(tar_bytes(run, plain)), tmp_path / "out", fmt="tar")
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "plain.txt").stat().st_mode) == 0o600


def test_merges_into_an_existing_directory_replacing_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "old.txt").write_text("old")
    (out / "same.txt").write_text("before")
    extract(io.BytesIO(tar_bytes(("same.txt", b"after"), ("sub/new.txt", b"new"))), out, fmt="tar")
    assert tree(out) == {
        "same.txt": b"after",
        "sub": "/",
        "sub/new.txt": b"new",
        "sub/old.txt": b"old",
    }


def test_creates_missing_parents(tmp_path: Path) -> None:
    out = extract(io.BytesIO(zip_bytes(("a.txt", b"a"))), tmp_path / "x" / "y" / "out", fmt="zip")
    assert tree(out) == {"a.txt": b"a"}


# --- malicious archives ---------------------------------------------------------------------------

Case = Callable[[Path], tuple[bytes, ArchiveFormat, str]]

MALICIOUS: dict[str, Case] = {
    "absolute path": lambda o: (
        tar_bytes(("ok.txt", b"1"), (str(o / "evil.txt"), b"x")),
        "tar",
        "absolute path",
    ),
    "dot-dot": lambda o: (
        tar_bytes(("ok.txt", b"1"), ("a/../../outside/evil.txt", b"x"), gz=True),
        "tar.gz",
        "'..'",
    ),
    "symlink to an absolute path": lambda o: (
        tar_bytes(("ok.txt", b"1"), special("link", tarfile.SYMTYPE, link=str(o))),
        "tar",
        "absolute path",
    ),
    "symlink escaping": lambda o: (
        tar_bytes(special("a/link", tarfile.SYMTYPE, link="../../outside")),
        "tar",
        "outside the destination",
    ),
    "write through a symlink": lambda o: (
        tar_bytes(special("dir", tarfile.SYMTYPE, link="."), ("dir/evil.txt", b"x")),
        "tar",
        "through a symbolic link",
    ),
    "symlinks redirecting each other": lambda o: (
        tar_bytes(
            special("s", tarfile.SYMTYPE, link="d/.."), special("d", tarfile.SYMTYPE, link=".")
        ),
        "tar",
        "resolving outside",
    ),
    "hardlink escaping": lambda o: (
        tar_bytes(special("hard", tarfile.LNKTYPE, link="../outside/keep.txt")),
        "tar",
        "hard link pointing outside",
    ),
    "hardlink to an absolute path": lambda o: (
        tar_bytes(special("hard", tarfile.LNKTYPE, link=str(o / "keep.txt"))),
        "tar",
        "hard link pointing outside",
    ),
    "character device": lambda o: (
        tar_bytes(("ok", b"1"), special("tty", tarfile.CHRTYPE)),
        "tar",
        "device files",
    ),
    "block device": lambda o: (
        tar_bytes(special("disk", tarfile.BLKTYPE), gz=True),
        "tar.gz",
        "device files",
    ),
    "fifo": lambda o: (tar_bytes(special("pipe", tarfile.FIFOTYPE)), "tar", "FIFOs"),
    "zip slip": lambda o: (
        zip_bytes(("ok.txt", b"1"), ("../outside/evil.txt", b"x")),
        "zip",
        "'..'",
    ),
    "zip slip with backslashes": lambda o: (
        zip_bytes(("..\\outside\\evil.txt", b"x")),
        "zip",
        "'..'",
    ),
    "zip absolute path": lambda o: (zip_bytes(("/tmp/evil.txt", b"x")), "zip", "absolute path"),
    "zip symlink escaping": lambda o: (
        zip_bytes(("link", b"../outside", stat.S_IFLNK | 0o777)),
        "zip",
        "outside the destination",
    ),
    "zip device file": lambda o: (
        zip_bytes(("dev", b"", stat.S_IFCHR | 0o600)),
        "zip",
        "device files",
    ),
}


@pytest.mark.parametrize("case", MALICIOUS, ids=list(MALICIOUS))
def test_malicious_archives_are_refused_and_leave_nothing(
    tmp_path: Path, outside: Path, case: str
) -> None:
    data, fmt, reason = MALICIOUS[case](outside)
    with pytest.raises(UnsafeArchive) as info:
        extract(one_way(data), tmp_path / "out", fmt=fmt)
    assert reason in str(info.value)
    assert isinstance(info.value, DetormError)
    assert_nothing_left(tmp_path, outside)


def test_a_refused_archive_leaves_an_existing_destination_as_it_was(
    tmp_path: Path, outside: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    data = tar_bytes(("mine.txt", b"overwritten?"), ("../outside/evil", b"x"))
    with pytest.raises(UnsafeArchive):
        extract(io.BytesIO(data), out, fmt="tar")
    assert tree(out) == {"mine.txt": b"mine"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "outside"]


def test_a_symlink_already_in_the_destination_is_not_written_through(
    tmp_path: Path, outside: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(outside)
    with pytest.raises(UnsafeArchive, match="the destination has a symbolic link there"):
        extract(io.BytesIO(tar_bytes(("sub/evil.txt", b"x"))), out, fmt="tar")
    assert tree(outside) == {"keep.txt": b"keep"}


def test_missing_parents_created_for_a_refused_archive_are_removed(
    tmp_path: Path, outside: Path
) -> None:
    with pytest.raises(UnsafeArchive):
        extract(
            io.BytesIO(tar_bytes(("/abs", b"x"))), tmp_path / "new" / "deeper" / "out", fmt="tar"
        )
    assert_nothing_left(tmp_path, outside)


def test_a_corrupt_archive_also_leaves_nothing(tmp_path: Path, outside: Path) -> None:
    data = tar_bytes(("a.txt", b"a" * 5000), gz=True)
    with pytest.raises((tarfile.TarError, EOFError, OSError)):
        extract(io.BytesIO(data[: len(data) // 2]), tmp_path / "out", fmt="tar.gz")
    assert_nothing_left(tmp_path, outside)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a/b", "a/b"), ("./a//b/", "a/b"), (".", None), ("./", None), ("a/./b", "a/b")],
)
def test_member_paths_are_normalised(tmp_path: Path, name: str, expected: str | None) -> None:
    found = member_path(tmp_path, name)
    assert (found.relative_to(tmp_path).as_posix() if found else None) == expected


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "C:evil", "\\\\server\\share", "a/../../b", "..", "a\\..\\..\\b", "x\x00y"],
)
def test_member_paths_refuse_escapes(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafeArchive):
        member_path(tmp_path, name)
