"""Splitting touching digits: candidate cuts of a wide blob, and the best reading by dynamic programming."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.segment import Blob
from pipeline.types import Box

# Widths are fractions of the drawing's digit height. Blobs wider than SPLIT_MIN_WIDTH may
# be touching digits (a 1 beside a 7 is narrow) and are tried split; no single digit is
# wider than MAX_DIGIT_WIDTH.
SPLIT_MIN_WIDTH = 0.8
MAX_DIGIT_WIDTH = 1.4
MIN_PIECE_WIDTH = 0.1
# Cut positions per digit-width of blob, and the closest two cuts may be.
CUTS_PER_DIGIT = 2.0
CUT_RESOLUTION = 0.06
DIGIT_PITCH = 0.75
# Touching digits are each nearly as tall as a digit and stand side by side: a piece shorter
# than this, or overlapping its neighbour by more than this fraction of the narrower of the
# two, is not a digit of its own.
PIECE_MIN_HEIGHT = 0.6
PIECE_MAX_OVERLAP = 0.35
# The number of digits a blob holds is expected to be its width over DIGIT_PITCH; each
# digit more or fewer costs COUNT_WEIGHT in log probability.
COUNT_WEIGHT = 0.3
# Blobs made of more strokes than this are cut only by position.
MAX_STROKES = 12

# A part of a blob: ("band", left, right) is the blob between two x; ("strokes", i, j) is
# its strokes i..j-1 in drawing order. A lattice is a kind and its ordered boundaries.
Part = tuple
Lattice = tuple[str, list]
Score = Callable[[Part], tuple[float, Box] | None]


def is_wide(blob: Blob, size: float) -> bool:
    """Whether the blob may hold touching digits."""
    return blob.width > SPLIT_MIN_WIDTH * size


def lattice_parts(lattice: Lattice, extent_of: Callable[[Part], tuple[float, float]], size: float) -> list[Part]:
    """Every range of consecutive atoms of a lattice that could be one digit (the whole always)."""
    kind, bounds = lattice
    whole = (kind, bounds[0], bounds[-1])
    parts = [whole]
    for i in range(len(bounds) - 1):
        for j in range(i + 1, len(bounds)):
            part = (kind, bounds[i], bounds[j])
            if part != whole and _could_be_digit(*extent_of(part), size):
                parts.append(part)
    return parts


def _could_be_digit(width: float, height: float, size: float) -> bool:
    return MIN_PIECE_WIDTH * size <= width <= MAX_DIGIT_WIDTH * size and height >= PIECE_MIN_HEIGHT * size


def cut_positions(blob: Blob, profile: np.ndarray, first_x: float, scale: float, size: float) -> list[float]:
    """Cut x positions: the thinnest columns of the ink profile, then even divisions of the width."""
    if not is_wide(blob, size) or len(profile) < 3:
        return []
    inner = np.arange(1, len(profile) - 1)
    minima = inner[(profile[inner] <= profile[inner - 1]) & (profile[inner] <= profile[inner + 1])]
    minima = minima[np.argsort(profile[minima], kind="stable")]
    pieces = max(2, round(blob.width / (DIGIT_PITCH * size)))
    # Touching round digits (two 0s) meet where the profile is thick, so even divisions of
    # the width are candidates too.
    even = [blob.left + blob.width * step / pieces for step in range(1, pieces)]
    thin = [first_x + (index + 0.5) / scale for index in minima]
    limit = int(np.ceil(CUTS_PER_DIGIT * pieces))
    cuts: list[float] = []
    for x in thin[:pieces] + even + thin[pieces:]:
        inside = blob.left + MIN_PIECE_WIDTH * size <= x <= blob.right - MIN_PIECE_WIDTH * size
        if inside and all(abs(x - cut) >= CUT_RESOLUTION * size for cut in cuts) and len(cuts) < limit:
            cuts.append(float(x))
    return sorted(cuts)


def best_split(lattice: Lattice, score: Score, size: float, width: float, whole_ok: bool = True) -> tuple[float, list[Part]]:
    """The best reading of a lattice as consecutive pieces, and its log score.

    Dynamic programming over (end, start of the last piece, number of pieces): a piece scores
    the log of its top probability, consecutive pieces must stand side by side, and the
    number of pieces pays for straying from what the blob's width suggests.
    """
    kind, bounds = lattice
    n = len(bounds) - 1
    whole = (kind, bounds[0], bounds[-1])
    best: dict[tuple[int, int], dict[int, tuple[float, list[Part]]]] = {}
    for end in range(1, n + 1):
        for start in range(end):
            part = (kind, bounds[start], bounds[end])
            scored = score(part)
            if scored is None or (part == whole and not whole_ok):
                continue
            if part != whole and scored[1][3] < PIECE_MIN_HEIGHT * size:
                continue
            gain = float(np.log(max(scored[0], 1e-9)))
            best[(end, start)] = {1: (gain, [part])} if start == 0 else _extend(best, start, part, scored[1], gain, score)
    finals = [(total + _count_prior(count, width, size), parts) for start in range(n)
              for count, (total, parts) in best.get((n, start), {}).items()]
    return max(finals, key=lambda item: item[0]) if finals else (-np.inf, [])


def _extend(best, start: int, part: Part, box: Box, gain: float, score: Score) -> dict[int, tuple[float, list[Part]]]:
    extended: dict[int, tuple[float, list[Part]]] = {}
    for k in range(start):
        for count, (total, parts) in best.get((start, k), {}).items():
            if _side_by_side(score(parts[-1])[1], box) and total + gain > extended.get(count + 1, (-np.inf,))[0]:
                extended[count + 1] = (total + gain, parts + [part])
    return extended


def _count_prior(count: int, width: float, size: float) -> float:
    # A blob as wide as n digits most likely holds n; each digit more or less costs this much.
    expected = max(1.0, width / (DIGIT_PITCH * size))
    return -COUNT_WEIGHT * abs(count - expected)


def _side_by_side(first: Box, second: Box) -> bool:
    overlap = min(first[0] + first[2], second[0] + second[2]) - max(first[0], second[0])
    return overlap <= PIECE_MAX_OVERLAP * min(first[2], second[2])
