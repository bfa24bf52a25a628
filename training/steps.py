"""A training run's steps: validation split, fit on augmented batches, test evaluation and logging, digit graph."""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from registry.keras_models import export_onnx, make_classifier
from training import tracking
from training.allographs import allograph_digits
from training.augment import AugmentedBatches, AugmentSettings
from training.data import Mnist
from training.evaluate import evaluate, sequence_metrics, to_model_input
from training.fonts import font_digits, load_families, split_families
from training.model import build_model, compile_model
from training.plots import confusion_figure, confusion_matrix, learning_curves_figure, misclassified_figure
from training.quantize import PROBE_DIGITS, checked_int8_graph, with_probe
from training.trace_cache import traced_digits
from training.train_config import TrainConfig

logger = logging.getLogger(__name__)

# Generated allographs in the training pool: 200 of each kind.
ALLOGRAPH_SAMPLES = 1400


@dataclass(frozen=True)
class Splits:
    """The seeded training and validation images, and the test images kept apart."""

    train_images: np.ndarray
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def split_data(data: Mnist, config: TrainConfig) -> Splits:
    """Carve a seeded validation split from the training images; the test set stays untouched."""
    order = np.random.default_rng(config.seed).permutation(len(data.train_images))
    if config.train_limit:
        order = order[: config.train_limit]
    val_count = max(1, int(round(len(order) * config.validation_fraction)))
    val, train = order[:val_count], order[val_count:]
    test = slice(0, config.test_limit) if config.test_limit else slice(None)
    return Splits(
        data.train_images[train],
        data.train_labels[train],
        data.train_images[val],
        data.train_labels[val],
        data.test_images[test],
        data.test_labels[test],
    )


def fit(config: TrainConfig, splits: Splits, callbacks: Sequence[keras.callbacks.Callback] = ()) -> keras.Model:
    model = build_model(width=config.model_width, dropout_rate=config.dropout_rate)
    steps_per_epoch = -(-len(splits.train_labels) // config.batch_size)
    compile_model(
        model,
        config.learning_rate,
        steps_per_epoch * config.epochs,
        warmup_steps=steps_per_epoch // 2,
        ema_momentum=config.ema_momentum,
    )
    tracking.log_text(_summary(model), "model_summary.txt")
    # Augmented batches are built in worker threads while TensorFlow trains on the previous ones.
    # Two workers, not one: Keras runs a single worker inline, and epochs then ran slower and
    # unevenly.
    batches = _augmented_batches(config, splits) if config.augment else None
    fit_started = time.monotonic()
    history = model.fit(
        batches if batches is not None else to_model_input(splits.train_images),
        None if batches is not None else splits.train_labels,
        batch_size=None if batches is not None else config.batch_size,
        epochs=config.epochs,
        validation_data=(to_model_input(splits.val_images), splits.val_labels),
        callbacks=[tracking.EpochMetricsLogger(), *callbacks],
        # A progress bar on a terminal, one line per epoch in logs and CI.
        verbose=1 if sys.stdout.isatty() else 2,
    )
    tracking.log_metrics({"fit_seconds": time.monotonic() - fit_started})
    tracking.log_figures({"learning_curves.png": learning_curves_figure(history.history)})
    return model


def _augmented_batches(config: TrainConfig, splits: Splits) -> AugmentedBatches:
    settings = AugmentSettings(stroke_probability=config.stroke_probability, pair_probability=config.pair_probability)
    images, labels, traces, mix = _training_sources(config, splits)
    return AugmentedBatches(images, labels, config.batch_size, config.seed, settings, traces, mix=mix, workers=2)


def _training_sources(config: TrainConfig, splits: Splits):
    """MNIST, the training font families' digits and generated allographs, laid end to end, with their shares."""
    sources = [(splits.train_images, splits.train_labels, None, 1.0 - config.font_share - config.allograph_share)]
    if config.font_share > 0:
        train_families, _ = split_families(load_families())
        images, labels, to_trace = font_digits(train_families, config.seed)
        sources.append((images, labels, traced_digits(to_trace), config.font_share))
    if config.allograph_share > 0:
        sources.append((*allograph_digits(ALLOGRAPH_SAMPLES, config.seed), config.allograph_share))
    images = np.concatenate([source[0] for source in sources])
    labels = np.concatenate([source[1] for source in sources])
    # Strokes: traced once (and cached) for MNIST, for fonts from their glyphs' pen paths
    # (training.fonts.pen_path), the generator's own for allographs.
    traces = [t for images_, _, given, _ in sources for t in (given if given is not None else traced_digits(images_))]
    tracking.log_metrics(
        {f"{name}_samples": len(source[0]) for name, source in zip(("mnist", "font", "allograph"), sources)}
    )
    return images, labels, traces, [(len(source[0]), source[3]) for source in sources]


def _summary(model: keras.Model) -> str:
    lines = io.StringIO()
    model.summary(print_fn=lambda line, **_: lines.write(line + "\n"))
    return lines.getvalue()


def evaluate_and_log(model: keras.Model, splits: Splits, config: TrainConfig, started: float) -> float:
    result = evaluate(model, splits.test_images, splits.test_labels)
    predictions = result.probabilities.argmax(axis=1)
    metrics = {"test_loss": result.loss, "test_accuracy": result.accuracy}
    if config.sequence_cases:
        metrics |= sequence_metrics(
            make_classifier(model), splits.test_images, splits.test_labels, config.sequence_cases
        )
    metrics["wall_seconds"] = time.monotonic() - started
    tracking.log_metrics(metrics)
    tracking.log_figures(
        {
            "confusion_matrix.png": confusion_figure(confusion_matrix(splits.test_labels, predictions)),
            "misclassified.png": misclassified_figure(splits.test_images, splits.test_labels, result.probabilities),
        }
    )
    logger.info("Test accuracy %.4f; %s", result.accuracy, metrics)
    return result.accuracy


def digit_graphs(model: keras.Model, splits: Splits) -> tuple[bytes, bytes | None]:
    """The model's float graph and its int8 graph (None when it fails or reads worse), each with its probe."""
    # The recognizer runs the int8 graph when it reads the validation digits as well as the
    # model; otherwise the float export, so a failed quantization costs speed, never the run.
    inputs = to_model_input(splits.val_images)
    float_graph, probe = export_onnx(model), inputs[-PROBE_DIGITS:]
    try:
        graph, metrics = checked_int8_graph(float_graph, inputs, splits.val_labels)
    except Exception as error:  # noqa: BLE001 - ONNX export and quantization fail in many ways.
        logger.warning("No int8 graph: the quantization failed (%s: %s).", type(error).__name__, error)
        return with_probe(float_graph, probe), None
    tracking.log_metrics(metrics)
    if graph is None:
        logger.warning("No int8 graph: it read the validation digits worse (%s).", metrics)
    return with_probe(float_graph, probe), (with_probe(graph, probe) if graph is not None else None)
