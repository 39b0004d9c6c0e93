"""Archives built in memory for the extraction and download tests, hostile ones included."""

from __future__ import annotations

import functools
import io
import os
import random
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

Member = tuple[str, bytes] | tarfile.TarInfo

MIB = 1 << 20
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


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


def raw_zip(name: str, data: bytes, *, crc: int, size: int, method: int = 8) -> bytes:
    """A one-member zip written field by field, so that its header can claim any ``size``:
    ``data`` is the member as stored (raw deflate for method 8)."""
    encoded = name.encode()
    local = struct.pack(
        "<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(data), size, len(encoded), 0
    )
    central = struct.pack(
        "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, len(data), size,
        len(encoded), 0, 0, 0, 0, 0o100644 << 16, 0,
    )  # fmt: skip
    directory_offset = len(local) + len(encoded) + len(data)
    end = struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(encoded), directory_offset, 0
    )
    return local + encoded + data + central + encoded + end


def noise(size: int) -> bytes:
    """Bytes that do not compress, the same at every run."""
    return random.Random(size).randbytes(size)


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@functools.cache
def zeros_tar_gz(size: int) -> bytes:
    """A real ``.tar.gz`` of one file of ``size`` zero bytes (whole MiB), about size/1000 bytes
    long, built without compressing it all: after a full flush deflate starts again from the
    same state, so every MiB of zeros compresses to the same bytes."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    head, tail = info.tobuf(tarfile.PAX_FORMAT), bytes(2 * tarfile.BLOCKSIZE)
    body, crc = _repeated_zeros(size, prefix=head, suffix=tail)
    length = len(head) + size + len(tail)
    return _GZIP_HEADER + body + struct.pack("<2L", crc, length & 0xFFFFFFFF)


@functools.cache
def zeros_zip(size: int) -> bytes:
    """A real zip of one file of ``size`` zero bytes (whole MiB), about size/1000 bytes long."""
    body, crc = _repeated_zeros(size)
    return raw_zip("zeros.bin", body, crc=crc, size=size)


def _repeated_zeros(size: int, *, prefix: bytes = b"", suffix: bytes = b"") -> tuple[bytes, int]:
    """Raw deflate of prefix + ``size`` zeros + suffix, and its CRC-32."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    start = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    one_mib = compressor.compress(bytes(MIB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = compressor.compress(suffix) + compressor.flush()
    crc, zeros = zlib.crc32(prefix), bytes(MIB)
    for _ in range(size // MIB):
        crc = zlib.crc32(zeros, crc)
    return start + one_mib * (size // MIB) + end, zlib.crc32(suffix, crc)


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
