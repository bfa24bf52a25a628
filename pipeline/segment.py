"""Segmentation: connected components, speck removal, merging of digit fragments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# Every threshold below is relative to the drawing's own digit height (`digit_height`) or pen width,
# so a tiny drawing and a huge one are segmented alike.
# A component spanning less than this many pen widths is a dot, never a digit.
DOT_PENS = 2.0
# Components smaller than this fraction of the digit height are specks.
SPECK_FRACTION = 0.15
# Components taller than this fraction of the tallest one set the typical digit height, as
# the upper quartile of their heights: the whole digits, not the fragments of one.
TALL_FRACTION = 0.5
SIZE_PERCENTILE = 75
# A component shorter than this fraction of the digit height (or of its taller partner)
# may be a fragment of a digit.
FRAGMENT_FRACTION = 0.8
# A fragment merges with a component it overlaps horizontally by at least this fraction of
# the narrower one, when the vertical gap and the merged height stay within a digit's.
MERGE_OVERLAP = 0.5
MERGE_GAP = 0.4
MERGE_MAX_HEIGHT = 1.6
# A fragment beside a component (within this gap) and inside its vertical span merges too,
# less eagerly, when the result is no wider than a digit: the L of a 4 next to its stem.
# So does one at its corner, within SIDE_GAP to the side and CORNER_GAP above or below:
# the detached top bar of a 5.
SIDE_GAP = 0.12
CORNER_GAP = 0.3
# Two pieces stacked one right above the other, closer than this fraction of the shorter
# one's height, are one broken stroke even when each is as tall as a digit.
STACK_GAP = 0.2
SIDE_MAX_WIDTH = 1.1
SIDE_SCORE = 0.25
# A flat piece at a taller one's top right, beside it or over its right part, is the bar of a
# 5 and may reach further out: up to BAR_MAX_WIDTH digit heights for the two together, since
# such bars left alone read as a 7 or a 2 (figures in docs/design.md, "Segmentation").
BAR_FLATNESS = 0.6
BAR_TOP = 0.35
BAR_MAX_WIDTH = 1.6
# 8-connected components are two pixels apart at least, so a mask of fewer pixels than this
# has fewer than 2**16 of them and 16-bit labels (faster to compute) suffice.
SMALL_LABELS_PIXELS = 4 * 65535


@dataclass(frozen=True)
class Blob:
    """A group of connected components thought to be one digit (or touching digits), in canvas pixels."""

    left: float
    top: float
    right: float
    bottom: float
    labels: tuple[int, ...]

    @property
    def width(self) -> float:
        return self.right - self.left

    @property
    def height(self) -> float:
        return self.bottom - self.top

    @property
    def extent(self) -> float:
        return max(self.width, self.height)

    def union(self, other: "Blob") -> "Blob":
        """The blob holding both components."""
        return Blob(
            min(self.left, other.left),
            min(self.top, other.top),
            max(self.right, other.right),
            max(self.bottom, other.bottom),
            tuple(sorted(self.labels + other.labels)),
        )


def find_blobs(
    mask: np.ndarray, scale: float = 1.0, origin: tuple[float, float] = (0.0, 0.0)
) -> tuple[np.ndarray, list[Blob]]:
    """Label 8-connected ink of a 0/1 uint8 mask drawn at `scale` from canvas point `origin`.

    Returns the label image and one blob per component, its box in canvas pixels.
    """
    ltype = cv2.CV_16U if mask.size < SMALL_LABELS_PIXELS else cv2.CV_32S
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=ltype)
    blobs = []
    for label in range(1, count):
        x, y, width, height = (float(value) / scale for value in stats[label, :4])
        x, y = x + origin[0], y + origin[1]
        blobs.append(Blob(x, y, x + width, y + height, (label,)))
    return labels, blobs


def typical_digit_height(blobs: list[Blob], pen: float) -> float:
    """The drawing's typical digit height, from the heights of its tall components."""
    heights = sorted(blob.height for blob in blobs if blob.extent >= DOT_PENS * pen)
    if not heights:
        return 0.0
    tall = [height for height in heights if height >= TALL_FRACTION * heights[-1]]
    # The percentile with linear interpolation, as np.percentile has it, at a tenth of its cost.
    position = (len(tall) - 1) * SIZE_PERCENTILE / 100
    below = int(position)
    above = min(below + 1, len(tall) - 1)
    return float(tall[below] + (tall[above] - tall[below]) * (position - below))


def drop_specks(blobs: list[Blob], digit_height: float, pen: float) -> list[Blob]:
    """Keep the components that are large enough, relative to the digits and the pen, to matter."""
    limit = max(SPECK_FRACTION * digit_height, DOT_PENS * pen)
    return [blob for blob in blobs if blob.extent >= limit]


def merge_fragments(blobs: list[Blob], digit_height: float, charge: Callable[[int], None] | None = None) -> list[Blob]:
    """Merge pieces of one digit (a detached bar, a two-stroke 4, a broken stroke) into one blob.

    Each pass tests every pair; `charge`, when given, is told how many before each pass.
    """
    blobs = list(blobs)
    while True:
        if charge is not None:
            charge(len(blobs) * (len(blobs) - 1) // 2)
        pair = _best_merge(blobs, digit_height)
        if pair is None:
            return blobs
        first, second = pair
        merged = blobs[first].union(blobs[second])
        blobs = [blob for index, blob in enumerate(blobs) if index not in pair] + [merged]


def _best_merge(blobs: list[Blob], digit_height: float) -> tuple[int, int] | None:
    best, best_score = None, 0.0
    for i, first in enumerate(blobs):
        for j in range(i + 1, len(blobs)):
            score = _merge_score(first, blobs[j], digit_height)
            if score > best_score:
                best, best_score = (i, j), score
    return best


def _merge_score(first: Blob, second: Blob, digit_height: float) -> float:
    # Most pairs are far apart; they are told apart before any box is built.
    if max(first.left, second.left) - min(first.right, second.right) > SIDE_GAP * digit_height:
        return 0.0
    merged = first.union(second)
    overlap = (min(first.right, second.right) - max(first.left, second.left)) / max(
        min(first.width, second.width), 1e-6
    )
    gap = max(first.top, second.top) - min(first.bottom, second.bottom)
    if overlap >= MERGE_OVERLAP and abs(gap) <= STACK_GAP * min(first.height, second.height):
        return overlap
    # Otherwise two whole digits never merge: one of the two must be shorter than a digit.
    if min(first.height, second.height) >= FRAGMENT_FRACTION * max(digit_height, first.height, second.height):
        return 0.0
    if gap > MERGE_GAP * digit_height or merged.height > MERGE_MAX_HEIGHT * digit_height:
        return 0.0
    if overlap >= MERGE_OVERLAP:
        return overlap
    side = _beside(first, second, digit_height) and merged.width <= SIDE_MAX_WIDTH * digit_height
    return (
        SIDE_SCORE
        if side or (_top_bar(first, second, digit_height) and merged.width <= BAR_MAX_WIDTH * digit_height)
        else 0.0
    )


def _beside(first: Blob, second: Blob, digit_height: float) -> bool:
    # The shorter blob's middle is within the taller one's rows, a small gap to its side,
    # or the two boxes (nearly) meet at a corner.
    short, tall = sorted((first, second), key=lambda blob: blob.height)
    gap = max(short.left, tall.left) - min(short.right, tall.right)
    rise = max(short.top, tall.top) - min(short.bottom, tall.bottom)
    inside = tall.top <= (short.top + short.bottom) / 2 <= tall.bottom
    return gap <= SIDE_GAP * digit_height and (inside or rise <= CORNER_GAP * digit_height)


def _top_bar(first: Blob, second: Blob, digit_height: float) -> bool:
    # The flat piece starts over the right half of the taller one, or a small gap past it,
    # reaches past its right edge, and its middle lies in the taller one's top rows.
    short, tall = sorted((first, second), key=lambda blob: blob.height)
    flat = short.height <= BAR_FLATNESS * short.width
    right = tall.left + tall.width / 2 <= short.left <= tall.right + SIDE_GAP * digit_height
    high = (short.top + short.bottom) / 2 <= tall.top + BAR_TOP * tall.height
    return flat and right and high and short.right > tall.right
