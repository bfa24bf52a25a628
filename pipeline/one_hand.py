"""One hand writes a line: a 7 read far more like a 1 than the line's plainest 7 is that writer's flagged 1."""

from __future__ import annotations

import math
from dataclasses import replace

from pipeline.types import Digit

# A digit read 7 is taken for a flagged 1 where the model gives 1 at least this probability...
FLAGGED_ONE = 0.05
# ...and its log odds of 1 against 7 exceed those of the line's plainest 7 by this many nats.
ONE_SEVEN_GAP = 2.0
# Stands in for a probability too small to be among a digit's top candidates.
ODDS_FLOOR = 1e-9


def flagged_ones(row: list[Digit]) -> list[Digit]:
    """A row's digits, each 7 that the row's plainest 7 shows to be its writer's flagged 1 read as 1.

    A writer draws every 7 of a number with the same bar, and a continental 1's flag is a
    shorter bar: a digit read 7 that the model finds far more like a 1 than another 7 of the
    row is the 1. A row with one 7 has nothing to compare it with and is left as read.
    """
    sevens = [_one_odds(digit) for digit in row if digit.label == 7]
    if len(sevens) < 2:
        return row
    plainest = min(sevens)
    return [_as_one(digit) if _is_flagged_one(digit, plainest) else digit for digit in row]


def _one_odds(digit: Digit) -> float:
    # Log odds of 1 against 7 from the digit's top candidates.
    return math.log(max(_probability(digit, 1), ODDS_FLOOR)) - math.log(max(_probability(digit, 7), ODDS_FLOOR))


def _probability(digit: Digit, label: int) -> float:
    return dict(digit.candidates).get(label, 0.0)


def _is_flagged_one(digit: Digit, plainest: float) -> bool:
    return digit.label == 7 and _probability(digit, 1) >= FLAGGED_ONE and _one_odds(digit) - plainest > ONE_SEVEN_GAP


def _as_one(digit: Digit) -> Digit:
    # The model gave 7 more than 1, so the 1 is below one half: the digit is shown unsure.
    one = _probability(digit, 1)
    others = tuple(candidate for candidate in digit.candidates if candidate[0] != 1)
    return replace(digit, label=1, confidence=one, candidates=((1, one), *others), unsure=True)
