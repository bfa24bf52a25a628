"""The ways real handwriting differs from MNIST's, each drawn here: slant, condensed and wide digits, touching neighbours."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline import recognize_image, recognize_strokes
from pipeline.budget import Budget, TooComplex
from pipeline.image import estimate_pen_width, prepare_image
from pipeline.image_drawing import ImageDrawing
from pipeline.recognize import recognize_drawing
from pipeline.slant import image_slant, stroke_slant
from pipeline.split import Part
from tests.support import TEMPLATES, place, template_classifier


def shaped(digit: int, slant: float = 0.0, width: float = 1.0):
    """A template digit leaning right by `slant` (x per unit of height) and `width` times as wide."""
    return [[[50 + (x - 50) * width + slant * (100 - y), y] for x, y in stroke] for stroke in TEMPLATES[digit]]


def number(digits, x_step: float, height: float = 100.0, **shape):
    strokes = []
    for index, digit in enumerate(digits):
        strokes += place(shaped(digit, **shape), 40 + index * x_step, 40, height)
    return strokes


def picture(strokes, width: int, height: int, pen: int = 7) -> np.ndarray:
    image = np.full((height, width), 255, np.uint8)
    for stroke in strokes:
        cv2.polylines(image, [np.round(np.array(stroke)).astype(np.int32)], False, 0, pen, cv2.LINE_AA)
    return image


SLANT = 0.45


@pytest.mark.parametrize("digits, step", [((1, 7), 40), ((4, 1), 40), ((2, 1), 50), ((1, 2), 50)])
def test_slanted_digits_joined_by_a_ligature_are_cut_apart(digits, step):
    # Written leaning right, each digit's foot stands under the head of the one before, and the
    # pen runs on from one into the next: their boxes overlap, their strokes are one piece of ink.
    classify = template_classifier(templates={d: shaped(d, slant=SLANT) for d in range(10)})
    first, second = place(shaped(digits[0], slant=SLANT), 40, 40), place(shaped(digits[1], slant=SLANT), 40 + step, 40)
    foot = max((point for stroke in first for point in stroke), key=lambda point: point[1])
    head = min((point for stroke in second for point in stroke), key=lambda point: point[0])
    result = recognize_strokes(first + [[foot, head]] + second, 400, 200, classify, pen_width=6)
    assert result.text == "".join(map(str, digits))
    left, right = (digit.box for digit in result.digits)
    assert left[0] + left[2] > right[0], "the two digits' boxes overlap"


def test_condensed_digits_are_read_one_by_one(classify):
    # A condensed hand: digits a third as wide as they are tall, close together.
    strokes = number([2, 0, 4, 7], x_step=42, width=0.4)
    centers = [40 + 42 * index + 50 for index in range(4)]
    for result in (
        recognize_strokes(strokes, 400, 200, classify, pen_width=5),
        recognize_image(picture(strokes, 400, 200, pen=5), classify),
    ):
        assert [round(digit.box[0] + digit.box[2] / 2, -1) for digit in result.digits] == [
            round(c, -1) for c in centers
        ]


@pytest.mark.parametrize("digits", [(5, 3), (0, 9), (9, 5, 3), (3, 5, 2)])
def test_condensed_digits_touching_in_a_picture_are_cut_apart(digits):
    # Digits 0.4 as wide as the usual, touching: two of them are narrower than a digit is tall.
    classify = template_classifier(templates={d: shaped(d, width=0.4) for d in range(10)})
    image = picture(number(digits, x_step=30, width=0.4), 160 + 30 * len(digits), 200, pen=7)
    assert cv2.connectedComponents(255 - image)[0] - 1 == 1, "drawn as one piece of ink"
    assert recognize_image(image, classify).text == "".join(map(str, digits))


def test_neighbours_touching_as_handwriting_does_are_cut_in_a_picture(classify):
    # The 2's base runs into the 3, as a quick hand joins them.
    strokes = number([2, 3], x_step=75) + [[[120, 135], [135, 128]]]
    image = picture(strokes, 320, 200)
    assert cv2.connectedComponents(255 - image)[0] - 1 == 1, "drawn as one piece of ink"
    assert recognize_image(image, classify).text == "23"


def width_shy_classifier(batch: np.ndarray) -> np.ndarray:
    """Sure of narrow pieces (a 1), 70 % sure of wide ones (a 0): what a model says of a wide digit's halves."""
    widths = (batch.max(axis=1) > 0.3).sum(axis=1)
    out = np.full((len(batch), 10), 0.01 / 9, np.float32)
    narrow = widths <= 12
    out[narrow, 1] = 0.99
    out[~narrow] = 0.3 / 9
    out[~narrow, 0] = 0.7
    return out


def test_a_wide_digit_in_a_picture_is_not_cut_into_two_sure_halves():
    ring = [[[120 + 78 * np.cos(t), 100 + 60 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 60)]]
    image = picture(ring, 260, 200, pen=9)
    result = recognize_image(image, width_shy_classifier)
    assert result.text == "0" and result.digits[0].unsure is False


# A script 4: its bar runs on past the stem to a serif flicked up, its stem stands on a foot.
SERIFED_FOUR = [
    [[60, 110], [100, 40], [100, 150]],
    [[60, 110], [138, 110], [138, 78]],
    [[82, 150], [138, 150]],
]


def test_the_bits_of_a_digit_beyond_a_cut_are_not_read_as_a_1_in_a_picture():
    # Cut beyond the stem, the 4 leaves its serif and its foot's tip: bits that span most of
    # the height but stand apart. A model doubting the whole 4 (0.3) and sure of its cut-off
    # body (0.99) reads any thin piece as a sure 1: "41" unless height counts connected ink.
    image = picture(SERIFED_FOUR, 200, 190, pen=7)
    assert cv2.connectedComponents(255 - image)[0] - 1 == 1, "drawn as one piece of ink"
    ink, mask, pen = prepare_image(image)
    drawing = ImageDrawing.build(ink, mask, pen)
    (blob,) = drawing.blobs
    assert drawing.piece(blob, Part("band", 120, blob.right), blob.height) is None
    assert drawing.piece(blob, Part("band", 90, blob.right), blob.height) is not None, "the stem is whole"
    whole = drawing.piece(blob, drawing.whole(blob), blob.height).image

    def doubts_the_whole(batch: np.ndarray) -> np.ndarray:
        # The 4's body starts at the tip of its bar, low down; a piece starting at the stem is no digit.
        out = np.full((len(batch), 10), 0.01 / 9, np.float32)
        for row, digit in zip(out, batch):
            columns = np.flatnonzero(digit.max(axis=0) > 0.3)
            starts_low = np.flatnonzero(digit[:, columns[0]] > 0.3).min() > 10
            label, sure = (1, 0.99) if len(columns) <= 8 else (4, 0.99) if starts_low else (7, 0.2)
            row[label] = 0.3 if np.array_equal(digit, whole) else sure
        return out

    assert recognize_drawing(drawing, doubts_the_whole).text == "4"


STEEP = 0.6


def test_the_slant_of_strokes_and_of_their_picture_is_measured_alike():
    upright, leaning = number([1, 0, 0], x_step=110), number([1, 0, 0], x_step=110, slant=STEEP / 2)
    assert stroke_slant([np.array(s, float) for s in upright]) == 0.0
    assert stroke_slant([np.array(s, float) for s in leaning]) == pytest.approx(-STEEP / 2, abs=0.1)
    for strokes in (upright, leaning):
        ink = 255 - picture(strokes, 460, 200)
        assert image_slant(ink) == pytest.approx(stroke_slant([np.array(s, float) for s in strokes]), abs=0.1)


def joined(digits, x_step: float, slant: float):
    """Digits leaning by `slant`, the pen running on from each one's foot into the next one's head."""
    strokes, before = [], None
    for index, digit in enumerate(digits):
        drawn = place(shaped(digit, slant=slant), 40 + index * x_step, 40)
        if before is not None:
            foot = max((point for stroke in before for point in stroke), key=lambda point: point[1])
            head = min((point for stroke in drawn for point in stroke), key=lambda point: point[0])
            strokes.append([foot, head])
        strokes, before = strokes + drawn, drawn
    return strokes


@pytest.mark.parametrize("digits", [(1, 1, 7), (4, 1, 2), (1, 7), (2, 1)])
def test_a_steep_joined_hand_is_segmented_upright(digits):
    # Leaning 31 degrees and joined, each digit's foot reaches under the head of the next by
    # more than neighbouring digits may overlap, until the drawing is stood upright.
    classify = template_classifier(templates={d: shaped(d, slant=STEEP) for d in range(10)})
    result = recognize_strokes(joined(digits, 35, STEEP), 400, 200, classify, pen_width=6)
    assert result.text == "".join(map(str, digits))


@pytest.mark.parametrize("digits", [(1, 1, 7), (4, 1, 2)])
def test_a_steep_hand_is_read_and_boxed_as_written(digits):
    # Segmented upright, each digit is still classified as drawn (the templates lean too) and
    # boxed where it was drawn, as strokes and as a picture.
    classify = template_classifier(templates={d: shaped(d, slant=STEEP) for d in range(10)})
    strokes = number(digits, x_step=45, slant=STEEP)
    for result in (
        recognize_strokes(strokes, 400, 200, classify, pen_width=6),
        recognize_image(picture(strokes, 400, 200, pen=6), classify),
    ):
        assert result.text == "".join(map(str, digits))
        for index, (digit, value) in enumerate(zip(result.digits, digits)):
            ink = np.concatenate([np.array(s) for s in place(shaped(value, slant=STEEP), 40 + 45 * index, 40)])
            left, top, width, height = digit.box
            assert abs(left - ink[:, 0].min()) <= 6 and abs(left + width - ink[:, 0].max()) <= 6
            assert abs(top - ink[:, 1].min()) <= 6 and abs(top + height - ink[:, 1].max()) <= 6


@pytest.mark.parametrize("digits, step, slant", [((1, 7), 40, 0.3), ((8, 9), 50, STEEP)])
def test_a_picture_whose_slant_is_misjudged_is_read_sheared_either_side(digits, step, slant):
    # A 7's diagonal tips the measured slant of "17" to 0.5, and the curves of "89" hide its
    # lean: stood upright by that slant, the neighbours merge into one digit.
    classify = template_classifier(templates={d: shaped(d, slant=slant) for d in range(10)})
    image = picture(number(digits, x_step=step, slant=slant), 400, 200, pen=6)
    ink, mask, pen = prepare_image(image)
    assert abs(image_slant(ink) + slant) >= 0.2
    assert recognize_image(image, classify).text == "".join(map(str, digits))


def test_the_readings_of_a_picture_share_its_budget_and_keep_what_they_found():
    classify = template_classifier(templates={d: shaped(d, slant=STEEP) for d in range(10)})
    image = picture(number([4, 1, 2], x_step=45, slant=STEEP), 400, 200, pen=6)
    ink, mask, pen = prepare_image(image)
    once = Budget()
    first = recognize_drawing(ImageDrawing.build(ink, mask, pen, image_slant(ink)), classify, budget=once)
    # Enough for one reading and not for three: the first one is kept, not refused.
    assert recognize_image(image, classify, Budget(1.5 * once.spent)).text == first.text == "412"
    with pytest.raises(TooComplex):
        recognize_image(image, classify, Budget(0.5 * once.spent))


def test_a_solid_block_of_ink_has_the_pen_width_of_its_narrower_side():
    # A condensed 1 can be a bar with no paper beside it to measure a distance from.
    assert estimate_pen_width(np.ones((24, 2), np.uint8)) == 2.0
