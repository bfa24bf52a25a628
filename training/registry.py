"""Model Registry access: resolve the champion, promote, list versions, load a registered model."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demnistify.constants import CHAMPION_ALIAS, DEFAULT_TRACKING_URI, INT8_ARTIFACT, MODEL_NAME

logger = logging.getLogger(__name__)

TEST_ACCURACY_TAG = "test_accuracy"
# SHA-256 of the int8 serving graph that the version's training run logged and checked: serving
# runs that graph, verified by this digest, without loading TensorFlow or the Keras model.
INT8_DIGEST_TAG = "int8_sha256"
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>\d+))$")


class RegistryError(RuntimeError):
    """The registry is unreachable, or holds no such model, version or alias."""


@dataclass(frozen=True)
class ModelRef:
    """One registered model version."""

    name: str
    version: str
    run_id: str
    test_accuracy: float | None = None
    aliases: tuple[str, ...] = ()
    # The digest of the int8 graph registered with the version (INT8_DIGEST_TAG), if any.
    int8_digest: str | None = None

    @property
    def uri(self) -> str:
        """The registry URI that names exactly this version."""
        return f"models:/{self.name}/{self.version}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI: the explicit one, else `MLFLOW_TRACKING_URI`, else the repo's SQLite file."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def connect(tracking_uri: str | None = None) -> MlflowClient:
    """A client whose tracking and registry stores are both at the resolved URI."""
    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _ref(version) -> ModelRef:
    accuracy = version.tags.get(TEST_ACCURACY_TAG)
    return ModelRef(
        name=version.name,
        version=str(version.version),
        run_id=version.run_id or "",
        test_accuracy=float(accuracy) if accuracy is not None else None,
        aliases=tuple(getattr(version, "aliases", ()) or ()),
        int8_digest=version.tags.get(INT8_DIGEST_TAG),
    )


def get_alias(client: MlflowClient, name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> ModelRef | None:
    """The version the alias points to, or None when the model or the alias does not exist."""
    try:
        return _ref(client.get_model_version_by_alias(name, alias))
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise RegistryError(f"Registry error while resolving {name}@{alias}: {error.message}") from error
    except Exception as error:  # noqa: BLE001 - a store that is down raises many kinds.
        raise RegistryError(f"Registry unreachable while resolving {name}@{alias}: {error}") from error


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of `models:/NAME@ALIAS` or `models:/NAME/VERSION`; RegistryError otherwise."""
    match = _MODEL_URI.match(model_uri)
    if not match:
        raise RegistryError(f"Model URI {model_uri!r} must look like models:/NAME@ALIAS or models:/NAME/VERSION.")
    return match["name"], match["alias"], match["version"]


def resolve(client: MlflowClient, model_uri: str) -> ModelRef:
    """Resolve `models:/NAME@ALIAS` or `models:/NAME/VERSION` to one version, or raise RegistryError."""
    name, alias, version = parse_model_uri(model_uri)
    if alias:
        ref = get_alias(client, name, alias)
        if ref is None:
            raise RegistryError(
                f"No model version is registered as {name}@{alias}. Train one with `demnistify train` "
                f"(it registers and promotes), or promote one with `demnistify promote VERSION`."
            )
        return ref
    return get_version(client, name, version)


def get_version(client: MlflowClient, name: str, version: str) -> ModelRef:
    """One version by number, or RegistryError naming what is missing."""
    try:
        return _ref(client.get_model_version(name, str(version)))
    except MlflowException as error:
        raise RegistryError(f"Model {name} has no version {version}: {error.message}") from error


def promote(client: MlflowClient, version: str, name: str = MODEL_NAME, alias: str = CHAMPION_ALIAS) -> ModelRef:
    """Move the alias to VERSION and return that version."""
    ref = get_version(client, name, version)
    client.set_registered_model_alias(name, alias, ref.version)
    return get_version(client, name, ref.version)


def list_versions(client: MlflowClient, name: str = MODEL_NAME) -> list[ModelRef]:
    """Every registered version of the model, newest first, with accuracy and aliases."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
        aliases = client.get_registered_model(name).aliases if versions else {}
    except MlflowException as error:
        raise RegistryError(f"Cannot list versions of {name}: {error.message}") from error
    # Version searches do not carry aliases; the registered model holds them as alias -> version.
    refs = [replace(_ref(v), aliases=tuple(a for a, n in aliases.items() if str(n) == str(v.version)))
            for v in versions]
    return sorted(refs, key=lambda ref: int(ref.version), reverse=True)


def load_keras_model(ref: ModelRef, tracking_uri: str | None = None):
    """Download one version's artifacts and load its Keras model; RegistryError if that fails."""
    import mlflow.artifacts

    try:
        import mlflow.tensorflow
        import tensorflow  # noqa: F401 - the server-only install has none.
    except ImportError:
        raise RegistryError(f"{ref.uri} cannot be served by this install: it has no int8 graph registered with it, "
                            "and loading its Keras model needs TensorFlow (pip install \"demnistify[train]\").") from None

    uri = resolve_tracking_uri(tracking_uri)
    try:
        location = connect(uri).get_model_version_download_uri(ref.name, ref.version)
        local_path = mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=uri)
        return mlflow.tensorflow.load_model(local_path)
    except Exception as error:  # noqa: BLE001 - missing files, bad zips, Keras errors alike.
        raise RegistryError(f"Cannot load {ref.uri} (run {ref.run_id}): {type(error).__name__}: {error}") from error


def load_int8_graph(ref: ModelRef, tracking_uri: str | None = None) -> bytes | None:
    """The version's int8 ONNX graph logged by its training run, or None if the run has none."""
    import mlflow.artifacts

    try:
        local_path = mlflow.artifacts.download_artifacts(run_id=ref.run_id, artifact_path=INT8_ARTIFACT,
                                                         tracking_uri=resolve_tracking_uri(tracking_uri))
        return Path(local_path).read_bytes()
    except Exception as error:  # noqa: BLE001 - older runs have none; serving exports the float model then.
        logger.info("Version %s has no int8 graph (%s); the float model will be exported.", ref.version,
                    type(error).__name__)
        return None


def load_classifier(model_uri: str, tracking_uri: str | None = None):
    """Resolve a registry URI and return (ModelRef, compiled Classifier) for it."""
    from training.inference import make_classifier

    ref = resolve(connect(tracking_uri), model_uri)
    return ref, make_classifier(load_keras_model(ref, tracking_uri))
