"""Small deterministic media bytes for the images and videos endpoints (stdlib only).

- ``png``: a real, decodable RGB PNG (IHDR, one IDAT, IEND, with CRCs) whose
  longer side is at most ``MAX_SIDE`` pixels, keeping the requested aspect
  ratio; a diagonal gradient between two colours derived from a hash of the
  key. The IDAT stream uses zlib level 0 (stored blocks), so the bytes are the
  same with any zlib build.
- ``mp4_placeholder``: an ISO BMFF ``ftyp`` box, a ``free`` box saying what
  this is and an ``mdat`` box of hash bytes. It is not playable; it only looks
  like an MP4 to a sniffer, and is stable for a given key.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SIDE = 16
_SIZE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")


def parse_size(size: str) -> tuple[int, int] | None:
    """``"WxH"`` as (width, height), or None when it is not of that form."""
    match = _SIZE.match(size)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2))


def thumbnail_dimensions(width: int, height: int, max_side: int = MAX_SIDE) -> tuple[int, int]:
    """(width, height) scaled so the longer side is ``max_side`` (at least 1 pixel each)."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    return max(1, round(width * max_side / longest)), max(1, round(height * max_side / longest))


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def encode_png(width: int, height: int, rgb: bytes) -> bytes:
    """A truecolour 8-bit PNG of ``rgb`` (row-major, 3 bytes a pixel)."""
    if len(rgb) != width * height * 3:
        raise ValueError("rgb must hold width * height * 3 bytes")
    stride = width * 3
    raw = b"".join(b"\x00" + rgb[row * stride : (row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw, 0)),
            _chunk(b"IEND", b""),
        )
    )


def png(key: str, width: int, height: int) -> bytes:
    """A deterministic gradient PNG for ``key``, ``width`` x ``height`` pixels."""
    digest = hashlib.blake2b(key.encode(), digest_size=6).digest()
    start, end = digest[:3], digest[3:]
    span = max(1, width + height - 2)
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            step = x + y
            pixels.extend(a + (b - a) * step // span for a, b in zip(start, end, strict=True))
    return encode_png(width, height, bytes(pixels))


def png_for_size(key: str, width: int, height: int, max_side: int = MAX_SIDE) -> bytes:
    """``png`` at a small size with the aspect ratio of ``width`` x ``height``."""
    return png(key, *thumbnail_dimensions(width, height, max_side))


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


_FTYP = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
_NOTE = _box(b"free", b"tollway simulator placeholder video (not playable)")


def mp4_placeholder(key: str) -> bytes:
    """Bytes that start with a valid ``ftyp`` box; the ``mdat`` payload depends on ``key``."""
    return _FTYP + _NOTE + _box(b"mdat", hashlib.shake_256(key.encode()).digest(64))
