"""Training entry point: `TrainConfig` in, a tracked run and a registered (maybe promoted) version out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import keras

from registry.client import ModelRef, connect
from registry.keras_models import make_classifier
from training import interrupts, model_logging, tracking
from training.data import default_data_dir, load_mnist
from training.gate import Scores
from training.handwriting_gate import handwriting_numbers, log_handwriting, promote_or_roll_back
from training.steps import digit_graphs, evaluate_and_log, fit, split_data
from training.train_config import TrainConfig


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
        model = fit(config, splits, [interrupts.StopCheck(), *callbacks])
        test_accuracy = evaluate_and_log(model, splits, config, started)
        # Logged before the handwriting scores: a run that fails after fitting keeps its model.
        model_uri = model_logging.log_recognizer(model, *digit_graphs(model, splits))
        numbers = handwriting_numbers(config.handwriting_numbers, config.seed)
        scores = Scores(test_accuracy, log_handwriting(make_classifier(model), numbers))
        # A stop whose interrupt a library swallowed is honoured here, before anything is registered.
        interrupts.check()
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
