"""Lines drawn under a number, as strokes and in pictures, are not read as digits; a digit's own bar is."""

from __future__ import annotations

import pytest

from pipeline import rasterize_strokes, recognize_image
from tests.support import TEMPLATES, place, read_strokes


def test_a_line_drawn_under_a_number_is_not_read(classify):
    # Underlined, as a total or an answer is: a flat blob wider than any digit.
    strokes = place(TEMPLATES[4], 80, 60) + place(TEMPLATES[7], 220, 60) + [[[60, 185], [330, 190]]]
    assert read_strokes(strokes, classify, 400, 240, 8).text == "47"
    assert recognize_image(255 - rasterize_strokes(strokes, 400, 240, 8), classify).text == "47"
    # A line drawn alone is what was drawn, not an underline: it is read as a mark.
    assert len(read_strokes(strokes[-1:], classify, 400, 240, 8).digits) == 1


@pytest.mark.parametrize("slope", [0, 12])
def test_a_line_under_a_picture_s_number_is_not_read_where_it_touches_the_digits(classify, slope):
    # The 4's stem and the 7's foot stand on the line, which joins them into one component.
    line = [[[60, 160 + slope / 2], [330, 160 - slope / 2]]]
    strokes = place(TEMPLATES[4], 80, 60) + place(TEMPLATES[7], 220, 60) + line
    assert recognize_image(255 - rasterize_strokes(strokes, 400, 240, 8), classify).text == "47"


@pytest.mark.parametrize("slope", [0, 12])
def test_a_stroke_drawn_under_a_number_touching_its_digits_is_not_read(classify, slope):
    # Drawn last, the line joins the 4's stem and the 7's foot into one blob.
    line = [[[60, 160 + slope / 2], [330, 160 - slope / 2]]]
    strokes = place(TEMPLATES[4], 80, 60) + place(TEMPLATES[7], 220, 60) + line
    assert read_strokes(strokes, classify, 400, 240, 8).text == "47"


def test_the_shorter_line_under_a_number_of_two_digits_is_not_read(classify):
    # Narrower than the line under a long number, but wider than a digit and below the digits.
    strokes = place(TEMPLATES[4], 90, 60) + place(TEMPLATES[7], 175, 60) + [[[115, 185], [230, 186]]]
    assert read_strokes(strokes, classify, 400, 240, 14).text == "47"
    assert recognize_image(255 - rasterize_strokes(strokes, 400, 240, 14), classify).text == "47"


def test_a_flat_stroke_over_a_digit_wider_than_it_is_tall_stays_its_bar(classify):
    # A 7 whose bar is drawn apart and long: flat, wide, but at the digit's top.
    seven = place([[[-5, 8], [110, 8]], [[85, 8], [40, 95]]], 100, 60)
    assert read_strokes(seven, classify, 400, 240, 8).text == "7"
