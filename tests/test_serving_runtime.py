"""The serving runtime: the ONNX export reproduces the registered Keras model, and a wrong one is refused."""

from __future__ import annotations

import numpy as np
import pytest

from serving.model_store import load_served_model, runtime_name
from serving.onnx_runtime import make_onnx_classifier
from training.model import build_model
from training.registry import connect, load_keras_model, resolve

pytestmark = pytest.mark.slow


def test_onnx_export_gives_the_keras_probabilities():
    model = build_model(width=4)
    classify = make_onnx_classifier(model, threads=1)
    digits = np.random.default_rng(1).random((5, 28, 28), dtype=np.float32)
    expected = np.asarray(model(digits[..., None], training=False))
    np.testing.assert_allclose(classify(digits), expected, atol=1e-5)
    assert classify(np.zeros((0, 28, 28), np.float32)).shape == (0, 10)


def test_an_export_that_disagrees_with_its_model_is_refused():
    from serving.onnx_runtime import _check_agreement

    classify = make_onnx_classifier(build_model(width=4), threads=1)
    # Another model with its own random weights stands for an export that went wrong.
    with pytest.raises(ValueError, match="differs from the Keras model"):
        _check_agreement(classify, build_model(width=4))


def test_the_served_version_runs_on_onnx_runtime_with_the_registered_weights(trained_store, mnist):
    ref = resolve(connect(trained_store.tracking_uri), trained_store.model_uri)
    digits = mnist.test_images[:64].astype(np.float32) / 255.0
    keras_model = load_keras_model(ref, trained_store.tracking_uri)
    expected = np.asarray(keras_model(digits[..., None], training=False))
    # The float export reproduces the Keras model; the run's int8 graph reads digits alike.
    exported = load_served_model(ref, trained_store.tracking_uri, cache_size=0, inference="onnx-float", threads=2)
    assert runtime_name(exported.classify) == "onnxruntime"
    np.testing.assert_allclose(exported.classify(digits), expected, atol=1e-4)
    served = load_served_model(ref, trained_store.tracking_uri, cache_size=64, inference="onnx", threads=2)
    assert runtime_name(served.classify) == "onnxruntime-int8"
    assert (served.classify(digits).argmax(axis=1) == expected.argmax(axis=1)).mean() >= 0.98
    assert np.abs(served.classify(digits) - expected).max() < 0.2
    compiled = load_served_model(ref, trained_store.tracking_uri, cache_size=0, inference="compiled")
    assert runtime_name(compiled.classify) == "tensorflow"


def test_an_int8_graph_of_another_model_is_passed_over_for_the_export(caplog):
    from training.quantize import export_onnx, quantize_onnx

    model, other = build_model(width=4), build_model(width=4)
    # The other model says "3" whatever it is shown: an artifact of the wrong model.
    other.get_layer("probabilities").bias.assign(np.eye(10, dtype=np.float32)[3] * 20)
    calibration = np.random.default_rng(3).random((20, 28, 28, 1), dtype=np.float32)
    with caplog.at_level("WARNING"):
        classify = make_onnx_classifier(model, threads=1, int8_graph=quantize_onnx(export_onnx(other), calibration))
        broken = make_onnx_classifier(model, threads=1, int8_graph=b"not an onnx graph")
    assert classify.runtime == broken.runtime == "onnxruntime"
    assert caplog.text.count("Not serving the int8 graph") == 2
    digits = np.random.default_rng(4).random((3, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(classify(digits), np.asarray(model(digits[..., None], training=False)), atol=1e-5)


def test_a_model_that_cannot_be_exported_is_served_by_tensorflow(caplog):
    import tensorflow as tf

    from serving.model_store import _make_classifier

    # A plain TensorFlow function, not a Keras model: tf2onnx cannot export it, TensorFlow runs it.
    def model(batch, training=False):
        return tf.nn.softmax(tf.reshape(batch, [-1, 28 * 28])[:, :10])

    with caplog.at_level("WARNING"):
        classify = _make_classifier(model, "onnx", threads=1)
    assert runtime_name(classify) == "tensorflow" and "using compiled TensorFlow" in caplog.text
    digits = np.random.default_rng(2).random((3, 28, 28), dtype=np.float32)
    expected = np.asarray(tf.nn.softmax(digits.reshape(3, -1)[:, :10]))
    np.testing.assert_allclose(classify(digits), expected, rtol=1e-5)
