"""Content sniffing as Go's ``http.DetectContentType`` does it (the WHATWG MIME sniffing table).

The master reports the type of each model-definition file with it (``FileNode.contentType``,
``GET /experiments/{id}/file/download``). Only the first 512 bytes count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

__all__ = ["detect_content_type"]

_SNIFF_LEN: Final = 512
_WHITESPACE: Final = b"\t\n\x0c\r "

Signature = Callable[[bytes, int], str]


def _html(tag: bytes) -> Signature:
    def match(data: bytes, first: int) -> str:
        data = data[first:]
        if len(data) < len(tag) + 1:
            return ""
        for expected, actual in zip(tag, data, strict=False):
            if 0x41 <= expected <= 0x5A:  # upper-case letters match either case
                actual &= 0xDF
            if expected != actual:
                return ""
        return "text/html; charset=utf-8" if data[len(tag)] in b" >" else ""

    return match


def _masked(
    mask: bytes, pattern: bytes, content_type: str, *, skip_whitespace: bool = False
) -> Signature:
    def match(data: bytes, first: int) -> str:
        if skip_whitespace:
            data = data[first:]
        if len(data) < len(pattern):
            return ""
        if all(data[i] & mask[i] == pattern[i] for i in range(len(pattern))):
            return content_type
        return ""

    return match


def _exact(prefix: bytes, content_type: str) -> Signature:
    return lambda data, first: content_type if data.startswith(prefix) else ""


def _mp4(data: bytes, first: int) -> str:
    if len(data) < 12:
        return ""
    box_size = int.from_bytes(data[:4], "big")
    if len(data) < box_size or box_size % 4 != 0 or data[4:8] != b"ftyp":
        return ""
    for start in range(8, box_size, 4):
        if start != 12 and data[start : start + 3] == b"mp4":  # 12..16 is the minor version
            return "video/mp4"
    return ""


def _text(data: bytes, first: int) -> str:
    for byte in data[first:]:
        if byte <= 0x08 or byte == 0x0B or 0x0E <= byte <= 0x1A or 0x1C <= byte <= 0x1F:
            return ""
    return "text/plain; charset=utf-8"


_FF4_0_FF4: Final = b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff"

_SIGNATURES: Final[tuple[Signature, ...]] = (
    *(
        _html(tag)
        for tag in (
            b"<!DOCTYPE HTML",
            b"<HTML",
            b"<HEAD",
            b"<SCRIPT",
            b"<IFRAME",
            b"<H1",
            b"<DIV",
            b"<FONT",
            b"<TABLE",
            b"<A",
            b"<STYLE",
            b"<TITLE",
            b"<B",
            b"<BODY",
            b"<BR",
            b"<P",
            b"<!--",
        )  # fmt: skip
    ),
    _masked(b"\xff" * 5, b"<?xml", "text/xml; charset=utf-8", skip_whitespace=True),
    _exact(b"%PDF-", "application/pdf"),
    _exact(b"%!PS-Adobe-", "application/postscript"),
    # byte order marks
    _masked(b"\xff\xff\x00\x00", b"\xfe\xff\x00\x00", "text/plain; charset=utf-16be"),
    _masked(b"\xff\xff\x00\x00", b"\xff\xfe\x00\x00", "text/plain; charset=utf-16le"),
    _masked(b"\xff\xff\xff\x00", b"\xef\xbb\xbf\x00", "text/plain; charset=utf-8"),
    # images
    _exact(b"\x00\x00\x01\x00", "image/x-icon"),
    _exact(b"\x00\x00\x02\x00", "image/x-icon"),
    _exact(b"BM", "image/bmp"),
    _exact(b"GIF87a", "image/gif"),
    _exact(b"GIF89a", "image/gif"),
    _masked(
        b"\xff\xff\xff\xff\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff",
        b"RIFF\x00\x00\x00\x00WEBPVP",
        "image/webp",
    ),
    _exact(b"\x89PNG\x0d\x0a\x1a\x0a", "image/png"),
    _exact(b"\xff\xd8\xff", "image/jpeg"),
    # audio and video
    _masked(_FF4_0_FF4, b"FORM\x00\x00\x00\x00AIFF", "audio/aiff"),
    _masked(b"\xff\xff\xff", b"ID3", "audio/mpeg"),
    _masked(b"\xff" * 5, b"OggS\x00", "application/ogg"),
    _masked(b"\xff" * 8, b"MThd\x00\x00\x00\x06", "audio/midi"),
    _masked(_FF4_0_FF4, b"RIFF\x00\x00\x00\x00AVI ", "video/avi"),
    _masked(_FF4_0_FF4, b"RIFF\x00\x00\x00\x00WAVE", "audio/wave"),
    _mp4,
    _exact(b"\x1a\x45\xdf\xa3", "video/webm"),
    # fonts
    _masked(b"\x00" * 34 + b"\xff\xff", b"\x00" * 34 + b"LP", "application/vnd.ms-fontobject"),
    _exact(b"\x00\x01\x00\x00", "font/ttf"),
    _exact(b"OTTO", "font/otf"),
    _exact(b"ttcf", "font/collection"),
    _exact(b"wOFF", "font/woff"),
    _exact(b"wOF2", "font/woff2"),
    # archives
    _exact(b"\x1f\x8b\x08", "application/x-gzip"),
    _exact(b"PK\x03\x04", "application/zip"),
    _exact(b"Rar!\x1a\x07\x00", "application/x-rar-compressed"),
    _exact(b"Rar!\x1a\x07\x01\x00", "application/x-rar-compressed"),
    _exact(b"\x00asm", "application/wasm"),
    _text,
)


def detect_content_type(data: bytes) -> str:
    """The MIME type Go's ``http.DetectContentType`` gives ``data``."""
    data = data[:_SNIFF_LEN]
    first = len(data) - len(data.lstrip(_WHITESPACE))
    for signature in _SIGNATURES:
        found = signature(data, first)
        if found:
            return found
    return "application/octet-stream"
