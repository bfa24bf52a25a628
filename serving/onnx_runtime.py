"""The fast serving runtime: a version's int8 graph, or its Keras model exported to ONNX, run by ONNX Runtime."""

from __future__ import annotations

import logging

import numpy as np

from demnistify.constants import IMAGE_SIZE, NUM_CLASSES
from recognizer.graph import OnnxClassifier, onnx_session

logger = logging.getLogger(__name__)

# The exported graph must give the Keras model's probabilities to within float32 rounding.
AGREEMENT_TOLERANCE = 1e-4
# An int8 graph was judged on validation digits when training logged it; here it must only
# be this model's, reading the probe digits alike within quantization's rounding.
INT8_TOLERANCE = 0.1


def make_onnx_classifier(model, threads: int, int8_graph: bytes | None = None) -> OnnxClassifier:
    """Run a Keras digit model on ONNX Runtime with `threads` threads: its int8 graph if given, else its export.

    Exporting takes about 0.4 s at load. One digit then costs 0.30 ms on one thread here with
    the float graph and 0.12 ms with the int8 one. An int8 graph that does not read the probe
    digits like the model is passed over for the export (with a warning). Raises ValueError
    when the exported graph does not reproduce the Keras model's probabilities.
    """
    from registry.keras_models import export_onnx

    if int8_graph is not None:
        try:
            classifier = OnnxClassifier(onnx_session(int8_graph, threads), runtime="onnxruntime-int8")
            _check_agreement(classifier, model, INT8_TOLERANCE, probe=_drawn_digits())
            return classifier
        except Exception as error:  # noqa: BLE001 - a bad artifact must not stop serving.
            logger.warning("Not serving the int8 graph (%s); exporting the float model instead.", error)
    classifier = OnnxClassifier(onnx_session(export_onnx(model), threads))
    _check_agreement(classifier, model)
    return classifier


def make_int8_classifier(graph: bytes, threads: int) -> OnnxClassifier:
    """Run an int8 graph that training checked on validation digits, with `threads` ONNX Runtime threads.

    No Keras model to compare with: the graph must only read the probe digits into finite
    probabilities of the right shape, which a wrong or damaged graph does not. ValueError else.
    """
    classifier = OnnxClassifier(onnx_session(graph, threads), runtime="onnxruntime-int8")
    probe = _drawn_digits()
    probabilities = np.asarray(classifier(probe))
    if (
        probabilities.shape != (len(probe), NUM_CLASSES)
        or not np.isfinite(probabilities).all()
        or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise ValueError(f"The graph does not give class probabilities for digits (shape {probabilities.shape}).")
    return classifier


def _drawn_digits() -> np.ndarray:
    # Digits as the pipeline renders them (a 1, a 0, a 7, a 4): inputs of the kind served.
    from pipeline import render_strokes_digit

    circle = [[50 + 30 * np.sin(t), 50 - 45 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 24)]
    drawings = [
        [[[50, 5], [48, 95]]],
        [circle],
        [[[10, 5], [90, 5], [40, 95]]],
        [[[55, 5], [10, 60], [90, 60]], [[70, 30], [70, 95]]],
    ]
    return np.stack([render_strokes_digit([np.asarray(s, dtype=np.float64) for s in strokes]) for strokes in drawings])[
        ..., None
    ]


def _check_agreement(
    classifier: OnnxClassifier, model, tolerance: float = AGREEMENT_TOLERANCE, probe: np.ndarray | None = None
) -> None:
    # Random ink and blank digits exercise every layer; a wrong export shows up at once.
    if probe is None:
        probe = np.random.default_rng(0).random((8, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.float32)
        probe[0] = 0.0
    expected = np.asarray(model(probe, training=False))
    difference = float(np.abs(classifier(probe) - expected).max())
    if not difference <= tolerance:
        raise ValueError(f"The ONNX graph differs from the Keras model by {difference:.2g} (tolerance {tolerance:g}).")
