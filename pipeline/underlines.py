"""Underlines that touch the digits in a picture: a straight stroke under the whole of its component."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline.segment import Blob, find_blobs, typical_digit_height, underline_length

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
