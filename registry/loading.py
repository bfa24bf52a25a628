"""Loading a registered version: download its folder, read its int8 graph, load its Keras model."""

from __future__ import annotations

import logging
from pathlib import Path

from demnistify.constants import DIGIT_GRAPH_ARTIFACT, KERAS_ARTIFACT
from registry.client import ModelRef, RegistryError, connect, resolve, resolve_tracking_uri

logger = logging.getLogger(__name__)


def download_version(ref: ModelRef, tracking_uri: str | None = None) -> Path:
    """Download one version's model folder (the recognizer: MLmodel, code, digit graph, Keras model)."""
    import mlflow.artifacts

    uri = resolve_tracking_uri(tracking_uri)
    location = connect(uri).get_model_version_download_uri(ref.name, ref.version)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=uri))


def model_artifact(folder: Path, name: str) -> Path | None:
    """Where a pyfunc model keeps its artifact `name` (per its MLmodel file), or None if it has none."""
    from mlflow.models import Model
    from mlflow.pyfunc import FLAVOR_NAME

    artifacts = Model.load(str(folder)).flavors.get(FLAVOR_NAME, {}).get("artifacts", {})
    return folder / artifacts[name]["path"] if name in artifacts else None


def load_keras_model(ref: ModelRef, tracking_uri: str | None = None):
    """Load one version's Keras digit model (the recognizer's artifact, or a TensorFlow-flavour model)."""
    try:
        import keras
        import mlflow.tensorflow
    except ImportError:
        raise RegistryError(
            f"{ref.uri} cannot be served by this install: it has no int8 graph registered with it, "
            'and loading its Keras model needs TensorFlow (pip install "demnistify[train]").'
        ) from None
    from mlflow.models import Model

    try:
        folder = download_version(ref, tracking_uri)
        if "tensorflow" in Model.load(str(folder)).flavors:
            return mlflow.tensorflow.load_model(str(folder))
        path = model_artifact(folder, KERAS_ARTIFACT)
        if path is None:
            raise FileNotFoundError(f"the model has no {KERAS_ARTIFACT!r} artifact")
        return keras.saving.load_model(path)
    except Exception as error:  # noqa: BLE001 - missing files, bad zips, Keras errors alike.
        raise RegistryError(f"Cannot load {ref.uri} (run {ref.run_id}): {type(error).__name__}: {error}") from error


def load_graph(ref: ModelRef, tracking_uri: str | None = None, name: str = DIGIT_GRAPH_ARTIFACT) -> bytes | None:
    """A serialized digit graph of the version's recognizer (its `name` artifact), or None if it has none."""
    return load_graphs(ref, tracking_uri, (name,))[0]


def load_graphs(ref: ModelRef, tracking_uri: str | None, names: tuple[str, ...]) -> tuple[bytes | None, ...]:
    """The version's digit graphs named `names` (None for each it lacks), from one download of its folder."""
    try:
        folder = download_version(ref, tracking_uri)
    except Exception as error:  # noqa: BLE001 - an unreachable store is reported when the Keras model loads.
        logger.info("Version %s cannot be downloaded (%s).", ref.version, type(error).__name__)
        return (None,) * len(names)
    return tuple(_read_graph(ref, folder, name) for name in names)


def _read_graph(ref: ModelRef, folder: Path, name: str) -> bytes | None:
    try:
        path = model_artifact(folder, name)
        if path is None:
            return None
        return (path if path.is_file() else next(path.glob("*.onnx"))).read_bytes()
    except Exception as error:  # noqa: BLE001 - older versions have none; serving exports the float model then.
        logger.info(
            "Version %s has no %s (%s); the float model will be exported.", ref.version, name, type(error).__name__
        )
        return None


def load_classifier(model_uri: str, tracking_uri: str | None = None):
    """Resolve a registry URI and return (ModelRef, compiled Classifier) for it."""
    from registry.keras_models import make_classifier

    ref = resolve(connect(tracking_uri), model_uri)
    return ref, make_classifier(load_keras_model(ref, tracking_uri))
