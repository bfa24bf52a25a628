"""End-to-end tests of the pipeline on tiny strokes drawn here, read by a template classifier."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import (
    UNSURE_THRESHOLD,
    Recognition,
    naive_recognize_strokes,
    recognize_strokes,
)
from tests.support import TEMPLATES, place, read_strokes, template_classifier


def test_every_template_digit_is_read_back(classify):
    for digit, strokes in TEMPLATES.items():
        assert read_strokes(place(strokes, 200, 80, 120), classify).text == str(digit)


def test_one_and_seven(classify):
    one = read_strokes(place(TEMPLATES[1], 100, 50), classify)
    seven = read_strokes(place(TEMPLATES[7], 100, 50), classify)
    assert (one.text, seven.text) == ("1", "7")
    assert len(one.digits) == 1 and one.digits[0].line == 0


def test_eleven_is_two_digits_left_to_right(classify):
    calls: list = []
    result = read_strokes(place(TEMPLATES[1], 300, 50) + place(TEMPLATES[1], 150, 50), template_classifier(calls))
    assert result.text == "11" and result.lines == ("11",)
    assert result.digits[0].box[0] < result.digits[1].box[0]
    assert len(calls) == 1, "all digits of a drawing are classified in one batch"


def test_two_stroke_four_with_a_gap_is_merged(classify):
    left = [[30, 5], [15, 60], [56, 60]]
    stem = [[66, 20], [66, 95]]
    result = read_strokes(place([left, stem], 100, 50), classify)
    assert result.text == "4"


def test_five_with_detached_top_bar_is_merged(classify):
    bar = [[32, 0], [80, 0]]
    body = TEMPLATES[5][1][:1] + [[30, 14], [25, 45], [55, 40], [75, 60], [70, 85], [45, 95], [20, 85]]
    result = read_strokes(place([bar, body], 100, 50), classify)
    assert result.text == "5"
    assert result.digits[0].box[3] >= 95


def test_seven_in_two_strokes_and_with_crossbar(classify):
    two_strokes = read_strokes(place([[[15, 5], [85, 5]], [[82, 20], [40, 95]]], 100, 50), classify)
    crossbar = read_strokes(place(TEMPLATES[7] + [[[45, 52], [78, 52]]], 100, 50), classify)
    assert two_strokes.text == "7"
    assert crossbar.text == "7"


def test_broken_stroke_of_a_one_is_merged(classify):
    result = read_strokes(place([[[50, 5], [50, 45]], [[50, 58], [50, 95]]], 100, 50), classify)
    assert result.text == "1"


def test_two_touching_zeros_are_split(classify):
    calls: list = []
    zeros = place(TEMPLATES[0], 100, 50) + place(TEMPLATES[0], 158, 50)
    result = read_strokes(zeros, template_classifier(calls))
    assert result.text == "00"
    assert len(calls) == 1, "split candidates are classified in the same batch"
    assert result.digits[0].box[0] < result.digits[1].box[0]


def test_noise_dots_around_a_digit_are_ignored(classify):
    dots = [[[40, 40]], [[250, 60]], [[180, 200]], [[90, 190]], [[260, 170]]]
    result = read_strokes(place(TEMPLATES[3], 120, 60) + dots, classify)
    assert result.text == "3"


def test_empty_canvas_and_single_dot_give_no_text(classify):
    assert read_strokes([], classify) == Recognition.empty()
    assert read_strokes([[]], classify).text == ""
    assert read_strokes([[[100.5, 100.5]]], classify).text == ""


def test_two_rows_become_two_lines(classify):
    top = place(TEMPLATES[1], 100, 20) + place(TEMPLATES[2], 220, 30)
    bottom = place(TEMPLATES[3], 110, 170) + place(TEMPLATES[4], 230, 160)
    result = read_strokes(top + bottom, classify, height=300)
    assert result.text == "12\n34" and result.lines == ("12", "34")
    assert [digit.line for digit in result.digits] == [0, 0, 1, 1]


def test_float_coordinates_and_points_slightly_outside_are_accepted(classify):
    # The top bar runs a few pixels over the canvas's top edge, as a quick pen does.
    strokes = [[[x + 0.37, y - 0.61] for x, y in stroke] for stroke in place(TEMPLATES[7], 100, -14)]
    assert min(y for stroke in strokes for _, y in stroke) < -4
    assert read_strokes(strokes, classify).text == "7"


@pytest.mark.parametrize(
    "strokes, message",
    [
        ([[[1e9, 10], [20, 20]]], "outside"),
        ([[[-5000, 10], [20, 20]]], "outside"),
        ([[[10, float("nan")]]], "non-finite"),
        ([[[10, float("inf")]]], "non-finite"),
        ([[[10, 10, 3]]], r"\[x, y\]"),
        ([[["a", "b"]]], r"\[x, y\]"),
        ("12", "list of polylines"),
    ],
)
def test_bad_strokes_raise_a_clear_value_error(classify, strokes, message):
    with pytest.raises(ValueError, match=message):
        read_strokes(strokes, classify)


@pytest.mark.parametrize(
    "width, height, pen",
    [
        (0, 100, 5),
        (100, -1, 5),
        (10**6, 100, 5),
        (100.5, 100, 5),
        (100, 100, 0),
        (100, 100, float("nan")),
        (100, 100, 90),
    ],
)
def test_bad_canvas_or_pen_raise_value_error(classify, width, height, pen):
    with pytest.raises(ValueError):
        recognize_strokes([[[10, 10], [20, 20]]], width, height, classify, pen_width=pen)


def test_unsure_when_the_classifier_hesitates():
    def hesitant(batch):
        probabilities = np.full((len(batch), 10), 0.5 / 9)
        probabilities[:, 7] = 0.5
        return probabilities

    digit = read_strokes(place(TEMPLATES[7], 100, 50), hesitant).digits[0]
    assert digit.unsure and digit.confidence < UNSURE_THRESHOLD
    assert digit.candidates[0] == (7, 0.5) and len(digit.candidates) == 3
    assert isinstance(digit.label, int) and isinstance(digit.confidence, float)


def test_a_small_stray_mark_beside_the_digits_is_dropped(classify):
    # An 18 px stroke beside 90 px digits: larger than a speck, far smaller than a digit.
    mark = [[[300, 120], [318, 112]]]
    result = read_strokes(place(TEMPLATES[1], 100, 50) + place(TEMPLATES[2], 180, 50) + mark, classify)
    assert result.text == "12" and not any(digit.unsure for digit in result.digits)
    # As tall as half a digit, the same stroke stays: it may be a digit, and is read.
    tall_mark = [[[300, 120], [306, 170]]]
    assert (
        len(read_strokes(place(TEMPLATES[1], 100, 50) + place(TEMPLATES[2], 180, 50) + tall_mark, classify).digits) == 3
    )


def test_same_drawing_gives_identical_model_inputs():
    batches: list = []

    def recording(batch):
        batches.append(batch.copy())
        return template_classifier()(batch)

    drawing = place(TEMPLATES[2], 100, 50) + place(TEMPLATES[8], 220, 50)
    read_strokes(drawing, recording)
    read_strokes(drawing, recording)
    assert len(batches) == 2 and batches[0].tobytes() == batches[1].tobytes()


def test_thick_marker_and_thin_pen_give_the_same_reading(classify):
    drawing = place(TEMPLATES[6], 100, 50) + place(TEMPLATES[9], 220, 50)
    thin, thick = read_strokes(drawing, classify, pen=2), read_strokes(drawing, classify, pen=14)
    assert thin.text == thick.text == "69"
    assert abs(thin.digits[0].confidence - thick.digits[0].confidence) < 1e-6


def test_naive_baseline_reads_every_component_as_a_digit(classify):
    broken_one = place([[[50, 5], [50, 45]], [[50, 58], [50, 95]]], 100, 50)
    touching = place(TEMPLATES[0], 100, 50) + place(TEMPLATES[0], 158, 50)
    assert len(naive_recognize_strokes(broken_one, 600, 300, classify, pen_width=6).digits) == 2
    assert len(naive_recognize_strokes(touching, 600, 300, classify, pen_width=6).digits) == 1
    assert naive_recognize_strokes([], 600, 300, classify).text == ""


def test_a_one_touching_the_next_digit_is_split(classify):
    # Tight writing: the 2 starts on the 1's stroke, so the two make one narrow component.
    for overlap in (0, 5):
        result = read_strokes(place(TEMPLATES[1], 100, 50) + place(TEMPLATES[2], 130 - overlap, 50), classify)
        assert result.text == "12"


def test_four_with_its_stem_beside_the_bar_is_one_digit(classify):
    # The L and the stem of this 4 only touch side by side, but they do not share a baseline.
    four = place([[[30, 5], [15, 60], [60, 60]], [[63, 20], [63, 95]]], 100, 50)
    assert read_strokes(four, classify).text == "4"


def test_wide_single_digit_is_not_cut_through_its_stroke(classify):
    wide_zero = [[[150 + 80 * np.sin(t), 100 - 40 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 33)]]
    result = read_strokes(wide_zero, classify)
    assert len(result.digits) == 1 and result.lines == (result.text,)


def test_five_with_its_bar_off_at_the_corner_is_merged(classify):
    bar = [[72, -4], [108, -4]]
    result = read_strokes(place([bar, TEMPLATES[5][1]], 100, 60), classify)
    assert len(result.digits) == 1 and result.lines == (result.text,)


def test_five_with_its_bar_reaching_far_to_the_right_is_merged(classify):
    # The bar starts over the body's right half, beside its top, and ends 0.6 digit heights past
    # it: the two are wider together than SIDE_MAX_WIDTH allows a digit and a fragment beside it.
    bar = [[62, 22], [135, 2]]
    result = read_strokes(place([bar, TEMPLATES[5][1]], 100, 60), classify)
    assert len(result.digits) == 1 and result.digits[0].box[2] >= 1.2 * 100


def test_a_digit_in_two_blobs_one_shared_with_its_neighbour_is_read_across_them(classify):
    # The 4's bar touches the 0 before it while its stem stands apart: read blob by blob, the
    # 0 and the bar came out as one unsure 0 and the stem as a 1 ("01").
    bar, stem = [[30, 5], [15, 60], [56, 60]], [[66, 20], [66, 95]]
    result = read_strokes(place(TEMPLATES[0], 100, 50) + place([bar, stem], 163, 50), classify)
    assert result.text == "04"
    assert result.digits[1].box[0] < result.digits[0].box[0] + result.digits[0].box[2]
    assert not any(digit.unsure for digit in result.digits)
