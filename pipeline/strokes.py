"""Stroke input: validation into float arrays, clamping to the canvas, and clipping to a band."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Canvases larger than this on either side are refused: no drawing client makes them, and
# the raster would cost hundreds of megabytes.
MAX_CANVAS_SIDE = 8192
MAX_POINTS = 200_000
# Pointer events may run off the canvas while the pen is down; points up to this fraction of
# the canvas size outside it are clamped to the edge, farther ones are an error.
OUTSIDE_MARGIN = 1.0
# Pen widths above this fraction of the shorter canvas side are not a pen.
MAX_PEN_FRACTION = 0.25
# Without a given pen width, strokes are drawn this wide relative to the longer canvas side.
DEFAULT_PEN_FRACTION = 0.012
MIN_PEN_WIDTH = 2.0

Polyline = np.ndarray  # (n, 2) float64 canvas points.


def check_canvas(width: int, height: int) -> tuple[int, int]:
    """Return the canvas size as ints, or raise ValueError when it is not a sensible canvas."""
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or not np.isfinite(value):
            raise ValueError(f"Canvas {name} must be a finite number, got {value!r}.")
        if not 1 <= value <= MAX_CANVAS_SIDE or value != int(value):
            raise ValueError(f"Canvas {name} must be a whole number of pixels in 1..{MAX_CANVAS_SIDE}, got {value!r}.")
    return int(width), int(height)


def check_pen_width(pen_width: float | None, width: int, height: int) -> float:
    """The pen width to draw with: the given one if plausible, else a default for the canvas."""
    if pen_width is None:
        return max(MIN_PEN_WIDTH, DEFAULT_PEN_FRACTION * max(width, height))
    limit = max(MIN_PEN_WIDTH, MAX_PEN_FRACTION * min(width, height))
    if isinstance(pen_width, bool) or not isinstance(pen_width, (int, float, np.number)) or not 0 < pen_width <= limit:
        raise ValueError(f"pen_width must be a number in (0, {limit:g}] for this canvas, got {pen_width!r}.")
    return float(pen_width)


def check_strokes(strokes: Sequence, width: int, height: int) -> list[Polyline]:
    """Convert strokes to (n, 2) float arrays clamped to the canvas; ValueError on bad input."""
    if isinstance(strokes, (str, bytes)) or not isinstance(strokes, (Sequence, np.ndarray)):
        raise ValueError(f"strokes must be a list of polylines [[x, y], ...], got {type(strokes).__name__}.")
    numbered = [(index, _check_polyline(stroke, index)) for index, stroke in enumerate(strokes)]
    numbered = [(index, line) for index, line in numbered if len(line)]
    if not numbered:
        return []
    lengths = [len(line) for _, line in numbered]
    if sum(lengths) > MAX_POINTS:
        raise ValueError(f"A drawing may hold at most {MAX_POINTS} points.")
    # All points are checked and clamped at once, then cut back into strokes.
    points = np.concatenate([line for _, line in numbered])
    owner = np.repeat([index for index, _ in numbered], lengths)
    _check_points(points, owner, np.repeat(np.arange(len(numbered)), lengths), width, height)
    clamped = np.clip(points, 0.0, np.array([width - 1, height - 1], dtype=np.float64))
    return np.split(clamped, np.cumsum(lengths)[:-1])


def _check_polyline(stroke, index: int) -> Polyline:
    try:
        points = np.asarray(stroke, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as error:
        raise ValueError(f"Stroke {index} is not a list of [x, y] number pairs ({error}).") from error
    if points.size == 0:
        return np.zeros((0, 2))
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"Stroke {index} must be a list of [x, y] pairs, got an array of shape {points.shape}.")
    return points


def _check_points(points: np.ndarray, owner: np.ndarray, kept: np.ndarray, width: int, height: int) -> None:
    # `owner` numbers each point's stroke as given, `kept` as among the non-empty strokes.
    finite = np.isfinite(points).all(axis=1)
    if not finite.all():
        raise ValueError(f"Stroke {owner[np.argmin(finite)]} holds a non-finite coordinate (NaN or infinity).")
    size = np.array([width, height], dtype=np.float64)
    low, high = -OUTSIDE_MARGIN * size, (1 + OUTSIDE_MARGIN) * size
    outside = ((points < low) | (points > high)).any(axis=1)
    if outside.any():
        bad = points[np.argmax(outside)]
        raise ValueError(
            f"Stroke {kept[np.argmax(outside)]} has point ({bad[0]:g}, {bad[1]:g}) far outside the {width}x{height} "
            f"canvas (allowed: x in [{low[0]:g}, {high[0]:g}], y in [{low[1]:g}, {high[1]:g}])."
        )


def clip_band(polyline: Polyline, left: float, right: float) -> list[Polyline]:
    """The parts of a polyline whose x lies in [left, right], cut exactly at the band's edges."""
    if len(polyline) == 1 or (polyline[:, 0] >= left).all() and (polyline[:, 0] <= right).all():
        return [polyline] if left <= polyline[0, 0] <= right else []
    pieces: list[list[np.ndarray]] = [[]]
    for start, end in zip(polyline[:-1], polyline[1:]):
        span = _inside_span(start[0], end[0], left, right)
        if span is None:
            pieces.append([])
            continue
        enter, leave = (start + t * (end - start) for t in span)
        if span[0] > 0 or not pieces[-1]:
            pieces.append([enter])
        pieces[-1].append(leave)
        if span[1] < 1:
            pieces.append([])
    return [np.array(piece) for piece in pieces if piece]


def _inside_span(start: float, end: float, left: float, right: float) -> tuple[float, float] | None:
    # The parameter range t in [0, 1] for which start + t * (end - start) lies in the band.
    if start == end:
        return (0.0, 1.0) if left <= start <= right else None
    first, second = sorted(((left - start) / (end - start), (right - start) / (end - start)))
    low, high = max(first, 0.0), min(second, 1.0)
    return (low, high) if low <= high else None
