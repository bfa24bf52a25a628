"""Slant: the slant of handwriting, from its steep strokes or edges, and the shear that stands it upright."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# The slant is the most common lean of the lines, weighted by their height: their dx / dy
# binned by SLANT_STEP, the bins summed over a window of WINDOW either side, then averaged
# within that window of the best one. Lines leaning MAX_LEAN or more (42 degrees) are bars and
# the tops of curves. The result is rounded to SLANT_STEP so that a drawing keeps its slant, and its
# readings stay memoized, as strokes are added. Writing within MIN_SLANT of upright (MNIST's
# writers, within about 8 degrees) is left alone; beyond MAX_SLANT (35 degrees) the lines are
# strokes of digits, not a slanted hand.
SLANT_STEP = 0.05
WINDOW = 0.25
MAX_LEAN = 0.9
MIN_SLANT = 0.15
MAX_SLANT = 0.7


def stroke_slant(polylines: Sequence[np.ndarray]) -> float:
    """The slant of pen strokes: dx per dy (negative for writing that leans right), 0 if upright."""
    steps = np.concatenate([np.diff(line, axis=0) for line in polylines if len(line) > 1] or [np.zeros((0, 2))])
    return _slant(steps[:, 0] * np.sign(steps[:, 1]), np.abs(steps[:, 1]))


def image_slant(ink: np.ndarray) -> float:
    """The slant of an ink-high picture, from the direction of its edges (dx per dy, as `stroke_slant`)."""
    smooth = cv2.GaussianBlur(ink, (5, 5), 0).astype(np.float32)
    across = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3)
    down = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)
    # An edge runs at right angles to its gradient: dx / dy = -down / across.
    return _slant((-down * np.sign(across)).ravel(), np.abs(across).ravel())


def _slant(drift: np.ndarray, rise: np.ndarray) -> float:
    lean = drift[rise > 0] / rise[rise > 0]
    weight = rise[rise > 0]
    lean, weight = lean[np.abs(lean) < MAX_LEAN], weight[np.abs(lean) < MAX_LEAN]
    edges = np.arange(-MAX_LEAN, MAX_LEAN + SLANT_STEP / 2, SLANT_STEP)
    counts, _ = np.histogram(lean, edges, weights=weight)
    if counts.sum() <= 0:
        return 0.0
    reach = round(WINDOW / SLANT_STEP)
    # A tent, not a box: the best window is centred on the most common lean, not on its edge.
    windows = np.convolve(counts, reach + 1 - np.abs(np.arange(-reach, reach + 1)), mode="same")
    centers = (edges[:-1] + edges[1:]) / 2
    limit = round(MAX_SLANT / SLANT_STEP)
    middle = len(centers) // 2
    best = middle - limit + int(np.argmax(windows[middle - limit : middle + limit + 1]))
    near = np.abs(lean - centers[best]) <= WINDOW
    slant = float(np.average(lean[near], weights=weight[near])) if weight[near].sum() > 0 else 0.0
    slant = round(round(float(np.clip(slant, -MAX_SLANT, MAX_SLANT)) / SLANT_STEP) * SLANT_STEP, 2)
    return slant if abs(slant) >= MIN_SLANT else 0.0


def shear_points(points: np.ndarray, slant: float, pivot: float) -> np.ndarray:
    """Points moved so that lines leaning `slant` stand upright (row `pivot` stays put)."""
    moved = np.array(points, dtype=np.float64)
    moved[:, 0] -= slant * (moved[:, 1] - pivot)
    return moved


def shear_image(image: np.ndarray, slant: float, interpolation: int = cv2.INTER_LINEAR) -> tuple[np.ndarray, float]:
    """The picture sheared as `shear_points` with pivot 0, widened to keep all of it, and the x offset added."""
    height, width = image.shape
    offset = max(0.0, slant * (height - 1))
    matrix = np.float32([[1, -slant, offset], [0, 1, 0]])
    size = (width + int(np.ceil(abs(slant) * (height - 1))) + 1, height)
    return cv2.warpAffine(image, matrix, size, flags=interpolation, borderValue=0), offset
