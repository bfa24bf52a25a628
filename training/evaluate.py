"""Evaluation on held-out digits: test loss and accuracy, and multi-digit sequence accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from pipeline.types import Classifier

SEQUENCE_LAYOUTS = ("ordinary", "tight")


@dataclass(frozen=True)
class Evaluation:
    """Scores of a model on a labelled set, with its class probabilities for the pictures."""

    loss: float
    accuracy: float
    probabilities: np.ndarray


def to_model_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) digits -> float32 (N, 28, 28, 1) in [0, 1], the model's input."""
    return (np.asarray(images, dtype=np.float32) / 255.0)[..., None]


def evaluate(model: keras.Model, images: np.ndarray, labels: np.ndarray) -> Evaluation:
    """Loss, accuracy and probabilities of the model on the given digits."""
    inputs = to_model_input(images)
    probabilities = model.predict(inputs, batch_size=500, verbose=0)
    loss = float(keras.losses.sparse_categorical_crossentropy(labels, probabilities).numpy().mean())
    accuracy = float((probabilities.argmax(axis=1) == labels).mean())
    return Evaluation(loss=loss, accuracy=accuracy, probabilities=probabilities)


def sequence_metrics(classify: Classifier, images: np.ndarray, labels: np.ndarray, cases: int) -> dict[str, float]:
    """Multi-digit accuracy on a small fixed sample of drawings made from the given digits."""
    from training.sequences import evaluate_sequences, make_sequence_cases

    metrics: dict[str, float] = {}
    for layout in SEQUENCE_LAYOUTS:
        drawings = make_sequence_cases(images, labels, count=cases, layout=layout, seed=0)
        scores = evaluate_sequences(drawings, classify)
        metrics[f"sequence_accuracy_{layout}"] = scores["sequence_accuracy"]
        metrics[f"sequence_digit_accuracy_{layout}"] = scores["digit_accuracy"]
    return metrics
