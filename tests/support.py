"""What the tests share besides fixtures: digits drawn in three styles, a template classifier, a small training config.

Three sets of hand-drawn digits, each kept because tests assert what is read from its shapes:
TEMPLATES (every digit, read by `template_classifier` in the pipeline tests), BOLD_DIGITS (a
bold "1740" on an 800x300 canvas, read by the session's trained model through the server) and
PEN_DIGITS (a "1740" as a person draws it, for the clients, the page and the pen's timing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pipeline import Recognition, recognize_strokes, render_strokes_digit

# Digits drawn in a 100x100 box (y down), each a list of strokes. The 4, 5 and 7 are drawn
# whole here; the tests draw them in pieces.
ELLIPSE = [[50 + 32 * np.sin(t), 50 - 45 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 33)]
TEMPLATES = {
    0: [ELLIPSE],
    1: [[[50, 5], [50, 95]]],
    2: [[[20, 30], [30, 10], [55, 5], [75, 15], [78, 35], [60, 60], [20, 95], [85, 95]]],
    3: [[[20, 15], [45, 5], [70, 12], [72, 32], [45, 48], [75, 60], [78, 82], [50, 95], [20, 88]]],
    4: [[[30, 5], [15, 60], [85, 60]], [[65, 20], [65, 95]]],
    5: [[[30, 8], [80, 8]], [[30, 8], [25, 45], [55, 40], [75, 60], [70, 85], [45, 95], [20, 85]]],
    6: [[[70, 8], [40, 25], [25, 60], [35, 92], [60, 92], [72, 70], [55, 52], [30, 62]]],
    7: [[[15, 8], [85, 8], [40, 95]]],
    8: [[[50, 50], [25, 30], [50, 5], [75, 30], [50, 50], [22, 72], [50, 95], [78, 72], [50, 50]]],
    9: [[[72, 30], [50, 8], [28, 28], [50, 48], [72, 30], [72, 60], [60, 95]]],
}


def place(strokes, x: float, y: float, height: float = 100.0):
    """The strokes of a 100-unit digit, scaled to `height` pixels, with their box at (x, y)."""
    return [[[x + px * height / 100, y + py * height / 100] for px, py in stroke] for stroke in strokes]


def read_strokes(strokes, classify, width: int = 600, height: int = 300, pen: float = 6.0) -> Recognition:
    """Read strokes on a canvas of `width` x `height` drawn with a `pen` px pen."""
    return recognize_strokes(strokes, width, height, classify, pen_width=pen)


def template_classifier(calls: list | None = None, templates: dict | None = None):
    """Softmax over the cosine similarity to each digit's rendered template, unsure of what is like none.

    Like the trained model (see training.augment, `pair_probability`), it spreads its belief
    over every class for input unlike any digit, such as two digits read as one piece.
    """
    drawn = templates or TEMPLATES
    templates = np.stack([render_strokes_digit([np.array(s, float) for s in drawn[d]]).ravel() for d in range(10)])
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)

    def classify(batch: np.ndarray) -> np.ndarray:
        assert batch.shape[1:] == (28, 28) and batch.dtype == np.float32
        assert batch.min() >= 0 and batch.max() <= 1
        if calls is not None:
            calls.append(len(batch))
        flat = batch.reshape(len(batch), -1)
        similarity = flat @ templates.T / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-9)
        scores = np.exp(25 * similarity)
        sure = 1 / (1 + np.exp(-30 * (similarity.max(axis=1, keepdims=True) - 0.85)))
        return sure * scores / scores.sum(axis=1, keepdims=True) + (1 - sure) / 10

    return classify


# Bold, well-formed synthetic digits, each about 180 px tall, centered at x, on a WIDTH x HEIGHT canvas.
WIDTH, HEIGHT, PEN = 800, 300, 14


def _bold_one(x: float) -> list:
    return [[[x + 8, 60], [x, 240]]]


def _bold_seven(x: float) -> list:
    return [[[x - 45, 62], [x + 45, 60], [x + 35, 95], [x + 5, 170], [x - 10, 240]]]


def _bold_zero(x: float) -> list:
    angles = np.linspace(0, 2 * np.pi, 40)
    return [[[x + 42 * np.sin(a), 150 - 88 * np.cos(a)] for a in angles]]


def _bold_four(x: float) -> list:
    return [[[x + 5, 60], [x - 45, 170], [x + 50, 170]], [[x + 25, 110], [x + 25, 240]]]


BOLD_DIGITS = {"1": _bold_one, "7": _bold_seven, "0": _bold_zero, "4": _bold_four}


def drawing(number: str, spacing: float = 130) -> list:
    """Strokes for `number` written left to right in BOLD_DIGITS on the 800x300 canvas."""
    start = WIDTH / 2 - spacing * (len(number) - 1) / 2
    return [stroke for i, digit in enumerate(number) for stroke in BOLD_DIGITS[digit](start + i * spacing)]


def strokes_message(request_id, strokes: list, **extra) -> str:
    """A recognize frame of strokes on the 800x300 canvas."""
    return json.dumps(
        {
            "type": "recognize",
            "id": request_id,
            "width": WIDTH,
            "height": HEIGHT,
            "pen_width": PEN,
            "strokes": strokes,
            **extra,
        }
    )


def png_of(strokes: list) -> bytes:
    """The drawing rendered dark on white, as a photo or scan of it would be."""
    canvas = np.full((HEIGHT, WIDTH), 255, np.uint8)
    for stroke in strokes:
        cv2.polylines(canvas, [np.round(np.array(stroke)).astype(np.int32)], False, 0, PEN, cv2.LINE_AA)
    return cv2.imencode(".png", canvas)[1].tobytes()


# Digits drawn in a 60x100 box (y down), as a person would: one list of polylines each.
_PEN_OVAL = [[30 + 24 * np.sin(t), 50 - 44 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 25)]
PEN_DIGITS = {
    "0": [_PEN_OVAL],
    "1": [[[34, 6], [30, 94]]],
    "4": [[[28, 4], [6, 62], [56, 62]], [[44, 26], [42, 96]]],
    "7": [[[6, 8], [56, 8], [44, 40], [26, 96]]],
}


def number_strokes(text: str, x: float, y: float, height: float = 150.0) -> list[list[list[float]]]:
    """Strokes writing `text` in PEN_DIGITS left to right with its top-left corner at (x, y), digits `height` tall."""
    scale, strokes = height / 100, []
    for index, char in enumerate(text):
        left = x + index * 90 * scale
        strokes += [[[left + px * scale, y + py * scale] for px, py in stroke] for stroke in PEN_DIGITS[char]]
    return strokes


def zigzag_row(count: int, points: int = 40, width: int = 4096, height: int = 400) -> list:
    """`count` touching zig-zag strokes side by side: one wide blob, cut by position."""
    step = (width - 20) / count
    return [
        [[10 + i * step + k * step * 1.5 / (points - 1), 20.0 if k % 2 == 0 else height - 20.0] for k in range(points)]
        for i in range(count)
    ]


def densify(stroke: list[list[float]], step: float = 4.0) -> list[list[float]]:
    """The polyline with points at most `step` apart, like a pointer sampled at ~60 Hz."""
    points = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        count = max(1, int(np.hypot(x1 - x0, y1 - y0) // step))
        points += [[x0 + (x1 - x0) * k / count, y0 + (y1 - y0) * k / count] for k in range(1, count + 1)]
    return points


@dataclass(frozen=True)
class TrainedStore:
    """A temporary tracking store holding one registered, promoted small model."""

    tracking_uri: str
    root: Path
    result: object  # training.train.TrainResult

    @property
    def model_uri(self) -> str:
        return self.result.model.uri


def small_config(tracking_uri: str, data_dir: Path, **overrides):
    """A fast training config: a narrow CNN on a slice of MNIST, good to about 97.5 % (~40 s)."""
    from training.train_config import TrainConfig

    settings = dict(
        epochs=3,
        train_limit=20000,
        test_limit=1000,
        model_width=16,
        augment=True,
        sequence_cases=0,
        handwriting_numbers=2,
        tracking_uri=tracking_uri,
        data_dir=str(data_dir),
    )
    return TrainConfig.for_profile("quick", **{**settings, **overrides})


def register_recognizer(tracking_uri: str, model, float_graph: bytes, int8_graph: bytes | None):
    """Log a recognizer of `model` with these digit graphs in a new run of the store, and register it."""
    from demnistify.constants import MODEL_NAME
    from registry.client import connect
    from training import model_logging, tracking

    tracking.configure_tracking(tracking_uri)
    with tracking.tracked_run("digit-graphs", {}, {}):
        uri = model_logging.log_recognizer(model, float_graph, int8_graph)
    return model_logging.register(connect(tracking_uri), uri, MODEL_NAME)
