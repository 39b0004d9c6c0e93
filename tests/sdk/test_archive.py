"""Safe extraction (``detorm._io._archive``): good archives land whole, malicious ones leave nothing."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detorm._io import _archive
from detorm._io._archive import (
    ArchiveFormat,
    Extraction,
    Limits,
    extract_into,
    member_path,
    staging,
)
from detorm.errors import DetormError, DownloadError, InvalidValue, UnsafeArchive

from .archives import (
    MIB,
    deflated,
    noise,
    one_way,
    raw_zip,
    special,
    tar_bytes,
    tree,
    zeros_tar_gz,
    zeros_zip,
    zip_bytes,
)

GENEROUS = Limits(max_size=1 << 30)


def extract(
    stream: IO[bytes], destination: Path, *, fmt: ArchiveFormat, limits: Limits = GENEROUS
) -> Path:
    """What a download does: extract into a staging directory, then move it into place."""
    with staging(destination) as directory:
        extract_into(stream, directory, fmt=fmt, limits=limits, what="the test archive")
    return destination


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


@pytest.fixture
def umask() -> Iterator[Callable[[int], None]]:
    """Set the process umask for one test (restored after it)."""
    before = os.umask(0o022)
    yield os.umask
    os.umask(before)


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_modes_lose_set_id_sticky_and_foreign_write_bits_but_keep_execute(
    tmp_path: Path, umask: Callable[[int], None], fmt: ArchiveFormat
) -> None:
    if fmt == "tar":
        data = tar_bytes(
            special("run.sh", tarfile.REGTYPE, mode=0o6777),
            special("sticky", tarfile.REGTYPE, mode=0o1666),
            special("plain.txt", tarfile.REGTYPE, mode=0o400),
        )
    else:
        data = zip_bytes(
            ("run.sh", b"", stat.S_IFREG | 0o6777),
            ("sticky", b"", stat.S_IFREG | 0o1666),
            ("plain.txt", b"", stat.S_IFREG | 0o400),
        )
    out = extract(io.BytesIO(data), tmp_path / "out", fmt=fmt)
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "sticky").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "plain.txt").stat().st_mode) == 0o600


def test_the_umask_applies_to_extracted_files(tmp_path: Path, umask: Callable[[int], None]) -> None:
    umask(0o077)
    data = tar_bytes(special("run.sh", tarfile.REGTYPE, mode=0o755), ("data.txt", b"x"))
    out = extract(io.BytesIO(data), tmp_path / "out", fmt="tar")
    assert stat.S_IMODE((out / "run.sh").stat().st_mode) == 0o700
    assert stat.S_IMODE((out / "data.txt").stat().st_mode) == 0o600


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


def _pax_chain(length: int) -> bytes:
    """A member preceded by ``length`` PAX headers (tarfile follows them by recursion)."""
    info = tarfile.TarInfo("x")
    info.pax_headers = {"comment": "a"}
    member = info.tobuf(tarfile.PAX_FORMAT)  # a PAX header, its records, the member's header
    return member[: 2 * tarfile.BLOCKSIZE] * length + member + bytes(2 * tarfile.BLOCKSIZE)


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
    "zip fifo": lambda o: (
        zip_bytes(("pipe", b"", stat.S_IFIFO | 0o600)),
        "zip",
        "members of file type",
    ),
    "sparse file": lambda o: (
        tar_bytes(special("holes", tarfile.GNUTYPE_SPARSE)),
        "tar",
        "sparse files",
    ),
    "5000-character name": lambda o: (
        tar_bytes(("ok.txt", b"1"), ("n" * 5000, b"x"), gz=True),
        "tar.gz",
        "a name longer than 255 bytes",
    ),
    "5000-character path": lambda o: (
        tar_bytes(("/".join(["d" * 99] * 50) + "/f", b"x")),
        "tar",
        "a path longer than",
    ),
    "zip 5000-character name": lambda o: (
        zip_bytes(("n" * 5000, b"x")),
        "zip",
        "a name longer than 255 bytes",
    ),
    "symlink to a 5000-character path": lambda o: (
        tar_bytes(special("link", tarfile.SYMTYPE, link="/".join(["d"] * 2500))),
        "tar",
        "a symbolic link to an impossible path",
    ),
    "a PAX header of 2 MiB": lambda o: (
        tar_bytes(special("x" * (2 * MIB), tarfile.REGTYPE)),
        "tar",
        "an extended header of",
    ),
    "a chain of 5000 PAX headers": lambda o: (
        _pax_chain(5000),
        "tar",
        "more than 8 extended headers in a row",
    ),
    "a file, then a file inside it": lambda o: (
        tar_bytes(("a", b"1"), ("a/b", b"2")),
        "tar",
        "the path goes through a file",
    ),
    "a directory, then a file of the same name": lambda o: (
        tar_bytes(special("a", tarfile.DIRTYPE), ("a", b"2")),
        "tar",
        "both a directory and a file",
    ),
    "a member named like the destination": lambda o: (
        tar_bytes(("./", b"x")),
        "tar",
        "named like the destination",
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


# --- sizes ----------------------------------------------------------------------------------------


@pytest.fixture
def removed_bytes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each removed staging directory held: what a refused archive had written."""
    sizes: list[int] = []
    rmtree = shutil.rmtree

    def measuring(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        sizes.append(sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file()))
        rmtree(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_archive.shutil, "rmtree", measuring)
    return sizes


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_a_1_mb_archive_of_1_gib_of_zeros_is_refused_after_a_few_mib_written(
    tmp_path: Path, outside: Path, removed_bytes: list[int], fmt: ArchiveFormat
) -> None:
    bomb = zeros_tar_gz(1 << 30) if fmt == "tar.gz" else zeros_zip(1 << 30)
    assert len(bomb) < 1.1e6
    limits = Limits(max_size=2 << 30)  # the size cap would let it through: the ratio stops it
    with pytest.raises(UnsafeArchive, match="expands more than 100 times"):
        extract(one_way(bomb), tmp_path / "out", fmt=fmt, limits=limits)
    assert removed_bytes and max(removed_bytes) <= 8 * MIB
    assert_nothing_left(tmp_path, outside)


def test_the_bomb_builders_make_real_archives() -> None:
    data = zeros_tar_gz(3 * MIB)
    assert len(gzip.decompress(data)) > 3 * MIB  # the gzip trailer (CRC, length) is checked
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        member = archive.next()
        assert member is not None and member.name == "zeros.bin"
        assert archive.extractfile(member).read() == bytes(3 * MIB)  # type: ignore[union-attr]
    with zipfile.ZipFile(io.BytesIO(zeros_zip(3 * MIB))) as archive:
        assert archive.testzip() is None
        assert archive.read("zeros.bin") == bytes(3 * MIB)


@pytest.mark.parametrize("fmt", ["tar", "zip"])
def test_max_size_stops_an_archive_whose_members_add_up_to_more(
    tmp_path: Path, outside: Path, removed_bytes: list[int], fmt: ArchiveFormat
) -> None:
    files = [(f"part{i}", noise(200_000)) for i in range(10)]  # 2 MB that does not compress
    data = zip_bytes(*files) if fmt == "zip" else tar_bytes(*files)
    with pytest.raises(UnsafeArchive, match=r"more than max_size=1048576 bytes"):
        extract(io.BytesIO(data), tmp_path / "out", fmt=fmt, limits=Limits(max_size=MIB))
    assert removed_bytes and max(removed_bytes) <= MIB
    assert_nothing_left(tmp_path, outside)


def test_a_zip_stream_is_spooled_only_within_the_limits(tmp_path: Path, outside: Path) -> None:
    data = zip_bytes(("big.bin", noise(2 * MIB)))
    with pytest.raises(UnsafeArchive, match="a zip archive larger than its limits allow"):
        extract(one_way(data), tmp_path / "out", fmt="zip", limits=Limits(max_size=1000))
    assert_nothing_left(tmp_path, outside)


def test_a_member_declaring_more_than_max_size_is_refused_before_a_byte_is_written(
    tmp_path: Path, outside: Path, removed_bytes: list[int]
) -> None:
    data = tar_bytes(("ok.txt", b"1"), ("big.bin", noise(2 * MIB)))
    with pytest.raises(UnsafeArchive, match="'big.bin': the archive holds more than max_size"):
        extract(io.BytesIO(data), tmp_path / "out", fmt="tar", limits=Limits(max_size=MIB))
    assert removed_bytes == [1]  # ok.txt only
    assert_nothing_left(tmp_path, outside)


def test_every_member_counts_towards_max_size(tmp_path: Path, outside: Path) -> None:
    data = tar_bytes(*(special(f"d{i}", tarfile.DIRTYPE) for i in range(300)))  # no file data
    limits = Limits(max_size=100_000)  # 512 bytes a member: 195 fit
    with pytest.raises(UnsafeArchive, match="'d195': the archive holds more than max_size"):
        extract(io.BytesIO(data), tmp_path / "out", fmt="tar", limits=limits)
    assert_nothing_left(tmp_path, outside)


def test_a_source_longer_than_its_declared_size_is_cut_off(tmp_path: Path) -> None:
    extraction = Extraction(tmp_path, GENEROUS, what="the test archive")
    with pytest.raises(UnsafeArchive, match="more bytes than the 3 declared"):
        extraction.file("a", 3, io.BytesIO(b"12345" * MIB), mode=0o644, mtime=None)
    assert (tmp_path / "a").stat().st_size == 0


# --- checkpoint resources -------------------------------------------------------------------------

RESOURCES = {"metadata.json": 2, "code/": 0, "code/model.py": 3, "empty/": 0, "w.bin": 4}
EXACT = [("metadata.json", b"{}"), ("code/model.py", b"abc"), ("w.bin", b"1234")]
CHECKPOINT = Limits(max_size=1, files=RESOURCES)  # max_size applies only without a list


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "zip"])
def test_an_archive_holding_exactly_the_resources_is_extracted(
    tmp_path: Path, fmt: ArchiveFormat
) -> None:
    members = [special("code/", tarfile.DIRTYPE), *EXACT]
    data = zip_bytes(*EXACT) if fmt == "zip" else tar_bytes(*members, gz=fmt == "tar.gz")
    out = extract(one_way(data), tmp_path / "out", fmt=fmt, limits=CHECKPOINT)
    assert tree(out) == {"code": "/", **{name: content for name, content in EXACT}}


RESOURCE_CASES: dict[str, tuple[bytes, ArchiveFormat, str]] = {
    "a file not listed": (
        tar_bytes(*EXACT, ("extra.py", b"")), "tar", "not one of the checkpoint's files",
    ),
    "a listed file of another size": (
        tar_bytes(("metadata.json", b"{} "), *EXACT[1:]), "tar",
        "3 bytes, where the checkpoint's resources list 2",
    ),
    "a zip member of another size": (
        zip_bytes(("w.bin", b"12345"), *EXACT[:2]), "zip",
        "5 bytes, where the checkpoint's resources list 4",
    ),
    "a file sent twice": (tar_bytes(*EXACT, EXACT[0]), "tar", "holds this file twice"),
    "a directory not listed": (
        tar_bytes(special("other/", tarfile.DIRTYPE), *EXACT), "tar",
        "not one of the checkpoint's directories",
    ),
    "a symbolic link": (
        tar_bytes(*EXACT[:2], special("w.bin", tarfile.SYMTYPE, link="metadata.json")), "tar",
        "a symbolic link, where a checkpoint holds only files",
    ),
    "a hard link": (
        tar_bytes(*EXACT[:2], special("w.bin", tarfile.LNKTYPE, link="metadata.json")), "tar",
        "a hard link, where a checkpoint holds only files",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=list(RESOURCE_CASES))
def test_members_must_match_the_checkpoint_resources(
    tmp_path: Path, outside: Path, removed_bytes: list[int], case: str
) -> None:
    data, fmt, reason = RESOURCE_CASES[case]
    with pytest.raises(UnsafeArchive, match=reason):
        extract(one_way(data), tmp_path / "out", fmt=fmt, limits=CHECKPOINT)
    assert removed_bytes and max(removed_bytes) <= 9  # no more than the listed files
    assert_nothing_left(tmp_path, outside)


def test_a_listed_file_missing_from_the_archive_is_an_error(tmp_path: Path, outside: Path) -> None:
    data = tar_bytes(*EXACT[:2])
    with pytest.raises(DownloadError, match="1 of the checkpoint's files are missing.*: w.bin"):
        extract(one_way(data), tmp_path / "out", fmt="tar", limits=CHECKPOINT)
    assert_nothing_left(tmp_path, outside)


# --- corrupt archives -----------------------------------------------------------------------------


def _damaged(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + bytes([value]) + data[offset + 1 :]


GOOD_TAR = tar_bytes(("a.txt", b"a" * 5000), ("b.txt", b"b" * 700))
GOOD_ZIP = zip_bytes(("a.txt", b"a" * 5000), ("b.txt", b"b" * 700))
STORED_A = GOOD_ZIP.index(b"a" * 5000)
WEIGHTS = noise(100_000)

CORRUPT: dict[str, tuple[bytes, ArchiveFormat, str]] = {
    "empty stream": (b"", "tar", "the data ends before the end-of-archive marker"),
    "not gzip": (GOOD_TAR, "tar.gz", "not a gzip file"),
    "corrupt gzip data": (
        _damaged(tar_bytes(("a.txt", b"a" * 5000), gz=True), 10, 0x07), "tar.gz",
        "invalid compressed data",
    ),
    "truncated gzip": (
        tar_bytes(("a.txt", noise(5000)), gz=True)[:3000], "tar.gz",
        "unexpected end of data",
    ),
    "truncated tar inside a member": (GOOD_TAR[:2000], "tar", "unexpected end of data"),
    "truncated tar between members": (
        GOOD_TAR[: 512 * 11], "tar", "the data ends before the end-of-archive marker",
    ),
    "a damaged header": (
        _damaged(GOOD_TAR, GOOD_TAR.index(b"b.txt"), ord("c")), "tar",
        "damaged member header (bad checksum)",
    ),
    "data after the end-of-archive marker": (
        GOOD_TAR + b"\x01" * 512, "tar", "data after the end-of-archive marker",
    ),
    "zip without its central directory": (GOOD_ZIP[:-30], "zip", "not a zip file"),
    "zip with a CRC error": (
        _damaged(GOOD_ZIP, STORED_A + 100, ord("b")), "zip", "Bad CRC-32 for file 'a.txt'",
    ),
    "zip member declaring fewer bytes than it holds": (
        raw_zip("w.bin", deflated(WEIGHTS), crc=zipfile.crc32(WEIGHTS), size=1000), "zip",
        "Bad CRC-32",
    ),
    "zip member declaring more bytes than it holds": (
        raw_zip("w.bin", deflated(WEIGHTS), crc=zipfile.crc32(WEIGHTS), size=200_000), "zip",
        "w.bin holds 100000 bytes, not the 200000 declared for it",
    ),
    "zip with corrupt deflate data": (
        raw_zip("w.bin", b"\x07" + deflated(WEIGHTS)[1:], crc=0, size=100_000), "zip",
        "invalid block type",
    ),
    "encrypted zip member": (
        _damaged(_damaged(GOOD_ZIP, 6, 1), GOOD_ZIP.index(b"PK\x01\x02") + 8, 1), "zip",
        "a.txt is encrypted",
    ),
    "zip compression method it cannot read": (
        raw_zip("w.bin", b"xyz", crc=0, size=3, method=14), "zip",
        "uses compression method 14",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CORRUPT, ids=list(CORRUPT))
def test_corrupt_archives_raise_download_error_and_leave_nothing(
    tmp_path: Path, outside: Path, case: str
) -> None:
    data, fmt, reason = CORRUPT[case]
    with pytest.raises(DownloadError) as info:
        extract(one_way(data), tmp_path / "out", fmt=fmt)
    assert reason in str(info.value)
    assert str(info.value).startswith("the test archive: ")
    assert_nothing_left(tmp_path, outside)


SAMPLES: dict[ArchiveFormat, bytes] = {
    "tar": tar_bytes(("d/a.txt", b"a" * 3000), special("d/l", tarfile.SYMTYPE, link="a.txt")),
    "tar.gz": tar_bytes(("a.txt", noise(3000)), ("b", b"b" * 900), gz=True),
    "zip": zip_bytes(("a.txt", b"a" * 3000), ("d/b", b"b" * 900)),
}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    fmt=st.sampled_from(list(SAMPLES)),
    damage=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=4),
    keep=st.floats(0, 1),
)
def test_damaged_archives_raise_only_typed_errors(
    fmt: ArchiveFormat, damage: list[tuple[float, int]], keep: float
) -> None:
    data = SAMPLES[fmt]
    for where, value in damage:
        data = _damaged(data, int(where * len(data)), value)
    data = data[: round(keep * len(data))]
    with tempfile.TemporaryDirectory() as temp:
        try:
            extract(one_way(data), Path(temp, "out"), fmt=fmt)
        except (DownloadError, UnsafeArchive):
            assert os.listdir(temp) == []


# --- destinations ---------------------------------------------------------------------------------


def test_a_file_is_not_a_destination(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    with pytest.raises(InvalidValue, match="it is a file; pass a directory"):
        with staging(tmp_path / "file"):
            raise AssertionError("not entered")
    assert tree(tmp_path) == {"file": b"mine"}


def test_a_destination_under_a_file_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("mine")
    with pytest.raises(InvalidValue, match="cannot download into .*/out: .*/file is a file"):
        with staging(tmp_path / "file" / "sub" / "out"):
            raise AssertionError("not entered")
    assert tree(tmp_path) == {"file": b"mine"}


def test_a_directory_that_cannot_be_written_is_refused_on_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(**kwargs: object) -> str:  # what a read-only or foreign directory answers
        raise PermissionError(13, "Permission denied", str(kwargs["dir"]))

    monkeypatch.setattr(_archive.tempfile, "mkdtemp", refused)
    with pytest.raises(InvalidValue, match="cannot download into .*/out: Permission denied"):
        with staging(tmp_path / "new" / "out"):
            raise AssertionError("not entered")
    assert list(tmp_path.iterdir()) == []  # the parent it created is gone


@pytest.mark.parametrize("where", ["n" * 300, "n" * 300 + "/out"])
def test_a_destination_with_a_name_too_long_is_refused(tmp_path: Path, where: str) -> None:
    with pytest.raises(InvalidValue, match="a name longer than 255 bytes"):
        with staging(tmp_path / where):
            raise AssertionError("not entered")
    assert list(tmp_path.iterdir()) == []


def test_a_symlink_is_not_a_destination(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "link").symlink_to(outside)
    with pytest.raises(InvalidValue, match="it is a symbolic link"):
        with staging(tmp_path / "link"):
            raise AssertionError("not entered")


def test_without_merge_a_destination_must_be_empty(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with staging(out, merge=False) as directory:  # empty: fine
        (directory / "a").write_text("a")
    with pytest.raises(InvalidValue, match="the directory is not empty"):
        with staging(out, merge=False):
            raise AssertionError("not entered")
    assert tree(tmp_path) == {"out": "/", "out/a": b"a"}


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
