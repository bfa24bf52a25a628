"""The int8 serving graph: the float ONNX export quantized, and kept only if it reads validation digits as well."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from demnistify.constants import IMAGE_SIZE
from recognizer.graph import mean_log_error, probe_metadata

# Static quantization learns each layer's activation range from these many validation digits.
CALIBRATION_DIGITS = 500
CALIBRATION_BATCH = 50
# The int8 graph is kept only if it reads the validation digits at most this much worse
# (a fraction: 0.001 is a tenth of a point) than the float model, and if its log
# probabilities, which the pipeline's split scorer adds up, stay this close on average.
MAX_ACCURACY_DROP = 0.001
MAX_LOG_PROB_ERROR = 0.1
# On a small validation split a tenth of a point is two or three digits, within the noise of
# quantization: a drop of this many digits is always allowed.
MAX_DIGITS_DROPPED = 5
# Each logged graph records this many validation digits (none of them calibrate) and its
# reading of them, which a serving CPU must reproduce (recognizer.graph.checked_classifier).
PROBE_DIGITS = 64


def quantize_onnx(graph: bytes, calibration: np.ndarray, reduce_range: bool = False) -> bytes:
    """Statically quantize a float ONNX digit graph to int8, calibrated on model inputs (N, 28, 28, 1).

    Weights per output channel, activations per tensor, as QLinearConv nodes: 2.5-2.8x faster
    than the float graph on one core with AVX-512 VNNI. The softmax stays float: quantized,
    its output took only 128 values, and small probabilities lost 3.7 of log on average.
    `reduce_range` keeps weights to 7 bits, so that a CPU without VNNI (AVX2 only) does not
    saturate its 16-bit sums of uint8 x int8 products.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if calibration.ndim != 4 or calibration.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1) or not len(calibration):
        raise ValueError(f"Calibration digits must have shape (N, 28, 28, 1), got {calibration.shape}.")
    batches = iter(
        [
            {"digit": calibration[start : start + CALIBRATION_BATCH].astype(np.float32)}
            for start in range(0, len(calibration), CALIBRATION_BATCH)
        ]
    )

    class Digits(CalibrationDataReader):
        def get_next(self) -> dict | None:
            return next(batches, None)

    with tempfile.TemporaryDirectory() as folder:
        source, prepared, target = (Path(folder) / name for name in ("float.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(graph)
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        kinds = sorted({node.op_type for node in onnx.load(str(prepared)).graph.node} - {"Softmax"})
        quantize_static(
            str(prepared),
            str(target),
            Digits(),
            quant_format=QuantFormat.QOperator,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=reduce_range,
            op_types_to_quantize=kinds,
        )
        return target.read_bytes()


def checked_int8_graph(
    float_graph: bytes, inputs: np.ndarray, labels: np.ndarray
) -> tuple[bytes | None, dict[str, float]]:
    """The int8 graph of a float digit graph if it reads the validation digits as well, and how it did.

    `inputs` are validation digits as the model takes them; the first CALIBRATION_DIGITS
    calibrate, all of them judge. None when the int8 graph loses more than MAX_ACCURACY_DROP
    of accuracy or its log probabilities stray more than MAX_LOG_PROB_ERROR on average.
    The full 8-bit range is tried first, then 7-bit weights (`quantize_onnx`), which read
    worse only where the first saturates.
    """
    expected = run_graph(float_graph, inputs)
    for reduce_range in (False, True):
        graph = quantize_onnx(float_graph, inputs[:CALIBRATION_DIGITS], reduce_range)
        kept, metrics = _judged(run_graph(graph, inputs), expected, labels)
        if kept:
            break
    return (graph if kept else None), metrics


def with_probe(graph: bytes, digits: np.ndarray) -> bytes:
    """The graph with probe digits and its reading of them on this CPU in its metadata."""
    import onnx

    model = onnx.load_from_string(graph)
    for key, value in probe_metadata(digits, run_graph(graph, digits)).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def _judged(found: np.ndarray, expected: np.ndarray, labels: np.ndarray) -> tuple[bool, dict[str, float]]:
    # Whether the int8 graph's probabilities `found` read the digits as well as the model's.
    metrics = {
        "val_accuracy_float": float((expected.argmax(axis=1) == labels).mean()),
        "val_accuracy_int8": float((found.argmax(axis=1) == labels).mean()),
        "int8_log_prob_error": mean_log_error(found, expected),
    }
    allowed = max(MAX_ACCURACY_DROP, MAX_DIGITS_DROPPED / max(len(labels), 1))
    kept = (
        metrics["val_accuracy_int8"] >= metrics["val_accuracy_float"] - allowed
        and metrics["int8_log_prob_error"] <= MAX_LOG_PROB_ERROR
    )
    return kept, metrics


def run_graph(graph: bytes, inputs: np.ndarray) -> np.ndarray:
    """Class probabilities of an ONNX digit graph for model inputs (N, 28, 28, 1), on one thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    return session.run(None, {"digit": np.ascontiguousarray(inputs, dtype=np.float32)})[0]
