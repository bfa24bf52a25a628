"""Logged models of a run: the digit graph (ONNX flavour) and the whole recognizer (pyfunc), registered with descriptions."""

from __future__ import annotations

import hashlib
import tempfile
from importlib.metadata import version as installed_version
from pathlib import Path

import keras
import mlflow
import mlflow.onnx
import mlflow.pyfunc
import numpy as np
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, DataType, Schema, TensorSpec
from mlflow.types.schema import AnyType, Array, Object, Property

from demnistify.constants import (
    DIGIT_GRAPH_ARTIFACT,
    FLOAT_GRAPH_ARTIFACT,
    INPUT_SHAPE,
    KERAS_ARTIFACT,
    NUM_CLASSES,
    REPO_ROOT,
)
from recognizer.pyfunc import INPUT_EXAMPLE, DrawingRecognizer
from registry.client import FLOAT_DIGEST_TAG, INT8_DIGEST_TAG, ModelRef
from training.tracking import recognizer_model_id

GRAPH_MODEL_NAME = "digit-graph"
# Tags of the logged recognizer: which digit graph it carries, and that graph's SHA-256.
GRAPH_KIND_TAG = "digit_graph"
GRAPH_DIGEST_TAG = "digit_graph_sha256"
FLOAT_GRAPH_DIGEST_TAG = "float_graph_sha256"
FLOAT_GRAPH_FILE = "digit_graph_float.onnx"
# The Keras digit model travels with the recognizer for the server's TensorFlow modes (and
# to fine-tune from); the pyfunc itself never loads it.
KERAS_FILE = "digit_model.keras"
# The recognizer runs the same code as the server: these packages are copied into the model.
CODE_PACKAGES = ("demnistify", "pipeline", "recognizer", "serving")
# What the recognizer imports, pinned to what trained it (spares MLflow's slow inference).
REQUIREMENTS = (
    "mlflow",
    "numpy",
    "pandas",
    "onnxruntime",
    "opencv-python-headless",
    "scikit-image",
    "pillow",
    "orjson",
)
MODEL_DESCRIPTION = (
    "The deMNISTify recognizer: reads whole handwritten numbers from pen strokes (with canvas size and pen "
    "width) or pictures, and returns the number with its digits, boxes and confidences. Load it with "
    '`mlflow.pyfunc.load_model("models:/demnistify-cnn@champion")`, or serve it with `mlflow models serve`. '
    "Each version is trained by `demnistify train` or `demnistify sweep`; `champion` is the version served."
)

# Each drawing is strokes with its canvas (pen width optional), or a base64 PNG/JPEG `image`.
# The numeric fields are Any: MLflow refuses integer JSON numbers (x, y, width) for a double
# column, and a long column cannot hold the gaps of a batch mixing pictures and strokes. The
# recognizer checks every field itself, as the server does (serving/frames.py).
INPUT_SCHEMA = Schema(
    [ColSpec(AnyType(), name, required=False) for name in ("strokes", "width", "height", "pen_width")]
    + [ColSpec(DataType.string, "image", required=False)]
)
DIGITS_OUTPUT = Object(
    [
        Property("label", DataType.long),
        Property("confidence", DataType.double),
        Property("box", Array(DataType.long)),
        Property("candidates", Array(Array(DataType.double))),
        Property("unsure", DataType.boolean),
        Property("line", DataType.long),
    ]
)
OUTPUT_SCHEMA = Schema(
    [
        ColSpec(DataType.string, "text"),
        ColSpec(Array(DataType.string), "lines"),
        ColSpec(Array(DIGITS_OUTPUT), "digits"),
    ]
)


def log_digit_graph(graph: bytes, int8: bool) -> mlflow.models.model.ModelInfo:
    """Log the digit graph with MLflow's ONNX flavour (input `digit`: N x 28 x 28 x 1, output: N x 10)."""
    import onnx

    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *INPUT_SHAPE), "digit")]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, NUM_CLASSES), "probabilities")]),
    )
    return mlflow.onnx.log_model(
        onnx.load_from_string(graph),
        name=GRAPH_MODEL_NAME,
        signature=signature,
        pip_requirements=_pinned(("onnx", "onnxruntime")),
        save_as_external_data=False,
        tags={"quantization": "int8" if int8 else "float32", "sha256": hashlib.sha256(graph).hexdigest()},
    )


def log_recognizer(model: keras.Model, float_graph: bytes, int8_graph: bytes | None) -> str:
    """Log the whole recognizer as a pyfunc whose artifact is the digit graph; returns its `models:/` URI.

    The digit graph is the int8 one where there is one, with the float graph beside it.
    """
    graph = int8_graph if int8_graph is not None else float_graph
    graph_info = log_digit_graph(graph, int8_graph is not None)
    model_id = recognizer_model_id()
    with tempfile.TemporaryDirectory() as folder:
        keras_path, local_path = Path(folder) / KERAS_FILE, Path(folder) / "recognizer"
        model.save(keras_path)
        artifacts = {DIGIT_GRAPH_ARTIFACT: graph_info.model_uri, KERAS_ARTIFACT: str(keras_path)}
        if int8_graph is not None:
            artifacts[FLOAT_GRAPH_ARTIFACT] = str(Path(folder) / FLOAT_GRAPH_FILE)
            Path(artifacts[FLOAT_GRAPH_ARTIFACT]).write_bytes(float_graph)
        mlflow.pyfunc.save_model(
            local_path,
            python_model=DrawingRecognizer(),
            mlflow_model=_mlflow_model(model_id),
            artifacts=artifacts,
            code_paths=[str(REPO_ROOT / package) for package in CODE_PACKAGES],
            signature=ModelSignature(INPUT_SCHEMA, OUTPUT_SCHEMA),
            input_example=INPUT_EXAMPLE,
            pip_requirements=_pinned(REQUIREMENTS),
        )
        _upload(model_id, local_path)
    mlflow.set_logged_model_tags(model_id, _graph_tags(float_graph, int8_graph))
    return f"models:/{model_id}"


def _graph_tags(float_graph: bytes, int8_graph: bytes | None) -> dict[str, str]:
    if int8_graph is None:
        return {GRAPH_KIND_TAG: "float32", GRAPH_DIGEST_TAG: hashlib.sha256(float_graph).hexdigest()}
    return {
        GRAPH_KIND_TAG: "int8",
        GRAPH_DIGEST_TAG: hashlib.sha256(int8_graph).hexdigest(),
        FLOAT_GRAPH_DIGEST_TAG: hashlib.sha256(float_graph).hexdigest(),
    }


def _mlflow_model(model_id: str) -> Model:
    logged = mlflow.get_logged_model(model_id)
    return Model(
        artifact_path=logged.artifact_location, model_uuid=model_id, run_id=logged.source_run_id, model_id=model_id
    )


def _upload(model_id: str, local_path: Path) -> None:
    # What `log_model` does, save linking the run's metrics a second time: the recognizer has
    # been the active model since the run began, so they are linked already (with datasets),
    # and `log_model(model_id=...)` fails on the duplicates.
    client = mlflow.MlflowClient(mlflow.get_tracking_uri())
    client.log_model_artifacts(model_id, str(local_path))
    client.log_outputs(mlflow.active_run().info.run_id, [LoggedModelOutput(model_id, step=0)])
    mlflow.finalize_logged_model(model_id, LoggedModelStatus.READY)


def register(client, model_uri: str, model_name: str) -> ModelRef:
    """Register a logged recognizer (`models:/MODEL_ID`) as a new version of `model_name`, tagged with
    the digests of its int8 and float graphs."""
    version = mlflow.register_model(model_uri, model_name)
    tags = client.get_logged_model(model_uri.removeprefix("models:/")).tags
    digest = tags.get(GRAPH_DIGEST_TAG) if tags.get(GRAPH_KIND_TAG) == "int8" else None
    float_digest = tags.get(FLOAT_GRAPH_DIGEST_TAG)
    # The server runs the version's int8 (or float) graph only when its digest matches this tag.
    for tag, value in ((INT8_DIGEST_TAG, digest), (FLOAT_DIGEST_TAG, float_digest)):
        if value is not None:
            client.set_model_version_tag(model_name, str(version.version), tag, value)
    return ModelRef(
        model_name, str(version.version), version.run_id or "", int8_digest=digest, float_digest=float_digest
    )


def describe(client, ref: ModelRef, metrics: dict[str, float], trained_by: str) -> None:
    """Describe the registered model (once) and the version: what trained it, its accuracies, its run."""
    registered = client.get_registered_model(ref.name)
    if not registered.description:
        client.update_registered_model(ref.name, description=MODEL_DESCRIPTION)
    run = client.get_run(ref.run_id)
    accuracies = ", ".join(
        f"{name} {value:.4f}"
        for name, value in sorted(metrics.items())
        if "accuracy" in name and not name.startswith("train_")
    )
    link = f"#/experiments/{run.info.experiment_id}/runs/{ref.run_id}?workflowType=machine_learning"
    client.update_model_version(
        ref.name,
        ref.version,
        description=(
            f"Trained by `{trained_by}` in run [{run.info.run_name}]({link}) (run id {ref.run_id}). "
            f"Accuracies: {accuracies}."
        ),
    )


def _pinned(packages) -> list[str]:
    return [f"{package}=={installed_version(package)}" for package in packages]
