"""Hypothesis strategies for fuzzing the live protocol: each draws a frame and the replies it may get."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace

import cv2
import numpy as np
from hypothesis import strategies as st

from serving.frames import MAX_ID_LENGTH
from serving.messages import ErrorCode
from tests.server_support import SMALL_LIMITS
from tests.support import HEIGHT, PEN, WIDTH, drawing, png_of

# The token bucket would refuse fuzz traffic; every other limit stays small.
LIMITS = replace(SMALL_LIMITS, max_messages_per_second=1e9, burst=10**9)
# What an odd but well-formed request may get; never `internal` (a server bug), `rate_limited` or `bad_json`.
ANSWERS = frozenset({str(code) for code in ErrorCode} - {"internal", "rate_limited", "bad_json"} | {"result"})
UNCHECKED = object()
INT_DIGITS_LIMIT = 4300  # Python's default int-from-text limit: longer JSON integers are bad JSON.


@dataclass(frozen=True)
class Case:
    """One frame, the replies it may get (error codes, "result", "digit") and the id a JSON reply must echo."""

    frame: str | bytes
    allowed: frozenset
    echo: object = UNCHECKED

    def __repr__(self) -> str:
        return f"Case({shown(self.frame)}, {sorted(self.allowed)}, echo={self.echo!r})"


def case(frame: str | bytes, *allowed: str, echo: object = UNCHECKED) -> Case:
    return Case(frame, frozenset(allowed), echo)


def message(request_id: object = 1, **fields) -> dict:
    """A valid strokes request (it reads "17"), with `fields` replaced."""
    return {
        "type": "recognize",
        "id": request_id,
        "width": WIDTH,
        "height": HEIGHT,
        "pen_width": PEN,
        "strokes": drawing("17"),
        **fields,
    }


def with_literal(data: object, literal: str) -> str:
    """JSON text of `data` with the placeholder string "@" replaced by raw JSON text."""
    return json.dumps(data).replace('"@"', literal, 1)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


JPEG = cv2.imencode(".jpg", cv2.imdecode(np.frombuffer(png_of(drawing("4")), np.uint8), 0))[1].tobytes()
SMALL_PNG = cv2.imencode(".png", cv2.line(np.full((40, 40), 255, np.uint8), (20, 5), (20, 35), 0, 4))[1].tobytes()
# A valid header announcing more pixels than the limit: truncated or flipped, it is still too large or bad.
LARGE_PNG = cv2.imencode(".png", np.zeros((1001, 1001), np.uint8))[1].tobytes()
IMAGES = [png_of(drawing("17")), SMALL_PNG, LARGE_PNG, JPEG]
MATRIX = np.random.default_rng(0).random((28, 28)).round(3).tolist()
TRUNCATABLE = [
    json.dumps(message(1)),
    json.dumps({"type": "recognize", "id": 2, "image": b64(SMALL_PNG)}),
    json.dumps(MATRIX),
]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=10,
)
ids = st.none() | st.integers() | st.text(max_size=MAX_ID_LENGTH)
bad_ids = (
    st.booleans()
    | st.floats()
    | st.text(min_size=MAX_ID_LENGTH + 1, max_size=MAX_ID_LENGTH + 40)
    | st.lists(st.integers(), max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)


@st.composite
def wrong_field(draw) -> Case:
    request_id, field = draw(ids), draw(st.sampled_from(["type", "width", "height", "pen_width", "strokes", "image"]))
    return Case(json.dumps(message(request_id, **{field: draw(json_values)})), ANSWERS, request_id)


@st.composite
def missing_fields(draw) -> Case:
    dropped = draw(st.sets(st.sampled_from(["type", "id", "width", "height", "pen_width", "strokes"])))
    data = {key: value for key, value in message(7).items() if key not in dropped}
    expected = (
        "unknown_type"
        if "type" in dropped
        else "invalid_field"
        if dropped & {"strokes", "width", "height"}
        else "result"
    )
    return case(json.dumps(data), expected, echo=None if "id" in dropped else 7)


def placed(place: str, literal: str) -> tuple[str, object]:
    """A frame holding the raw JSON `literal` at `place`, and the id a reply to it echoes."""
    if place == "cell":
        matrix = [row[:] for row in MATRIX]
        matrix[3][5] = "@"
        return with_literal(matrix, literal), UNCHECKED
    if place == "point":
        strokes = drawing("17")
        strokes[0][0] = [strokes[0][0][0], "@"]
        return with_literal(message(3, strokes=strokes), literal), 3
    return with_literal(message(3, **{place: "@"}), literal), None if place == "id" else 3


PLACES = st.sampled_from(["width", "height", "pen_width", "id", "point", "cell"])


@st.composite
def odd_number(draw) -> Case:
    place, digits = draw(PLACES), draw(st.integers(19, 6000))
    literal = draw(
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e999", "9" * digits, "-" + "9" * digits])
    )
    frame, echo = placed(place, literal)
    if not literal.lstrip("-").isdigit():  # Not finite as a float: refused wherever it stands.
        return case(frame, "invalid_field", echo=echo)
    if digits > INT_DIGITS_LIMIT:
        return case(frame, "bad_json")
    if place == "id":
        return case(frame, "result", echo=int(literal))
    too_large = place in ("width", "height") and literal[0] == "9"
    return case(frame, "canvas_too_large" if too_large else "invalid_field", echo=echo)


@st.composite
def deep_nesting(draw) -> Case:
    kind = draw(st.sampled_from(["array", "object", "strokes", "unclosed"]))
    # Objects take three times the bytes of arrays per level; both stay below the frame limit.
    depth = draw(st.integers(1, 8_000 if kind == "object" else 25_000))
    frame, shallow = {
        "array": ("[" * depth + "]" * depth, {"invalid_field"}),
        "object": ('{"a":' * depth + "1" + "}" * depth, {"unknown_type"}),
        "strokes": (with_literal(message(5, strokes="@"), "[" * depth + "]" * depth), {"result", "invalid_field"}),
        "unclosed": ("[" * depth, {"bad_json"}),
    }[kind]
    # The JSON parser gives up at Python's recursion limit: 1000, raised by hypothesis while a test runs.
    allowed = shallow if depth < 500 else shallow | {"bad_json"} if depth <= 10_000 else {"bad_json"}
    return case(frame, *allowed, echo=5 if kind == "strokes" else None)


@st.composite
def unicode_text(draw) -> Case:
    text, kind = draw(st.text(max_size=60)), draw(st.sampled_from(["frame", "type", "id", "extra"]))
    if kind == "frame":
        return case(text, "bad_json", "invalid_field", "unknown_type")
    if kind == "type":
        return case(json.dumps(message(1, type=text)), "result" if text == "recognize" else "unknown_type", echo=1)
    data = message(text) if kind == "id" else message(1, **{"x-" + text: text})
    return case(json.dumps(data), "result", echo=data["id"])


@st.composite
def corrupt_image(draw) -> Case:
    data = bytearray(draw(st.sampled_from(IMAGES)))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data) - 1))]
    else:
        for position, value in draw(
            st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), min_size=1, max_size=6)
        ):
            data[position] = value
    allowed = ("result", "bad_image", "image_too_large")
    if draw(st.booleans()):
        return case(bytes(data), *allowed, echo=None)
    return case(json.dumps({"type": "recognize", "id": 4, "image": b64(bytes(data))}), *allowed, echo=4)


DATA_URL = "data:image/png;base64," + b64(SMALL_PNG)


@st.composite
def image_field(draw) -> Case:
    value = draw(
        json_values.filter(lambda v: not isinstance(v, str))
        | st.text(max_size=40)
        | st.just(DATA_URL)
        | st.binary(max_size=40).map(b64)
        | st.text(max_size=20).map(lambda text: "data:" + text)
    )
    expected = "invalid_field" if not isinstance(value, str) else "result" if value == DATA_URL else "bad_image"
    return case(json.dumps({"type": "recognize", "id": 6, "image": value}), expected, echo=6)


@st.composite
def legacy_matrix(draw) -> Case:
    seed, odd = draw(st.integers(0, 2**16)), draw(st.booleans())
    rows, cols = (draw(st.integers(0, 30)), draw(st.integers(0, 30))) if odd else (28, 28)
    ragged = odd and draw(st.booleans()) and rows > 1
    fill = draw(st.sampled_from(["unit", "negative", "above_one", "bool", "null", "text", "nested"]))
    matrix = np.random.default_rng(seed).random((rows, cols)).round(3).tolist()
    if ragged:
        matrix[-1] = matrix[-1][:-1] if cols else [0.5]
    if fill != "unit" and rows and cols:
        matrix[rows // 2][cols // 2] = {
            "negative": -0.5,
            "above_one": 1.5,
            "bool": True,
            "null": None,
            "text": "x",
            "nested": [0.5],
        }[fill]
    valid = rows == cols == 28 and not ragged and fill == "unit"
    return case(json.dumps(matrix), "digit" if valid else "invalid_field")


# Points as [[x, y], near the canvas?] or [junk, False]: near means at most a canvas size off it.
coordinates = st.floats(-1e300, 1e300) | st.floats(-3 * WIDTH, 3 * WIDTH)
points = st.tuples(coordinates, coordinates).map(
    lambda p: (list(p), -WIDTH <= p[0] <= 2 * WIDTH and -HEIGHT <= p[1] <= 2 * HEIGHT)
) | st.sampled_from([[1.0], [1.0, 2.0, 3.0], None, "a", {}, [[1.0, 2.0]], [1.0, None], [1.0, "a"]]).map(
    lambda p: (p, False)
)


@st.composite
def odd_strokes(draw) -> Case:
    strokes = draw(st.lists(st.lists(points, max_size=5), max_size=4))
    good = all(ok for stroke in strokes for _, ok in stroke)
    return case(
        json.dumps(message(1, strokes=[[p for p, _ in s] for s in strokes])),
        "result" if good else "invalid_field",
        echo=1,
    )


@st.composite
def many_points(draw) -> Case:
    count = draw(st.integers(0, LIMITS.max_strokes) | st.integers(LIMITS.max_strokes + 1, 60))
    most = LIMITS.max_points // max(1, count)
    length = draw(st.integers(0, most) | st.integers(most + 1, 2600 // max(1, count)))
    strokes = [[[50 + 13 * i % 700, 40 + 3 * k % 220] for k in range(length)] for i in range(count)]
    expected = (
        "too_many_strokes"
        if count > LIMITS.max_strokes
        else "too_many_points"
        if count * length > LIMITS.max_points
        else "result"
    )
    return case(json.dumps(message(1, strokes=strokes)), expected, echo=1)


@st.composite
def sizes(draw) -> Case:
    field, value = (
        draw(st.sampled_from(["width", "pen_width"])),
        draw(st.integers(-10, 5000) | st.floats() | st.integers() | st.booleans()),
    )
    number = not isinstance(value, bool) and value == value and abs(value) != float("inf")
    if field == "pen_width":
        return case(
            json.dumps(message(1, pen_width=value)),
            "result" if number and 0 < value <= HEIGHT / 4 else "invalid_field",
            echo=1,
        )
    whole = number and value >= 1 and value == int(value)
    allowed = (
        ("canvas_too_large",)
        if whole and value > LIMITS.max_canvas_side
        else ("result", "invalid_field")
        if whole
        else ("invalid_field",)
    )
    return case(json.dumps(message(1, width=value)), *allowed, echo=1)


fuzz_cases = st.one_of(
    wrong_field(),
    missing_fields(),
    odd_number(),
    deep_nesting(),
    unicode_text(),
    corrupt_image(),
    image_field(),
    legacy_matrix(),
    odd_strokes(),
    many_points(),
    sizes(),
    st.tuples(st.sampled_from(TRUNCATABLE), st.integers(0, 10**5)).map(
        lambda cut: case(cut[0][: cut[1] % len(cut[0])], "bad_json")
    ),
    st.binary(max_size=300).map(lambda data: case(data, "bad_image", "image_too_large", echo=None)),
    st.binary(max_size=100).map(lambda data: case(b"\x89PNG\r\n\x1a\n" + data, "bad_image", "image_too_large")),
    bad_ids.map(lambda request_id: case(json.dumps(message(request_id)), "invalid_field", echo=None)),
)


def shown(frame: str | bytes) -> str:
    return repr(frame[:300]) + (f"... ({len(frame)} long)" if len(frame) > 300 else "")
