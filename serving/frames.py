"""Reading one websocket frame into a typed request: JSON parsing, frame-size counting and every field check."""

from __future__ import annotations

import base64
import binascii
import json
import math

import numpy as np
import orjson

from demnistify.constants import IMAGE_SIZE
from serving.config import Limits
from serving.image_header import HeaderError, read_header
from serving.messages import ErrorCode, ImageRequest, MatrixRequest, ProtocolError, Request, StrokesRequest

MAX_ID_LENGTH = 128
# Text frames are read by orjson in a fifth of json's time; the event loop reads every frame,
# stale ones included (3,000 a second under bench/bench_load.py). orjson turns integers beyond
# 64 bits into floats and refuses NaN, so frames holding a run of this many digits, and frames
# it refuses, are read by json: every frame parses to exactly what json makes of it.
LONG_NUMBER = "0" * 19
_DIGITS_TO_ZERO = str.maketrans("123456789", "0" * 9)
# A drawing within the limits holds at most max_points + max_strokes arrays and two values per
# point; a frame holding many more is refused before it is parsed (parsing a 2 MiB frame of tiny
# arrays held the event loop for 200 ms). The slack covers the other fields and a legacy 28x28 matrix.
# Frames up to COUNTED_FROM_BYTES parse within a couple of milliseconds whatever they hold, and
# are parsed as they are (too deep a nesting stays `bad_json`).
FIELD_SLACK = 64 + IMAGE_SIZE * (IMAGE_SIZE + 1)
COUNTED_FROM_BYTES = 2**16


def parse_message(message: str | bytes, limits: Limits) -> Request:
    """Turn one websocket frame into a request, or raise ProtocolError saying what to fix."""
    if isinstance(message, (bytes, bytearray, memoryview)):
        return image_request(bytes(message), limits, None)
    check_frame_size(message, limits)
    try:
        data = _json_value(message)
    except (ValueError, RecursionError) as error:
        raise ProtocolError(ErrorCode.BAD_JSON, f"A text frame must hold one JSON value: {error}.") from None
    if isinstance(data, list):
        return MatrixRequest(_legacy_matrix(data))
    if not isinstance(data, dict):
        raise ProtocolError(ErrorCode.INVALID_FIELD, 'A message must be a JSON object with a "type".')
    request_id = _request_id(data.get("id"))
    kind = data.get("type")
    if kind != "recognize":
        raise ProtocolError(
            ErrorCode.UNKNOWN_TYPE,
            f'Unknown message type {kind!r}: the server accepts "recognize" (see PROTOCOL.md).',
            request_id,
        )
    return parse_recognize(data, request_id, limits)


def check_frame_size(text: str, limits: Limits) -> None:
    """Refuse a large text frame holding more arrays or values than any drawing within the limits (counted, not parsed)."""
    if len(text) <= COUNTED_FROM_BYTES:
        return
    arrays = text.count("[") + text.count("{")
    values = text.count(",")
    if (
        arrays > limits.max_points + limits.max_strokes + FIELD_SLACK
        or values > 2 * limits.max_points + limits.max_strokes + FIELD_SLACK
    ):
        raise ProtocolError(
            ErrorCode.TOO_MANY_POINTS,
            f"This frame holds {arrays} arrays and {values} commas, more "
            f"than any drawing of at most {limits.max_points} points and {limits.max_strokes} "
            "strokes; it was not read.",
        )


def _json_value(text: str):
    if LONG_NUMBER not in text.translate(_DIGITS_TO_ZERO):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)


def _request_id(value) -> int | str | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH:
        return value
    raise ProtocolError(
        ErrorCode.INVALID_FIELD,
        f'"id" must be an integer or a string of at most {MAX_ID_LENGTH} characters, got {type(value).__name__}.',
    )


def parse_recognize(data: dict, request_id, limits: Limits) -> StrokesRequest | ImageRequest:
    """The request in one `recognize` object (strokes or a base64 image), or ProtocolError saying what to fix."""
    has_strokes, has_image = "strokes" in data, "image" in data
    if has_strokes == has_image:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            'A recognize message needs exactly one of "strokes" (with width and height) or "image" (base64 PNG/JPEG).',
            request_id,
        )
    if has_image:
        return image_request(_base64(data["image"], request_id), limits, request_id)
    width = _canvas_side(data, "width", request_id, limits)
    height = _canvas_side(data, "height", request_id, limits)
    pen_width = data.get("pen_width")
    if pen_width is not None and (not _is_number(pen_width) or not pen_width > 0):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, f'"pen_width" must be a positive number, got {pen_width!r}.', request_id
        )
    pen_down = data.get("pen_down", False)
    if not isinstance(pen_down, bool):
        raise ProtocolError(ErrorCode.INVALID_FIELD, f'"pen_down" must be true or false, got {pen_down!r}.', request_id)
    return StrokesRequest(request_id, width, height, _strokes(data["strokes"], request_id, limits), pen_width, pen_down)


def _is_number(value) -> bool:
    # JSON integers may exceed any float (10**400): Python ints are finite, and NumPy must not see them.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _canvas_side(data: dict, name: str, request_id, limits: Limits) -> int:
    value = data.get(name)
    if not _is_number(value) or value < 1 or value != int(value):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            f'"{name}" must be the canvas {name} in whole pixels (>= 1), got {value!r}.',
            request_id,
        )
    if value > limits.max_canvas_side:
        raise ProtocolError(
            ErrorCode.CANVAS_TOO_LARGE,
            f"The canvas may be at most {limits.max_canvas_side} "
            f"pixels on a side, got {name} {value}; scale the drawing down.",
            request_id,
        )
    return int(value)


def _strokes(strokes, request_id, limits: Limits) -> list:
    if not isinstance(strokes, list) or not all(isinstance(stroke, list) for stroke in strokes):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, '"strokes" must be a list of strokes, each a list of [x, y] points.', request_id
        )
    if len(strokes) > limits.max_strokes:
        raise ProtocolError(
            ErrorCode.TOO_MANY_STROKES,
            f"A drawing may hold at most {limits.max_strokes} strokes, got {len(strokes)}.",
            request_id,
        )
    points = sum(len(stroke) for stroke in strokes)
    if points > limits.max_points:
        raise ProtocolError(
            ErrorCode.TOO_MANY_POINTS,
            f"A drawing may hold at most {limits.max_points} points, "
            f"got {points}; drop points closer than a pixel apart.",
            request_id,
        )
    return strokes


def _base64(text, request_id) -> bytes:
    if not isinstance(text, str):
        raise ProtocolError(ErrorCode.INVALID_FIELD, '"image" must be a base64 string.', request_id)
    # Accept data URLs as produced by canvas.toDataURL().
    payload = text.split(",", 1)[-1] if text.startswith("data:") else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ProtocolError(ErrorCode.BAD_IMAGE, f'"image" is not valid base64: {error}.', request_id) from None


def image_request(data: bytes, limits: Limits, request_id) -> ImageRequest:
    """Check an image's size from its header alone (no decoding, constant time), so large images cost nothing."""
    try:
        header = read_header(data)
    except HeaderError as error:
        raise ProtocolError(
            ErrorCode.BAD_IMAGE, f"The {len(data)} image bytes are not a PNG or JPEG image ({error}).", request_id
        ) from None
    if header.pixels > limits.max_image_pixels:
        raise ProtocolError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"Images may hold at most {limits.max_image_pixels} "
            f"pixels, got {header.width}x{header.height}; scale it down.",
            request_id,
        )
    if header.decoded_bytes > limits.max_image_bytes:
        raise ProtocolError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"Images may decode to at most {limits.max_image_bytes} "
            f"bytes, this {header.width}x{header.height} one to {header.decoded_bytes} "
            f"({header.channels} channels of {8 * header.sample_bytes} bits); send 8-bit "
            "gray or a smaller image.",
            request_id,
        )
    return ImageRequest(request_id, data, header.decoded_bytes)


def _legacy_matrix(data: list) -> np.ndarray:
    try:
        matrix = np.array(data, dtype=np.float32)
    except (TypeError, ValueError, OverflowError):
        matrix = None
    if (
        matrix is None
        or matrix.shape != (IMAGE_SIZE, IMAGE_SIZE)
        or not np.isfinite(matrix).all()
        or matrix.min() < 0
        or matrix.max() > 1
        or any(isinstance(v, bool) for row in data for v in row)
    ):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            "A JSON array must be a 28x28 matrix of numbers in [0, 1] "
            '(the original client\'s format); send {"type": "recognize", ...} otherwise.',
        )
    return matrix
