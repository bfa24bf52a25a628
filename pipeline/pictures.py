"""Pictures: prepared once, read sheared at their slant and either side of it, the surest reading kept."""

from __future__ import annotations

import numpy as np

from pipeline.budget import Budget, TooComplex
from pipeline.image import prepare_image
from pipeline.image_drawing import ImageDrawing
from pipeline.recognize import recognize_drawing
from pipeline.slant import image_slant, slants_to_try
from pipeline.split import PROBABILITY_FLOOR
from pipeline.types import Classifier, Digit, Recognition
from pipeline.underlines import without_touching_underlines

# A reading whose every digit is at least this sure is kept as it is: re-reading only the rest
# costs half as much as re-reading every picture and reads as many right (docs/design.md,
# "Pictures are read at three shears").
SURE_DIGIT = 0.99


def recognize_image(image: np.ndarray | bytes, classify: Classifier, budget: Budget | None = None) -> Recognition:
    """Read the number in a picture: a gray or color array, or PNG/JPEG bytes, either ink polarity.

    The picture is read sheared upright by its slant and, unless every digit is SURE_DIGIT sure,
    by slants either side of it (`pipeline.slant.slants_to_try`); the reading whose digits the
    classifier is surest of wins. The readings share one budget: past it, the ones made are kept.
    """
    ink, mask, pen = prepare_image(image)
    ink, mask = without_touching_underlines(ink, mask, pen)
    if not mask.any():
        return Recognition.empty()
    budget = budget or Budget.for_pixels(ink.size)
    first, *others = slants_to_try(image_slant(ink))
    best = recognize_drawing(ImageDrawing.build(ink, mask, pen, first), classify, budget=budget)
    if all(_top_probability(digit) >= SURE_DIGIT for digit in best.digits):
        return best
    for slant in others:
        try:
            reading = recognize_drawing(ImageDrawing.build(ink, mask, pen, slant), classify, budget=budget)
        except TooComplex:
            break
        best = reading if _sureness(reading) > _sureness(best) else best
    return best


def _sureness(recognition: Recognition) -> float:
    # The log probability of all the digits together, which a reading in fewer digits pays less of.
    confidences = [_top_probability(digit) for digit in recognition.digits]
    return float(np.log(np.maximum(confidences, PROBABILITY_FLOOR)).sum()) if confidences else -np.inf


def _top_probability(digit: Digit) -> float:
    # How sure the classifier is of the digit's piece: a 7 read as its writer's flagged 1
    # (pipeline.one_hand) keeps the sureness of its reading as 7.
    return max(probability for _, probability in digit.candidates)
