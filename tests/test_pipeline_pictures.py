"""Pictures and photographs of tiny drawings made here: polarity, formats, uneven light, shadows, ruled paper."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipeline import rasterize_strokes, recognize_image
from pipeline.image import prepare_image
from tests.support import TEMPLATES, place


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


def test_blank_image_and_undecodable_bytes(classify):
    assert recognize_image(np.full((120, 200), 255, np.uint8), classify).text == ""
    assert recognize_image(np.zeros((50, 50, 3), np.uint8), classify).text == ""
    with pytest.raises(ValueError, match="decode"):
        recognize_image(b"not an image at all", classify)
