"""MLflow run logging: experiment setup, run lifecycle, per-epoch metrics linked to their datasets, pictures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import mlflow
import mlflow.data
import numpy as np
from matplotlib.figure import Figure
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.utils.git_utils import get_git_branch, get_git_commit, get_git_repo_url
from mlflow.utils.mlflow_tags import MLFLOW_GIT_BRANCH, MLFLOW_GIT_COMMIT, MLFLOW_GIT_REPO_URL

from demnistify.constants import EXPERIMENT_NAME, MNIST_MIRRORS, REPO_ROOT
from registry.client import resolve_tracking_uri

# The logged model a training run produces: the whole recognizer (training/model_logging.py).
RECOGNIZER_MODEL_NAME = "recognizer"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
# Config fields that only make sense on the machine that trained: a teammate's comparison of
# runs must not differ by them. The data is logged as datasets (name, digest, public URL).
LOCAL_ONLY_PARAMS = ("data_dir", "tracking_uri", "parent_run_id")
# Which logged dataset (by its context) a metric was measured on, by the metric's prefix.
METRIC_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}
# The datasets logged in the active run, by context, so that metrics can link to them.
_DATASETS: dict[str, mlflow.data.Dataset] = {}


def configure_tracking(tracking_uri: str | None = None, experiment_name: str = EXPERIMENT_NAME) -> str:
    """Point MLflow at the tracking and registry stores and make sure the experiment exists, tagged for training."""
    uri = resolve_tracking_uri(tracking_uri)
    # No set_registry_uri: MLflow's registry is then MLFLOW_REGISTRY_URI when the user set it,
    # else this tracking URI (set_registry_uri would write MLFLOW_REGISTRY_URI for the process).
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.get_experiment_by_name(experiment_name) or _create_experiment(uri, experiment_name)
    # The UI opens an experiment of this kind on its training runs, not on the GenAI overview.
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
        try:
            mlflow.MlflowClient(uri).set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        except MlflowException:
            # Sweep workers starting together race to set it; PostgreSQL refuses the second insert.
            if mlflow.get_experiment(experiment.experiment_id).tags.get(EXPERIMENT_KIND_TAG) != EXPERIMENT_KIND:
                raise
    mlflow.set_experiment(experiment_name)
    return uri


def _create_experiment(uri: str, name: str):
    try:
        return mlflow.get_experiment(mlflow.create_experiment(name, artifact_location=artifact_location_for(uri, name)))
    except MlflowException:
        # Another worker created it first.
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found


def artifact_location_for(tracking_uri: str, experiment_name: str = EXPERIMENT_NAME) -> str | None:
    """Artifacts of a SQLite store go to `mlruns/` beside the database; servers choose their own."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    database = Path(tracking_uri.removeprefix("sqlite:///"))
    return (database.resolve().parent / "mlruns" / experiment_name).as_uri()


class RunStopped(Exception):
    """Raised to stop a run on purpose (a pruned sweep trial): the run ends KILLED, not FAILED."""


def git_tags(path: Path = REPO_ROOT) -> dict[str, str]:
    """MLflow's own source tags (commit, branch, repository URL) for the checkout the code runs from."""
    found = {
        MLFLOW_GIT_COMMIT: get_git_commit(str(path)),
        MLFLOW_GIT_BRANCH: get_git_branch(str(path)),
        MLFLOW_GIT_REPO_URL: get_git_repo_url(str(path)),
    }
    return {name: value for name, value in found.items() if value}


@contextmanager
def tracked_run(
    run_name: str, params: dict, tags: dict, parent_run_id: str | None = None
) -> Iterator[mlflow.ActiveRun]:
    """Start a run (nested under `parent_run_id` if given) sampling system metrics; end it FINISHED,
    KILLED on Ctrl-C, SIGTERM or RunStopped, FAILED on any other error.

    The recognizer the run will log is created up front (pending) and made the active model,
    so that every metric logged in the run is linked to it (and to its dataset, see log_metrics).
    """
    _DATASETS.clear()
    run = mlflow.start_run(
        run_name=run_name, parent_run_id=parent_run_id, nested=parent_run_id is not None, log_system_metrics=True
    )
    model_id = None
    try:
        mlflow.log_params(params)
        mlflow.set_tags({**tags, **git_tags()})
        model_id = mlflow.initialize_logged_model(
            name=RECOGNIZER_MODEL_NAME,
            source_run_id=run.info.run_id,
            params={name: str(value) for name, value in params.items()},
        ).model_id
        mlflow.set_active_model(model_id=model_id)
        yield run
    except (KeyboardInterrupt, RunStopped):
        _end_run("KILLED", model_id)
        raise
    except BaseException:
        _end_run("FAILED", model_id)
        raise
    _end_run("FINISHED", model_id)


def _end_run(status: str, model_id: str | None) -> None:
    mlflow.clear_active_model()
    if model_id is not None and mlflow.get_logged_model(model_id).status != LoggedModelStatus.READY:
        mlflow.finalize_logged_model(model_id, LoggedModelStatus.FAILED)
    mlflow.end_run(status=status)


def recognizer_model_id() -> str:
    """The id of the run's (pending) recognizer, which model_logging logs into."""
    return mlflow.get_active_model_id()


def run_params(config: dict, **extra) -> dict:
    """A config as run parameters: without what only makes sense on this machine (local paths, URIs)."""
    return {name: value for name, value in {**config, **extra}.items() if name not in LOCAL_ONLY_PARAMS}


class EpochMetricsLogger(keras.callbacks.Callback):
    """Log every Keras metric at the end of each epoch, with step = epoch number (from 1)."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        log_metrics({_metric_name(name): float(value) for name, value in (logs or {}).items()}, step=epoch + 1)


def _metric_name(keras_name: str) -> str:
    return keras_name if keras_name.startswith("val_") or keras_name == "learning_rate" else f"train_{keras_name}"


def log_dataset(images: np.ndarray, labels: np.ndarray, name: str, context: str) -> None:
    """Record a data split as an `mlflow.data` input of the run: its name, digest and MNIST's public URL."""
    dataset = mlflow.data.from_numpy(images, targets=labels, name=name, source=MNIST_MIRRORS[0])
    mlflow.log_input(dataset, context=context)
    _DATASETS[context] = dataset


def set_tags(tags: dict[str, str]) -> None:
    """Tag the active run."""
    mlflow.set_tags(tags)


def active_run_id() -> str:
    """The id of the active run."""
    return mlflow.active_run().info.run_id


def start_parent_run(name: str, tags: dict[str, str]) -> str:
    """Create a run (not made active) for runs nested under it from any process; returns its id."""
    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    experiment = mlflow.get_experiment_by_name(EXPERIMENT_NAME)
    return client.create_run(experiment.experiment_id, run_name=name, tags={**tags, **git_tags()}).info.run_id


def end_parent_run(run_id: str, params: dict, metrics: dict[str, float], status: str = "FINISHED") -> None:
    """Log a parent run's summary and end it."""
    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    for name, value in params.items():
        client.log_param(run_id, name, value)
    for name, value in metrics.items():
        client.log_metric(run_id, name, float(value))
    client.set_terminated(run_id, status)


def log_figures(figures: dict[str, Figure]) -> None:
    """Log each figure as a PNG artifact under its file name."""
    for file_name, figure in figures.items():
        mlflow.log_figure(figure, file_name)


def log_text(text: str, file_name: str) -> None:
    """Log a text artifact such as the model summary."""
    mlflow.log_text(text, file_name)


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log metrics, each linked to the data split it was measured on (by its prefix: train_, val_, test_)."""
    by_context: dict[str | None, dict[str, float]] = {}
    for name, value in metrics.items():
        by_context.setdefault(METRIC_CONTEXTS.get(name.split("_", 1)[0]), {})[name] = float(value)
    for context, values in by_context.items():
        mlflow.log_metrics(values, step=step, dataset=_DATASETS.get(context))


def delete_version(ref) -> None:
    """Remove a version registered by a run that then failed, so a failed run registers nothing."""
    mlflow.MlflowClient(mlflow.get_tracking_uri(), mlflow.get_registry_uri()).delete_model_version(
        ref.name, ref.version
    )
