"""`bench/photos.py`: a number's picture as photographed, and a clear error for an unknown condition."""

from __future__ import annotations

import numpy as np
import pytest

from bench.photos import CONDITIONS, photograph, underline_strokes


def test_a_shadow_darkens_one_side_of_the_page_and_the_ink_stays_darker():
    picture = np.full((60, 90), 255, np.uint8)
    picture[20:40, 40:50] = 0
    photo = photograph(picture, np.random.default_rng(3), "shadow")
    assert photo.dtype == np.uint8 and photo.shape == (60 + 2 * 30, 90 + 2 * 30)
    sides = photo[:, :15].astype(float).mean(), photo[:, -15:].astype(float).mean()
    assert abs(sides[0] - sides[1]) > 20, "the shadow's side is darker"
    assert photo[30 + 25 : 30 + 35, 30 + 42 : 30 + 48].mean() < photo[:, 30:45].mean() - 20


@pytest.mark.parametrize("condition", ["ruled", "squared"])
def test_ruled_and_squared_paper_carry_lines_fainter_than_the_ink(condition):
    picture = np.full((60, 90), 255, np.uint8)
    picture[20:40, 40:50] = 0
    photo = photograph(picture, np.random.default_rng(2), condition).astype(float)
    rows, columns = photo[:, :25].mean(axis=1), photo[:25].mean(axis=0)
    paper = np.median(photo)
    assert rows.min() < paper - 20, "lines run across the page"
    assert (columns.min() < paper - 20) == (condition == "squared"), "and down it on squared paper"
    assert photo[30 + 25 : 30 + 35, 30 + 42 : 30 + 48].mean() < rows.min() - 20, "the writing is darker"


def test_an_underlined_number_has_a_line_below_its_ink_as_wide_as_it():
    picture = np.full((60, 90), 255, np.uint8)
    picture[15:40, 20:70] = 0
    photo = photograph(picture, np.random.default_rng(4), "underlined").astype(float)
    below = photo[30 + 40 : 30 + 50, 30 + 20 : 30 + 70].min(axis=0)
    paper = np.median(photo)
    assert (below < paper - 40).mean() > 0.9, "a dark line runs under the whole number"
    assert photo[30 + 40 : 30 + 50, :30].min() > paper - 20, "and not beyond it"


def test_underlined_strokes_end_with_a_line_below_them_as_wide_as_they_are():
    strokes = [np.array([[20.0, 10.0], [20.0, 50.0]]), np.array([[40.0, 10.0], [70.0, 50.0]])]
    lined = underline_strokes(strokes, np.random.default_rng(5), (100, 80))
    assert len(lined) == 3 and all(np.array_equal(a, b) for a, b in zip(lined, strokes))
    line = lined[-1]
    assert line[:, 0].min() == 20 and line[:, 0].max() == 70
    assert 50 < line[:, 1].min() and line[:, 1].max() < 60 and np.ptp(line[:, 1]) < 2


def test_every_condition_is_reproducible_by_seed():
    picture = np.full((40, 40), 255, np.uint8)
    picture[10:30, 18:22] = 0
    for condition in CONDITIONS:
        first, second = (photograph(picture, np.random.default_rng(1), condition) for _ in range(2))
        assert np.array_equal(first, second)


def test_an_unknown_condition_is_refused():
    with pytest.raises(ValueError, match="condition"):
        photograph(np.full((10, 10), 255, np.uint8), np.random.default_rng(0), "underwater")
