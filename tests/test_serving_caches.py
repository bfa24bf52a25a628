"""The serving caches: remembered renderings and classifications give exactly what recomputing gives."""

from __future__ import annotations

import numpy as np

from pipeline import recognize_strokes, render_strokes_digit
from serving.caches import BoundedLru, DigitCache, RenderCache


def ink_classifier(calls: list[int]):
    """A deterministic stand-in model: probabilities from the ink's mass, counting images classified."""

    def classify(images: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        mass = np.asarray(images, dtype=np.float64).reshape(len(images), -1).sum(axis=1)
        scores = np.stack([np.cos(mass / (label + 3.0)) for label in range(10)], axis=1)
        return (np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)).astype(np.float32)

    return classify


def test_digit_cache_classifies_each_new_digit_once_and_evicts_the_oldest():
    calls: list[int] = []
    classify = ink_classifier(calls)
    cache = DigitCache(classify, size=2)
    digits = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    first = cache(digits[:2])
    np.testing.assert_allclose(first, classify(digits[:2]), rtol=1e-6)
    calls.clear()
    np.testing.assert_array_equal(cache(digits[:2]), first)
    assert calls == []  # Both remembered.
    cache(digits[2:])  # Evicts digit 0, the least recently used.
    cache(digits[:2])
    assert calls == [1, 1] and cache.entries.hits == 3 and cache.entries.misses == 4


def test_render_cache_draws_changed_strokes_again_and_shares_read_only_images():
    cache = RenderCache(size=8)
    stroke = np.array([[10.0, 5.0], [12.0, 60.0]])
    box = (10.0, 5.0, 2.0, 55.0)
    image = cache([stroke], box)
    np.testing.assert_array_equal(image, render_strokes_digit([stroke], box))
    assert cache([stroke.copy()], box) is image and not image.flags.writeable
    longer = np.vstack([stroke, [[30.0, 60.0]]])
    assert cache([longer], (10.0, 5.0, 20.0, 55.0)) is not image
    # Same points split into two strokes draw differently, so they must not share a key.
    cache([stroke[:1], stroke[1:]], box)
    assert (cache.entries.hits, cache.entries.misses) == (1, 3)


def test_a_live_drawing_reads_the_same_with_and_without_the_caches():
    one = [[[100, 40], [104, 160]]]
    seven = [[[160, 45], [230, 42], [190, 160]], [[175, 100], [220, 100]]]
    zero = [[[300 + 35 * np.sin(t), 100 - 58 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 30)]]
    drawing = one + seven + zero
    calls: list[int] = []
    classify, render = DigitCache(ink_classifier(calls), size=64), RenderCache(size=64)
    readings = BoundedLru(size=64)
    for strokes in (drawing[:1], drawing[:2], drawing[:3], drawing):
        plain = recognize_strokes(strokes, 400, 200, ink_classifier([]), pen_width=8)
        cached = recognize_strokes(strokes, 400, 200, classify, pen_width=8, render=render)
        assert cached == plain
        assert recognize_strokes(strokes, 400, 200, classify, pen_width=8, memo=readings) == plain
    # Every message resent the digits before the newest stroke: they were neither drawn nor classified again.
    assert render.entries.hits >= 3 and classify.entries.hits >= 3


def test_remembered_blob_readings_match_a_stroke_by_stroke_stream():
    # A client streaming points, as the page does: the digit size changes as the last digit
    # grows, and the seven's bar joins it late; every reading must equal one from scratch.
    seven = [[[160, 45], [230, 42], [190, 160]], [[175, 100], [220, 100]]]
    zero = [[[300 + 35 * np.sin(t), 100 - 58 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 30)]]
    strokes = [[[100, 40], [102, 100], [104, 160]]] + seven + zero
    readings, classify = BoundedLru(size=256), ink_classifier([])
    frames = [
        strokes[:index] + [strokes[index][:points]]
        for index in range(len(strokes))
        for points in range(1, len(strokes[index]) + 1)
    ]
    for frame in frames:
        assert recognize_strokes(frame, 400, 200, classify, pen_width=8, memo=readings) == recognize_strokes(
            frame, 400, 200, classify, pen_width=8
        )
    # Blobs left unchanged by a frame were read from the memo.
    assert readings.hits >= len(frames) - len(strokes)


def test_a_blob_cut_by_position_is_read_again_when_the_raster_moves():
    # One stroke through two digits (a "1" and a "1" joined at the foot) is cut by position on
    # the raster, whose scale follows the drawing's extent: a digit far away must not reuse it.
    joined = [[[50, 40], [52, 160], [250, 160], [252, 40]]]
    readings = BoundedLru(size=16)
    recognize_strokes(joined, 2000, 600, ink_classifier([]), pen_width=8, memo=readings)
    far = joined + [[[1800, 40], [1802, 160]]]
    assert recognize_strokes(far, 2000, 600, ink_classifier([]), pen_width=8, memo=readings) == recognize_strokes(
        far, 2000, 600, ink_classifier([]), pen_width=8
    )
    assert readings.hits == 0


def test_neighbours_read_together_are_remembered_too():
    # A 0 touched by the bar of a 4 whose stem stands apart: the blobs are read alone and as a
    # pair (pipeline.split.PAIR_GAP). Streamed point by point, every reading equals one from
    # scratch, and the finished drawing sent again is read from the memo without the model.
    zero = [[[150 + 32 * np.sin(t), 100 - 45 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 33)]]
    four = [[[193, 55], [178, 110], [219, 110]], [[229, 70], [229, 145]]]
    strokes = zero + four
    readings, calls = BoundedLru(size=256), []
    classify = ink_classifier(calls)
    frames = [
        strokes[:index] + [strokes[index][:points]]
        for index in range(len(strokes))
        for points in range(1, len(strokes[index]) + 1)
    ]
    for frame in frames:
        assert recognize_strokes(frame, 400, 200, classify, pen_width=6, memo=readings) == recognize_strokes(
            frame, 400, 200, classify, pen_width=6
        )
    calls.clear()
    assert len(recognize_strokes(strokes, 400, 200, classify, pen_width=6, memo=readings).digits) >= 2
    assert calls == []


def test_a_lone_stroke_is_not_read_again_when_a_new_digit_changes_the_digit_size():
    # Each new digit, of its own height, moves the drawing's digit size. A one-stroke digit
    # reads the same at any size and is taken from the memo; the two-stroke seven is read again.
    one = [[[100, 40], [102, 100], [104, 160]]]
    zero = [[[200 + 30 * np.sin(t), 100 - 45 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 30)]]
    seven = [[[260, 50], [320, 48], [290, 150]], [[270, 100], [310, 100]]]
    small_one = [[[400, 80], [401, 150]]]
    readings, classify = BoundedLru(size=64), ink_classifier([])
    hits = []
    for frame in (one, one + zero, one + zero + seven, one + zero + seven + small_one):
        assert recognize_strokes(frame, 500, 200, classify, pen_width=8, memo=readings) == recognize_strokes(
            frame, 500, 200, classify, pen_width=8
        )
        hits.append(readings.hits)
    # The 1, then the 1 and the 0, then the 1 and the 0 again but not the seven.
    assert hits == [0, 1, 3, 5]
