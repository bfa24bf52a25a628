"""What reading one drawing may cost: work charged as it is done, stopped past a limit or once superseded."""

from __future__ import annotations

import math
from collections.abc import Callable

# Work is counted in units of about a microsecond of one core (docs/design.md, "Hostile input"):
# a drawing may cost BASE_UNITS plus UNITS_PER_POINT for each of its points, so the budget grows
# linearly with the drawing. Traced MNIST numbers spend at most a quarter of theirs.
BASE_UNITS = 120_000
UNITS_PER_POINT = 10
# A picture's budget grows with its pixels instead; cutting out a piece costs its crop's pixels.
UNITS_PER_PIXEL = 0.02
PIXEL = 0.01
# What each kind of work costs, in units (measured with bench/bench_abuse.py's attacks).
CLIP_POINT = 2.0
RENDER_POINT = 0.2
PIECE = 40.0
PAIR_TEST = 0.4
SPAN = 1.0


class TooComplex(Exception):
    """The drawing needs more work than its budget allows."""


class Superseded(Exception):
    """A newer drawing replaced this one while it was being read: its answer is no longer wanted."""


class Budget:
    """A running count of work against a limit; `stop` says whether the reading is still wanted.

    `stop` is only asked once `grace` units are spent, so a cheap reading always finishes and a
    live client keeps seeing answers while it draws; an expensive one stops when superseded.
    """

    def __init__(self, limit: float = math.inf, stop: Callable[[], bool] | None = None, grace: float = 0.0) -> None:
        self.limit, self.stop, self.grace = limit, stop, grace
        self.spent = 0.0

    @classmethod
    def for_points(cls, points: int, stop: Callable[[], bool] | None = None, grace: float = 0.0) -> "Budget":
        """The budget of a drawing of `points` points: linear in its size."""
        return cls(BASE_UNITS + UNITS_PER_POINT * points, stop, grace)

    @classmethod
    def for_pixels(cls, pixels: int) -> "Budget":
        """The budget of a picture of `pixels` pixels: linear in its size."""
        return cls(BASE_UNITS + UNITS_PER_PIXEL * pixels)

    def charge(self, units: float) -> None:
        """Count `units` of work about to be done (or just done); raise when over the limit or superseded."""
        self.spent += units
        if self.spent > self.limit:
            raise TooComplex(
                f"Reading this drawing needs more than its budget of {self.limit:,.0f} work units "
                "(about as many microseconds); draw fewer or simpler strokes."
            )
        if self.stop is not None and self.spent > self.grace and self.stop():
            raise Superseded()
