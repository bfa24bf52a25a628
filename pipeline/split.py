"""Splitting touching digits: the candidate pieces of a blob, and the best reading of a blob and of a row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np

from pipeline.segment import Blob
from pipeline.types import Box

# Widths are fractions of the drawing's digit height (where blobs are cut: pipeline.cuts). No
# single digit is wider than MAX_DIGIT_WIDTH.
MAX_DIGIT_WIDTH = 1.4
# Touching digits are each nearly as tall as a digit: a shorter piece is a fragment, and
# one shorter than SHORT_PIECE pays SHORT_PIECE_COST per tenth of a digit height it lacks
# (the loop of a 6 reads as a 0 beside its stem read as a 1). A sloping row of touching digits
# (a blob wider than ROW_WIDTH digit heights) makes the digit height too tall, so such rows
# allow ROW_PIECE_MIN_HEIGHT (figures in docs/design.md, "Splitting touching digits").
PIECE_MIN_HEIGHT = 0.55
ROW_PIECE_MIN_HEIGHT = 0.45
ROW_WIDTH = 1.5
SHORT_PIECE = 0.7
SHORT_PIECE_COST = 0.1
# Few digits are wider than WIDE_PIECE digit heights, while two overlapping digits read as
# one (a 7 drawn over the next 7) are: each tenth of a height wider costs WIDE_PIECE_COST,
# the whole blob included.
WIDE_PIECE = 1.0
WIDE_PIECE_COST = 0.1
# Neighbouring digits overlap by at most this fraction of the digit height (a fragment of one
# digit, like the stem of a 4, overlaps its other part much more); slanted handwriting puts the
# foot of each digit under the head of the one before, so the boxes of neighbours overlap.
PIECE_MAX_OVERLAP = 0.3
# A piece lying within its neighbour's width (their overlap more than CONTAINED of the narrower
# one's width) is more often a part of one digit than a digit of its own: the stem of a
# condensed 7 whose bar the digit before took reads 1 as surely as the whole reads 7. Such
# neighbours pay CONTAINED_COST; no veto, since a tight, slanted row puts a 1 within the width
# of the digit beside it (figures in docs/design.md, "Splitting touching digits").
CONTAINED = 0.9
CONTAINED_COST = 0.3
# Digits stand on a common baseline: neighbours whose bottoms differ by more than
# BASELINE_SLACK digit heights (slant and jitter) pay BASELINE_COST in log probability per
# BASELINE_STEP more. The loop and the stem of a 9, or the two strokes of a 4, do not.
BASELINE_SLACK = 0.16
BASELINE_STEP = 0.1
BASELINE_COST = 1.0
# Each piece earns this much log probability, so a reading in more pieces wins when all of
# them are plausible digits standing side by side. 0 suits a model trained to be unsure of
# two digits run together (training.augment, `pair_probability`), so serve models trained with
# pairs; for the same reason cutting a blob no wider than a digit costs nothing.
PIECE_BONUS = 0.0
# A piece the model reads near chance (its top probability below UNSURE_PIECE, twice chance) is
# more likely digits run together than one digit, as the model was trained to read those, and
# pays UNSURE_PIECE_COST more: a blob of condensed digits read at chance as one digit then loses
# to its cuts (figures in docs/design.md, "Splitting touching digits").
UNSURE_PIECE = 0.2
UNSURE_PIECE_COST = 1.0
# Cutting through strokes by position costs this much log probability per cut: a pen
# rarely runs through two digits, while halves of one wide stroke read as digits.
BAND_CUT_COST = 3.0
# Blobs made of more strokes than this are cut only by position (seven touching digits traced
# from MNIST can take 42 strokes).
MAX_STROKES = 64
# A digit's strokes may lie in two neighbouring blobs, one of which holds the next digit too (a
# 4 whose bar touches the 0 before it while its stem stands apart). Neighbours closer than
# PAIR_GAP digit heights (touching or overlapping across) and together at most PAIR_MAX_WIDTH
# wide are also read as one blob cut between its strokes, never whole; a row keeps whichever
# reading scores best.
PAIR_GAP = 0.05
PAIR_MAX_WIDTH = 2.6
# A piece's probability counts as at least this in its log score (the model may say 0).
PROBABILITY_FLOOR = 1e-9

PartKind = Literal["strokes", "band"]


class Part(NamedTuple):
    """A part of a blob: its strokes `start`..`end`-1 in drawing order, or its ink between x = `start` and x = `end`."""

    kind: PartKind
    start: float
    end: float


class Lattice(NamedTuple):
    """How a blob may be cut: a part kind and the ordered boundaries its parts run between."""

    kind: PartKind
    bounds: list


Score = Callable[[Part], tuple[float, Box] | None]
# A reading of the first atoms of a lattice: its log score, its pieces, and the last one's box.
Reading = tuple[float, list[Part], Box | None]


def min_piece_height(blob: Blob, digit_height: float) -> float:
    """The least height of a piece of the blob, in digit heights (less in a row of digits)."""
    return ROW_PIECE_MIN_HEIGHT if blob.width > ROW_WIDTH * digit_height else PIECE_MIN_HEIGHT


def lattice_parts(
    lattice: Lattice,
    extent_of: Callable[[Part], tuple[float, float]],
    digit_height: float,
    min_height: float = PIECE_MIN_HEIGHT,
) -> list[Part]:
    """Every range of consecutive atoms of a lattice that could be one digit (the whole always)."""
    kind, bounds = lattice
    n = len(bounds) - 1
    spans = [
        (i, j)
        for i in range(n)
        for j in range(i + 1, n + 1)
        if (i, j) != (0, n) and _could_be_digit(*extent_of(Part(kind, bounds[i], bounds[j])), digit_height, min_height)
    ]
    # A piece is worth classifying only if pieces before and after it can cover the rest.
    starts, ends = {0}, {n}
    for i, j in spans:
        if i in starts:
            starts.add(j)
    for i, j in reversed(spans):
        if j in ends:
            ends.add(i)
    useful = [Part(kind, bounds[i], bounds[j]) for i, j in spans if i in starts and j in ends]
    return [Part(kind, bounds[0], bounds[n])] + useful


def neighbour_pairs(row: list[Blob], digit_height: float) -> dict[int, Blob]:
    """Neighbouring blobs of a row (left to right) that may share a digit, joined, by the left one's place."""
    pairs = {}
    for index, (first, second) in enumerate(zip(row, row[1:])):
        joined = first.union(second)
        if second.left - first.right <= PAIR_GAP * digit_height and joined.width <= PAIR_MAX_WIDTH * digit_height:
            pairs[index] = joined
    return pairs


def best_row(readings: list[tuple[float, tuple]], paired: dict[int, tuple[float, tuple]]) -> list:
    """The best reading of a row: each blob's (score, digits) alone, or a joined pair's in place of two.

    `paired[i]` reads blobs i and i + 1 together; a pair read as nothing is no option.
    """
    best: list[tuple[float, list]] = [(0.0, [])]
    for end in range(1, len(readings) + 1):
        score, digits = readings[end - 1]
        options = [(best[end - 1][0] + score, best[end - 1][1] + list(digits))]
        joined = paired.get(end - 2)
        if joined is not None and joined[1]:
            options.append((best[end - 2][0] + joined[0], best[end - 2][1] + list(joined[1])))
        best.append(max(options, key=lambda option: option[0]))
    return best[-1][1]


def _could_be_digit(width: float, height: float, digit_height: float, min_height: float) -> bool:
    # No least width: a 1 is as narrow as the pen.
    return width <= MAX_DIGIT_WIDTH * digit_height and height >= min_height * digit_height


def best_split(
    lattice: Lattice, score: Score, digit_height: float, cut_cost: float = 0.0, min_height: float = PIECE_MIN_HEIGHT
) -> tuple[float, list[Part]]:
    """The best reading of a lattice as consecutive pieces, and its log score.

    Dynamic programming over (end, start of the last piece): a piece scores the log of its
    top probability plus PIECE_BONUS, less what it pays for being short; each cut costs
    `cut_cost` plus what the two pieces beside it pay for not standing side by side on one
    baseline, or for one lying within the other's width. The whole is always a candidate.
    """
    kind, bounds = lattice
    n = len(bounds) - 1
    # ending[i]: the best reading of atoms 0..i-1 for each last piece, with that piece's box.
    ending: dict[int, list[Reading]] = {0: [(0.0, [], None)]}
    for end in range(1, n + 1):
        for start in range(end):
            part = Part(kind, bounds[start], bounds[end])
            scored = score(part)
            if scored is None:
                continue
            prior = 0.0 if (start, end) == (0, n) else _height_prior(scored[1][3] / digit_height, min_height)
            if prior is None:
                continue
            prior -= wide_piece_cost(scored[1][2], digit_height)
            gain = _log_score(scored[0]) + prior - (cut_cost if start else 0.0)
            extended = (_extend(before, part, scored[1], gain, digit_height) for before in ending.get(start, []))
            options = [reading for reading in extended if reading is not None]
            if options:
                ending.setdefault(end, []).append(max(options, key=lambda option: option[0]))
    finals = [(total, parts) for total, parts, _ in ending.get(n, [])]
    return max(finals, key=lambda item: item[0]) if finals else (-np.inf, [])


def _log_score(probability: float) -> float:
    # A piece's log score from the model's top probability for it.
    unsure = UNSURE_PIECE_COST if probability < UNSURE_PIECE else 0.0
    return float(np.log(max(probability, PROBABILITY_FLOOR))) + PIECE_BONUS - unsure


def wide_piece_cost(width: float, digit_height: float) -> float:
    """What a piece this many canvas pixels wide pays, in log probability, for being wider than a digit."""
    return WIDE_PIECE_COST * max(0.0, width / digit_height - WIDE_PIECE) / 0.1


def _height_prior(height: float, min_height: float) -> float | None:
    # The log prior of a piece this many digit heights tall being a digit; None for a fragment.
    if height < min_height:
        return None
    return -SHORT_PIECE_COST * max(0.0, SHORT_PIECE - height) / 0.1


def _extend(before: Reading, part: Part, box: Box, gain: float, digit_height: float) -> Reading | None:
    # A reading followed by one more piece, or None when the two cannot be neighbouring digits.
    total, parts, last = before
    link = 0.0 if last is None else _link(last, box, digit_height)
    return None if link is None else (total + gain + link, parts + [part], box)


def box_center(box: Box) -> float:
    """The x of a box's middle: where a piece stands in reading order."""
    return box[0] + box[2] / 2


def _link(first: Box, second: Box, digit_height: float) -> float | None:
    # The log prior of two neighbouring pieces being two digits: None when they overlap
    # like parts of one digit or when the later one lies to the left (digits are written left
    # to right, while a traced 0 may start with its right side: two strokes read "71"), a cost
    # when they do not share a baseline or one lies within the other's width. Touching digits
    # written right to left are then cut only by position (BAND_CUT_COST).
    overlap = min(first[0] + first[2], second[0] + second[2]) - max(first[0], second[0])
    if overlap > PIECE_MAX_OVERLAP * digit_height or box_center(second) < box_center(first):
        return None
    drop = abs(first[1] + first[3] - second[1] - second[3]) / digit_height
    contained = CONTAINED_COST if overlap > CONTAINED * min(first[2], second[2]) else 0.0
    return -BASELINE_COST * max(0.0, drop - BASELINE_SLACK) / BASELINE_STEP - contained
