"""A writer's flagged 1, read 7 by the model, is told from the same writer's 7 in the line."""

from __future__ import annotations

import numpy as np

from pipeline import recognize_image
from tests.support import png_of, read_strokes

# A 7 with a long bar, and a continental 1: a short flag rising into an upright stem.
SEVEN = [[[0, 0], [80, 0], [30, 100]]]
FLAGGED_ONE = [[[-20, 28], [0, 0], [0, 100]]]


def at(strokes: list, x: float) -> list:
    return [[[x + px, 40 + py] for px, py in stroke] for stroke in strokes]


def flag_blind_classifier(batch: np.ndarray) -> np.ndarray:
    """Sure of a wide digit's 7, and reads a narrow one 7 at 0.6 and 1 at 0.35: a flag taken for a bar."""
    widths = (batch.max(axis=1) > 0.3).sum(axis=1)
    out = np.full((len(batch), 10), 1e-5, np.float32)
    narrow = widths <= 10
    out[~narrow, 7] = 1.0 - 1e-4
    out[narrow, 7], out[narrow, 1] = 0.6, 0.35
    return out


# "717" in one hand: the flagged 1 between two plain 7s.
SEVEN_ONE_SEVEN = at(SEVEN, 40) + at(FLAGGED_ONE, 200) + at(SEVEN, 300)


def test_a_seven_far_more_like_a_one_than_the_lines_plain_seven_reads_one():
    result = read_strokes(SEVEN_ONE_SEVEN, flag_blind_classifier)
    assert result.text == "717"
    one = result.digits[1]
    assert (one.label, one.candidates[0], one.unsure) == (1, (1, one.confidence), True)


def test_a_flagged_one_in_a_picture_reads_one():
    assert recognize_image(png_of(SEVEN_ONE_SEVEN), flag_blind_classifier).text == "717"


def test_a_lone_seven_and_a_line_of_plain_sevens_stay_sevens():
    assert read_strokes(at(FLAGGED_ONE, 100), flag_blind_classifier).text == "7"
    assert read_strokes(at(FLAGGED_ONE, 100) + at(FLAGGED_ONE, 200), flag_blind_classifier).text == "77"
    assert read_strokes(at(SEVEN, 40) + at(SEVEN, 200), flag_blind_classifier).text == "77"
