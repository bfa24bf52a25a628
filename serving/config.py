"""Serving configuration: one frozen `ServeConfig`, with the per-connection `Limits` it announces."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from demnistify.constants import (
    DEFAULT_HOST,
    DEFAULT_MODEL_URI,
    DEFAULT_PATIENCE_SECONDS,
    DEFAULT_POLL_SECONDS,
    DEFAULT_PORT,
    DEFAULT_PREVIEW_PATIENCE_SECONDS,
)

INFERENCE_MODES = ("onnx", "onnx-float", "compiled", "predict")
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Limits:
    """What one connection may send; announced in `hello` and enforced with `error` events."""

    # Largest frame in bytes (websockets' max_size); bigger frames close the connection with 1009.
    max_message_bytes: int = 2**21
    max_strokes: int = 500
    max_points: int = 20_000
    max_canvas_side: int = 4096
    max_image_pixels: int = 16_000_000
    # What decoding one image may allocate: a 2048x2048 RGBA canvas, not a 2000x2000 16-bit RGBA
    # PNG (32 MB): under bench_abuse.py those took the server's peak RSS past 600 MiB.
    max_image_bytes: int = 2**24
    # Token bucket: a sustained message rate plus a burst, far above a 60 Hz pointer stream.
    max_messages_per_second: float = 120.0
    burst: int = 120
    # A second bucket counts bytes: a 60 Hz stream of 2,000-point drawings is about 2 MB/s, and the
    # event loop reads a legal 2 MiB frame in about 10 ms (docs/design.md, "Hostile input").
    max_bytes_per_second: int = 2**22
    byte_burst: int = 2**23

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value <= 0:
                raise ValueError(f"Limit {name} must be positive, got {value!r}.")

    def announce(self) -> dict:
        """The limits as sent in the `hello` event."""
        return asdict(self)


@dataclass(frozen=True)
class ServeConfig:
    """Everything `demnistify serve` depends on; the CLI only fills it."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    model_uri: str = DEFAULT_MODEL_URI
    tracking_uri: str | None = None
    poll_seconds: float = DEFAULT_POLL_SECONDS
    limits: Limits = field(default_factory=Limits)
    static_dir: Path = STATIC_DIR
    # Recognition threads per worker; 0: two per core of the worker's share, at least two.
    # TensorFlow and OpenCV release the GIL, and threads waiting on the model get their digits
    # batched together, so more threads than cores pay off in one process. With one process
    # per core, more than two starve the event loop of the GIL: under bench_load.py, four
    # threads per worker made finished drawings wait 70 ms in the event loop, two 20 ms.
    threads: int = 0
    # TensorFlow threads per model call: one is fastest for the small batches of a drawing
    # (measured: 0.8 vs 1.3 ms for one digit on 2 cores); parallelism comes from `threads`.
    tf_threads: int = 1
    # ONNX Runtime threads per model call; 0: the cores shared among the workers (at most 4).
    # Calls of one process never overlap (they are batched), so one call may use every core:
    # 0.61 ms for 8 digits on 2 threads, 1.13 ms on one.
    model_threads: int = 0
    # Normalized digits remembered per model so unchanged digits are not classified again.
    cache_size: int = 4096
    # "onnx": ONNX Runtime on the int8 graph the version's training run logged, else on the
    # model exported at load (TensorFlow if the export fails); "onnx-float": always the
    # export; "compiled": one traced tf.function call per drawing; "predict": the seed's
    # `model.predict` per message, kept only as the benchmarks' baseline.
    inference: str = "onnx"
    # Origins (scheme://host[:port]) whose pages may open the websocket besides this server's
    # own page and localhost; "*" allows any.
    allowed_origins: tuple[str, ...] = ()
    # When set, every websocket must present it (Authorization: Bearer, or ?token=).
    token: str | None = None
    # Host names (besides the bound host, localhost and IP addresses) that requests may name in
    # their Host header; any other name is refused, so a DNS-rebound name cannot reach the server.
    allowed_hosts: tuple[str, ...] = ()
    # Open websockets per worker, in all and from one address; past them, HTTP 503 with Retry-After.
    # A connection may hold max_queue frames of up to max_message_bytes, so these bound memory too.
    max_connections: int = 256
    max_connections_per_address: int = 64
    # Processes sharing the port through SO_REUSEPORT; each loads the model and follows the alias.
    workers: int = 1
    # When busy, a free thread takes the connection whose newest drawing waited longest; one
    # still changing is put back by at most this long (serving/scheduler.py). 0: first come,
    # first served.
    patience_seconds: float = DEFAULT_PATIENCE_SECONDS
    # A drawing sent with the pen still down waits behind finished ones by at most this long.
    preview_patience_seconds: float = DEFAULT_PREVIEW_PATIENCE_SECONDS

    @property
    def threads_per_worker(self) -> int:
        """`threads`, or two per core of the worker's share of the cores (at least two)."""
        return self.threads or max(2, 2 * (os.cpu_count() or 1) // self.workers)

    @property
    def model_threads_per_worker(self) -> int:
        """`model_threads`, or the cores shared among the worker processes (1 to 4)."""
        return self.model_threads or max(1, min(4, (os.cpu_count() or 1) // self.workers))

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {self.port}.")
        if self.poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be positive, got {self.poll_seconds}.")
        if min(self.max_connections, self.max_connections_per_address) < 1:
            raise ValueError("max_connections and max_connections_per_address must be >= 1.")
        if min(self.threads, self.tf_threads, self.model_threads, self.cache_size) < 0:
            raise ValueError("threads, tf_threads and model_threads must be >= 0 (0: automatic) and cache_size >= 0.")
        if self.workers < 1 or (self.workers > 1 and self.port == 0):
            raise ValueError(
                f"workers must be >= 1 and need a fixed port to share, got {self.workers} on port {self.port}."
            )
        if self.token is not None and len(self.token) < 16:
            raise ValueError(
                "token must be at least 16 characters; make one with `python -c 'import secrets; "
                "print(secrets.token_urlsafe())'`."
            )
        if not 0 <= self.patience_seconds <= self.preview_patience_seconds <= 10:
            raise ValueError(
                f"patience_seconds and preview_patience_seconds must be in 0..10, the first no longer, "
                f"got {self.patience_seconds} and {self.preview_patience_seconds}."
            )
        if self.inference not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {INFERENCE_MODES}, got {self.inference!r}.")
