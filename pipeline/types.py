"""Value types shared by every pipeline stage: drawings in, recognitions out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# A classifier takes a batch of normalized digits, shape (N, 28, 28), float32 in [0, 1]
# with ink high, and returns class probabilities of shape (N, 10). Training, evaluation
# and serving all pass their model in through this one signature.
Classifier = Callable[[np.ndarray], np.ndarray]
# Renders one digit's strokes (polylines, and the box they are scaled from) as a 28x28 input;
# `pipeline.render_strokes_digit` unless the caller remembers earlier renderings.
StrokeRenderer = Callable[[list[np.ndarray], tuple[float, float, float, float]], np.ndarray]


class ReadingMemo(Protocol):
    """Remembers how blobs were read, keyed by what the reading depends on (exact bytes).

    A live drawing is sent again on every stroke with most of its digits unchanged, so a caller
    that keeps one memo per model spares their segmentation, rendering and classification.
    """

    def get(self, key: bytes) -> tuple[float, tuple[Digit, ...]] | None:
        """The reading remembered under `key` (its log score and digits), or None."""

    def put(self, key: bytes, reading: tuple[float, tuple[Digit, ...]]) -> None:
        """Remember how one blob, or a pair of neighbouring blobs, was read."""


# A box in canvas pixels: x, y, width, height.
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Piece:
    """One digit candidate cut out of a drawing: the model's input and its box where it was cut.

    A drawing segmented upright (pipeline.slant) cuts in sheared coordinates; `shown` is then
    the box on the canvas as drawn.
    """

    image: np.ndarray
    box: Box
    shown: Box | None = None


@dataclass(frozen=True)
class Digit:
    """One recognized digit: its label, how sure the model is, and where it is."""

    label: int
    confidence: float
    candidates: tuple[tuple[int, float], ...]
    box: Box
    unsure: bool
    line: int = 0

    def as_dict(self) -> dict:
        """The digit as JSON-ready values (probabilities rounded to 6 places), as every client reads it."""
        return {
            "label": self.label,
            "confidence": round(self.confidence, 6),
            "box": list(self.box),
            "candidates": [[label, round(p, 6)] for label, p in self.candidates],
            "unsure": self.unsure,
            "line": self.line,
        }


@dataclass(frozen=True)
class Recognition:
    """The recognized number: text with one line per row, and every digit."""

    text: str
    lines: tuple[str, ...]
    digits: tuple[Digit, ...]

    @classmethod
    def empty(cls) -> "Recognition":
        """The recognition of an empty canvas: no text, never a guess."""
        return cls(text="", lines=(), digits=())

    def as_dict(self) -> dict:
        """Text, lines and digits as JSON-ready values."""
        return {"text": self.text, "lines": list(self.lines), "digits": [digit.as_dict() for digit in self.digits]}
