"""A digit graph (ONNX) run by ONNX Runtime as a pipeline classifier: what the pyfunc and the server run."""

from __future__ import annotations

import numpy as np

from demnistify.constants import IMAGE_SIZE, NUM_CLASSES


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
