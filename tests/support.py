"""Test support shared by the test modules: digits drawn by hand in a 100x100 box, and a template classifier."""

from __future__ import annotations

import numpy as np

from pipeline import render_strokes_digit

# Digits drawn in a 100x100 box (y down), each a list of strokes. The 4, 5 and 7 are drawn
# whole here; the tests draw them in pieces.
ELLIPSE = [[50 + 32 * np.sin(t), 50 - 45 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 33)]
TEMPLATES = {
    0: [ELLIPSE],
    1: [[[50, 5], [50, 95]]],
    2: [[[20, 30], [30, 10], [55, 5], [75, 15], [78, 35], [60, 60], [20, 95], [85, 95]]],
    3: [[[20, 15], [45, 5], [70, 12], [72, 32], [45, 48], [75, 60], [78, 82], [50, 95], [20, 88]]],
    4: [[[30, 5], [15, 60], [85, 60]], [[65, 20], [65, 95]]],
    5: [[[30, 8], [80, 8]], [[30, 8], [25, 45], [55, 40], [75, 60], [70, 85], [45, 95], [20, 85]]],
    6: [[[70, 8], [40, 25], [25, 60], [35, 92], [60, 92], [72, 70], [55, 52], [30, 62]]],
    7: [[[15, 8], [85, 8], [40, 95]]],
    8: [[[50, 50], [25, 30], [50, 5], [75, 30], [50, 50], [22, 72], [50, 95], [78, 72], [50, 50]]],
    9: [[[72, 30], [50, 8], [28, 28], [50, 48], [72, 30], [72, 60], [60, 95]]],
}


def place(strokes, x: float, y: float, height: float = 100.0):
    """The strokes of a 100-unit digit, scaled to `height` pixels, with their box at (x, y)."""
    return [[[x + px * height / 100, y + py * height / 100] for px, py in stroke] for stroke in strokes]


def template_classifier(calls: list | None = None, templates: dict | None = None):
    """Softmax over the cosine similarity to each digit's rendered template, unsure of what is like none.

    Like the trained model (see training.augment, `pair_probability`), it spreads its belief
    over every class for input unlike any digit, such as two digits read as one piece.
    """
    drawn = templates or TEMPLATES
    templates = np.stack([render_strokes_digit([np.array(s, float) for s in drawn[d]]).ravel() for d in range(10)])
    templates /= np.linalg.norm(templates, axis=1, keepdims=True)

    def classify(batch: np.ndarray) -> np.ndarray:
        assert batch.shape[1:] == (28, 28) and batch.dtype == np.float32
        assert batch.min() >= 0 and batch.max() <= 1
        if calls is not None:
            calls.append(len(batch))
        flat = batch.reshape(len(batch), -1)
        similarity = flat @ templates.T / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-9)
        scores = np.exp(25 * similarity)
        sure = 1 / (1 + np.exp(-30 * (similarity.max(axis=1, keepdims=True) - 0.85)))
        return sure * scores / scores.sum(axis=1, keepdims=True) + (1 - sure) / 10

    return classify
