"""MNIST-style normalization: crop, fit into 20x20 keeping aspect, center by mass in 28x28."""

from __future__ import annotations

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
    # The bounding box is found before any conversion, so only the crop is converted.
    points = cv2.findNonZero(array if array.dtype == np.uint8 else (array > 0).view(np.uint8))
    if points is None:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    x, y, width, height = cv2.boundingRect(points)
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
    # Not cv2.moments: it reads an array one or two columns wide as a list of points.
    columns, rows = fitted.sum(axis=0), fitted.sum(axis=1)
    mass = float(columns.sum())
    center_x = float(columns @ np.arange(width)) / mass if mass > 0 else (width - 1) / 2
    center_y = float(rows @ np.arange(height)) / mass if mass > 0 else (height - 1) / 2
    # An integer shift keeps the digit's pixels untouched and the output deterministic.
    left = min(max(round(MASS_CENTER - center_x), 0), IMAGE_SIZE - width)
    top = min(max(round(MASS_CENTER - center_y), 0), IMAGE_SIZE - height)
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    # Resampling never goes below zero but may overshoot one by a rounding error.
    np.minimum(fitted, np.float32(1.0), out=out[top : top + height, left : left + width])
    return out


def render_strokes_digit(strokes: Sequence[np.ndarray], box: tuple[float, float, float, float] | None = None) -> np.ndarray:
    """Render one digit's strokes at MNIST scale with an MNIST-like pen, then normalize it.

    `strokes` are polylines of canvas points (arrays of shape (n, 2)); `box` (x, y, width,
    height) is the area they are scaled from, by default their own bounding box. The pen
    width does not depend on the drawing's pen, so a marker and a fine pen look the same.
    """
    polylines = [np.asarray(stroke, dtype=np.float64).reshape(-1, 2) for stroke in strokes]
    polylines = [line for line in polylines if len(line)]
    if not polylines:
        return np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    x, y, width, height = box if box is not None else _points_box(polylines)
    extent, pen = _render_geometry()
    scale = extent / max(width, height, 1e-6)
    size = (int(np.ceil(width * scale)) + 2 * RENDER_MARGIN + 1, int(np.ceil(height * scale)) + 2 * RENDER_MARGIN + 1)
    canvas = np.zeros((size[1], size[0]), dtype=np.uint8)
    # Fixed-point coordinates (4 fractional bits) keep the sub-pixel position of each point.
    origin = np.array([x, y]) * scale - RENDER_MARGIN
    fixed = [np.round((line * scale - origin) * 16).astype(np.int32) for line in polylines]
    dots = [len(line) == 1 or not (line != line[0]).any() for line in fixed]
    if not any(dots):
        # One call draws the lines in the same order, and much faster than one call each.
        cv2.polylines(canvas, fixed, False, 255, pen, cv2.LINE_AA, shift=4)
        return normalize_digit(canvas)
    for line, dot in zip(fixed, dots):
        cv2.polylines(canvas, [line], False, 255, pen, cv2.LINE_AA, shift=4)
        if dot:
            cv2.circle(canvas, tuple(int(v) for v in line[0]), 16 * pen // 2, 255, -1, cv2.LINE_AA, shift=4)
    return normalize_digit(canvas)


def _points_box(polylines: list[np.ndarray]) -> tuple[float, float, float, float]:
    points = np.concatenate(polylines)
    low, high = points.min(axis=0), points.max(axis=0)
    return float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])


def _render_geometry() -> tuple[float, int]:
    # The skeleton spans `extent` supersampled pixels and the pen `pen`; after cropping to
    # the ink (skeleton plus pen) and fitting into 20 px, the stroke is MNIST_STROKE_WIDTH wide:
    # pen * DIGIT_BOX / (extent + pen) == MNIST_STROKE_WIDTH.
    pen = round(MNIST_STROKE_WIDTH * SUPERSAMPLE)
    extent = pen * DIGIT_BOX / MNIST_STROKE_WIDTH - pen
    return extent, pen
