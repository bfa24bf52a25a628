"""A drawing ready to segment: its labeled ink, pen width, and how to cut one digit out of it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.budget import CLIP_POINT, PIECE, RENDER_POINT, SPAN, Budget
from pipeline.cuts import cut_positions, ink_profile
from pipeline.normalize import render_strokes_digit
from pipeline.segment import Blob
from pipeline.slant import shear_points
from pipeline.split import (
    BAND_CUT_COST,
    MAX_DIGIT_WIDTH,
    MAX_STROKES,
    Lattice,
    Part,
    min_piece_height,
    wide_piece_cost,
)
from pipeline.stroke_labels import label_strokes, stroke_bounds
from pipeline.strokes import Polyline, clip_band
from pipeline.types import Box, Piece, StrokeRenderer

# Pieces of strokes left by a cut that are shorter than this fraction of the digit height
# belong to the neighbouring digit.
SLIVER_FRACTION = 0.12
# Blobs of fewer strokes than this, and wider than BAND_MIN_WIDTH digit heights (so one
# stroke may run through two digits), are also cut by position.
BAND_STROKES = 3
BAND_MIN_WIDTH = 1.1


@dataclass(frozen=True)
class StrokeDrawing:
    """Strokes with the component label each one fell into."""

    strokes: tuple[Polyline, ...]
    stroke_labels: np.ndarray
    labels: np.ndarray
    scale: float
    origin: tuple[float, float]
    pen: float
    blobs: tuple[Blob, ...]
    # Each stroke's box (left, top, right, bottom) and each component's strokes in drawing order.
    bounds: tuple[tuple[float, float, float, float], ...]
    members: dict[int, np.ndarray]
    render: StrokeRenderer = render_strokes_digit
    # The strokes are held sheared upright by this slant (pipeline.slant); pieces are drawn as
    # written, from the strokes as given and their boxes when the slant is not 0.
    slant: float = 0.0
    written: tuple[Polyline, ...] = ()
    written_bounds: tuple[tuple[float, float, float, float], ...] = ()

    @classmethod
    def build(
        cls, strokes: list[Polyline], pen: float, render: StrokeRenderer = render_strokes_digit, slant: float = 0.0
    ) -> "StrokeDrawing":
        """Label the strokes' components, sheared upright by `slant`, on a reduced raster.

        `render` makes the pieces, from the strokes as drawn.
        """
        written = strokes
        if slant:
            strokes = [shear_points(line, slant, 0.0) for line in strokes]
        found = label_strokes(strokes, pen)
        members = {int(label): np.flatnonzero(found.stroke_labels == label) for label in np.unique(found.stroke_labels)}
        return cls(
            tuple(strokes),
            found.stroke_labels,
            found.labels,
            found.scale,
            found.origin,
            pen,
            found.blobs,
            stroke_bounds(strokes),
            members,
            render,
            slant,
            tuple(written) if slant else (),
            stroke_bounds(written) if slant else (),
        )

    def whole(self, blob: Blob) -> Part:
        """The part that is the whole blob: all its strokes."""
        return Part("strokes", 0, len(self._indices(blob)))

    def reading_key(self, blob: Blob, digit_height: float, joined: bool = False) -> bytes:
        """The exact bytes the blob's reading depends on, for `pipeline.types.ReadingMemo`.

        Its strokes, the pen, the digit height and the width tests its box takes part in; when
        it may be cut by position, also the box and where the raster lies (the raster's scale
        follows the whole drawing's extent, so such blobs are rarely read again). A `joined`
        pair of blobs is read another way (see `joined_lattices`), under another key. A lone
        stroke that is not cut by position and no wider than `WIDE_PIECE` digit heights is
        read the same at any digit height (see `_reads_whole`), so its key leaves the digit height out.
        """
        indices = self._indices(blob)
        lines = [self.strokes[index] for index in indices]
        by_position = not joined and _cut_by_position(blob, len(lines), digit_height)
        any_size = len(lines) == 1 and not joined and not by_position and self._reads_whole(indices[0], digit_height)
        key = np.array([len(lines), by_position, joined, any_size], dtype=np.int64).tobytes()
        tests = (
            (self.slant, self.pen)
            if any_size
            else (self.slant, digit_height, self.pen, min_piece_height(blob, digit_height))
        )
        key += np.array(tests, dtype=np.float64).tobytes()
        key += np.cumsum([len(line) for line in lines], dtype=np.int64).tobytes()
        key += b"".join(np.ascontiguousarray(line).tobytes() for line in lines)
        if by_position:
            where = (self.scale, *self.origin, blob.left, blob.top, blob.right, blob.bottom)
            key += np.array(where, dtype=np.float64).tobytes()
        return key

    def _reads_whole(self, index: int, digit_height: float) -> bool:
        # A one-stroke blob's only candidate is its whole, which pays no height cost and, when
        # its box is no wider than WIDE_PIECE digit heights, no width cost
        # (pipeline.split.best_split): its reading is the whole piece's, whatever the digit height.
        # A new digit changes the drawing's digit height, and such digits need no new reading.
        left, top, right, bottom = self.bounds[index]
        return digit_height > 0 and wide_piece_cost(self._ink_box(left, top, right, bottom)[2], digit_height) == 0.0

    def lattices(self, blob: Blob, digit_height: float) -> list[Lattice]:
        """How the blob may be cut: between its strokes in drawing order, and at x positions."""
        count = len(self._indices(blob))
        lattices = _between_strokes(count)
        if _cut_by_position(blob, count, digit_height):
            cuts = cut_positions(
                blob, *ink_profile(self.labels, blob, self.scale, self.origin), self.scale, digit_height
            )
            lattices += [Lattice("band", [blob.left, *cuts, blob.right])] if cuts else []
        return lattices or [Lattice("strokes", [0, count])]

    def joined_lattices(self, blob: Blob) -> list[Lattice]:
        """How two neighbouring blobs joined into one may be cut: between their strokes only."""
        return _between_strokes(len(self._indices(blob)))

    def part_key(self, blob: Blob, part: Part) -> tuple:
        """What one part's piece depends on: the same strokes make the same piece in any blob."""
        if part.kind == "strokes":
            return ("strokes", *self._indices(blob)[part.start : part.end].tolist())
        return (blob.labels, *part)

    @staticmethod
    def cut_cost(lattice: Lattice) -> float:
        """What one cut of the lattice costs in log probability: cutting through a stroke is rare."""
        return BAND_CUT_COST if lattice.kind == "band" else 0.0

    def extent_of(self, blob: Blob, part: Part) -> tuple[float, float]:
        """The width and height, in canvas pixels, of one part of the blob (bands: the blob's height)."""
        if part.kind == "band":
            return part.end - part.start, blob.height
        left, top, right, bottom = self._box(self._indices(blob)[part.start : part.end])
        return right - left + self.pen, bottom - top + self.pen

    def piece(self, blob: Blob, part: Part, digit_height: float, budget: Budget | None = None) -> Piece | None:
        """One part of the blob (a group of its strokes, or the band between two x) as an MNIST digit.

        The work is charged to `budget` before it is done (pipeline.budget).
        """
        budget = budget or Budget()
        indices = self._indices(blob)
        if part.kind == "strokes":
            chosen = indices[part.start : part.end]
            if not len(chosen):
                return None
            left, top, right, bottom = self._box(chosen)
            lines = [self.strokes[index] for index in chosen]
            budget.charge(PIECE + RENDER_POINT * sum(len(line) for line in lines))
            written = None
            if self.slant:
                w_left, w_top, w_right, w_bottom = self._box(chosen, self.written_bounds)
                written = ([self.written[index] for index in chosen], (w_left, w_top), (w_right, w_bottom))
            return self._piece(lines, (left, top), (right, bottom), written)
        # A stroke whose box lies outside the band has nothing in it: clipping costs only the strokes that reach in.
        near = [index for index in indices if self.bounds[index][0] <= part.end and self.bounds[index][2] >= part.start]
        budget.charge(PIECE + SPAN * len(indices) + CLIP_POINT * sum(len(self.strokes[index]) for index in near))
        parts = [cut for index in near for cut in clip_band(self.strokes[index], part.start, part.end)]
        # A cut leaves bits of the neighbouring digit behind; short ones are dropped.
        parts = [cut for cut in parts if _length(cut) >= SLIVER_FRACTION * digit_height] or parts
        if not parts:
            return None
        points = np.concatenate(parts)
        return self._piece(parts, points.min(axis=0), points.max(axis=0))

    def _piece(self, parts: list[Polyline], low, high, written: tuple | None = None) -> Piece:
        # `low` and `high` are the corners of the strokes' own box, upright; `written`, when
        # known, the same parts as drawn with their corners.
        box = self._ink_box(float(low[0]), float(low[1]), float(high[0]), float(high[1]))
        shown = None
        if self.slant:
            if written is None:
                parts = [shear_points(part, -self.slant, 0.0) for part in parts]
                points = np.concatenate(parts)
                written = (parts, points.min(axis=0), points.max(axis=0))
            parts, low, high = written
            shown = self._ink_box(float(low[0]), float(low[1]), float(high[0]), float(high[1]))
        skeleton = (float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1]))
        return Piece(self.render(parts, skeleton), box, shown)

    def _ink_box(self, left: float, top: float, right: float, bottom: float) -> Box:
        # The canvas box of the ink around the strokes' own box: the pen adds half its width.
        left, top, right, bottom = left - self.pen / 2, top - self.pen / 2, right + self.pen / 2, bottom + self.pen / 2
        return (math.floor(left), math.floor(top), math.ceil(right - left), math.ceil(bottom - top))

    def _box(self, indices: np.ndarray, bounds: tuple | None = None) -> tuple[float, float, float, float]:
        # The box (left, top, right, bottom) of the strokes' own points (upright, or from `bounds`).
        boxes = [(bounds or self.bounds)[index] for index in indices]
        return (
            min(box[0] for box in boxes),
            min(box[1] for box in boxes),
            max(box[2] for box in boxes),
            max(box[3] for box in boxes),
        )

    def _indices(self, blob: Blob) -> np.ndarray:
        # In drawing order, which is the order of the strokes given.
        found = [self.members[label] for label in blob.labels if label in self.members]
        if len(found) == 1:
            return found[0]
        return np.sort(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def _between_strokes(count: int) -> list[Lattice]:
    # Cuts between any of a blob's strokes in drawing order, unless it has too many to try.
    return [Lattice("strokes", list(range(count + 1)))] if count <= MAX_STROKES else []


def _cut_by_position(blob: Blob, strokes: int, digit_height: float) -> bool:
    # Cutting by position costs many more candidates; it is kept for blobs whose strokes
    # cannot be the split (one stroke through two digits) or that are too wide for one digit.
    return (
        (strokes < BAND_STROKES and blob.width > BAND_MIN_WIDTH * digit_height)
        or strokes > MAX_STROKES
        or blob.width > MAX_DIGIT_WIDTH * digit_height
    )


def _length(part: np.ndarray) -> float:
    return float(np.ptp(part, axis=0).max()) if len(part) > 1 else 0.0
