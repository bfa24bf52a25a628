"""The fast serving runtime: the registered Keras model exported to ONNX in memory and run by ONNX Runtime."""

from __future__ import annotations

import logging

import numpy as np

from demnistify.constants import IMAGE_SIZE, NUM_CLASSES

# tf2onnx's opset for Conv, BatchNormalization and Softmax as Keras computes them.
ONNX_OPSET = 17
# The exported graph must give the Keras model's probabilities to within float32 rounding.
AGREEMENT_TOLERANCE = 1e-4


class OnnxClassifier:
    """A classifier running one ONNX Runtime session (thread-safe: sessions allow concurrent runs)."""

    runtime = "onnxruntime"

    def __init__(self, session) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        return self._session.run(None, {self._input: batch})[0]


def make_onnx_classifier(model, threads: int) -> OnnxClassifier:
    """Export a Keras digit model to ONNX and open it with ONNX Runtime on `threads` threads.

    About 0.4 s at load. A model call then costs 0.6 ms for the 8 digits of a typical drawing
    on 2 cores, against 1.6-2.4 ms for the compiled TensorFlow call. Raises ValueError when the
    exported graph does not reproduce the Keras model's probabilities.
    """
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    # tf2onnx narrates every optimization pass at INFO; a server log wants only its problems.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    signature = (tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 1), tf.float32, name="digit"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # Pool threads spin between calls: sleeping ones woke too late to help, and 8 digits took
    # 1.19 ms on 2 threads instead of 0.61. With one thread there is no pool to spin (spinning
    # pools of two workers on 2 cores took the CPU recognition needed: 945 vs 1400 per second).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
    session = onnxruntime.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    classifier = OnnxClassifier(session)
    _check_agreement(classifier, model)
    return classifier


def _check_agreement(classifier: OnnxClassifier, model) -> None:
    # Random ink and blank digits exercise every layer; a wrong export shows up at once.
    probe = np.random.default_rng(0).random((8, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.float32)
    probe[0] = 0.0
    expected = np.asarray(model(probe, training=False))
    difference = float(np.abs(classifier(probe) - expected).max())
    if not difference <= AGREEMENT_TOLERANCE:
        raise ValueError(f"The ONNX export differs from the Keras model by {difference:.2g} "
                         f"(tolerance {AGREEMENT_TOLERANCE:g}).")

