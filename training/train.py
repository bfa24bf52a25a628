"""Training entry point: `TrainConfig` in, a tracked run and a registered (maybe promoted) version out."""

from __future__ import annotations

import io
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import keras
import numpy as np

from demnistify.constants import MODEL_NAME
from registry.client import ModelRef, connect
from registry.keras_models import export_onnx, make_classifier
from training import model_logging, tracking
from training.allographs import allograph_digits
from training.augment import AugmentedBatches, AugmentSettings
from training.data import Mnist, default_data_dir, load_mnist
from training.evaluate import evaluate, sequence_metrics, to_model_input
from training.fonts import font_digits, load_families, split_families
from training.gate import Scores
from training.handwriting_gate import handwriting_numbers, log_handwriting, promote_or_roll_back
from training.model import build_model, compile_model
from training.plots import confusion_figure, confusion_matrix, learning_curves_figure, misclassified_figure
from training.quantize import checked_int8_graph
from training.trace_cache import traced_digits

logger = logging.getLogger(__name__)

# Epochs fit each profile's time budget on the 2-core reference machine (docs/design.md, "Training").
PROFILES: dict[str, dict] = {
    # Within 3 minutes.
    # Two epochs are too few steps to average weights over.
    "quick": {"epochs": 2, "learning_rate": 3e-3, "sequence_cases": 100, "ema_momentum": 0.0},
    # Within 20 minutes.
    "full": {"epochs": 17, "learning_rate": 2e-3, "sequence_cases": 200},
}
PROMOTE_MODES = ("auto", "never")
# Generated allographs in the training pool: 200 of each kind.
ALLOGRAPH_SAMPLES = 1400


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; every field is logged as a run parameter."""

    profile: str = "full"
    epochs: int = 17
    batch_size: int = 128
    learning_rate: float = 2e-3
    model_width: int = 32
    dropout_rate: float = 0.4
    # The model keeps the moving average of its weights over about the last 1,000 steps (0: the
    # last step's weights).
    ema_momentum: float = 0.999
    augment: bool = True
    # Share of training digits redrawn from traced strokes (see AugmentSettings); 0.7 read
    # validation drawings better than 0.4 (docs/design.md).
    stroke_probability: float = 0.7
    # Share of samples that are two traced digits run together, under a random label
    # (AugmentSettings.pair_probability), so that the model is unsure of a merged pair and
    # pipeline.split can count digits by its confidence; 0.05 read validation drawings better
    # than none and than 0.1 (docs/design.md).
    pair_probability: float = 0.05
    # Shares of each epoch drawn from the training font families' digits and from generated
    # allographs (training.allographs); MNIST fills the rest. Chosen on the validation families.
    font_share: float = 0.2
    allograph_share: float = 0.03
    # Numbers per validation font family that score handwriting and gate promotion.
    handwriting_numbers: int = 20
    validation_fraction: float = 0.1
    train_limit: int | None = None
    test_limit: int | None = None
    sequence_cases: int = 200
    seed: int = 42
    promote: str = "auto"
    data_dir: str | None = None
    tracking_uri: str | None = None
    model_name: str = MODEL_NAME
    # False logs the recognizer without registering it (sweep trials: only the best is registered).
    register: bool = True
    # The sweep's run, under which this run is nested.
    parent_run_id: str | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {self.profile!r}.")
        if self.promote not in PROMOTE_MODES:
            raise ValueError(f"promote must be one of {PROMOTE_MODES}, got {self.promote!r}.")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0.")
        if self.font_share + self.allograph_share >= 1.0:
            raise ValueError("font_share + allograph_share must leave MNIST a share.")
        for name in ("stroke_probability", "pair_probability", "font_share", "allograph_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if not 0.0 < self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}.")

    @classmethod
    def for_profile(cls, profile: str = "full", **overrides) -> "TrainConfig":
        """The profile's settings, with every override that is not None on top."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}.")
        chosen = {key: value for key, value in overrides.items() if value is not None}
        return cls(profile=profile, **{**PROFILES[profile], **chosen})


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    run_id: str
    model: ModelRef | None
    promoted: bool
    test_accuracy: float
    wall_seconds: float
    # The logged recognizer (`models:/m-...`), registered as `model` unless the config said not to.
    model_uri: str = ""


@dataclass(frozen=True)
class Splits:
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


def train(config: TrainConfig, callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainResult:
    """Train, evaluate, log everything to MLflow, register the model and apply the promotion rule.

    `callbacks` run after each epoch's metrics are logged (a sweep prunes trials there).
    """
    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)
    data_dir = config.data_dir or str(default_data_dir())
    splits = split_data(load_mnist(data_dir), config)
    tracking.configure_tracking(config.tracking_uri)
    params = tracking.run_params(
        asdict(config),
        train_size=len(splits.train_labels),
        val_size=len(splits.val_labels),
        test_size=len(splits.test_labels),
    )
    with tracking.tracked_run(
        f"{config.profile}-{time.strftime('%Y%m%d-%H%M%S')}", params, {"profile": config.profile}, config.parent_run_id
    ) as run:
        tracking.log_dataset(splits.train_images, splits.train_labels, "mnist-train", "training")
        tracking.log_dataset(splits.val_images, splits.val_labels, "mnist-validation", "validation")
        tracking.log_dataset(splits.test_images, splits.test_labels, "mnist-test", "testing")
        model = _fit(config, splits, callbacks)
        test_accuracy = _evaluate_and_log(model, splits, config, started)
        numbers = handwriting_numbers(config.handwriting_numbers, config.seed)
        scores = Scores(test_accuracy, log_handwriting(make_classifier(model), numbers))
        model_uri = model_logging.log_recognizer(model, *_digit_graph(model, splits))
        ref = (
            model_logging.register(connect(config.tracking_uri), model_uri, config.model_name)
            if config.register
            else None
        )
        promoted = (
            promote_or_roll_back(ref, config.tracking_uri, config.promote == "auto", scores, numbers)
            if ref is not None
            else False
        )
    return TrainResult(run.info.run_id, ref, promoted, test_accuracy, time.monotonic() - started, model_uri)


def _fit(config: TrainConfig, splits: Splits, callbacks: Sequence[keras.callbacks.Callback] = ()) -> keras.Model:
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
        sources.append((*font_digits(train_families, config.seed), None, config.font_share))
    if config.allograph_share > 0:
        sources.append((*allograph_digits(ALLOGRAPH_SAMPLES, config.seed), config.allograph_share))
    images = np.concatenate([source[0] for source in sources])
    labels = np.concatenate([source[1] for source in sources])
    # Strokes: traced once (and cached) for pictures, the generator's own for allographs.
    traces = [t for images_, _, given, _ in sources for t in (given if given is not None else traced_digits(images_))]
    tracking.log_metrics(
        {f"{name}_samples": len(source[0]) for name, source in zip(("mnist", "font", "allograph"), sources)}
    )
    return images, labels, traces, [(len(source[0]), source[3]) for source in sources]


def _summary(model: keras.Model) -> str:
    lines = io.StringIO()
    model.summary(print_fn=lambda line, **_: lines.write(line + "\n"))
    return lines.getvalue()


def _evaluate_and_log(model: keras.Model, splits: Splits, config: TrainConfig, started: float) -> float:
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


def _digit_graph(model: keras.Model, splits: Splits) -> tuple[bytes, bool]:
    # The recognizer runs the int8 graph when it reads the validation digits as well as the
    # model; otherwise the float export, so a failed quantization costs speed, never the run.
    try:
        graph, metrics = checked_int8_graph(model, to_model_input(splits.val_images), splits.val_labels)
    except Exception as error:  # noqa: BLE001 - ONNX export and quantization fail in many ways.
        logger.warning("No int8 graph: the quantization failed (%s: %s).", type(error).__name__, error)
        return export_onnx(model), False
    tracking.log_metrics(metrics)
    if graph is None:
        logger.warning("No int8 graph: it read the validation digits worse (%s).", metrics)
        return export_onnx(model), False
    return graph, True
