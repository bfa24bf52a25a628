"""Training against a real SQLite MLflow store: the run, its logs, the registry and promotion."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from mlflow import MlflowClient

from demnistify.constants import CHAMPION_ALIAS, MODEL_NAME
from tests.conftest import small_config

pytestmark = pytest.mark.slow


def run_of(store):
    client = MlflowClient(tracking_uri=store.tracking_uri)
    return client, client.get_run(store.result.run_id)


def test_run_logs_params_metrics_dataset_and_tags(trained_store):
    client, run = run_of(trained_store)
    assert run.info.status == "FINISHED"
    assert run.data.params["epochs"] == "3" and run.data.params["model_width"] == "16"
    assert run.data.params["profile"] == "quick" and run.data.tags["profile"] == "quick"
    assert len(run.data.tags["git_commit"]) in (40, len("unknown"))
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [metric.step for metric in history] == [1, 2, 3]
    for name in ("train_loss", "train_accuracy", "val_loss", "test_loss", "test_accuracy", "wall_seconds"):
        assert name in run.data.metrics, name
    assert 0.9 < run.data.metrics["test_accuracy"] <= 1.0
    contexts = {dataset.tags[0].value for dataset in run.inputs.dataset_inputs}
    assert contexts == {"training", "validation", "testing"}
    digests = {dataset.dataset.digest for dataset in run.inputs.dataset_inputs}
    assert len(digests) == 3


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


def test_run_logs_an_int8_serving_graph_that_reads_validation_digits_as_well(trained_store, mnist):
    from training.quantize import run_graph

    client, run = run_of(trained_store)
    float_accuracy, int8_accuracy = (run.data.metrics[f"val_accuracy_{kind}"] for kind in ("float", "int8"))
    assert 0.9 < float_accuracy and int8_accuracy >= float_accuracy - max(0.001, 5 / int(run.data.params["val_size"]))
    assert run.data.metrics["int8_log_prob_error"] <= 0.1
    path = client.download_artifacts(run.info.run_id, "serving/model-int8.onnx")
    with open(path, "rb") as handle:
        graph = handle.read()
    probabilities = run_graph(graph, mnist.test_images[:200, ..., None] / 255.0)
    # The version names its graph by digest, so serving can run it without the Keras model.
    from training.registry import connect

    version = connect(trained_store.tracking_uri).get_model_version(MODEL_NAME, trained_store.result.model.version)
    assert version.tags["int8_sha256"] == hashlib.sha256(graph).hexdigest() == trained_store.result.model.int8_digest
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
    from training.registry import load_classifier

    client = MlflowClient(tracking_uri=trained_store.tracking_uri, registry_uri=trained_store.tracking_uri)
    version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    assert str(version.version) == trained_store.result.model.version
    assert version.run_id == trained_store.result.run_id
    ref, classify = load_classifier(f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}", trained_store.tracking_uri)
    probabilities = classify(mnist.test_images[:200].astype(np.float32) / 255)
    assert probabilities.shape == (200, 10)
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    assert (probabilities.argmax(axis=1) == mnist.test_labels[:200]).mean() > 0.9


def test_logged_model_has_signature_and_input_example(trained_store):
    import mlflow.artifacts
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=trained_store.tracking_uri, registry_uri=trained_store.tracking_uri)
    source = client.get_model_version_download_uri(MODEL_NAME, trained_store.result.model.version)
    model = Model.load(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=trained_store.tracking_uri))
    assert model.signature.inputs.inputs[0].shape == (-1, 28, 28, 1)
    assert model.saved_input_example_info is not None


@pytest.fixture(scope="module")
def own_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("promotion")
    return f"sqlite:///{root / 'mlflow.db'}"


def test_auto_promotion_obeys_the_rule_both_ways(own_store, mnist_dir, capsys):
    from demnistify.cli import main
    from training.registry import connect, get_alias
    from training.train import train

    tiny = dict(model_width=8, test_limit=500)
    weak = train(small_config(own_store, mnist_dir, train_limit=500, epochs=1, **tiny))
    strong = train(small_config(own_store, mnist_dir, train_limit=6000, epochs=1, **tiny))
    weaker = train(small_config(own_store, mnist_dir, train_limit=500, epochs=1, seed=7, **tiny))
    assert strong.test_accuracy > max(weak.test_accuracy, weaker.test_accuracy)
    assert weak.promoted and strong.promoted and not weaker.promoted
    client = MlflowClient(tracking_uri=own_store)
    reason = open(client.download_artifacts(weaker.run_id, "promotion_decision.txt")).read()
    assert reason.startswith("reads test") and "worse than the champion beyond noise" in reason
    assert get_alias(connect(own_store)).version == strong.model.version

    never = train(small_config(own_store, mnist_dir, train_limit=6000, epochs=2, promote="never", **tiny))
    assert not never.promoted and get_alias(connect(own_store)).version == strong.model.version

    assert main(["promote", weak.model.version, "--tracking-uri", own_store]) == 0
    assert get_alias(connect(own_store)).version == weak.model.version
    assert main(["models", "--tracking-uri", own_store]) == 0
    listing = capsys.readouterr().out
    assert f"{weak.model.version}  {weak.test_accuracy:8.4f}  champion" in listing
    assert main(["promote", "99", "--tracking-uri", own_store]) == 2
    assert "no version 99" in capsys.readouterr().err


@pytest.mark.parametrize("interruption, status", [(RuntimeError("disk full"), "FAILED"), (KeyboardInterrupt(), "KILLED")])
def test_a_failing_run_is_marked_and_registers_nothing(tmp_path, mnist_dir, monkeypatch, interruption, status):
    import training.train
    from training.train import train

    def broken(*args, **kwargs):
        raise interruption

    monkeypatch.setattr(training.train, "evaluate", broken)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(type(interruption)):
        train(small_config(tracking_uri, mnist_dir, train_limit=500, epochs=1, model_width=8))
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("demnistify").experiment_id])
    assert [run.info.status for run in runs] == [status]
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_a_failure_after_registration_rolls_the_version_back(tmp_path, mnist_dir, monkeypatch):
    import training.train
    from training.train import train

    def registry_down(*args, **kwargs):
        raise ConnectionError("registry went away")

    monkeypatch.setattr(training.train, "promote", registry_down)
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ConnectionError):
        train(small_config(tracking_uri, mnist_dir, train_limit=500, epochs=1, model_width=8))
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []


def test_config_rejects_bad_values():
    from training.train import PROFILES, TrainConfig

    with pytest.raises(ValueError, match="profile"):
        TrainConfig.for_profile("huge")
    with pytest.raises(ValueError, match="promote"):
        TrainConfig.for_profile("quick", promote="sometimes")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig.for_profile("quick", epochs=0)
    for name in ("stroke_probability", "pair_probability"):
        with pytest.raises(ValueError, match=name):
            TrainConfig.for_profile("quick", **{name: 1.5})
    # None means "not given": the profile's value stays.
    assert TrainConfig.for_profile("quick", epochs=None).epochs == PROFILES["quick"]["epochs"]
