"""The synthetic numbers the serving benchmarks draw: bold jittered "1740"s, sent whole or growing as drawn."""

from __future__ import annotations

import json

import numpy as np

PEN, HEIGHT, SPACING = 14, 300, 140
NUMBER = "1740"  # Digits the synthetic strokes below draw unambiguously, cycled.
STEP_PX = 12  # Pen travel between two pointer samples, when a drawing grows as drawn.


def digit_strokes(digit: str, x: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Bold synthetic strokes of one digit centered at x, jittered so that no two drawings are equal."""
    if digit == "0":
        angles = np.linspace(0, 2 * np.pi, 40)
        shapes = [np.stack([42 * np.sin(angles), -88 * np.cos(angles)], axis=1)]
    else:
        shapes = {
            "1": [[[8, -90], [0, 90]]],
            "7": [[[-45, -88], [45, -90], [35, -55], [5, 20], [-10, 90]]],
            "4": [[[5, -90], [-45, 20], [50, 20]], [[25, -40], [25, 90]]],
        }[digit]
    scale, shift = rng.uniform(0.9, 1.1), rng.uniform(-6, 6, size=2)
    return [np.asarray(shape, dtype=float) * scale + [x, HEIGHT / 2] + shift for shape in shapes]


def number_drawing(count: int, seed: int) -> tuple[str, list[np.ndarray], int]:
    """(text, strokes, canvas width) for a `count`-digit number."""
    rng = np.random.default_rng(seed)
    text = (NUMBER * count)[:count]
    width = SPACING * count + 100
    strokes = [s for i, d in enumerate(text) for s in digit_strokes(d, 100 + SPACING * i, rng)]
    return text, strokes, width


def message(request_id: int, strokes: list[np.ndarray], width: int) -> str:
    """A recognize frame with the whole drawing."""
    return json.dumps(
        {
            "type": "recognize",
            "id": request_id,
            "width": width,
            "height": HEIGHT,
            "pen_width": PEN,
            "strokes": [np.round(stroke, 2).tolist() for stroke in strokes],
        }
    )


def drawing_message(request_id: int, count: int, seed: int) -> str:
    """A recognize frame for a fresh (never cached) `count`-digit drawing."""
    _, strokes, width = number_drawing(count, seed)
    return message(request_id, strokes, width)


def resample(stroke: np.ndarray) -> np.ndarray:
    """Points every STEP_PX along a polyline, as a pointer would report them."""
    lengths = np.r_[0, np.cumsum(np.linalg.norm(np.diff(stroke, axis=0), axis=1))]
    samples = np.linspace(0, lengths[-1], max(2, int(lengths[-1] / STEP_PX) + 1))
    return np.stack([np.interp(samples, lengths, stroke[:, axis]) for axis in (0, 1)], axis=1)


def client_frames(client: int, updates: int, first_id: int = 1, hints: bool = True) -> tuple[str, list[str]]:
    """(expected text, frames): the client's drawing growing in `updates` steps, the last one whole.

    Like the drawing page, a frame says whether the pen is still down (unless `hints` is off);
    the frame that would run past a stroke's end stops there, as the page sends one when the
    pen is lifted.
    """
    rng = np.random.default_rng(client)
    text = NUMBER[client % 4 :] + NUMBER[: client % 4]
    width = SPACING * len(text) + 100
    strokes = [resample(s) for i, d in enumerate(text) for s in digit_strokes(d, 100 + SPACING * i, rng)]
    ends = np.cumsum([len(s) for s in strokes])
    frames, points = [], 0
    for update in range(1, updates + 1):
        target = int(np.ceil(ends[-1] * update / updates))
        points = target if update == updates else min(target, ends[np.searchsorted(ends, points, side="right")])
        frame = {
            "type": "recognize",
            "id": first_id + update - 1,
            "width": width,
            "height": HEIGHT,
            "pen_width": PEN,
            "strokes": _first_points(strokes, points),
        }
        frames.append(json.dumps(frame | ({"pen_down": bool(points not in ends)} if hints else {})))
    return text, frames


def _first_points(strokes: list[np.ndarray], budget: int) -> list:
    drawn = []
    for stroke in strokes:
        if budget <= 0:
            break
        drawn.append(np.round(stroke[:budget], 1).tolist())
        budget -= len(stroke)
    return drawn
