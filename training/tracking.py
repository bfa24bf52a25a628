"""MLflow run logging: experiment setup, run lifecycle, per-epoch metrics, dataset, pictures, model."""

from __future__ import annotations

import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import mlflow
import mlflow.data
import mlflow.tensorflow
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from mlflow.models import ModelSignature
from mlflow.types import Schema, TensorSpec

from demnistify.constants import EXPERIMENT_NAME, INPUT_SHAPE, NUM_CLASSES, REPO_ROOT
from training.registry import INT8_DIGEST_TAG, TEST_ACCURACY_TAG, ModelRef, connect, resolve_tracking_uri

MODEL_ARTIFACT_NAME = "model"


def configure_tracking(tracking_uri: str | None = None, experiment_name: str = EXPERIMENT_NAME) -> str:
    """Point MLflow at the tracking and registry store and make sure the experiment exists."""
    uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(experiment_name) is None:
        mlflow.create_experiment(experiment_name, artifact_location=artifact_location_for(uri, experiment_name))
    mlflow.set_experiment(experiment_name)
    return uri


def artifact_location_for(tracking_uri: str, experiment_name: str = EXPERIMENT_NAME) -> str | None:
    """Artifacts of a SQLite store go to `mlruns/` beside the database; servers choose their own."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return (database.resolve().parent / "mlruns" / experiment_name).as_uri()


def git_commit() -> str:
    """The commit the code runs from, or 'unknown' outside a git checkout."""
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


@contextmanager
def tracked_run(run_name: str, params: dict, tags: dict) -> Iterator[mlflow.ActiveRun]:
    """Start a run; end it FINISHED, KILLED on Ctrl-C or SIGTERM, FAILED on any other error."""
    run = mlflow.start_run(run_name=run_name)
    try:
        mlflow.log_params(params)
        commit = git_commit()
        mlflow.set_tags({**tags, "git_commit": commit, "mlflow.source.git.commit": commit})
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    mlflow.end_run(status="FINISHED")


class EpochMetricsLogger(keras.callbacks.Callback):
    """Log every Keras metric at the end of each epoch, with step = epoch number (from 1)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {_metric_name(name): float(value) for name, value in (logs or {}).items()}
        mlflow.log_metrics(metrics, step=epoch + 1)


def _metric_name(keras_name: str) -> str:
    return keras_name if keras_name.startswith("val_") or keras_name == "learning_rate" else f"train_{keras_name}"


def log_dataset(images: np.ndarray, labels: np.ndarray, name: str, source: str, context: str) -> None:
    """Record a data split as an `mlflow.data` input of the run (name, digest, source)."""
    with warnings.catch_warnings():
        # MLflow registers its local-file source class twice and warns that the path is ambiguous.
        warnings.filterwarnings("ignore", message="The specified dataset source")
        dataset = mlflow.data.from_numpy(images, targets=labels, name=name, source=source)
    mlflow.log_input(dataset, context=context)


def log_figures(figures: dict[str, Figure]) -> None:
    """Log each figure as a PNG artifact under its file name."""
    for file_name, figure in figures.items():
        mlflow.log_figure(figure, file_name)


def log_text(text: str, file_name: str) -> None:
    """Log a text artifact such as the model summary."""
    mlflow.log_text(text, file_name)


def log_bytes(data: bytes, artifact_file: str) -> None:
    """Log bytes as an artifact file of the active run (a path relative to its artifact root)."""
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / Path(artifact_file).name
        local.write_bytes(data)
        mlflow.log_artifact(str(local), artifact_path=str(Path(artifact_file).parent) or None)


def log_metrics(metrics: dict[str, float]) -> None:
    """Log final metrics (no step)."""
    mlflow.log_metrics({name: float(value) for name, value in metrics.items()})


def log_and_register_model(model: keras.Model, example: np.ndarray, model_name: str, test_accuracy: float,
                           int8_digest: str | None = None) -> ModelRef:
    """Log the model with signature and input example, register it, and tag the new version.

    `int8_digest` is the SHA-256 of the int8 serving graph the run logged, if it logged one.
    """
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *INPUT_SHAPE), "digit")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, NUM_CLASSES), "probabilities")]),
    )
    # Explicit requirements spare MLflow a slow dependency inference in a subprocess.
    requirements = [f"tensorflow=={tf.__version__}", f"keras=={keras.__version__}", f"numpy=={np.__version__}"]
    with warnings.catch_warnings():
        # MLflow feeds the input example as a list to a model whose one input is named.
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        info = mlflow.tensorflow.log_model(
            model, name=MODEL_ARTIFACT_NAME, signature=signature, input_example=example.astype(np.float32),
            registered_model_name=model_name, pip_requirements=requirements,
        )
    version = str(info.registered_model_version)
    client = connect(mlflow.get_tracking_uri())
    client.set_model_version_tag(model_name, version, TEST_ACCURACY_TAG, f"{test_accuracy:.6f}")
    if int8_digest is not None:
        client.set_model_version_tag(model_name, version, INT8_DIGEST_TAG, int8_digest)
    return ModelRef(model_name, version, mlflow.active_run().info.run_id, test_accuracy, int8_digest=int8_digest)


def delete_version(ref: ModelRef) -> None:
    """Remove a version registered by a run that then failed, so a failed run registers nothing."""
    connect(mlflow.get_tracking_uri()).delete_model_version(ref.name, ref.version)
