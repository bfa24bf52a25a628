"""Augmentation: every path yields normalized MNIST-style digits; batches are reproducible."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from training.augment import AugmentedBatches, AugmentSettings, augment_digit, digit_pair
from training.trace_cache import traced_digits
from training.tracer import trace_digit


def bar_digit() -> np.ndarray:
    """A synthetic 28x28 '1': a thick vertical bar, the way MNIST stores ink (uint8, white on black)."""
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 12:16] = 255
    return image


def test_every_augmentation_path_gives_a_normalized_digit():
    rng = np.random.default_rng(0)
    paths = {
        "clean": AugmentSettings(clean_probability=1.0),
        "bitmap": AugmentSettings(clean_probability=0.0, stroke_probability=0.0, thickness_probability=1.0),
        "strokes": AugmentSettings(clean_probability=0.0, stroke_probability=1.0),
    }
    traced = [np.array([[14.0, 4.0], [14.0, 23.0]])]
    for name, settings in paths.items():
        digit = augment_digit(bar_digit(), rng, settings, lambda: traced)
        assert digit.shape == (28, 28) and digit.dtype == np.float32, name
        assert 0.0 <= digit.min() and digit.max() <= 1.0 and digit.max() > 0.5, name
        rows, columns = np.nonzero(digit > 0.3)
        # A '1' stays tall and narrow whichever way it was made.
        assert np.ptp(rows) > 2 * np.ptp(columns), name


def test_batches_are_reproducible_and_trace_each_digit_once(mnist):
    images, labels = mnist.train_images[:64], mnist.train_labels[:64]
    settings = AugmentSettings(stroke_probability=0.5)
    first = AugmentedBatches(images, labels, batch_size=32, seed=3, settings=settings)
    second = AugmentedBatches(images, labels, batch_size=32, seed=3, settings=settings)
    batch, batch_labels = first[1]
    assert batch.shape == (32, 28, 28, 1) and np.array_equal(batch, second[1][0])
    assert np.array_equal(batch_labels, labels[first.order[32:64]])
    traced = dict(first.traces)
    assert traced and np.array_equal(first[1][0], batch) and first.traces.keys() == traced.keys()


def test_traces_are_cached_by_content_and_a_broken_cache_is_traced_again(mnist, tmp_path, caplog):
    images = mnist.train_images[:20]
    first = traced_digits(images, tmp_path)
    assert [len(strokes) for strokes in first] == [len(trace_digit(image)) for image in images]
    (cached,) = tmp_path.glob("traces-*.npz")
    again = traced_digits(images, tmp_path)
    assert [len(strokes) for strokes in again] == [len(strokes) for strokes in first]
    assert all(np.allclose(a, b, atol=1e-4) for x, y in zip(first, again) for a, b in zip(x, y))
    # Other digits get their own file; the first one is not overwritten.
    assert len(traced_digits(mnist.train_images[20:30], tmp_path)) == 10
    assert len(list(tmp_path.glob("traces-*.npz"))) == 2
    cached.write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING):
        rebuilt = traced_digits(images, tmp_path)
    assert "unreadable trace cache" in caplog.text and len(rebuilt) == 20


def test_batches_redraw_from_given_traces_and_refuse_mismatched_ones(mnist):
    images, labels = mnist.train_images[:8], mnist.train_labels[:8]
    traces = traced_digits(images, cache_dir=None)
    settings = AugmentSettings(clean_probability=0.0, stroke_probability=1.0)
    batches = AugmentedBatches(images, labels, batch_size=8, seed=1, settings=settings, traces=traces)
    batch, _ = batches[0]
    assert batch.shape == (8, 28, 28, 1) and 0.0 <= batch.min() and batch.max() <= 1.0
    assert len(batches.traces) == 8
    with pytest.raises(ValueError, match="one trace per image"):
        AugmentedBatches(images, labels, batch_size=8, seed=1, traces=traces[:3])


def test_a_digit_pair_is_one_wide_piece_with_both_digits():
    bar = [np.array([[14.0, 4.0], [14.0, 23.0]])]
    ring = [np.array([[14 + 6 * np.cos(t), 14 + 9 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 40)])]
    settings = AugmentSettings(rotation_degrees=0.0, scale_range=(1.0, 1.0), aspect_range=(1.0, 1.0), shear=0.0)
    for seed in range(5):
        pair = digit_pair(bar, bar, np.random.default_rng(seed), settings)
        assert pair.shape == (28, 28) and 0.0 <= pair.min() and pair.max() <= 1.0
        rows, columns = np.nonzero(pair > 0.3)
        # Two 1s are set apart, never one thick 1: two separate columns of ink, wide as a digit.
        assert np.ptp(columns) >= 0.55 * np.ptp(rows)
        assert (pair[:, columns.min() : columns.max() + 1].max(axis=0) < 0.3).any()
        # A 1 may overlap a 0 by half the 1's width (nothing), so it stands beside the 0, not inside it.
        beside = digit_pair(ring, bar, np.random.default_rng(seed), settings) > 0.3
        rows, columns = np.nonzero(beside)
        assert beside[:, columns.max()].sum() >= 0.8 * np.ptp(rows)


def test_pairs_replace_samples_under_random_labels(mnist):
    images, labels = mnist.train_images[:64], mnist.train_labels[:64]
    plain = AugmentedBatches(images, labels, batch_size=64, seed=3)
    paired = AugmentedBatches(images, labels, batch_size=64, seed=3, settings=AugmentSettings(pair_probability=0.5))
    (plain_batch, plain_labels), (batch, batch_labels) = plain[0], paired[0]
    replaced = (plain_batch != batch).reshape(64, -1).any(axis=1)
    assert 16 <= replaced.sum() <= 48 and np.array_equal(plain_labels[~replaced], batch_labels[~replaced])
    # A label says nothing about a pair: about one in ten matches its left digit's.
    assert (batch_labels[replaced] != plain_labels[replaced]).mean() > 0.6
    assert set(batch_labels.tolist()) <= set(range(10))
