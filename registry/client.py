"""Model Registry access: connect, resolve a URI or an alias to a version, list versions, move an alias."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from demnistify.constants import CHAMPION_ALIAS, DEFAULT_TRACKING_URI, MODEL_NAME

logger = logging.getLogger(__name__)

# SHA-256 of the int8 serving graph that the version's training run logged and checked: serving
# runs that graph, verified by this digest, without loading TensorFlow or the Keras model.
INT8_DIGEST_TAG = "int8_sha256"
# The same for the float graph registered beside it, served where this CPU reads the int8 one otherwise.
FLOAT_DIGEST_TAG = "float_sha256"

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
    # The digest of the float graph registered beside it (FLOAT_DIGEST_TAG), if any.
    float_digest: str | None = None

    @property
    def uri(self) -> str:
        """The registry URI that names exactly this version."""
        return f"models:/{self.name}/{self.version}"


def resolve_tracking_uri(explicit: str | None = None) -> str:
    """The tracking URI: the explicit one, else `MLFLOW_TRACKING_URI`, else the repo's SQLite file."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def resolve_registry_uri(tracking_uri: str | None = None) -> str:
    """The registry URI: `MLFLOW_REGISTRY_URI` when set, else the resolved tracking URI (MLflow's own rule)."""
    return os.environ.get("MLFLOW_REGISTRY_URI") or resolve_tracking_uri(tracking_uri)


def connect(tracking_uri: str | None = None) -> MlflowClient:
    """A client on the resolved tracking store and on the registry (`MLFLOW_REGISTRY_URI`, else the same store)."""
    uri = resolve_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=uri, registry_uri=resolve_registry_uri(uri))


def _ref(version, metrics: Mapping[str, float] | None = None) -> ModelRef:
    return ModelRef(
        name=version.name,
        version=str(version.version),
        run_id=version.run_id or "",
        test_accuracy=(metrics or {}).get("test_accuracy"),
        aliases=tuple(getattr(version, "aliases", ()) or ()),
        int8_digest=version.tags.get(INT8_DIGEST_TAG),
        float_digest=version.tags.get(FLOAT_DIGEST_TAG),
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
    """Move the alias to VERSION unconditionally (a person's choice) and return that version with its metrics."""
    ref = get_version(client, name, version)
    client.set_registered_model_alias(name, alias, ref.version)
    return with_metrics(client, get_version(client, name, ref.version))


def run_metrics(client: MlflowClient, ref: ModelRef) -> dict[str, float]:
    """The final metrics of the run that trained a version (test accuracy and the others); {} without a run."""
    if not ref.run_id:
        return {}
    try:
        return dict(client.get_run(ref.run_id).data.metrics)
    except MlflowException as error:
        logger.warning("Version %s: its run %s cannot be read (%s).", ref.version, ref.run_id, error.message)
        return {}


def with_metrics(client: MlflowClient, ref: ModelRef) -> ModelRef:
    """The version with its run's test accuracy filled in."""
    return replace(ref, test_accuracy=run_metrics(client, ref).get("test_accuracy"))


def list_versions(client: MlflowClient, name: str = MODEL_NAME) -> list[ModelRef]:
    """Every registered version of the model, newest first, with accuracy and aliases."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
        aliases = client.get_registered_model(name).aliases if versions else {}
    except MlflowException as error:
        raise RegistryError(f"Cannot list versions of {name}: {error.message}") from error
    # Version searches do not carry aliases; the registered model holds them as alias -> version.
    refs = [
        replace(_ref(v), aliases=tuple(a for a, n in aliases.items() if str(n) == str(v.version))) for v in versions
    ]
    refs = [with_metrics(client, ref) for ref in refs]
    return sorted(refs, key=lambda ref: int(ref.version), reverse=True)
