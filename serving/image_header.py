"""An image's size and decoded bytes read from its first bytes, in bounded time, before it is decoded."""

from __future__ import annotations

import struct
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# OpenCV decodes gray PNGs to one channel, RGB to three, and palette, gray+alpha and RGBA to four.
PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}
# JPEG markers that start a frame and hold its size; the others before it are skipped by length.
JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# A JPEG whose frame header comes after more segments than this is refused, not searched: real
# files have a dozen, and a frame of thousands of tiny segments would keep a parser busy.
MAX_JPEG_SEGMENTS = 512


class HeaderError(ValueError):
    """The bytes do not start like an image whose size can be read."""


@dataclass(frozen=True)
class ImageHeader:
    """What decoding will make: width, height, channels and bytes per sample."""

    width: int
    height: int
    channels: int
    sample_bytes: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        """The size of the array that decoding allocates."""
        return self.pixels * self.channels * self.sample_bytes


def read_header(data: bytes) -> ImageHeader:
    """The header of PNG or JPEG bytes; HeaderError for anything else or a header that cannot be read."""
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    raise HeaderError("neither PNG nor JPEG")


def _png(data: bytes) -> ImageHeader:
    # IHDR is the first chunk of every PNG: whatever chunks follow, its size is read in constant time.
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise HeaderError("a PNG must start with its IHDR chunk")
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    if color not in PNG_CHANNELS or not width or not height:
        raise HeaderError(f"PNG color type {color} or size {width}x{height} is not valid")
    return ImageHeader(width, height, PNG_CHANNELS[color], 2 if depth == 16 else 1)


def _jpeg(data: bytes) -> ImageHeader:
    position = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        while position < len(data) and data[position] == 0xFF:
            position += 1  # Fill bytes before a marker.
        if position + 3 > len(data):
            break
        marker = data[position]
        if marker in JPEG_FRAMES:
            if position + 9 > len(data):
                break
            depth, height, width, components = struct.unpack(">BHHB", data[position + 3 : position + 9])
            if not width or not height:
                raise HeaderError(f"JPEG size {width}x{height} is not valid")
            return ImageHeader(width, height, 1 if components == 1 else 3, 2 if depth > 8 else 1)
        if marker in (0x01, *range(0xD0, 0xD8)):
            position += 1  # Markers without a length.
            continue
        position += 1 + struct.unpack(">H", data[position + 1 : position + 3])[0]
    raise HeaderError(f"no JPEG frame header within {MAX_JPEG_SEGMENTS} segments")
