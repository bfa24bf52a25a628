"""A digit graph (ONNX) run by ONNX Runtime as a pipeline classifier: what the pyfunc and the server run."""

from __future__ import annotations

import base64

import numpy as np

from demnistify.constants import IMAGE_SIZE, NUM_CLASSES
from pipeline.split import PROBABILITY_FLOOR

# Training records in each graph it logs some validation digits and how the graph read them
# there (ONNX metadata). A CPU that reads them otherwise does not run the graph: one without
# VNNI saturates 8-bit weights, and its readings of any 64 validation digits strayed 0.44-0.90
# from the float graph's, where the CPU that recorded them strays 0, on one thread or two.
PROBE_DIGITS_KEY = "demnistify.probe_digits"
PROBE_READING_KEY = "demnistify.probe_probabilities"
MAX_PROBE_ERROR = 0.05


class OnnxClassifier:
    """A classifier running one ONNX Runtime session (thread-safe: sessions allow concurrent runs)."""

    def __init__(self, session, runtime: str = "onnxruntime") -> None:
        self._session, self.runtime = session, runtime
        self._input = session.get_inputs()[0].name

    def __call__(self, images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        if len(batch) == 0:
            return np.zeros((0, NUM_CLASSES), dtype=np.float32)
        return self._session.run(None, {self._input: batch})[0]

    @property
    def metadata(self) -> dict[str, str]:
        """The graph's metadata entries (ONNX `metadata_props`)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)


def onnx_session(graph: bytes | str, threads: int):
    """An ONNX Runtime session on the CPU for a serialized graph (or a graph file) with `threads` threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    # Pool threads spin between calls: sleeping ones woke too late to help, and 8 digits took
    # 1.19 ms on 2 threads instead of 0.61. With one thread there is no pool to spin (spinning
    # pools of two workers on 2 cores took the CPU recognition needed: 945 vs 1400 per second).
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if threads > 1 else "0")
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def checked_classifier(graph: bytes | str, threads: int, runtime: str = "onnxruntime") -> OnnxClassifier:
    """Run a logged digit graph, once it reads digits into probabilities, and its probe digits as in training.

    ValueError when it gives no class probabilities (a wrong or damaged graph), or when this
    CPU reads the probe digits more than MAX_PROBE_ERROR away from how training read them.
    A graph without a probe is only checked on drawn digits.
    """
    classifier = OnnxClassifier(onnx_session(graph, threads), runtime)
    probe = read_probe(classifier.metadata)
    digits = drawn_digits() if probe is None else probe[0]
    probabilities = np.asarray(classifier(digits))
    if (
        probabilities.shape != (len(digits), NUM_CLASSES)
        or not np.isfinite(probabilities).all()
        or not np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
    ):
        raise ValueError(f"The graph does not give class probabilities for digits (shape {probabilities.shape}).")
    error = mean_log_error(probabilities, probe[1]) if probe is not None else 0.0
    if not error <= MAX_PROBE_ERROR:
        raise ValueError(
            f"This CPU reads the graph's probe digits {error:.3g} away from training (mean log error; "
            f"at most {MAX_PROBE_ERROR:g}): its int8 kernels differ, as CPUs without VNNI saturate 8-bit weights."
        )
    return classifier


def mean_log_error(found: np.ndarray, expected: np.ndarray) -> float:
    """Mean absolute difference of two readings' log probabilities (floored), which the split scorer adds up."""
    floor = PROBABILITY_FLOOR
    return float(np.abs(np.log(np.maximum(found, floor)) - np.log(np.maximum(expected, floor))).mean())


def probe_metadata(digits: np.ndarray, probabilities: np.ndarray) -> dict[str, str]:
    """Metadata entries recording probe digits (model inputs, multiples of 1/255) and a graph's reading of them."""
    pixels = np.round(np.asarray(digits).reshape(-1, IMAGE_SIZE * IMAGE_SIZE) * 255).astype(np.uint8)
    return {
        PROBE_DIGITS_KEY: base64.b64encode(pixels.tobytes()).decode("ascii"),
        PROBE_READING_KEY: base64.b64encode(np.asarray(probabilities, np.float32).tobytes()).decode("ascii"),
    }


def read_probe(metadata: dict[str, str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The probe digits (N, 28, 28, 1) and their recorded probabilities (N, 10), or None without a probe."""
    if PROBE_DIGITS_KEY not in metadata or PROBE_READING_KEY not in metadata:
        return None
    try:
        pixels = np.frombuffer(base64.b64decode(metadata[PROBE_DIGITS_KEY]), np.uint8)
        reading = np.frombuffer(base64.b64decode(metadata[PROBE_READING_KEY]), np.float32).reshape(-1, NUM_CLASSES)
        digits = (pixels.astype(np.float32) / 255).reshape(len(reading), IMAGE_SIZE, IMAGE_SIZE, 1)
    except ValueError as error:
        raise ValueError(f"The graph's probe cannot be read: {error}") from None
    return digits, reading


def drawn_digits() -> np.ndarray:
    """Digits as the pipeline renders them (a 1, a 0, a 7, a 4): model inputs of the kind served."""
    from pipeline import render_strokes_digit

    circle = [[50 + 30 * np.sin(t), 50 - 45 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 24)]
    drawings = [
        [[[50, 5], [48, 95]]],
        [circle],
        [[[10, 5], [90, 5], [40, 95]]],
        [[[55, 5], [10, 60], [90, 60]], [[70, 30], [70, 95]]],
    ]
    return np.stack([render_strokes_digit([np.asarray(s, dtype=np.float64) for s in strokes]) for strokes in drawings])[
        ..., None
    ]
