"""MNIST-style normalization: crop, fit into 20x20 keeping aspect, center by mass in 28x28."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np

from demnistify.constants import DIGIT_BOX, IMAGE_SIZE, MNIST_STROKE_WIDTH

# MNIST digits have their center of mass at pixel (14, 14) on average (measured on the
# training set), so the shift puts the mass there rather than at the geometric 13.5.
MASS_CENTER = IMAGE_SIZE / 2
# Strokes are drawn at this multiple of the final resolution and then reduced with area
# averaging, which gives anti-aliased edges and a fractional stroke width.
SUPERSAMPLE = 2
# Rendering canvas margin, in supersampled pixels, so the round caps are never cut off.
RENDER_MARGIN = 4
# The skeleton spans RENDER_EXTENT supersampled pixels and the pen RENDER_PEN; after cropping
# to the ink (skeleton plus pen) and fitting into 20 px, the stroke is MNIST_STROKE_WIDTH wide:
# RENDER_PEN * DIGIT_BOX / (RENDER_EXTENT + RENDER_PEN) == MNIST_STROKE_WIDTH.
RENDER_PEN = round(MNIST_STROKE_WIDTH * SUPERSAMPLE)
RENDER_EXTENT = RENDER_PEN * DIGIT_BOX / MNIST_STROKE_WIDTH - RENDER_PEN
# Pixel positions along a fitted digit's side (at most DIGIT_BOX, or the image side for a
# digit already small), for its center of mass.
_POSITIONS = np.arange(IMAGE_SIZE + 1, dtype=np.int64)


def normalize_digit(ink: np.ndarray) -> np.ndarray:
    """Normalize one digit image (ink high, uint8 or float in [0, 1]) to float32 (28, 28) in [0, 1].

    The ink's bounding box is fitted into 20x20 keeping its aspect ratio (area averaging),
    then placed so that its center of mass lands on the center of the 28x28 field, with the
    shift clipped so the digit stays whole. An image without ink gives all zeros.
    """
    array = np.asarray(ink)
    if array.ndim != 2:
        raise ValueError(f"normalize_digit expects a 2-D image, got shape {array.shape}.")
    if array.dtype != np.uint8:
        array = np.clip(np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    # The bounding box is found before any conversion, so only the crop is converted. OpenCV
    # reads an 8-bit image as a mask of its non-zero pixels.
    x, y, width, height = cv2.boundingRect(array if array.dtype == np.uint8 else (array > 0).view(np.uint8))
    if not width:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    crop = array[y : y + height, x : x + width]
    if crop.dtype == np.uint8:
        crop = crop.astype(np.float32) * np.float32(1 / 255)
    return _place_by_mass(_fit_box(crop))


def _fit_box(crop: np.ndarray) -> np.ndarray:
    height, width = crop.shape
    scale = DIGIT_BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Area averaging anti-aliases when shrinking; growing a small crop needs interpolation.
    interpolation = cv2.INTER_AREA if scale <= 1 else cv2.INTER_LINEAR
    return cv2.resize(crop, size, interpolation=interpolation)


def _place_by_mass(fitted: np.ndarray) -> np.ndarray:
    height, width = fitted.shape
    # Not cv2.moments: it reads an array one or two columns wide as a list of points, and it
    # sums in another order, which moves a center lying near a half pixel across it.
    columns, rows = fitted.sum(axis=0), fitted.sum(axis=1)
    mass = float(columns.sum())
    center_x = float(columns @ _POSITIONS[:width]) / mass if mass > 0 else (width - 1) / 2
    center_y = float(rows @ _POSITIONS[:height]) / mass if mass > 0 else (height - 1) / 2
    # An integer shift keeps the digit's pixels untouched and the output deterministic.
    left = min(max(round(MASS_CENTER - center_x), 0), IMAGE_SIZE - width)
    top = min(max(round(MASS_CENTER - center_y), 0), IMAGE_SIZE - height)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    # Resampling never goes below zero but may overshoot one by a rounding error.
    np.minimum(fitted, np.float32(1.0), out=out[top : top + height, left : left + width])
    return out


def render_strokes_digit(
    strokes: Sequence[np.ndarray], box: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """Render one digit's strokes at MNIST scale with an MNIST-like pen, then normalize it.

    `strokes` are polylines of canvas points (arrays of shape (n, 2)); `box` (x, y, width,
    height) is the area they are scaled from, by default their own bounding box. The pen
    width does not depend on the drawing's pen, so a marker and a fine pen look the same.
    """
    polylines = [
        line for line in (np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in strokes) if len(line)
    ]
    if not polylines:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    x, y, width, height = box if box is not None else _points_box(polylines)
    scale = RENDER_EXTENT / max(width, height, 1e-6)
    size = (int(np.ceil(width * scale)) + 2 * RENDER_MARGIN + 1, int(np.ceil(height * scale)) + 2 * RENDER_MARGIN + 1)
    canvas = np.zeros((size[1], size[0]), dtype=np.uint8)
    # Fixed-point coordinates (4 fractional bits) keep the sub-pixel position of each point.
    # All points are converted at once, then cut back into strokes (views, no copies).
    origin = np.array([x, y]) * scale - RENDER_MARGIN
    points = polylines[0] if len(polylines) == 1 else np.concatenate(polylines)
    fixed = np.round((points * scale - origin) * 16).astype(np.int32)
    lines, dots = _cut_strokes(fixed, [len(line) for line in polylines])
    if not dots.any():
        # One call draws the lines in the same order, and much faster than one call each.
        cv2.polylines(canvas, lines, False, 255, RENDER_PEN, cv2.LINE_AA, shift=4)
        return normalize_digit(canvas)
    for line, dot in zip(lines, dots):
        cv2.polylines(canvas, [line], False, 255, RENDER_PEN, cv2.LINE_AA, shift=4)
        if dot:
            cv2.circle(canvas, (int(line[0, 0]), int(line[0, 1])), 16 * RENDER_PEN // 2, 255, -1, cv2.LINE_AA, shift=4)
    return normalize_digit(canvas)


def _cut_strokes(fixed: np.ndarray, lengths: list[int]) -> tuple[list[np.ndarray], np.ndarray]:
    # The strokes' points (views of `fixed`), and which strokes never leave their first point:
    # those are drawn as round dots.
    if len(lengths) == 1:
        return [fixed], np.array([len(fixed) == 1 or not (fixed != fixed[0]).any()])
    bounds = list(itertools.accumulate(lengths, initial=0))
    spread = np.maximum.reduceat(fixed, bounds[:-1]) != np.minimum.reduceat(fixed, bounds[:-1])
    return [fixed[start:end] for start, end in zip(bounds, bounds[1:])], ~spread.any(axis=1)


def _points_box(polylines: list[np.ndarray]) -> tuple[float, float, float, float]:
    points = np.concatenate(polylines)
    low, high = points.min(axis=0), points.max(axis=0)
    return float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])
