"""Underlines: lines drawn under a number, as components, as strokes, and touching the digits of a picture."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.segment import Blob, find_blobs, typical_digit_height

# A component at least UNDERLINE_LENGTH digit heights and UNDERLINE_PENS pen widths wide, and no
# taller than UNDERLINE_HEIGHT of a digit (a hand's line slopes and wavers), is a line drawn
# under or over the number: the widest digit, a 7 with a long bar, is about one height wide.
UNDERLINE_LENGTH = 1.5
UNDERLINE_PENS = 10.0
UNDERLINE_HEIGHT = 0.4
# A single stroke (or a component) that flat is a line from UNDERLINE_STROKE_LENGTH digit
# heights and UNDERLINE_STROKE_PENS pens wide when it lies wholly below the middle of the
# drawing: no digit has a stroke that wide at its foot, while a 7's long bar, at its top, may be.
UNDERLINE_STROKE_LENGTH = 1.0
UNDERLINE_STROKE_PENS = 6.0
SHORT_UNDERLINE = (UNDERLINE_STROKE_LENGTH, UNDERLINE_STROKE_PENS)
LONG_UNDERLINE = (UNDERLINE_LENGTH, UNDERLINE_PENS)

# A line touching the digits it underlines joins their component; it runs under at least this
# share of the number's width (the joined feet of two 2s, or the bars of two 4s, run under a
# part of it only).
UNDERLINE_SPAN = 0.9
# Nothing of the component lies below the line in at least this share of its columns (the
# joined tops of an 8 and a 7's bar have the digits below them).
UNDERLINE_LOWEST = 0.8
# Its lowest edge is straight: it strays from the straight line fitted to it by at most this
# many pen widths (standard deviation), where the round feet of digits run together do not.
UNDERLINE_STRAIGHT = 0.3
# Runs are measured on the ink widened this many pen widths up and down, so that a line drawn
# by hand, sloping or wavering, still runs unbroken; the runs found are narrowed back as much.
UNDERLINE_SLACK = 1.0
# Rows are measured this many at a time, which bounds the memory a large picture takes.
BAND_ROWS = 256
# At most this many of the widest components are examined, each in a pass over its box: a
# number is underlined once or twice, and a picture of many nested frames costs no more.
UNDERLINE_CANDIDATES = 3


def drop_underlines(blobs: list[Blob], digit_height: float, pen: float) -> list[Blob]:
    """Keep the components that are not lines drawn apart from the digits, under or over them.

    Below the drawing's middle a line may be as short as a stroke drawn under the number.
    """
    if not blobs:
        return blobs
    middle = _middle(blobs)
    # The short line's least width is below the long one's: one test, by where the blob lies.
    return [
        blob
        for blob in blobs
        if not is_underline(
            blob.width, blob.height, digit_height, pen, SHORT_UNDERLINE if blob.top > middle else LONG_UNDERLINE
        )
    ]


def _middle(blobs: list[Blob]) -> float:
    # Halfway between the top of the highest component and the bottom of the lowest.
    return (min(blob.top for blob in blobs) + max(blob.bottom for blob in blobs)) / 2


def drop_underline_strokes(
    strokes: list[np.ndarray], bounds: Sequence[tuple[float, ...]], blobs: list[Blob], pen: float
) -> list[np.ndarray]:
    """Keep the strokes that are not a line drawn under the number (touching its digits or not).

    `bounds`: each stroke's (left, top, right, bottom); `blobs`: the components of all the
    strokes. A drawing that is only such lines is kept whole.
    """
    if not blobs:
        return strokes
    digit_height = typical_digit_height(blobs, pen)
    middle = _middle(blobs)
    left, top, right, bottom = np.asarray(bounds, dtype=np.float64).T
    line = is_underline(right - left + pen, bottom - top + pen, digit_height, pen, SHORT_UNDERLINE)
    line &= top > middle
    return [stroke for stroke, drop in zip(strokes, line) if not drop] if 0 < line.sum() < len(strokes) else strokes


def is_underline(width, height, digit_height: float, pen: float, least: tuple[float, float] = LONG_UNDERLINE):
    """Whether ink this wide and tall (numbers or arrays) is a line drawn under or over a number, not a digit.

    `least`: the least width of such a line, in digit heights and in pen widths.
    """
    return (width >= underline_length(digit_height, pen, least)) & (height <= UNDERLINE_HEIGHT * digit_height)


def underline_length(digit_height: float, pen: float, least: tuple[float, float] = LONG_UNDERLINE) -> float:
    """The least width of a line under a number: `least` digit heights and pen widths."""
    return max(least[0] * digit_height, least[1] * pen)


def without_touching_underlines(ink: np.ndarray, mask: np.ndarray, pen: float) -> tuple[np.ndarray, np.ndarray]:
    """The ink-high picture and its 0/1 mask without the underlines that touch their digits."""
    labels, blobs = find_blobs(mask)
    length = underline_length(typical_digit_height(blobs, pen), pen)
    reach = max(1, round(UNDERLINE_SLACK * pen))
    line = np.zeros(mask.shape, bool)
    wide = sorted((blob for blob in blobs if blob.width >= length > 0), key=lambda blob: -blob.width)
    for blob in wide[:UNDERLINE_CANDIDATES]:
        rows = slice(max(0, int(blob.top) - reach), int(blob.bottom) + reach)
        columns = slice(int(blob.left), int(blob.right))
        own = np.isin(labels[rows, columns], blob.labels)
        line[rows, columns] |= _underline(own, max(length, UNDERLINE_SPAN * _row_width(blob, blobs)), reach, pen)
    if not line.any():
        return ink, mask
    kept = np.where(line, 0, mask).astype(np.uint8)
    edge = cv2.dilate(line.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & (kept == 0)
    return np.where(edge, 0, ink).astype(np.uint8), kept


def _row_width(blob: Blob, blobs: list[Blob]) -> float:
    # How wide the ink beside the blob is, in the band of rows it spans: the number it is in.
    row = [other for other in blobs if other.bottom > blob.top and other.top < blob.bottom]
    return max(other.right for other in row) - min(other.left for other in row)


def _underline(own: np.ndarray, length: float, reach: int, pen: float) -> np.ndarray:
    # The component's long straight runs mark where a line may be; it is one if the lowest ink
    # of most of the columns they span lies in them. Each of those columns loses its lowest
    # stroke, as thick as the line is in most of them (not the stem of a digit standing on it).
    band = np.ones((2 * reach + 1, 1), np.uint8)
    runs = _long_runs(cv2.dilate(own.astype(np.uint8), band), length)
    spanned = runs.any(axis=0) & own.any(axis=0)
    line = np.zeros(own.shape, bool)
    if not spanned.any():
        return line
    height, columns = own.shape[0], np.arange(own.shape[1])
    bottom = height - 1 - np.argmax(own[::-1], axis=0)
    # A sloping line's ends lie below the rows it runs through whole, by up to the widening.
    on_line = spanned & cv2.dilate(runs.astype(np.uint8), band).astype(bool)[bottom, columns]
    if on_line.sum() < UNDERLINE_LOWEST * spanned.sum() or not _straight(columns[on_line], bottom[on_line], pen):
        return line
    thickness = _bottom_strokes(own, bottom)
    cut = min(thickness[on_line].max(), int(np.median(thickness[on_line])) + 1)
    rows = np.arange(height)[:, None]
    return on_line & (rows <= bottom) & (rows > bottom - np.minimum(thickness, cut))


def _straight(xs: np.ndarray, ys: np.ndarray, pen: float) -> bool:
    residuals = ys - np.polyval(np.polyfit(xs, ys, 1), xs) if len(xs) > 2 else np.zeros(1)
    return float(np.std(residuals)) <= UNDERLINE_STRAIGHT * pen


def _bottom_strokes(own: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    # How many rows of ink each column holds unbroken, up from its lowest ink: up to the last
    # paper above it.
    paper = ~own & (np.arange(own.shape[0])[:, None] <= bottom)
    last_paper = np.where(paper.any(axis=0), own.shape[0] - 1 - np.argmax(paper[::-1], axis=0), -1)
    return bottom - last_paper


def _long_runs(mask: np.ndarray, length: float) -> np.ndarray:
    # Each row's runs of ink are numbered in one pass (a run starts where ink follows paper or
    # the row's start), and the runs at least `length` long are kept.
    found = np.zeros(mask.shape, bool)
    for top in range(0, mask.shape[0], BAND_ROWS):
        band = mask[top : top + BAND_ROWS].astype(bool)
        starts = band & ~np.pad(band, ((0, 0), (1, 0)))[:, :-1]
        runs = np.cumsum(starts.ravel(), dtype=np.int32).reshape(band.shape) * band
        long = np.bincount(runs.ravel()) >= length
        long[0] = False
        found[top : top + BAND_ROWS] = long[runs]
    return found
