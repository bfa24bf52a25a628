"""Property tests of the MNIST-style normalization and the stroke helpers it relies on."""

from __future__ import annotations

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pipeline import normalize_digit, rasterize_strokes, render_strokes_digit
from pipeline.normalize import MASS_CENTER
from pipeline.strokes import clip_band

coordinate = st.floats(min_value=0, max_value=100, allow_nan=False)
polyline = st.lists(st.tuples(coordinate, coordinate), min_size=2, max_size=8)
drawing = st.lists(polyline, min_size=1, max_size=3).filter(
    lambda strokes: np.ptp(np.concatenate([np.array(s) for s in strokes]), axis=0).max() > 10
)


def mass_center(image: np.ndarray) -> np.ndarray:
    rows, cols = np.indices(image.shape)
    return np.array([(image * cols).sum(), (image * rows).sum()]) / image.sum()


def rasterized(strokes, scale: float = 1.0, offset: float = 20.0, pen: float = 4.0) -> np.ndarray:
    lines = [[[x * scale + offset, y * scale + offset] for x, y in stroke] for stroke in strokes]
    return rasterize_strokes(lines, int(100 * scale + 2 * offset), int(100 * scale + 2 * offset), pen * scale)


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 70), st.integers(1, 70))))
def test_output_is_28x28_float_in_unit_range(image):
    out = normalize_digit(image)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert (out.max() > 0) == (image.max() > 0)


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.floats(-2, 3, allow_nan=False))
)
def test_float_input_is_clipped_to_unit_range(image):
    out = normalize_digit(image)
    assert out.shape == (28, 28) and 0.0 <= out.min() and out.max() <= 1.0


@settings(max_examples=60, deadline=None)
@given(drawing, st.floats(1.5, 12))
def test_digit_fits_the_20px_box_and_is_centered_by_mass(strokes, pen):
    out = normalize_digit(rasterized(strokes, pen=pen))
    rows, cols = np.nonzero(out)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == 20
    center = mass_center(out)
    # The shift is clipped so that the digit stays whole; only then may it sit off center.
    for axis, (low, high) in enumerate(((cols.min(), cols.max()), (rows.min(), rows.max()))):
        if low > 0 and high < 27:
            assert abs(center[axis] - MASS_CENTER) <= 0.51


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 30), st.integers(1, 30))), st.integers(0, 40), st.integers(0, 40))
def test_invariant_to_translation(image, dx, dy):
    canvas = np.zeros((80, 80), np.uint8)
    canvas[dy : dy + image.shape[0], dx : dx + image.shape[1]] = image
    assert np.array_equal(normalize_digit(canvas), normalize_digit(image))


@settings(max_examples=60, deadline=None)
@given(drawing, st.floats(2.0, 6.0))
def test_nearly_invariant_to_uniform_scaling_of_the_drawing(strokes, scale):
    # A pen of 10 in a drawing 100 wide gives MNIST's two-pixel strokes after normalization.
    small = normalize_digit(rasterized(strokes, pen=10))
    large = normalize_digit(rasterized(strokes, scale=scale, pen=10))
    # Rasterizing at two scales differs by anti-aliasing only, and the centering shift is a
    # whole pixel, so the two may sit up to one pixel apart on each axis.
    assert np.abs(mass_center(small) - mass_center(large)).max() <= 1.0 + 1e-6
    # Shapes are compared blurred, as sub-pixel placement of a two-pixel stroke is not shape.
    small, large = cv2.GaussianBlur(small, (5, 5), 1.0), cv2.GaussianBlur(large, (5, 5), 1.0)
    shifts = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    difference = min(np.abs(np.roll(small, shift, axis=(0, 1)) - large).sum() for shift in shifts)
    assert difference < 0.6 * large.sum()


@settings(max_examples=40, deadline=None)
@given(drawing, st.floats(0.2, 20.0), st.floats(-50, 500), st.floats(-50, 500))
def test_stroke_rendering_is_invariant_to_scale_and_translation(strokes, scale, dx, dy):
    lines = [np.array(stroke) for stroke in strokes]
    moved = [line * scale + [dx, dy] for line in lines]
    reference, out = render_strokes_digit(lines), render_strokes_digit(moved)
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert np.abs(reference - out).mean() < 0.01


def test_stroke_rendering_does_not_depend_on_the_pen_and_matches_mnist_ink():
    one = [np.array([[10.0, 10.0], [10.0, 200.0]])]
    out = render_strokes_digit(one)
    # A vertical bar at MNIST scale: 20 px tall, about two pixels wide, centered.
    rows, cols = np.nonzero(out > 0.5)
    assert np.ptp(rows) + 1 >= 18 and 1 <= np.ptp(cols) + 1 <= 3
    assert abs(mass_center(out)[0] - MASS_CENTER) <= 0.51


def test_empty_inputs_give_zeros():
    assert not normalize_digit(np.zeros((5, 9), np.uint8)).any()
    assert not render_strokes_digit([]).any()
    dot = render_strokes_digit([np.array([[5.0, 5.0]])])
    assert dot.max() > 0 and dot.shape == (28, 28)


def test_normalization_is_fast_enough_for_augmentation():
    import time

    image = rasterized([[(10, 10), (90, 20), (30, 90)]], scale=0.25, offset=2, pen=6)
    started = time.perf_counter()
    for _ in range(500):
        normalize_digit(image)
    # The target is 50 microseconds; the bound leaves room for a busy test machine.
    assert (time.perf_counter() - started) / 500 < 500e-6


def test_clip_band_cuts_segments_at_the_band_edges():
    line = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 20.0]])
    pieces = clip_band(line, 5.0, 20.0)
    assert [piece.tolist() for piece in pieces] == [[[5.0, 0.0], [10.0, 0.0], [10.0, 10.0], [5.0, 10.0]]]
    assert clip_band(np.array([[0.0, 0.0], [20.0, 4.0]]), 5.0, 10.0)[0].tolist() == [[5.0, 1.0], [10.0, 2.0]]
    assert clip_band(np.array([[0.0, 0.0], [4.0, 4.0]]), 5.0, 10.0) == []
    zigzag = np.array([[0.0, 0.0], [8.0, 1.0], [0.0, 2.0], [8.0, 3.0]])
    assert len(clip_band(zigzag, 4.0, 10.0)) == 2
