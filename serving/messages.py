"""The protocol's typed requests and the error codes of refused frames (serving/PROTOCOL.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np


class ErrorCode(StrEnum):
    """Every `code` an `error` event can carry; PROTOCOL.md documents each."""

    BAD_JSON = "bad_json"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    TOO_MANY_STROKES = "too_many_strokes"
    TOO_MANY_POINTS = "too_many_points"
    CANVAS_TOO_LARGE = "canvas_too_large"
    IMAGE_TOO_LARGE = "image_too_large"
    BAD_IMAGE = "bad_image"
    RATE_LIMITED = "rate_limited"
    TOO_COMPLEX = "too_complex"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A request the server refuses; becomes an `error` event, and the connection stays open."""

    def __init__(self, code: ErrorCode, message: str, request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.request_id = code, message, request_id


@dataclass(frozen=True)
class StrokesRequest:
    """`recognize` with strokes: the whole drawing as polylines on a width x height canvas."""

    id: int | str | None
    width: int
    height: int
    strokes: list
    pen_width: float | None = None
    # Sent while the pen is still on the canvas: a preview the server may answer after settled drawings.
    pen_down: bool = False


@dataclass(frozen=True)
class ImageRequest:
    """`recognize` with an image (base64 field or binary frame): PNG/JPEG bytes."""

    id: int | str | None
    data: bytes
    # What decoding it allocates, read from its header (follows from `data`).
    decoded_bytes: int = field(default=0, compare=False)


@dataclass(frozen=True)
class MatrixRequest:
    """The original web client's frame: one 28x28 matrix in [0, 1], answered with plain text."""

    matrix: np.ndarray


Request = StrokesRequest | ImageRequest | MatrixRequest
