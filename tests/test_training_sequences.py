"""Tests of the synthetic multi-digit drawings: tracing digits into strokes, layouts, scoring."""

from __future__ import annotations

import cv2
import numpy as np

from pipeline import Recognition, rasterize_strokes
from training.sequences import (
    accuracy_interval,
    evaluate_oracle,
    evaluate_sequences,
    make_canvas_case,
    make_sequence_cases,
)
from training.tracer import trace_digit


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """Ten MNIST-like 28x28 digits drawn here: a 0 (ring), a 1 (bar) and a 7, repeated."""
    zero = cv2.ellipse(np.zeros((28, 28), np.uint8), (14, 14), (6, 9), 0, 0, 360, 255, 2, cv2.LINE_AA)
    one = cv2.line(np.zeros((28, 28), np.uint8), (14, 4), (14, 23), 255, 2, cv2.LINE_AA)
    seven = cv2.polylines(
        np.zeros((28, 28), np.uint8), [np.array([[7, 5], [21, 5], [11, 23]])], False, 255, 2, cv2.LINE_AA
    )
    images = np.stack([zero, one, seven] * 4)[:10]
    return images, np.array([0, 1, 7] * 4)[:10]


def test_tracing_a_ring_gives_a_closed_stroke_around_it():
    images, _ = digit_images()
    strokes = trace_digit(images[0])
    points = np.concatenate(strokes)
    assert len(strokes) == 1 and len(points) >= 8
    assert np.allclose(points.mean(axis=0), [14, 14], atol=1.0)
    radii = np.abs(points - [14, 14])
    assert 4.5 <= radii[:, 0].max() <= 7.5 and 7.5 <= radii[:, 1].max() <= 10.5


def test_tracing_a_bar_gives_one_vertical_stroke():
    images, _ = digit_images()
    strokes = trace_digit(images[1])
    points = np.concatenate(strokes)
    assert len(strokes) == 1
    assert np.ptp(points[:, 0]) <= 1.5 and np.ptp(points[:, 1]) >= 15


def faint_gap_bar(gap_ink: int) -> np.ndarray:
    """A vertical bar whose middle rows hold only `gap_ink` (a pen that skipped, or paper)."""
    bar = cv2.line(np.zeros((28, 28), np.uint8), (14, 4), (14, 23), 255, 2, cv2.LINE_AA)
    bar[13:15] = np.minimum(bar[13:15], gap_ink)
    return bar


def parts(strokes: list[np.ndarray]) -> int:
    """How many separate pieces of ink the strokes draw."""
    raster = rasterize_strokes([(stroke * 10).tolist() for stroke in strokes], 280, 280, pen_width=8)
    return cv2.connectedComponents((raster > 64).astype(np.uint8))[0] - 1


def test_a_line_broken_only_by_faint_ink_is_traced_whole():
    assert parts(trace_digit(faint_gap_bar(gap_ink=60))) == 1


def test_a_line_broken_by_blank_paper_stays_in_two_pieces():
    assert parts(trace_digit(faint_gap_bar(gap_ink=0))) == 2


def test_cases_are_reproducible_and_within_the_specified_ranges():
    images, labels = digit_images()
    for layout in ("ordinary", "tight"):
        cases = make_sequence_cases(images, labels, count=30, layout=layout, seed=3)
        again = make_sequence_cases(images, labels, count=30, layout=layout, seed=3)
        assert [c.text for c in cases] == [c.text for c in again]
        assert all(1 <= len(c.text) <= 8 and set(c.text) <= {"0", "1", "7"} for c in cases)
        points = [np.concatenate(c.strokes) for c in cases]
        assert all(p.min() >= 0 and (p.max(axis=0) < [c.width, c.height]).all() for p, c in zip(points, cases))
        assert len({c.text for c in cases}) > 10


def test_tight_layout_has_touching_digits_and_ordinary_has_gaps():
    images, labels = digit_images()

    def touching(case) -> bool:
        canvas = rasterize_strokes(case.strokes, case.width, case.height, case.pen_width)
        count = cv2.connectedComponents((canvas > 64).astype(np.uint8))[0] - 1
        return count < len(case.text)

    tight = make_sequence_cases(images, labels, count=40, layout="tight", seed=0)
    ordinary = make_sequence_cases(images, labels, count=40, layout="ordinary", seed=0)
    assert sum(map(touching, tight)) > 10
    assert sum(map(touching, ordinary)) <= 2


def test_canvas_case_fills_the_requested_canvas():
    images, labels = digit_images()
    case = make_canvas_case(images, labels, digits=8, width=1000, height=400)
    points = np.concatenate(case.strokes)
    assert (case.width, case.height, len(case.text)) == (1000, 400, 8)
    assert points.min() >= 0 and (points.max(axis=0) <= [1000, 400]).all()


def test_evaluate_sequences_scores_whole_numbers_digits_and_counts():
    images, labels = digit_images()
    cases = make_sequence_cases(images, labels, count=20, layout="ordinary", seed=1)
    answers = {id(case): case.text for case in cases}
    answers[id(cases[0])] = cases[0].text + "1"
    answers[id(cases[1])] = "9" + cases[1].text[1:]

    def recognizer(strokes, width, height, classify, pen_width=None):
        case = next(c for c in cases if c.strokes is strokes)
        text = answers[id(case)]
        return Recognition(text=text, lines=(text,), digits=())

    scores = evaluate_sequences(cases, classify=None, recognizer=recognizer)
    total = sum(len(c.text) for c in cases)
    assert scores["sequence_accuracy"] == 18 / 20
    assert scores["count_errors"] == 1
    assert abs(scores["digit_accuracy"] - (1 - 2 / total)) < 1e-9
    # The Wilson score interval, by its formula: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
    z, n, p = 1.959964, 20, 0.9
    center, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    expected = ((center - half) / (1 + z * z / n), (center + half) / (1 + z * z / n))
    assert np.allclose(scores["sequence_interval"], expected, atol=1e-6)


def test_accuracy_interval_narrows_with_more_drawings():
    small, large = accuracy_interval(45, 50), accuracy_interval(1350, 1500)
    assert small[0] < large[0] < 0.9 < large[1] < small[1]
    assert accuracy_interval(0, 0) == (0.0, 1.0) and accuracy_interval(10, 10)[1] == 1.0


def test_oracle_classifies_each_digit_from_its_own_strokes():
    images, labels = digit_images()
    cases = make_sequence_cases(images, labels, 30, "tight", seed=5)
    assert all(
        sum(case.digit_strokes) == len(case.strokes) and len(case.digit_strokes) == len(case.text) for case in cases
    )

    def tall_is_one(batch: np.ndarray) -> np.ndarray:
        # A '1' is the only digit whose ink is four times taller than wide; call the rest 0.
        rows = [np.nonzero(image.max(axis=1) > 0.3)[0] for image in batch]
        columns = [np.nonzero(image.max(axis=0) > 0.3)[0] for image in batch]
        is_one = np.array([np.ptp(r) > 4 * np.ptp(c) for r, c in zip(rows, columns)])
        return np.eye(10, dtype=np.float32)[np.where(is_one, 1, 0)]

    scores = evaluate_oracle(cases, tall_is_one)
    digits = "".join(case.text for case in cases)
    assert scores["digit_accuracy"] == (digits.count("0") + digits.count("1")) / len(digits)
    assert scores["sequence_accuracy"] == sum(set(case.text) <= {"0", "1"} for case in cases) / len(cases)


def test_a_blotted_loop_is_traced_as_a_loop_not_a_line():
    # A 9 written with a wet pen: the head is a filled disc, the stem a normal stroke.
    nine = cv2.circle(np.zeros((28, 28), np.uint8), (14, 9), 5, 255, -1, cv2.LINE_AA)
    nine = cv2.line(nine, (18, 11), (16, 24), 255, 2, cv2.LINE_AA)
    strokes = trace_digit(nine)
    closed = [s for s in strokes if len(s) > 4 and np.allclose(s[0], s[-1])]
    assert len(closed) == 1, strokes
    # The loop goes around the disc, about a stroke half-width inside its edge.
    radii = np.linalg.norm(closed[0] - [14.5, 9.5], axis=1)
    assert 2.5 <= radii.mean() <= 5.0
    assert any(np.ptp(s[:, 1]) > 6 for s in strokes if s is not closed[0]), "the stem is still a line"


def test_a_digit_written_with_a_wet_marker_is_traced_as_loops():
    # A solid 8: two filled discs, so the skeleton lies deep inside ink everywhere and the
    # pen measure must not follow it, or no part of the digit counts as a blot.
    eight = cv2.circle(np.zeros((28, 28), np.uint8), (14, 8), 5, 255, -1, cv2.LINE_AA)
    eight = cv2.circle(eight, (14, 19), 6, 255, -1, cv2.LINE_AA)
    strokes = trace_digit(eight)
    closed = [s for s in strokes if len(s) > 4 and np.allclose(s[0], s[-1])]
    assert closed, strokes
    points = np.concatenate(closed)
    # The loop runs around the figure's outline, inside its edge: it spans both discs.
    assert np.ptp(points[:, 1]) >= 12 and 4 <= np.ptp(points[:, 0]) <= 11
