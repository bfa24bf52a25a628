"""Project-wide constants: image geometry, classes, registry names and default locations."""

from __future__ import annotations

from pathlib import Path

# Image geometry, exactly as MNIST was made: the digit fits a 20x20 box and its center of
# mass sits at the center of a 28x28 image.
IMAGE_SIZE = 28
DIGIT_BOX = 20
INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)
NUM_CLASSES = 10
CLASS_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))
# Stroke width, in 28x28 pixels, that MNIST digits have on average; strokes are rendered
# at this width so that a thick marker and a thin pen give the same model input.
MNIST_STROKE_WIDTH = 2.2

# The folder holding the packages: the source checkout in development (git asks it for the
# code's commit). Nothing is written there: after a plain install it is site-packages.
REPO_ROOT = Path(__file__).resolve().parent.parent

# Tracking and registry. Default locations are relative to the working directory, as
# `mlflow ui` has them, so that `mlflow ui` run in the same folder sees the same runs.
EXPERIMENT_NAME = "demnistify"
MODEL_NAME = "demnistify-cnn"
CHAMPION_ALIAS = "champion"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_ARTIFACT_ROOT = "./mlruns"
DEFAULT_MODEL_URI = f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"
# Artifacts of the registered recognizer (a pyfunc): its digit graph, an MLflow ONNX model
# (int8 when it read the validation digits as well as the float model), and the Keras model
# the graph was made from (for the server's TensorFlow modes).
DIGIT_GRAPH_ARTIFACT = "digit_graph"
# Beside an int8 digit graph: the float graph, for CPUs that do not read the int8 one as training did.
FLOAT_GRAPH_ARTIFACT = "digit_graph_float"
KERAS_ARTIFACT = "digit_model"

# Data.
# MNIST is looked for in MNIST_DIR, then in these folders of the working directory.
DEFAULT_DATA_DIRS = (Path("data") / "mnist", Path("..") / "shared" / "data" / "mnist")
# Training digits traced into strokes, keyed by content (rebuilt whenever missing).
TRACE_CACHE_DIR = Path(".cache") / "traces"
MNIST_MIRRORS = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
)
# SHA-256 of the decompressed IDX files of the original distribution.
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train_labels": ("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "test_images": ("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "test_labels": ("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}

# Serving.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
PROTOCOL_VERSION = 1
DEFAULT_POLL_SECONDS = 3.0
# When the server is busy, a drawing that is still changing is put behind finished ones by at
# most this long (two frames at 60 Hz): long enough for a finished drawing to overtake the
# ones still being drawn, short enough that drawing never looks frozen (serving/scheduler.py).
DEFAULT_PATIENCE_SECONDS = 0.033
# A drawing sent with the pen still down (`"pen_down": true`) is a preview: it waits behind
# drawings whose pen was lifted by at most this long, long enough for finished drawings to go
# first under load, short enough that previews still come every few frames (docs/design.md).
DEFAULT_PREVIEW_PATIENCE_SECONDS = 0.3
# Environment variable holding the bearer token `demnistify serve` requires (none: no token).
TOKEN_VARIABLE = "DEMNISTIFY_TOKEN"
# How every command logs, and each worker of `serve --workers` the same way.
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
