"""A version's Keras model made fast to call: a compiled classifier, or a float ONNX graph for ONNX Runtime.

TensorFlow is imported only when a Keras model is at hand: the serve install has none.
"""

from __future__ import annotations

import logging

import numpy as np

from demnistify.constants import IMAGE_SIZE, NUM_CLASSES
from pipeline.types import Classifier

# tf2onnx's opset for Conv, BatchNormalization and Softmax as Keras computes them.
ONNX_OPSET = 17


def make_classifier(model) -> Classifier:
    """Wrap the model in one traced `tf.function`; calling it costs far less than `model.predict`."""
    import tensorflow as tf

    @tf.function(
        input_signature=[tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 1], tf.float32)],
        reduce_retracing=True,
    )
    def forward(batch):
        return model(batch, training=False)

    def classify(images: np.ndarray) -> np.ndarray:
        batch = np.asarray(images, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        return forward(tf.constant(batch)).numpy()

    # Trace once now so that the first real request does not pay for it.
    classify(np.zeros((1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32))
    return classify


def export_onnx(model) -> bytes:
    """The Keras digit model as a serialized float32 ONNX graph (input "digit": N x 28 x 28 x 1)."""
    import tensorflow as tf
    import tf2onnx

    # tf2onnx narrates every optimization pass at INFO; a server log wants only its problems.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    signature = (tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 1), tf.float32, name="digit"),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=ONNX_OPSET)
    return proto.SerializeToString()
