"""Augmentation that makes MNIST look like digits drawn on a canvas, then normalizes them like serving does."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import cv2
import keras
import numpy as np

from demnistify.constants import NUM_CLASSES
from pipeline import normalize_digit, render_strokes_digit
from training.tracer import trace_digit


@dataclass(frozen=True)
class AugmentSettings:
    """Ranges of the random distortions; each sample draws its own values."""

    clean_probability: float = 0.15
    rotation_degrees: float = 10.0
    scale_range: tuple[float, float] = (0.85, 1.1)
    aspect_range: tuple[float, float] = (0.85, 1.15)
    shear: float = 0.25
    thickness_probability: float = 0.4
    placement_shift: float = 1.5
    placement_probability: float = 0.3
    # Share of digits redrawn from their traced strokes the way serving renders a live drawing
    # (constant MNIST-like pen, round joints), so the model reads live drawings as well as
    # scanned ones. The traces are computed once (training.trace_cache), not in the workers.
    # The redrawn strokes are not bent further: a smooth random warp made a worse model.
    stroke_probability: float = 0.0
    # Share of samples replaced by two digits run together (traced strokes, rendered as one
    # piece) under a random label. A random label is, on average, the uniform target, so the
    # model learns to be unsure of such a piece; the split scorer then prefers cutting a blob
    # of touching digits to reading it whole as one confident digit.
    pair_probability: float = 0.0
    # How far the right digit reaches back over the left one: from a gap of this many digit
    # heights to this share of the narrower digit's width (more would hide one inside the other).
    pair_gap: float = 0.1
    pair_overlap: float = 0.5
    # Two narrow digits (1s) are set apart until the pair is this many heights wide, or they
    # would pass for one thick digit.
    pair_min_width: float = 0.6


def augment_digit(
    image: np.ndarray,
    rng: np.random.Generator,
    settings: AugmentSettings,
    strokes: Callable[[], list[np.ndarray]] | None = None,
) -> np.ndarray:
    """Distort one 28x28 uint8 MNIST digit and normalize it exactly as the pipeline does.

    `strokes` gives the digit traced into pen strokes (computed on demand); with it, some
    digits are redrawn from their distorted strokes instead.
    """
    if rng.random() < settings.clean_probability:
        # Some untouched digits keep the model sharp on clean, centered input.
        return image.astype(np.float32) / 255.0
    if strokes is not None and rng.random() < settings.stroke_probability:
        linear = _random_linear(rng, settings)
        return render_strokes_digit([line @ linear.T for line in strokes()])
    distorted = _random_affine(image, rng, settings)
    if rng.random() < settings.thickness_probability:
        distorted = _random_thickness(distorted, rng)
    normalized = normalize_digit(distorted)
    if rng.random() < settings.placement_probability:
        normalized = _placement_quirk(normalized, rng, settings.placement_shift)
    return normalized


def digit_pair(
    left: list[np.ndarray], right: list[np.ndarray], rng: np.random.Generator, settings: AugmentSettings
) -> np.ndarray:
    """Two traced digits side by side, touching or overlapping, normalized as one piece."""
    left_points, right_points = np.concatenate(left), np.concatenate(right)
    height = max(np.ptp(left_points[:, 1]), np.ptp(right_points[:, 1]), 1.0)
    widths = np.ptp(left_points[:, 0]), np.ptp(right_points[:, 0])
    overlap = rng.uniform(-settings.pair_gap * height, settings.pair_overlap * min(widths))
    overlap -= max(0.0, settings.pair_min_width * height - (sum(widths) - overlap))
    shift = np.array([left_points[:, 0].max() - right_points[:, 0].min() - overlap, rng.uniform(-0.1, 0.1) * height])
    linear = _random_linear(rng, settings)
    return render_strokes_digit([line @ linear.T for line in left] + [(line + shift) @ linear.T for line in right])


def _random_affine(image: np.ndarray, rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    # Work at twice the resolution so that rotation and shear keep thin strokes smooth.
    large = cv2.resize(image, (56, 56), interpolation=cv2.INTER_LINEAR)
    linear = _random_linear(rng, settings)
    center = np.array([28.0, 28.0])
    matrix = np.hstack([linear, (center - linear @ center)[:, None]])
    # The canvas is larger than the digit so that nothing is cut off; normalization crops.
    return cv2.warpAffine(large, matrix, (56, 56), flags=cv2.INTER_LINEAR, borderValue=0)


def _random_linear(rng: np.random.Generator, settings: AugmentSettings) -> np.ndarray:
    # Rotation after scale, aspect and shear: the ways handwriting differs from MNIST's.
    angle = math.radians(rng.uniform(-settings.rotation_degrees, settings.rotation_degrees))
    scale = rng.uniform(*settings.scale_range)
    aspect = rng.uniform(*settings.aspect_range)
    shear = rng.uniform(-settings.shear, settings.shear)
    cos, sin = math.cos(angle), math.sin(angle)
    return np.array([[cos, -sin], [sin, cos]]) @ np.array([[scale * aspect, shear], [0.0, scale]])


def _random_thickness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # People draw with thin pens and bold markers; dilation and erosion mimic both.
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(rng.integers(2, 5)),) * 2)
    if rng.random() < 0.5:
        return cv2.dilate(image, kernel)
    thinned = cv2.erode(image, kernel)
    return thinned if thinned.max() > 64 else image


def _placement_quirk(image: np.ndarray, rng: np.random.Generator, max_shift: float) -> np.ndarray:
    # Segmentation of a live drawing is never perfect: shift the digit off its center a little.
    shift_x, shift_y = rng.uniform(-max_shift, max_shift, size=2)
    matrix = np.float32([[1, 0, shift_x], [0, 1, shift_y]])
    return cv2.warpAffine(image, matrix, image.shape[::-1], flags=cv2.INTER_LINEAR, borderValue=0)


def mixed_order(sizes: Sequence[int], shares: Sequence[float], total: int, rng: np.random.Generator) -> np.ndarray:
    """`total` shuffled indices into the sources laid end to end, each source taking its share.

    A source smaller than its quota is repeated whole as often as it fits (every item equally
    often), one larger than it gives a fresh random subset each epoch.
    """
    picks, start = [], 0
    for size, share in zip(sizes, shares):
        quota = int(round(total * share))
        whole, rest = divmod(quota, size) if size else (0, 0)
        picks += [start + rng.permutation(size) for _ in range(whole)] + [start + rng.permutation(size)[:rest]]
        start += size
    return rng.permutation(np.concatenate(picks))


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled, freshly augmented batches of (N, 28, 28, 1) float32 digits, new every epoch.

    `mix` gives, for sources laid end to end in `images`, each one's size and share of an
    epoch; an epoch then holds as many samples as the first source (MNIST) has.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        seed: int,
        settings: AugmentSettings = AugmentSettings(),
        traces: Sequence[list[np.ndarray]] | None = None,
        mix: Sequence[tuple[int, float]] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if len(images) != len(labels) or len(images) == 0 or batch_size < 1:
            raise ValueError("Need matching, non-empty images and labels and batch_size >= 1.")
        if traces is not None and len(traces) != len(images):
            raise ValueError(f"Need one trace per image, got {len(traces)} for {len(images)} images.")
        if mix is not None and (sum(size for size, _ in mix) != len(images) or abs(sum(s for _, s in mix) - 1) > 1e-6):
            raise ValueError("The mix's sizes must add up to the images and its shares to 1.")
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.seed, self.settings, self.epoch, self.mix = seed, settings, 0, mix
        self.order = self._epoch_order()
        # Traced strokes per image: given, or computed the first time a digit is redrawn (~1 ms).
        self.traces: dict[int, list[np.ndarray]] = dict(enumerate(traces)) if traces is not None else {}

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def _epoch_order(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.mix is None:
            return rng.permutation(len(self.images))
        sizes, shares = zip(*self.mix)
        return mixed_order(sizes, shares, sizes[0], rng)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        # Seeding by (seed, epoch, batch) keeps runs reproducible whatever the worker order.
        rng = np.random.default_rng([self.seed, self.epoch, index])
        picked = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = np.stack([augment_digit(self.images[i], rng, self.settings, partial(self._trace, i)) for i in picked])
        labels = self.labels[picked].copy()
        pairs = np.flatnonzero(rng.random(len(picked)) < self.settings.pair_probability)
        for slot in pairs:
            partner = int(rng.integers(len(self.images)))
            batch[slot] = digit_pair(self._trace(picked[slot]), self._trace(partner), rng, self.settings)
            labels[slot] = rng.integers(NUM_CLASSES)
        return batch[..., None], labels

    def _trace(self, index: int) -> list[np.ndarray]:
        if index not in self.traces:
            self.traces[index] = trace_digit(self.images[index])
        return self.traces[index]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._epoch_order()
