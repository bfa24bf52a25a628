"""A picture ready to segment: its labeled ink, and how to cut one digit out of it by position."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.budget import PIECE, PIXEL, Budget
from pipeline.cuts import cut_positions, ink_profile
from pipeline.normalize import normalize_digit
from pipeline.segment import Blob, find_blobs
from pipeline.slant import shear_image
from pipeline.split import Lattice, Part, min_piece_height
from pipeline.types import Piece

# A picture can only be cut by position, and a cut costs this much log probability: the halves
# of one wide digit are often read as two confident digits, so a cut must earn its keep.
IMAGE_CUT_COST = 0.5
# A picture cannot tell a condensed hand's touching digits apart by their strokes: blobs wider
# than IMAGE_SPLIT_MIN_WIDTH digit heights are cut, trying as many of the ink profile's thinnest
# columns as digits IMAGE_MINIMA_PITCH wide would need (docs/design.md, "Condensed hands in pictures").
IMAGE_SPLIT_MIN_WIDTH = 0.5
IMAGE_MINIMA_PITCH = 0.35


@dataclass(frozen=True)
class ImageDrawing:
    """A grayscale ink image (ink high) with its labeled components."""

    ink: np.ndarray
    labels: np.ndarray
    pen: float
    blobs: tuple[Blob, ...]
    scale: float = 1.0
    origin: tuple[float, float] = (0.0, 0.0)
    # The ink is held sheared upright by this slant (pipeline.slant.shear_image), moved right by
    # `offset`; pieces are cut upright and normalized as written.
    slant: float = 0.0
    offset: float = 0.0

    @classmethod
    def build(cls, ink: np.ndarray, mask: np.ndarray, pen: float, slant: float = 0.0) -> "ImageDrawing":
        """Shear the picture upright by `slant` and label the components of its ink mask."""
        offset = 0.0
        if slant:
            ink, offset = shear_image(ink, slant)
            mask, _ = shear_image(mask, slant, cv2.INTER_NEAREST)
        labels, blobs = find_blobs(mask)
        return cls(ink, labels, pen, tuple(blobs), slant=slant, offset=offset)

    def whole(self, blob: Blob) -> Part:
        """The part that is the whole blob."""
        return Part("band", blob.left, blob.right)

    def lattices(self, blob: Blob, digit_height: float) -> list[Lattice]:
        """How the blob may be cut: at x positions."""
        profile, first_x = ink_profile(self.labels, blob, self.scale, self.origin)
        narrow = (IMAGE_SPLIT_MIN_WIDTH, IMAGE_MINIMA_PITCH)
        cuts = cut_positions(blob, profile, first_x, self.scale, digit_height, narrow)
        return [Lattice("band", [blob.left, *cuts, blob.right])]

    @staticmethod
    def joined_lattices(blob: Blob) -> list[Lattice]:
        """No lattice: a picture has no strokes that tell which of two neighbouring blobs' ink is one digit."""
        return []

    @staticmethod
    def part_key(blob: Blob, part: Part) -> tuple:
        """What one part's piece depends on: the blob's ink between the part's x."""
        return (blob.labels, *part)

    @staticmethod
    def cut_cost(lattice: Lattice) -> float:
        """What one cut costs in log probability."""
        return IMAGE_CUT_COST

    def extent_of(self, blob: Blob, part: Part) -> tuple[float, float]:
        """The width and height, in canvas pixels, of one part of the blob (the blob's height)."""
        return part.end - part.start, blob.height

    def piece(self, blob: Blob, part: Part, digit_height: float, budget: Budget | None = None) -> Piece | None:
        """The blob's ink between x = part.start and x = part.end, normalized as an MNIST digit (charged to `budget`).

        None when the part holds no ink, or only bits of a stroke: none of its connected ink as
        tall as a piece must be (pipeline.split.min_piece_height).
        """
        _, left, right = part
        x0, x1 = max(int(np.floor(left)), int(blob.left)), min(int(np.ceil(right)), int(blob.right))
        y0, y1 = int(blob.top), int(blob.bottom)
        (budget or Budget()).charge(PIECE + PIXEL * max(0, x1 - x0) * max(0, y1 - y0))
        inside = np.isin(self.labels[y0:y1, x0:x1], blob.labels)
        if _is_fragment(blob, part, inside, digit_height):
            return None
        crop = np.where(inside, self.ink[y0:y1, x0:x1], 0).astype(np.uint8)
        points = cv2.findNonZero(crop)
        if points is None:
            return None
        x, y, width, height = cv2.boundingRect(points)
        if not self.slant:
            return Piece(normalize_digit(crop), (x0 + x, y0 + y, width, height))
        # Back as written: upright x' = x - slant * y + offset, so x = x' + slant * y - offset.
        written, shift = shear_image(crop, -self.slant)
        wx, wy, wwidth, wheight = cv2.boundingRect(cv2.findNonZero(written))
        left = wx - shift + x0 + self.slant * y0 - self.offset
        return Piece(
            normalize_digit(written), (x0 + x, y0 + y, width, height), (int(np.floor(left)), y0 + wy, wwidth, wheight)
        )


def _is_fragment(blob: Blob, part: Part, inside: np.ndarray, digit_height: float) -> bool:
    # A cut piece is as tall as its tallest connected ink, not as the span of its bits: the
    # serifed end of a 4's bar and the tip of its foot span the whole height, and read as 1.
    if part.start <= blob.left and part.end >= blob.right:
        return False
    count, _, stats, _ = cv2.connectedComponentsWithStats(inside.astype(np.uint8), connectivity=8)
    tallest = stats[1:, cv2.CC_STAT_HEIGHT].max() if count > 1 else 0
    return tallest < min_piece_height(blob, digit_height) * digit_height
