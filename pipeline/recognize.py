"""Classification and orchestration: segment a drawing, classify every digit in one batch, assemble the text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import partial

import numpy as np

from demnistify.constants import NUM_CLASSES
from pipeline.budget import PAIR_TEST, SPAN, Budget
from pipeline.drawing import StrokeDrawing
from pipeline.image_drawing import ImageDrawing
from pipeline.normalize import render_strokes_digit
from pipeline.one_hand import flagged_ones
from pipeline.rows import drop_lone_marks, join_stray_rows
from pipeline.segment import Blob, drop_specks, merge_fragments, typical_digit_height
from pipeline.slant import stroke_slant
from pipeline.split import (
    Lattice,
    Part,
    best_row,
    best_split,
    box_center,
    lattice_parts,
    min_piece_height,
    neighbour_pairs,
)
from pipeline.strokes import check_canvas, check_pen_width, check_strokes
from pipeline.types import Box, Classifier, Digit, Piece, ReadingMemo, Recognition, StrokeRenderer
from pipeline.underlines import drop_underline_strokes, drop_underlines

# Digits the classifier gives less than this probability are flagged unsure.
UNSURE_THRESHOLD = 0.6
TOP_CANDIDATES = 3

Drawing = StrokeDrawing | ImageDrawing
# A blob's or joined pair's digits, left to right, and the log score of that reading.
Reading = tuple[float, tuple[Digit, ...]]


def recognize_strokes(
    strokes: Sequence,
    width: int,
    height: int,
    classify: Classifier,
    pen_width: float | None = None,
    render: StrokeRenderer = render_strokes_digit,
    memo: ReadingMemo | None = None,
    budget: Budget | None = None,
) -> Recognition:
    """Read the number drawn as polylines of [x, y] canvas points on a width x height canvas.

    `render` turns each digit candidate's strokes into the model's input (a caller may pass
    a memoized `render_strokes_digit`); `memo` remembers blobs read before, for one model.
    Raises ValueError on a bad canvas, pen width or stroke; an empty drawing gives "".
    The work is charged to `budget` (default: `Budget.for_points` of the drawing), which raises
    `pipeline.budget.TooComplex` past its limit.
    """
    width, height = check_canvas(width, height)
    pen = check_pen_width(pen_width, width, height)
    polylines = check_strokes(strokes, width, height)
    if not polylines:
        return Recognition.empty()
    budget = budget or Budget.for_points(sum(len(line) for line in polylines))
    return recognize_drawing(_stroke_drawing(polylines, pen, render), classify, memo, budget)


def _stroke_drawing(polylines: list, pen: float, render: StrokeRenderer) -> StrokeDrawing:
    # A line drawn under the number joins every digit it touches into one blob: it is left out.
    drawing = StrokeDrawing.build(polylines, pen, render, stroke_slant(polylines))
    kept = drop_underline_strokes(polylines, drawing.bounds, list(drawing.blobs), pen)
    return drawing if len(kept) == len(polylines) else StrokeDrawing.build(kept, pen, render, stroke_slant(kept))


def recognize_drawing(
    drawing: Drawing, classify: Classifier, memo: ReadingMemo | None = None, budget: Budget | None = None
) -> Recognition:
    """Segment a prepared drawing, classify all digit candidates in one call, and assemble the result.

    Each blob is read alone and, where it touches its neighbour, together with it (see
    `pipeline.split.PAIR_GAP`); each row keeps its best reading, a 7 far more like a 1 than the
    row's plainest 7 read as its writer's flagged 1 (`pipeline.one_hand`). With a `memo` (stroke
    drawings only), blobs read before with the same strokes, pen and digit height are not read
    again. Work that grows faster than the drawing is charged to `budget` before it is done.
    """
    budget = budget or Budget()
    digit_height = typical_digit_height(list(drawing.blobs), drawing.pen)
    blobs = merge_fragments(
        drop_underlines(drop_specks(list(drawing.blobs), digit_height, drawing.pen), digit_height, drawing.pen),
        digit_height,
        lambda pairs: budget.charge(PAIR_TEST * pairs),
    )
    # Rows are found by testing every pair of blobs, twice.
    budget.charge(PAIR_TEST * len(blobs) ** 2)
    rows = drop_lone_marks(join_stray_rows(blobs, digit_height), digit_height)
    pairs = [
        {index: pair for index, pair in neighbour_pairs(row, digit_height).items() if drawing.joined_lattices(pair)}
        for row in rows
    ]
    groups = [(blob, False) for row in rows for blob in row] + [(pair, True) for row in pairs for pair in row.values()]
    readings = _read_groups(drawing, groups, classify, digit_height, memo, budget)
    digits = []
    for line, (row, joined) in enumerate(zip(rows, pairs)):
        alone = [readings[blob.labels, False] for blob in row]
        together = {index: readings[pair.labels, True] for index, pair in joined.items()}
        digits += [_on_line(digit, line) for digit in flagged_ones(best_row(alone, together))]
    return _assemble(digits)


def _read_groups(
    drawing: Drawing,
    groups: list[tuple[Blob, bool]],
    classify: Classifier,
    digit_height: float,
    memo: ReadingMemo | None,
    budget: Budget,
) -> dict[tuple, Reading]:
    # Each blob's and joined pair's reading, from the memo when it holds one.
    keys = (
        {(blob.labels, joined): drawing.reading_key(blob, digit_height, joined) for blob, joined in groups}
        if memo is not None
        else {}
    )
    known = {group: found for group, key in keys.items() if (found := memo.get(key)) is not None}
    fresh = _read_blobs(
        drawing,
        [(blob, joined) for blob, joined in groups if (blob.labels, joined) not in known],
        classify,
        digit_height,
        budget,
    )
    for group, reading in fresh.items():
        if group in keys:
            memo.put(keys[group], reading)
    return known | fresh


def _read_blobs(
    drawing: Drawing, groups: list[tuple[Blob, bool]], classify: Classifier, digit_height: float, budget: Budget
) -> dict[tuple, Reading]:
    # Each group's digits, left to right, and their score. Every candidate piece of every group
    # is classified in one call, and a piece that several groups share only once.
    lattices = {
        (blob.labels, joined): drawing.joined_lattices(blob) if joined else drawing.lattices(blob, digit_height)
        for blob, joined in groups
    }
    # Listing a lattice's candidates and searching its splits both take every span of its atoms.
    budget.charge(sum(_lattice_work(lattice) for found in lattices.values() for lattice in found))
    parts = {
        (blob.labels, joined): {
            part: drawing.part_key(blob, part)
            for part in _candidate_parts(drawing, blob, lattices[blob.labels, joined], digit_height, joined)
        }
        for blob, joined in groups
    }
    pieces = _unique_pieces(drawing, groups, parts, digit_height, budget)
    found = [key for key, piece in pieces.items() if piece is not None]
    probabilities = dict(zip(found, _classify(classify, [pieces[key] for key in found])))

    def score(group: tuple, part: Part) -> tuple[float, Box] | None:
        key = parts[group].get(part)
        return (float(probabilities[key].max()), pieces[key].box) if key in probabilities else None

    readings = {}
    for blob, joined in groups:
        group = (blob.labels, joined)
        total, chosen = _best_parts(drawing, blob, lattices[group], digit_height, partial(score, group))
        keys = sorted((parts[group][part] for part in chosen), key=lambda key: box_center(pieces[key].box))
        readings[group] = (total, tuple(_digit(pieces[key], probabilities[key]) for key in keys))
    return readings


def _unique_pieces(
    drawing: Drawing, groups: list[tuple[Blob, bool]], parts: dict, digit_height: float, budget: Budget
) -> dict:
    # A blob and the pairs it is in share most parts: each piece is cut and rendered once.
    pieces = {}
    for blob, joined in groups:
        for part, key in parts[blob.labels, joined].items():
            if key not in pieces:
                pieces[key] = drawing.piece(blob, part, digit_height, budget)
    return pieces


def _lattice_work(lattice: Lattice) -> float:
    # Spans of n atoms: n^2 / 2. A span of strokes is measured over its strokes and extended from
    # every reading ending where it starts (about n / 3 on average); a band, in constant time.
    atoms = len(lattice.bounds) - 1
    return SPAN * atoms * atoms * ((atoms + 3) / 3 if lattice.kind == "strokes" else 1)


def _candidate_parts(
    drawing: Drawing, blob: Blob, lattices: list[Lattice], digit_height: float, joined: bool
) -> set[Part]:
    # A joined pair is never read whole: merge_fragments decides which blobs are one digit.
    extent_of, least = partial(drawing.extent_of, blob), min_piece_height(blob, digit_height)
    found = {part for lattice in lattices for part in lattice_parts(lattice, extent_of, digit_height, least)}
    return found - {drawing.whole(blob)} if joined else found


def _best_parts(
    drawing: Drawing, blob: Blob, lattices: list[Lattice], digit_height: float, score
) -> tuple[float, list[Part]]:
    # The best split and its score. A blob's lattices hold its whole, which best_split always
    # reads when it could be classified; a joined pair, never read whole, may find no reading.
    least = min_piece_height(blob, digit_height)
    splits = [best_split(lattice, score, digit_height, drawing.cut_cost(lattice), least) for lattice in lattices]
    return max(splits, key=lambda item: item[0])


def _classify(classify: Classifier, pieces: list[Piece]) -> np.ndarray:
    if not pieces:
        return np.zeros((0, NUM_CLASSES), dtype=np.float32)
    probabilities = np.asarray(classify(np.stack([piece.image for piece in pieces])), dtype=np.float64)
    if probabilities.shape != (len(pieces), NUM_CLASSES) or not np.isfinite(probabilities).all():
        raise ValueError(
            f"The classifier must return finite probabilities of shape ({len(pieces)}, {NUM_CLASSES}), "
            f"got shape {probabilities.shape}."
        )
    return probabilities


def _digit(piece: Piece, probabilities: np.ndarray) -> Digit:
    order = np.argsort(-probabilities, kind="stable")[:TOP_CANDIDATES]
    candidates = tuple((int(label), float(probabilities[label])) for label in order)
    label, confidence = candidates[0]
    return Digit(
        label=label,
        confidence=confidence,
        candidates=candidates,
        box=piece.shown or piece.box,
        unsure=bool(confidence < UNSURE_THRESHOLD),
    )


def _on_line(digit: Digit, line: int) -> Digit:
    # Most digits already stand on their line (a single row is line 0); copying a frozen
    # dataclass costs a few microseconds a digit.
    return digit if digit.line == line else replace(digit, line=line)


def _assemble(digits: list[Digit]) -> Recognition:
    if not digits:
        return Recognition.empty()
    # A row whose every candidate came out empty leaves no line behind; renumber the rest.
    numbers = {line: index for index, line in enumerate(sorted({digit.line for digit in digits}))}
    digits = [_on_line(digit, numbers[digit.line]) for digit in digits]
    lines = tuple("".join(str(d.label) for d in digits if d.line == line) for line in range(len(numbers)))
    return Recognition(text="\n".join(lines), lines=lines, digits=tuple(digits))
