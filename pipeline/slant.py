"""Slant: the slant of handwriting, from its steep strokes or edges, and the shear that stands it upright."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# Lines steeper than this (|dx / dy| below it, 45 degrees) carry the writing's slant; flatter
# ones are bars and the tops of curves.
STEEP = 1.0
# The slant is the steep lines' horizontal drift per unit of height, rounded to SLANT_STEP so
# that a drawing keeps its slant, and its readings stay memoized, as strokes are added.
# Writing within MIN_SLANT of upright (MNIST's writers, within about 8 degrees) is left as
# drawn; beyond MAX_SLANT (35 degrees) the lines are strokes of digits, not a slanted hand.
SLANT_STEP = 0.05
MIN_SLANT = 0.15
MAX_SLANT = 0.7
# A picture's slant, measured from its edges, is tipped by a 7's diagonal or hidden by curves:
# a picture is read again sheared RESHEAR either side (docs/design.md, "Pictures are read at
# three shears").
RESHEAR = 0.2


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
    steep = np.abs(drift) < STEEP * rise
    total = float(rise[steep].sum())
    if total <= 0:
        return 0.0
    slant = round(round(float(drift[steep].sum()) / total / SLANT_STEP) * SLANT_STEP, 2)
    return float(np.clip(slant, -MAX_SLANT, MAX_SLANT)) if abs(slant) >= MIN_SLANT else 0.0


def slants_to_try(slant: float) -> list[float]:
    """`slant` first, then RESHEAR either side of it within MAX_SLANT, each slant once."""
    others = [round(float(np.clip(slant + step, -MAX_SLANT, MAX_SLANT)), 2) for step in (-RESHEAR, RESHEAR)]
    return list(dict.fromkeys([slant, *others]))


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
