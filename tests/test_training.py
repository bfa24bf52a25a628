"""Training against a real SQLite MLflow store: the run, its logs, the registry and promotion."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from functools import partial
from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow import MlflowClient

from demnistify.constants import CHAMPION_ALIAS, MODEL_NAME
from tests.support import small_config

pytestmark = pytest.mark.slow


def run_of(store):
    client = MlflowClient(tracking_uri=store.tracking_uri)
    return client, client.get_run(store.result.run_id)


def test_run_logs_params_metrics_dataset_and_tags(trained_store):
    client, run = run_of(trained_store)
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["model_width"] == "16"
    assert run.data.params["profile"] == "quick" and run.data.tags["profile"] == "quick"
    # Nothing only this machine knows: the data is the datasets below, by name, digest and public URL.
    assert "data_dir" not in run.data.params and "tracking_uri" not in run.data.params
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert any(name.startswith("system/cpu_utilization") for name in run.data.metrics), sorted(run.data.metrics)
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [metric.step for metric in history] == [1, 2, 3]
    for name in ("train_loss", "train_accuracy", "val_loss", "test_loss", "test_accuracy", "wall_seconds"):
        assert name in run.data.metrics, name
    assert 0.9 < run.data.metrics["test_accuracy"] <= 1.0
    contexts = {dataset.tags[0].value for dataset in run.inputs.dataset_inputs}
    assert contexts == {"training", "validation", "testing"}
    digests = {dataset.dataset.digest for dataset in run.inputs.dataset_inputs}
    assert len(digests) == 3
    assert {dataset.dataset.source_type for dataset in run.inputs.dataset_inputs} == {"http"}
    assert all("storage.googleapis.com" in dataset.dataset.source for dataset in run.inputs.dataset_inputs)


def test_run_trains_on_fonts_and_allographs_and_scores_the_validation_families(trained_store):
    from training.fonts import load_families, split_families

    client, run = run_of(trained_store)
    assert run.data.params["font_share"] == "0.2" and run.data.metrics["font_samples"] > 5000
    assert run.data.metrics["allograph_samples"] == 1400
    for mode in ("strokes", "pictures"):
        assert 0.0 <= run.data.metrics[f"handwriting_accuracy_{mode}"] <= 1.0
    table = client.download_artifacts(run.info.run_id, "handwriting_by_family.tsv")
    rows = open(table).read().splitlines()
    _, validation = split_families(load_families())
    assert rows[0].split("\t") == ["family", "numbers", "strokes", "pictures"]
    assert sorted(row.split("\t")[0] for row in rows[1:]) == sorted(f.id for f in validation)
    decision = open(client.download_artifacts(run.info.run_id, "promotion_decision.txt")).read()
    assert decision.strip() == "no champion yet"


def test_metrics_are_linked_to_the_logged_models_and_their_datasets(trained_store):
    client, run = run_of(trained_store)
    models = {
        model.name: model
        for model in (client.get_logged_model(output.model_id) for output in run.outputs.model_outputs)
    }
    assert set(models) == {"digit-graph", "recognizer"}
    version = client.get_model_version(MODEL_NAME, trained_store.result.model.version)
    assert version.source == f"models:/{models['recognizer'].model_id}" == trained_store.result.model_uri
    # The server runs the graph without TensorFlow only when it is the int8 one, named by this tag.
    kind, digest = (models["recognizer"].tags[name] for name in ("digit_graph", "digit_graph_sha256"))
    assert version.tags.get("int8_sha256") == (digest if kind == "int8" else None)
    linked = {metric.key: metric for metric in models["recognizer"].metrics}
    assert linked["test_accuracy"].value == run.data.metrics["test_accuracy"]
    assert linked["test_accuracy"].dataset_name == "mnist-test"
    assert linked["val_accuracy_int8"].dataset_name == "mnist-validation"


def test_run_logs_an_int8_graph_with_the_onnx_flavour_that_reads_validation_digits_as_well(trained_store, mnist):
    import mlflow.artifacts
    from mlflow.models import Model

    from demnistify.constants import FLOAT_GRAPH_ARTIFACT
    from recognizer.graph import OnnxClassifier, onnx_session, read_probe
    from registry.client import connect
    from registry.loading import load_graph
    from training.quantize import run_graph

    client, run = run_of(trained_store)
    float_accuracy, int8_accuracy = (run.data.metrics[f"val_accuracy_{kind}"] for kind in ("float", "int8"))
    assert 0.9 < float_accuracy and int8_accuracy >= float_accuracy - max(0.001, 5 / int(run.data.params["val_size"]))
    assert run.data.metrics["int8_log_prob_error"] <= 0.1
    (graph_model,) = (
        client.get_logged_model(output.model_id)
        for output in run.outputs.model_outputs
        if client.get_logged_model(output.model_id).name == "digit-graph"
    )
    folder = mlflow.artifacts.download_artifacts(
        artifact_uri=graph_model.artifact_location, tracking_uri=trained_store.tracking_uri
    )
    flavours = Model.load(folder)
    assert "onnx" in flavours.flavors and flavours.signature.inputs.inputs[0].shape == (-1, 28, 28, 1)
    # The recognizer registered as the version carries this very graph, named by its digest.
    graph = load_graph(trained_store.result.model, trained_store.tracking_uri)
    assert graph == open(f"{folder}/model.onnx", "rb").read()
    probabilities = run_graph(graph, mnist.test_images[:200, ..., None] / 255.0)
    version = connect(trained_store.tracking_uri).get_model_version(MODEL_NAME, trained_store.result.model.version)
    assert version.tags["int8_sha256"] == hashlib.sha256(graph).hexdigest() == trained_store.result.model.int8_digest
    # Each graph records validation digits and its reading of them, which a serving CPU must repeat.
    float_graph = load_graph(trained_store.result.model, trained_store.tracking_uri, FLOAT_GRAPH_ARTIFACT)
    assert version.tags["float_sha256"] == hashlib.sha256(float_graph).hexdigest()
    for logged in (graph, float_graph):
        probe = read_probe(OnnxClassifier(onnx_session(logged, 1)).metadata)
        assert probe is not None and len(probe[0]) == 64
        np.testing.assert_array_equal(run_graph(logged, probe[0]), probe[1])
    assert probabilities.shape == (200, 10) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    # The softmax stays float: a quantized one gives at most 256 distinct probabilities.
    assert len(np.unique(probabilities)) > 1000
    assert (probabilities.argmax(axis=1) == mnist.test_labels[:200]).mean() > 0.9


def test_run_logs_pictures_and_summary(trained_store):
    client, run = run_of(trained_store)
    names = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "misclassified.png", "learning_curves.png", "model_summary.txt"} <= names
    path = client.download_artifacts(run.info.run_id, "confusion_matrix.png")
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_model_is_registered_promoted_and_predicts_from_the_alias(trained_store, mnist):
    from registry.loading import load_classifier

    client = MlflowClient(tracking_uri=trained_store.tracking_uri, registry_uri=trained_store.tracking_uri)
    version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    assert str(version.version) == trained_store.result.model.version
    assert version.run_id == trained_store.result.run_id
    ref, classify = load_classifier(f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}", trained_store.tracking_uri)
    probabilities = classify(mnist.test_images[:200].astype(np.float32) / 255)
    assert probabilities.shape == (200, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert (probabilities.argmax(axis=1) == mnist.test_labels[:200]).mean() > 0.9


def test_registered_recognizer_has_a_drawing_signature_input_example_and_descriptions(trained_store):
    import mlflow.artifacts
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=trained_store.tracking_uri, registry_uri=trained_store.tracking_uri)
    ref = trained_store.result.model
    source = client.get_model_version_download_uri(MODEL_NAME, ref.version)
    folder = mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=trained_store.tracking_uri)
    model = Model.load(folder)
    assert model.signature.inputs.input_names() == ["strokes", "width", "height", "pen_width", "image"]
    assert model.signature.outputs.input_names() == ["text", "lines", "digits"]
    example = model.load_input_example(folder)
    assert example[0]["width"] == 200 and len(example[0]["strokes"]) == 1
    # The pipeline travels with the model: the same code as the server, no checkout needed.
    assert {"pipeline", "serving", "recognizer", "demnistify"} <= {p.name for p in (Path(folder) / "code").iterdir()}
    assert "mlflow.pyfunc.load_model" in client.get_registered_model(MODEL_NAME).description
    description = client.get_model_version(MODEL_NAME, ref.version).description
    assert f"runs/{ref.run_id}" in description and "demnistify train" in description
    assert f"test_accuracy {trained_store.result.test_accuracy:.4f}" in description


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """A new tracking store with nothing in it, for the promotion rule's own versions."""
    root = tmp_path_factory.mktemp("promotion")
    return f"sqlite:///{root / 'mlflow.db'}"


def test_auto_promotion_obeys_the_rule_both_ways(empty_store, mnist_dir, capsys):
    from demnistify.cli import main
    from registry.client import connect, get_alias
    from training.train import train

    tiny = dict(model_width=8, test_limit=500)
    weak = train(small_config(empty_store, mnist_dir, train_limit=500, epochs=1, **tiny))
    strong = train(small_config(empty_store, mnist_dir, train_limit=6000, epochs=1, **tiny))
    weaker = train(small_config(empty_store, mnist_dir, train_limit=500, epochs=1, seed=7, **tiny))
    assert strong.test_accuracy > max(weak.test_accuracy, weaker.test_accuracy)
    assert weak.promoted and strong.promoted and not weaker.promoted
    client = MlflowClient(tracking_uri=empty_store)
    reason = open(client.download_artifacts(weaker.run_id, "promotion_decision.txt")).read()
    assert reason.startswith("reads test") and "worse than the champion beyond noise" in reason
    assert get_alias(connect(empty_store)).version == strong.model.version

    never = train(small_config(empty_store, mnist_dir, train_limit=6000, epochs=2, promote="never", **tiny))
    assert not never.promoted and get_alias(connect(empty_store)).version == strong.model.version

    assert main(["promote", weak.model.version, "--tracking-uri", empty_store]) == 0
    assert get_alias(connect(empty_store)).version == weak.model.version
    assert main(["models", "--tracking-uri", empty_store]) == 0
    listing = capsys.readouterr().out
    assert f"{weak.model.version}  {weak.test_accuracy:8.4f}  champion" in listing
    assert main(["promote", "99", "--tracking-uri", empty_store]) == 2
    assert "no version 99" in capsys.readouterr().err


@pytest.mark.parametrize(
    "interruption, status", [(RuntimeError("disk full"), "FAILED"), (KeyboardInterrupt(), "KILLED")]
)
def test_a_failing_run_is_marked_and_registers_nothing(tmp_path, mnist_dir, monkeypatch, interruption, status):
    import training.steps
    from training.train import train

    def broken(*args, **kwargs):
        raise interruption

    monkeypatch.setattr(training.steps, "evaluate", broken)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(type(interruption)):
        train(small_config(tracking_uri, mnist_dir, train_limit=500, epochs=1, model_width=8))
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("demnistify").experiment_id])
    assert [run.info.status for run in runs] == [status]
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def swallow_a_sigterm() -> None:
    """Send this process SIGTERM and swallow the interrupt, as a library's bare `except` would."""
    with contextlib.suppress(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)


class SwallowsSigtermAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            swallow_a_sigterm()


@pytest.mark.parametrize("during", ["fit", "handwriting scores"])
def test_a_sigterm_whose_interrupt_a_library_swallowed_still_stops_the_run(tmp_path, mnist_dir, monkeypatch, during):
    import training.train
    from training.interrupts import check, stopping_on_signals

    callbacks = [SwallowsSigtermAfterFirstEpoch()] if during == "fit" else []
    if during == "handwriting scores":
        score = training.train.log_handwriting
        monkeypatch.setattr(training.train, "log_handwriting", lambda *args: (swallow_a_sigterm(), score(*args))[1])
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = small_config(tracking_uri, mnist_dir, train_limit=500, epochs=3, model_width=8)
    with pytest.raises(KeyboardInterrupt), stopping_on_signals():
        training.train.train(config, callbacks)
    try:
        check()
    except KeyboardInterrupt:
        pytest.fail("the stop request outlived its block: every later run in this process would stop")
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("demnistify").experiment_id])
    assert [run.info.status for run in runs] == ["KILLED"]
    epochs = client.get_metric_history(runs[0].info.run_id, "val_accuracy")
    assert len(epochs) == (1 if during == "fit" else 3)
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_a_failure_after_registration_rolls_the_version_back(tmp_path, mnist_dir, monkeypatch):
    import training.handwriting_gate
    from training.train import train

    def registry_down(*args, **kwargs):
        raise ConnectionError("registry went away")

    monkeypatch.setattr(training.handwriting_gate, "describe_and_gate", registry_down)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ConnectionError):
        train(small_config(tracking_uri, mnist_dir, train_limit=500, epochs=1, model_width=8))
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_config_rejects_bad_values():
    from training.sweep_config import SweepConfig
    from training.train_config import PROFILES, TrainConfig

    with pytest.raises(ValueError, match="profile"):
        TrainConfig.for_profile("huge")
    with pytest.raises(ValueError, match="promote"):
        TrainConfig.for_profile("quick", promote="sometimes")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig.for_profile("quick", epochs=0)
    for make in (partial(TrainConfig.for_profile, "quick"), SweepConfig):
        with pytest.raises(ValueError, match="handwriting_numbers"):
            make(handwriting_numbers=0)
    for name in ("stroke_probability", "pair_probability"):
        with pytest.raises(ValueError, match=name):
            TrainConfig.for_profile("quick", **{name: 1.5})
    # None means "not given": the profile's value stays.
    assert TrainConfig.for_profile("quick", epochs=None).epochs == PROFILES["quick"]["epochs"]


def test_the_registry_uri_from_the_environment_is_respected(tmp_path, mnist_dir, monkeypatch):
    from training.train import train

    tracking_uri, registry_uri = (f"sqlite:///{tmp_path / name}" for name in ("tracking.db", "registry.db"))
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry_uri)
    result = train(small_config(tracking_uri, mnist_dir, train_limit=500, epochs=1, model_width=8, test_limit=200))
    registry = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    assert result.promoted
    assert str(registry.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version) == result.model.version
    assert MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri).search_registered_models() == []
