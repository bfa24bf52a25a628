"""The naive baseline the benchmark compares against: plain components, crop and stretch, no merge or split."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from demnistify.constants import IMAGE_SIZE
from pipeline.rasterize import draw_polylines
from pipeline.strokes import check_canvas, check_pen_width, check_strokes
from pipeline.types import Classifier, Digit, Recognition


def naive_recognize_strokes(
    strokes: Sequence, width: int, height: int, classify: Classifier, pen_width: float | None = None
) -> Recognition:
    """Rasterize, label components, stretch each box to 28x28, read left to right on one line."""
    width, height = check_canvas(width, height)
    pen = check_pen_width(pen_width, width, height)
    canvas = draw_polylines(check_strokes(strokes, width, height), width, height, pen)
    count, _, stats, _ = cv2.connectedComponentsWithStats((canvas > 0).astype(np.uint8), connectivity=8)
    boxes = sorted((tuple(int(v) for v in stats[label, :4]) for label in range(1, count)), key=lambda box: box[0])
    if not boxes:
        return Recognition.empty()
    crops = [
        cv2.resize(canvas[y : y + h, x : x + w], (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
        for x, y, w, h in boxes
    ]
    probabilities = np.asarray(classify(np.stack(crops).astype(np.float32) / 255))
    labels = probabilities.argmax(axis=1)
    digits = tuple(
        Digit(
            label=int(label),
            confidence=float(p[label]),
            candidates=((int(label), float(p[label])),),
            box=box,
            unsure=False,
        )
        for label, p, box in zip(labels, probabilities, boxes)
    )
    text = "".join(str(digit.label) for digit in digits)
    return Recognition(text=text, lines=(text,), digits=digits)
