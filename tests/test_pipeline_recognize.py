"""End-to-end tests of the pipeline on tiny drawings written here, read by a template classifier."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline import (
    UNSURE_THRESHOLD,
    Recognition,
    naive_recognize_strokes,
    rasterize_strokes,
    recognize_image,
    recognize_strokes,
)
from pipeline.image import prepare_image
from pipeline.segment import Blob
from pipeline.split import best_split, min_piece_height
from tests.support import TEMPLATES, place, template_classifier


@pytest.fixture(scope="module")
def classify():
    return template_classifier()


def read(strokes, classify, width=600, height=300, pen=6.0) -> Recognition:
    return recognize_strokes(strokes, width, height, classify, pen_width=pen)


def test_every_template_digit_is_read_back(classify):
    for digit, strokes in TEMPLATES.items():
        assert read(place(strokes, 200, 80, 120), classify).text == str(digit)


def test_one_and_seven(classify):
    one = read(place(TEMPLATES[1], 100, 50), classify)
    seven = read(place(TEMPLATES[7], 100, 50), classify)
    assert (one.text, seven.text) == ("1", "7")
    assert len(one.digits) == 1 and one.digits[0].line == 0


def test_eleven_is_two_digits_left_to_right(classify):
    calls: list = []
    result = read(place(TEMPLATES[1], 300, 50) + place(TEMPLATES[1], 150, 50), template_classifier(calls))
    assert result.text == "11" and result.lines == ("11",)
    assert result.digits[0].box[0] < result.digits[1].box[0]
    assert len(calls) == 1, "all digits of a drawing are classified in one batch"


def test_two_stroke_four_with_a_gap_is_merged(classify):
    left = [[30, 5], [15, 60], [56, 60]]
    stem = [[66, 20], [66, 95]]
    result = read(place([left, stem], 100, 50), classify)
    assert result.text == "4"


def test_five_with_detached_top_bar_is_merged(classify):
    bar = [[32, 0], [80, 0]]
    body = TEMPLATES[5][1][:1] + [[30, 14], [25, 45], [55, 40], [75, 60], [70, 85], [45, 95], [20, 85]]
    result = read(place([bar, body], 100, 50), classify)
    assert result.text == "5"
    assert result.digits[0].box[3] >= 95


def test_seven_in_two_strokes_and_with_crossbar(classify):
    two_strokes = read(place([[[15, 5], [85, 5]], [[82, 20], [40, 95]]], 100, 50), classify)
    crossbar = read(place(TEMPLATES[7] + [[[45, 52], [78, 52]]], 100, 50), classify)
    assert two_strokes.text == "7"
    assert crossbar.text == "7"


def test_broken_stroke_of_a_one_is_merged(classify):
    result = read(place([[[50, 5], [50, 45]], [[50, 58], [50, 95]]], 100, 50), classify)
    assert result.text == "1"


def test_two_touching_zeros_are_split(classify):
    calls: list = []
    zeros = place(TEMPLATES[0], 100, 50) + place(TEMPLATES[0], 158, 50)
    result = read(zeros, template_classifier(calls))
    assert result.text == "00"
    assert len(calls) == 1, "split candidates are classified in the same batch"
    assert result.digits[0].box[0] < result.digits[1].box[0]


def test_noise_dots_around_a_digit_are_ignored(classify):
    dots = [[[40, 40]], [[250, 60]], [[180, 200]], [[90, 190]], [[260, 170]]]
    result = read(place(TEMPLATES[3], 120, 60) + dots, classify)
    assert result.text == "3"


def test_empty_canvas_and_single_dot_give_no_text(classify):
    assert read([], classify) == Recognition.empty()
    assert read([[]], classify).text == ""
    assert read([[[100.5, 100.5]]], classify).text == ""


def test_two_rows_become_two_lines(classify):
    top = place(TEMPLATES[1], 100, 20) + place(TEMPLATES[2], 220, 30)
    bottom = place(TEMPLATES[3], 110, 170) + place(TEMPLATES[4], 230, 160)
    result = read(top + bottom, classify, height=300)
    assert result.text == "12\n34" and result.lines == ("12", "34")
    assert [digit.line for digit in result.digits] == [0, 0, 1, 1]


def test_float_coordinates_and_points_slightly_outside_are_accepted(classify):
    # The top bar runs a few pixels over the canvas's top edge, as a quick pen does.
    strokes = [[[x + 0.37, y - 0.61] for x, y in stroke] for stroke in place(TEMPLATES[7], 100, -14)]
    assert min(y for stroke in strokes for _, y in stroke) < -4
    assert read(strokes, classify).text == "7"


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
        read(strokes, classify)


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

    digit = read(place(TEMPLATES[7], 100, 50), hesitant).digits[0]
    assert digit.unsure and digit.confidence < UNSURE_THRESHOLD
    assert digit.candidates[0] == (7, 0.5) and len(digit.candidates) == 3
    assert isinstance(digit.label, int) and isinstance(digit.confidence, float)


def test_a_small_stray_mark_beside_the_digits_is_dropped(classify):
    # An 18 px stroke beside 90 px digits: larger than a speck, far smaller than a digit.
    mark = [[[300, 120], [318, 112]]]
    result = read(place(TEMPLATES[1], 100, 50) + place(TEMPLATES[2], 180, 50) + mark, classify)
    assert result.text == "12" and not any(digit.unsure for digit in result.digits)
    # As tall as half a digit, the same stroke stays: it may be a digit, and is read.
    tall_mark = [[[300, 120], [306, 170]]]
    assert len(read(place(TEMPLATES[1], 100, 50) + place(TEMPLATES[2], 180, 50) + tall_mark, classify).digits) == 3


def test_same_drawing_gives_identical_model_inputs():
    batches: list = []

    def recording(batch):
        batches.append(batch.copy())
        return template_classifier()(batch)

    drawing = place(TEMPLATES[2], 100, 50) + place(TEMPLATES[8], 220, 50)
    read(drawing, recording)
    read(drawing, recording)
    assert len(batches) == 2 and batches[0].tobytes() == batches[1].tobytes()


def test_thick_marker_and_thin_pen_give_the_same_reading(classify):
    drawing = place(TEMPLATES[6], 100, 50) + place(TEMPLATES[9], 220, 50)
    thin, thick = read(drawing, classify, pen=2), read(drawing, classify, pen=14)
    assert thin.text == thick.text == "69"
    assert abs(thin.digits[0].confidence - thick.digits[0].confidence) < 1e-6


def test_image_input_either_polarity_array_and_png_bytes(classify):
    ink = rasterize_strokes(place(TEMPLATES[1], 60, 40) + place(TEMPLATES[7], 180, 40), 360, 200, 7)
    paper = 255 - ink
    color = cv2.cvtColor(paper, cv2.COLOR_GRAY2BGR)
    png = cv2.imencode(".png", paper)[1].tobytes()
    jpeg = cv2.imencode(".jpg", color)[1].tobytes()
    for image in (ink, paper, color, png, jpeg, ink.astype(np.float32) / 255):
        assert recognize_image(image, classify).text == "17"


def test_photo_with_uneven_light_is_read(classify):
    ink = rasterize_strokes(place(TEMPLATES[4], 80, 60) + place(TEMPLATES[0], 220, 60), 400, 240, 8)
    light = np.linspace(150, 240, 400)[None, :] * np.ones((240, 1))
    noise = np.random.default_rng(0).normal(0, 4, ink.shape)
    photo = np.clip(light - ink.astype(float) * 0.45 + noise, 0, 255).astype(np.uint8)
    assert recognize_image(photo, classify).text == "40"


@pytest.mark.parametrize("edge", [150, 200, 250])
def test_photo_with_a_shadow_across_the_number_is_read(classify, edge):
    # A hand held over the page darkens part of it, the ink with it, behind a soft edge that may
    # run through a digit; the edge itself is not ink.
    ink = rasterize_strokes(place(TEMPLATES[4], 80, 60) + place(TEMPLATES[0], 220, 60), 400, 240, 8)
    columns = np.arange(400)[None, :] * np.ones((240, 1))
    paper = 225 - 60 * np.clip((columns - edge) / 12, 0, 1)
    noise = np.random.default_rng(edge).normal(0, 6, ink.shape)
    photo = np.clip(paper * (1 - ink.astype(float) / 255 * 0.45) + noise, 0, 255).astype(np.uint8)
    assert recognize_image(photo, classify).text == "40"


@pytest.mark.parametrize("digit", [1, 3, 8])
def test_a_bold_digit_cropped_tight_stays_solid_ink(classify, digit):
    # A marker's stroke can be wider than the square that erodes the ink out of the paper's
    # estimate; it must not be taken for paper and hollowed into an outline.
    ink = rasterize_strokes(place(TEMPLATES[digit], 25, 15, 60), 100, 90, 13)
    inked = ink > 127
    _, mask, _ = prepare_image(255 - ink)
    assert mask[inked].mean() > 0.97
    assert recognize_image(255 - ink, classify).text == str(digit)


@pytest.mark.parametrize("lines", ["ruled", "squared"])
def test_writing_on_ruled_or_squared_paper_is_read_without_the_lines(classify, lines):
    # Printed lines fainter than the writing run through every digit and would join them all.
    ink = rasterize_strokes(place(TEMPLATES[4], 80, 60) + place(TEMPLATES[7], 220, 60), 400, 240, 4)
    paper = 255 - ink
    paper[::20] = np.minimum(paper[::20], 150)
    if lines == "squared":
        paper[:, ::20] = np.minimum(paper[:, ::20], 150)
    _, mask, _ = prepare_image(paper)
    assert mask[::20].mean() < 0.1, "the lines are paper"
    assert mask[ink > 200].mean() > 0.9, "the writing is ink, where it crosses a line too"
    assert recognize_image(paper, classify).text == "47"


def test_a_line_drawn_under_a_number_is_not_read(classify):
    # Underlined, as a total or an answer is: a flat blob wider than any digit.
    strokes = place(TEMPLATES[4], 80, 60) + place(TEMPLATES[7], 220, 60) + [[[60, 185], [330, 190]]]
    assert read(strokes, classify, 400, 240, 8).text == "47"
    assert recognize_image(255 - rasterize_strokes(strokes, 400, 240, 8), classify).text == "47"
    # A line drawn alone is what was drawn, not an underline: it is read as a mark.
    assert len(read(strokes[-1:], classify, 400, 240, 8).digits) == 1


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
    assert read(strokes, classify, 400, 240, 8).text == "47"


def test_the_shorter_line_under_a_number_of_two_digits_is_not_read(classify):
    # Narrower than the line under a long number, but wider than a digit and below the digits.
    strokes = place(TEMPLATES[4], 90, 60) + place(TEMPLATES[7], 175, 60) + [[[115, 185], [230, 186]]]
    assert read(strokes, classify, 400, 240, 14).text == "47"
    assert recognize_image(255 - rasterize_strokes(strokes, 400, 240, 14), classify).text == "47"


def test_a_flat_stroke_over_a_digit_wider_than_it_is_tall_stays_its_bar(classify):
    # A 7 whose bar is drawn apart and long: flat, wide, but at the digit's top.
    seven = place([[[-5, 8], [110, 8]], [[85, 8], [40, 95]]], 100, 60)
    assert read(seven, classify, 400, 240, 8).text == "7"


def test_blank_image_and_undecodable_bytes(classify):
    assert recognize_image(np.full((120, 200), 255, np.uint8), classify).text == ""
    assert recognize_image(np.zeros((50, 50, 3), np.uint8), classify).text == ""
    with pytest.raises(ValueError, match="decode"):
        recognize_image(b"not an image at all", classify)


def test_naive_baseline_reads_every_component_as_a_digit(classify):
    broken_one = place([[[50, 5], [50, 45]], [[50, 58], [50, 95]]], 100, 50)
    touching = place(TEMPLATES[0], 100, 50) + place(TEMPLATES[0], 158, 50)
    assert len(naive_recognize_strokes(broken_one, 600, 300, classify, pen_width=6).digits) == 2
    assert len(naive_recognize_strokes(touching, 600, 300, classify, pen_width=6).digits) == 1
    assert naive_recognize_strokes([], 600, 300, classify).text == ""


def test_a_one_touching_the_next_digit_is_split(classify):
    # Tight writing: the 2 starts on the 1's stroke, so the two make one narrow component.
    for overlap in (0, 5):
        result = read(place(TEMPLATES[1], 100, 50) + place(TEMPLATES[2], 130 - overlap, 50), classify)
        assert result.text == "12"


def test_four_with_its_stem_beside_the_bar_is_one_digit(classify):
    # The L and the stem of this 4 only touch side by side, but they do not share a baseline.
    four = place([[[30, 5], [15, 60], [60, 60]], [[63, 20], [63, 95]]], 100, 50)
    assert read(four, classify).text == "4"


def test_wide_single_digit_is_not_cut_through_its_stroke(classify):
    wide_zero = [[[150 + 80 * np.sin(t), 100 - 40 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 33)]]
    result = read(wide_zero, classify)
    assert len(result.digits) == 1 and result.lines == (result.text,)


def test_five_with_its_bar_off_at_the_corner_is_merged(classify):
    bar = [[72, -4], [108, -4]]
    result = read(place([bar, TEMPLATES[5][1]], 100, 60), classify)
    assert len(result.digits) == 1 and result.lines == (result.text,)


def test_five_with_its_bar_reaching_far_to_the_right_is_merged(classify):
    # The bar starts over the body's right half, beside its top, and ends 0.6 digit heights past
    # it: the two are wider together than SIDE_MAX_WIDTH allows a digit and a fragment beside it.
    bar = [[62, 22], [135, 2]]
    result = read(place([bar, TEMPLATES[5][1]], 100, 60), classify)
    assert len(result.digits) == 1 and result.digits[0].box[2] >= 1.2 * 100


def test_a_digit_in_two_blobs_one_shared_with_its_neighbour_is_read_across_them(classify):
    # The 4's bar touches the 0 before it while its stem stands apart: read blob by blob, the
    # 0 and the bar came out as one unsure 0 and the stem as a 1 ("01").
    bar, stem = [[30, 5], [15, 60], [56, 60]], [[66, 20], [66, 95]]
    result = read(place(TEMPLATES[0], 100, 50) + place([bar, stem], 163, 50), classify)
    assert result.text == "04"
    assert result.digits[1].box[0] < result.digits[0].box[0] + result.digits[0].box[2]
    assert not any(digit.unsure for digit in result.digits)


def split_of(pieces: dict, size: float = 100.0) -> list:
    """The best reading of a two-atom stroke lattice whose parts read as `pieces` says: (p, box)."""
    return best_split(("strokes", [0, 1, 2]), lambda part: pieces.get(part[1:]), size)[1]


def test_a_piece_much_wider_than_a_digit_loses_to_plausible_halves():
    # Two overlapping 7s read as one 7 (p 0.99) 1.6 digit heights wide, or as two 7s (p 0.85).
    whole, left, right = (0.99, (0, 0, 160, 100)), (0.85, (0, 0, 70, 100)), (0.85, (80, 0, 80, 100))
    assert split_of({(0, 2): whole, (0, 1): left, (1, 2): right}) == [("strokes", 0, 1), ("strokes", 1, 2)]
    # A digit as wide as it is tall stays whole against the same halves.
    assert split_of({(0, 2): (0.99, (0, 0, 100, 100)), (0, 1): left, (1, 2): right}) == [("strokes", 0, 2)]


def test_a_blob_read_at_chance_as_one_digit_loses_to_halves_read_as_digits():
    # Two condensed digits run together, as wide as one digit, that the model reads at chance
    # whole (p 0.15): halves it reads fairly surely (p 0.35 each) win.
    whole, left, right = (0.15, (0, 0, 90, 100)), (0.35, (0, 0, 40, 100)), (0.35, (50, 0, 40, 100))
    assert split_of({(0, 2): whole, (0, 1): left, (1, 2): right}) == [("strokes", 0, 1), ("strokes", 1, 2)]
    # Read a little more surely whole (p 0.25), it stays one digit against the same halves.
    assert split_of({(0, 2): (0.25, (0, 0, 90, 100)), (0, 1): left, (1, 2): right}) == [("strokes", 0, 2)]


def test_pieces_read_in_drawing_order_never_step_back_to_the_left():
    # A 0 whose right side was traced first: the right stroke alone reads 7, the left one 1,
    # each more surely than the whole reads 0; a number is not written right to left.
    whole, right, left = (0.97, (0, 0, 90, 100)), (0.99, (35, 10, 55, 90)), (1.0, (0, 10, 45, 90))
    assert split_of({(0, 2): whole, (0, 1): right, (1, 2): left}) == [("strokes", 0, 2)]
    # The same pieces drawn left to right do read as two digits.
    assert split_of({(0, 2): whole, (0, 1): left, (1, 2): right}) == [("strokes", 0, 1), ("strokes", 1, 2)]


def test_a_short_digit_counts_as_one_in_a_row_of_touching_digits_only():
    # A sloping row of touching digits is taller than its digits, so a digit half the
    # drawing's digit height tall is still a digit there; in a blob one digit wide it is a
    # fragment (the loop of a 6 beside its stem).
    short, tall = (0.99, (0, 50, 50, 50)), (0.99, (55, 0, 70, 95))
    for width, expected in ((160, [("strokes", 0, 1), ("strokes", 1, 2)]), (100, [("strokes", 0, 2)])):
        least = min_piece_height(Blob(0, 0, width, 100, (1,)), 100.0)
        pieces = {(0, 2): (0.9, (0, 0, width, 100)), (0, 1): short, (1, 2): tall}
        reading = best_split(
            ("strokes", [0, 1, 2]), lambda part, pieces=pieces: pieces.get(part[1:]), 100.0, min_height=least
        )
        assert reading[1] == expected
