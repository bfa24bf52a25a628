"""`DrawingRecognizer`: an MLflow pyfunc that reads whole drawings with the server's pipeline and digit graph."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from pathlib import Path

import mlflow.pyfunc
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

from demnistify.constants import DIGIT_GRAPH_ARTIFACT, FLOAT_GRAPH_ARTIFACT
from pipeline import recognize_image, recognize_strokes
from recognizer.graph import checked_classifier

logger = logging.getLogger(__name__)

# The pipeline reads one drawing's digit candidates in one call, a handful of 28x28 inputs:
# one ONNX Runtime thread is fastest for them (serving/onnx_runtime.py).
GRAPH_THREADS = 1
# The fields a drawing may carry; any other column is refused rather than silently ignored.
FIELDS = ("strokes", "width", "height", "pen_width", "image")

# A drawing of "7" on a 200x150 canvas: the format `predict` takes (and the logged input example).
INPUT_EXAMPLE = [
    {
        "strokes": [[[60.0, 30.0], [140.0, 30.0], [120.0, 70.0], [95.0, 125.0]]],
        "width": 200,
        "height": 150,
        "pen_width": 6.0,
    }
]


class DrawingRecognizer(mlflow.pyfunc.PythonModel):
    """Reads drawings: each one is pen strokes on a canvas, or a base64 PNG/JPEG picture.

    `predict` takes a DataFrame or a list of dicts with `strokes` ([[[x, y], ...], ...], canvas
    pixels, y down), `width`, `height` and optional `pen_width`, or with `image` instead; it
    returns one dict per drawing: `text`, `lines` and `digits` (label, confidence, box
    [x, y, width, height], top candidates, unsure, line), exactly as the websocket server does.
    """

    def load_context(self, context) -> None:
        graph = _graph_file(Path(context.artifacts[DIGIT_GRAPH_ARTIFACT]))
        # The server's choice: the int8 graph reads strokes and the float graph beside it pictures.
        exact = context.artifacts.get(FLOAT_GRAPH_ARTIFACT)
        self._classify_pictures = _float_classifier(exact) if exact else None
        try:
            self._classify = checked_classifier(str(graph), GRAPH_THREADS)
        except ValueError as error:
            # This CPU reads the int8 graph otherwise than training did: the float graph beside it is exact.
            if self._classify_pictures is None:
                raise MlflowException(f"The model's digit graph cannot run here: {error}") from None
            logger.warning("Running the float digit graph: %s", error)
            self._classify = self._classify_pictures

    # Loaded as a pyfunc, the logged signature hands drawings over as a DataFrame, which MLflow
    # takes as a hint to infer nothing from (`read_drawings` also takes plain lists and dicts).
    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[dict]:
        return read_drawings(self._classify, model_input, self._classify_pictures)


def read_drawings(classify, model_input, classify_pictures=None) -> list[dict]:
    """Read every drawing of a pyfunc input with `classify` (pictures with `classify_pictures` when given).

    MlflowException names the first bad drawing.
    """
    return [
        read_drawing(classify, index, drawing, classify_pictures) for index, drawing in enumerate(drawings(model_input))
    ]


def read_drawing(classify, index: int, drawing: dict, classify_pictures=None) -> dict:
    """One drawing's recognition, checked and read exactly as the websocket server does."""
    from serving.config import Limits
    from serving.frames import parse_recognize
    from serving.messages import ImageRequest, ProtocolError

    try:
        request = parse_recognize(drawing, index, Limits())
        if isinstance(request, ImageRequest):
            return recognize_image(request.data, classify_pictures or classify).as_dict()
        return recognize_strokes(
            request.strokes, request.width, request.height, classify, pen_width=request.pen_width
        ).as_dict()
    except (ProtocolError, ValueError) as error:
        raise MlflowException(f"Drawing {index}: {error}", INVALID_PARAMETER_VALUE) from None


def drawings(model_input) -> list[dict]:
    """The drawings in a pyfunc input (a DataFrame, a list of dicts or one dict), missing fields left out."""
    if hasattr(model_input, "to_dict"):
        model_input = model_input.to_dict(orient="records")
    if isinstance(model_input, dict):
        model_input = [model_input]
    if not isinstance(model_input, Iterable) or isinstance(model_input, (str, bytes)):
        raise MlflowException(
            f"Expected drawings (a list of objects), got {type(model_input).__name__}.", INVALID_PARAMETER_VALUE
        )
    return [_drawing(index, row) for index, row in enumerate(model_input)]


def _drawing(index: int, row) -> dict:
    if not isinstance(row, dict):
        raise MlflowException(
            f"Drawing {index} must be an object with {', '.join(FIELDS)}; got {type(row).__name__}.",
            INVALID_PARAMETER_VALUE,
        )
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        raise MlflowException(
            f"Drawing {index} has unknown fields {unknown}; a drawing holds {', '.join(FIELDS)}.",
            INVALID_PARAMETER_VALUE,
        )
    return {name: _plain(value) for name, value in row.items() if not _missing(value)}


def _missing(value) -> bool:
    # A DataFrame fills the fields a row lacks with None or NaN.
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value):
    # Columns of nested lists arrive as NumPy arrays (of arrays) after schema enforcement.
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _float_classifier(graph: str):
    # A float graph this CPU cannot run leaves pictures to the int8 graph, as the server does.
    try:
        return checked_classifier(graph, GRAPH_THREADS)
    except Exception as error:  # noqa: BLE001 - a graph ONNX Runtime cannot run fails in many ways.
        logger.warning("The float digit graph is not run: %s", error)
        return None


def _graph_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.onnx"))
    if len(files) != 1:
        raise MlflowException(f"The model's digit graph folder {folder} must hold one .onnx file, got {len(files)}.")
    return files[0]
