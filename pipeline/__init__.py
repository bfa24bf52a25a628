"""Drawing -> digits: rasterize, measure the slant, segment, merge, split, normalize (MNIST-style), classify, order."""

from pipeline.naive import naive_recognize_strokes
from pipeline.normalize import normalize_digit, render_strokes_digit
from pipeline.pictures import recognize_image
from pipeline.rasterize import rasterize_strokes
from pipeline.recognize import UNSURE_THRESHOLD, recognize_strokes
from pipeline.types import Box, Classifier, Digit, Recognition

__all__ = [
    "Box",
    "Classifier",
    "Digit",
    "Recognition",
    "UNSURE_THRESHOLD",
    "naive_recognize_strokes",
    "normalize_digit",
    "rasterize_strokes",
    "recognize_image",
    "recognize_strokes",
    "render_strokes_digit",
]
