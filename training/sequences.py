"""Synthetic multi-digit drawings made from MNIST digits traced into pen strokes, and their scoring."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from pipeline import Classifier, Recognition, recognize_strokes, render_strokes_digit
from training.tracer import trace_digit

LAYOUTS = ("ordinary", "tight")
# The MNIST digit box is 20 px of the 28 px frame; a digit drawn `height` pixels tall is
# scaled by height / DIGIT_BOX.
DIGIT_BOX = 20.0
HEIGHT_RANGE = (40.0, 160.0)
MAX_DIGITS = 8
# Gaps between neighbouring digits' ink, as fractions of the digit height; negative gaps
# overlap the boxes, so "tight" drawings hold touching digits.
GAPS = {"ordinary": (0.12, 0.8), "tight": (-0.12, 0.06)}

Recognizer = Callable[..., Recognition]


@dataclass(frozen=True)
class SequenceCase:
    """One synthetic drawing of a number and the number it shows."""

    strokes: tuple[np.ndarray, ...]
    width: int
    height: int
    pen_width: float
    text: str
    layout: str
    # How many of `strokes` each digit drew, in order (lets the benchmark isolate segmentation).
    digit_strokes: tuple[int, ...] = ()


def make_sequence_cases(
    images: np.ndarray, labels: np.ndarray, count: int, layout: str, seed: int
) -> list[SequenceCase]:
    """`count` drawings of 1-8 digits picked from `images` (MNIST test digits), reproducible by seed."""
    if layout not in GAPS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
    rng = np.random.default_rng([seed, LAYOUTS.index(layout)])
    return [_make_case(images, labels, layout, rng) for _ in range(count)]


def _make_case(images: np.ndarray, labels: np.ndarray, layout: str, rng: np.random.Generator) -> SequenceCase:
    picks = rng.integers(0, len(images), size=int(rng.integers(1, MAX_DIGITS + 1)))
    height = float(np.exp(rng.uniform(*np.log(HEIGHT_RANGE))))
    pen = float(rng.uniform(2.0, max(2.5, min(14.0, 0.15 * height))))
    slope, x, strokes, counts = rng.uniform(-0.12, 0.12), 0.0, [], []
    for index in picks:
        scale = height / DIGIT_BOX * rng.uniform(0.9, 1.1)
        digit = [line * scale for line in trace_digit(images[index])]
        low, high = np.concatenate(digit).min(axis=0), np.concatenate(digit).max(axis=0)
        baseline = slope * x + rng.normal(0.0, 0.04 * height)
        offset = np.array([x - low[0], baseline - high[1]])
        strokes += [line + offset for line in digit]
        counts.append(len(digit))
        x += high[0] - low[0] + pen + rng.uniform(*GAPS[layout]) * height
    case = _place(strokes, pen, height, "".join(str(int(labels[i])) for i in picks), layout, rng)
    return replace(case, digit_strokes=tuple(counts))


def _place(
    strokes: list[np.ndarray], pen: float, height: float, text: str, layout: str, rng: np.random.Generator
) -> SequenceCase:
    low, high = np.concatenate(strokes).min(axis=0), np.concatenate(strokes).max(axis=0)
    margin = rng.uniform(0.3, 1.0, size=2) * height + pen
    shifted = tuple(line - low + margin for line in strokes)
    size = np.ceil(high - low + 2 * margin).astype(int)
    return SequenceCase(shifted, int(size[0]), int(size[1]), pen, text, layout)


def evaluate_sequences(
    cases: Sequence[SequenceCase], classify: Classifier, recognizer: Recognizer = recognize_strokes
) -> dict[str, float]:
    """Sequence accuracy (whole number right), digit accuracy (1 - edit distance per digit), count errors."""
    right = digits = distance = count_errors = 0
    started = time.perf_counter()
    for case in cases:
        text = recognizer(case.strokes, case.width, case.height, classify, pen_width=case.pen_width).text
        right += text == case.text
        count_errors += len(text) != len(case.text)
        digits += len(case.text)
        distance += _edit_distance(text, case.text)
    total = max(len(cases), 1)
    return {
        "sequence_accuracy": right / total,
        "sequence_interval": accuracy_interval(right, len(cases)),
        "digit_accuracy": max(0.0, 1.0 - distance / max(digits, 1)),
        "count_errors": count_errors,
        "count_error_rate": count_errors / total,
        "cases": len(cases),
        "ms_per_drawing": 1000 * (time.perf_counter() - started) / total,
    }


def evaluate_oracle(cases: Sequence[SequenceCase], classify: Classifier) -> dict[str, float]:
    """The same scores with perfect segmentation: each digit's own strokes, rendered and classified.

    This is the ceiling the classifier and the traced strokes allow; the gap to it is what
    segmentation loses.
    """
    images, texts = [], []
    for case in cases:
        bounds = np.cumsum((0, *case.digit_strokes))
        images += [render_strokes_digit(case.strokes[start:end]) for start, end in zip(bounds[:-1], bounds[1:])]
        texts.append(case.text)
    labels = iter(np.asarray(classify(np.stack(images))).argmax(axis=1)) if images else iter(())
    read = ["".join(str(next(labels)) for _ in text) for text in texts]
    digits = sum(len(text) for text in texts)
    wrong = sum(a != b for text, guess in zip(texts, read) for a, b in zip(text, guess))
    right = sum(t == r for t, r in zip(texts, read))
    return {
        "sequence_accuracy": right / max(len(cases), 1),
        "sequence_interval": accuracy_interval(right, len(cases)),
        "digit_accuracy": 1.0 - wrong / max(digits, 1),
        "count_errors": 0,
        "cases": len(cases),
    }


def accuracy_interval(right: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson interval of an accuracy of `right` out of `total`: 500 drawings pin it only to a point or two."""
    if total == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest

    interval = binomtest(right, total).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(interval.low), float(interval.high))


def _edit_distance(first: str, second: str) -> int:
    previous = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        current = [i]
        for j, b in enumerate(second, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1]


def make_canvas_case(
    images: np.ndarray, labels: np.ndarray, digits: int, width: int, height: int, seed: int = 0
) -> SequenceCase:
    """One ordinary drawing of exactly `digits` digits, scaled to fill a width x height canvas."""
    rng = np.random.default_rng([seed, digits])
    while True:
        case = _make_case(images, labels, "ordinary", rng)
        if len(case.text) == digits:
            break
    factor = 0.9 * min(width / case.width, height / case.height)
    offset = (np.array([width, height]) - factor * np.array([case.width, case.height])) / 2
    strokes = tuple(line * factor + offset for line in case.strokes)
    return replace(case, strokes=strokes, width=width, height=height, pen_width=case.pen_width * factor)
