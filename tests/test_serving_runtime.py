"""The serving runtime: the registered int8 graph without TensorFlow, or an export that reproduces the Keras model."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect as ws_connect

from recognizer.graph import PROBE_READING_KEY, checked_classifier, probe_metadata, read_probe
from registry.client import INT8_DIGEST_TAG, connect, resolve
from registry.loading import load_keras_model
from serving.onnx_runtime import make_onnx_classifier
from serving.served_model import load_served_model, runtime_name
from tests.server_support import start_server
from tests.support import drawing, png_of, register_recognizer, strokes_message
from training.model import build_model

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
    # Pictures are read with the float graph registered beside it, which gives the Keras probabilities.
    assert runtime_name(served.picture_classifier) == "onnxruntime"
    assert read_probe(served.picture_classifier._classify.metadata) is not None
    np.testing.assert_allclose(served.picture_classifier(digits), expected, atol=1e-4)
    compiled = load_served_model(ref, trained_store.tracking_uri, cache_size=0, inference="compiled")
    assert runtime_name(compiled.classify) == "tensorflow"


def test_an_int8_graph_of_another_model_is_passed_over_for_the_export(caplog):
    from registry.keras_models import export_onnx
    from training.quantize import quantize_onnx

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

    from serving.served_model import _make_classifier

    # A plain TensorFlow function, not a Keras model: tf2onnx cannot export it, TensorFlow runs it.
    def model(batch, training=False):
        return tf.nn.softmax(tf.reshape(batch, [-1, 28 * 28])[:, :10])

    with caplog.at_level("WARNING"):
        classify = _make_classifier(model, "onnx", threads=1)
    assert runtime_name(classify) == "tensorflow" and "using compiled TensorFlow" in caplog.text
    digits = np.random.default_rng(2).random((3, 28, 28), dtype=np.float32)
    expected = np.asarray(tf.nn.softmax(digits.reshape(3, -1)[:, :10]))
    np.testing.assert_allclose(classify(digits), expected, rtol=1e-5)


def test_a_version_registered_with_its_int8_digest_is_served_without_tensorflow(trained_store, tmp_path):
    process, url = start_server(trained_store.tracking_uri, tmp_path / "stderr.log")
    try:
        # No TensorFlow library is mapped into the serving process: it was never imported.
        maps = (Path(f"/proc/{process.pid}/maps")).read_text()
        with urllib.request.urlopen(url + "healthz", timeout=10) as response:
            runtime = json.loads(response.read())["inference"]["runtime"]

        async def read(number: str) -> dict:
            async with ws_connect(url.replace("http://", "ws://")) as ws:
                await ws.recv()
                await ws.send(strokes_message(1, drawing(number)))
                return json.loads(await asyncio.wait_for(ws.recv(), 30))

        result = asyncio.run(read("1740"))
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "tensorflow" not in maps and "onnxruntime" in maps
    assert runtime == "onnxruntime-int8"
    assert result["type"] == "result" and result["text"] == "1740"


def test_an_int8_graph_that_is_not_the_registered_one_is_not_served(own_store, caplog):
    tracking_uri = own_store.tracking_uri
    client = connect(tracking_uri)
    ref = resolve(client, own_store.model_uri)
    assert ref.int8_digest is not None
    # The run's graph no longer matches the digest its version was registered with.
    client.set_model_version_tag(ref.name, ref.version, INT8_DIGEST_TAG, "0" * 64)
    with caplog.at_level("WARNING"):
        served = load_served_model(resolve(client, own_store.model_uri), tracking_uri, cache_size=0, threads=1)
    assert "its int8 graph is not the one registered with it" in caplog.text
    assert runtime_name(served.classify) == "onnxruntime"
    digits = np.random.default_rng(5).random((3, 28, 28), dtype=np.float32)
    keras_model = load_keras_model(ref, own_store.tracking_uri)
    np.testing.assert_allclose(
        served.classify(digits), np.asarray(keras_model(digits[..., None], training=False)), atol=1e-4
    )


def test_an_int8_graph_that_gives_no_probabilities_is_refused():
    from registry.keras_models import export_onnx

    # A graph that runs but whose last layer is no softmax stands for a damaged one.
    model = build_model(width=4)
    model.get_layer("probabilities").activation = lambda logits: logits
    with pytest.raises(ValueError, match="does not give class probabilities"):
        checked_classifier(export_onnx(model), threads=1, runtime="onnxruntime-int8")


def test_a_graph_runs_only_where_it_reads_its_probe_digits_as_training_did():
    from registry.keras_models import export_onnx
    from training.quantize import quantize_onnx, with_probe

    digits = np.random.default_rng(3).integers(0, 256, (64, 28, 28, 1)).astype(np.float32) / 255
    graph = with_probe(quantize_onnx(export_onnx(build_model(width=4)), digits), digits)
    recorded = read_probe(checked_classifier(graph, threads=2).metadata)
    assert recorded is not None and np.array_equal(recorded[0], digits)
    with pytest.raises(ValueError, match="reads the graph's probe digits .* away from training"):
        checked_classifier(read_otherwise(graph), threads=1)
    with pytest.raises(ValueError, match="probe cannot be read"):
        checked_classifier(with_metadata(graph, {PROBE_READING_KEY: "not base64!"}), threads=1)


def test_an_int8_graph_this_cpu_reads_otherwise_gives_way_to_the_float_graph(own_store, mnist, caplog):
    import mlflow.pyfunc

    from registry.keras_models import export_onnx
    from training.quantize import quantize_onnx, with_probe

    model = load_keras_model(own_store.result.model, own_store.tracking_uri)
    digits = mnist.train_images[:64, ..., None].astype(np.float32) / 255
    float_graph = with_probe(export_onnx(model), digits)
    int8_graph = read_otherwise(with_probe(quantize_onnx(export_onnx(model), digits, reduce_range=True), digits))
    ref = register_recognizer(own_store.tracking_uri, model, float_graph, int8_graph)
    with caplog.at_level("WARNING"):
        served = load_served_model(ref, own_store.tracking_uri, cache_size=0, threads=1)
    assert "its int8 graph is not served (This CPU reads the graph's probe digits" in caplog.text
    # The float graph registered beside it runs, not an export of the Keras model (it has no probe).
    assert runtime_name(served.classify) == "onnxruntime"
    assert read_probe(served.classify._classify.metadata) is not None
    expected = np.asarray(model(digits, training=False))
    np.testing.assert_allclose(served.classify(digits), expected, atol=1e-4)
    assert served.picture_classifier is served.classify
    # The pyfunc makes the same choice.
    recognizer = mlflow.pyfunc.load_model(ref.uri)
    assert recognizer.unwrap_python_model()._classify.metadata == served.classify._classify.metadata
    assert recognizer.predict([{"strokes": drawing("1740"), "width": 800, "height": 300}])[0]["text"] == "1740"


def test_a_float_graph_this_cpu_reads_otherwise_leaves_pictures_to_the_int8_graph(own_store, mnist, caplog):
    import mlflow.pyfunc

    from registry.keras_models import export_onnx
    from training.quantize import quantize_onnx, with_probe

    model = load_keras_model(own_store.result.model, own_store.tracking_uri)
    digits = mnist.train_images[:64, ..., None].astype(np.float32) / 255
    float_graph = read_otherwise(with_probe(export_onnx(model), digits))
    int8_graph = with_probe(quantize_onnx(export_onnx(model), digits, reduce_range=True), digits)
    ref = register_recognizer(own_store.tracking_uri, model, float_graph, int8_graph)
    with caplog.at_level("WARNING"):
        served = load_served_model(ref, own_store.tracking_uri, cache_size=0, threads=1)
        recognizer = mlflow.pyfunc.load_model(ref.uri)
    assert "its float graph is not served (This CPU reads the graph's probe digits" in caplog.text
    assert "The float digit graph is not run" in caplog.text
    assert runtime_name(served.classify) == "onnxruntime-int8" and served.picture_classifier is served.classify
    picture = {"image": base64.b64encode(png_of(drawing("1740"))).decode()}
    assert recognizer.predict([picture])[0]["text"] == "1740"


def read_otherwise(graph: bytes) -> bytes:
    """The graph with its probe reading changed, as if recorded on a CPU that reads it otherwise."""
    import onnx

    entries = {entry.key: entry.value for entry in onnx.load_from_string(graph).metadata_props}
    digits, reading = read_probe(entries)
    other = np.full_like(reading, 0.01)
    other[np.arange(len(reading)), (reading.argmax(axis=1) + 1) % 10] = 0.91
    return with_metadata(graph, probe_metadata(digits, other))


def with_metadata(graph: bytes, entries: dict[str, str]) -> bytes:
    """The graph with these metadata entries replaced."""
    import onnx

    model = onnx.load_from_string(graph)
    kept = {entry.key: entry.value for entry in model.metadata_props} | entries
    del model.metadata_props[:]
    for key, value in kept.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


@pytest.mark.parametrize("reduce_range, widest", [(False, 127), (True, 64)])
def test_int8_weights_keep_to_seven_bits_where_the_cpu_would_saturate(reduce_range, widest):
    import onnx
    from onnx import numpy_helper

    from registry.keras_models import export_onnx
    from training.quantize import quantize_onnx

    calibration = np.random.default_rng(5).random((20, 28, 28, 1), dtype=np.float32)
    graph = onnx.load_from_string(quantize_onnx(export_onnx(build_model(width=4)), calibration, reduce_range))
    weights = [numpy_helper.to_array(t) for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert weights and max(int(np.abs(w.astype(np.int16)).max()) for w in weights) in range(widest - 8, widest + 1)
