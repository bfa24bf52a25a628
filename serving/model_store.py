"""The served model: loaded from the registry, cached per digit, hot-swapped when its alias moves."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from demnistify.constants import IMAGE_SIZE
from pipeline import render_strokes_digit
from pipeline.types import Classifier, StrokeRenderer
from registry.client import ModelRef, RegistryError, connect, get_alias, parse_model_uri, resolve
from registry.loading import load_int8_graph, load_keras_model
from serving.batching import BatchingClassifier
from serving.caches import BoundedLru, DigitCache, RenderCache
from serving.onnx_runtime import make_int8_classifier, make_onnx_classifier

logger = logging.getLogger(__name__)

# After a failed poll or load, the next try waits twice as long as the one before (from the poll
# interval), up to this long: a registry that is down is not hammered, and comes back within a minute.
MAX_BACKOFF_SECONDS = 60.0


class ServeError(RuntimeError):
    """The server cannot start: no registry, no registered model, or it does not load."""


@dataclass(frozen=True)
class ServedModel:
    """One loaded version and its (cached, compiled) classifier."""

    ref: ModelRef
    classify: Classifier
    # Turns a digit candidate's strokes into the model's input (remembered when caching).
    render: StrokeRenderer = render_strokes_digit
    # How blobs were read by this model (pipeline.types.ReadingMemo), None without caches.
    readings: BoundedLru | None = None


def configure_tensorflow(threads: int) -> None:
    """Set TensorFlow's thread pools (0 leaves its default); only possible before its first op."""
    import tensorflow as tf

    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            # Already running in this process (tests, notebooks, an earlier version): keep what it has.
            logger.debug("TensorFlow is initialized already; its thread settings stay.")


def load_served_model(
    ref: ModelRef,
    tracking_uri: str | None,
    cache_size: int,
    inference: str = "onnx",
    threads: int = 1,
    tf_threads: int = 0,
) -> ServedModel:
    """Load a version and build its classifier (blocking: seconds); RegistryError when it fails.

    With `onnx`, a version registered with the digest of its int8 graph (by `demnistify train`)
    runs that graph once the digest matches, and TensorFlow is never imported: the server is
    ready sooner and holds far less memory. Any other version or mode loads the Keras model.
    """
    int8_graph = load_int8_graph(ref, tracking_uri) if inference == "onnx" else None
    classify = _registered_int8(ref, int8_graph, threads) if int8_graph is not None and ref.int8_digest else None
    if classify is None:
        # A graph that is not the one registered with its version is never served; the export is.
        classify = _keras_classifier(
            ref, tracking_uri, inference, threads, tf_threads, None if ref.int8_digest else int8_graph
        )
    logger.info("Version %s runs on %s.", ref.version, runtime_name(classify))
    if not cache_size:
        return ServedModel(ref, classify)
    return ServedModel(ref, DigitCache(classify, cache_size), RenderCache(cache_size), BoundedLru(cache_size))


def _registered_int8(ref: ModelRef, graph: bytes, threads: int) -> Classifier | None:
    # Training logged this graph after checking it on validation digits, and registered its
    # digest with the version: a matching graph needs no Keras model to be compared with.
    if hashlib.sha256(graph).hexdigest() != ref.int8_digest:
        logger.warning(
            "Version %s: its int8 graph is not the one registered with it (the digest differs); "
            "loading its Keras model instead.",
            ref.version,
        )
        return None
    try:
        return BatchingClassifier(make_int8_classifier(graph, threads))
    except Exception as error:  # noqa: BLE001 - a graph ONNX Runtime cannot run fails in many ways.
        logger.warning(
            "Version %s: its int8 graph does not run (%s); loading its Keras model instead.", ref.version, error
        )
        return None


def _keras_classifier(
    ref: ModelRef, tracking_uri: str | None, inference: str, threads: int, tf_threads: int, int8_graph: bytes | None
) -> Classifier:
    configure_tensorflow(tf_threads)
    model = load_keras_model(ref, tracking_uri)
    try:
        return _make_classifier(model, inference, threads, int8_graph)
    except Exception as error:  # noqa: BLE001 - a model of the wrong shape fails in many ways.
        raise RegistryError(f"Version {ref.version} loads but cannot classify 28x28 digits: {error}") from error


def _make_classifier(model, inference: str, threads: int, int8_graph: bytes | None = None) -> Classifier:
    if inference == "predict":
        # The baseline stays exactly the seed's path: one model.predict per drawing, unbatched.
        return make_predict_classifier(model)
    if inference in ("onnx", "onnx-float"):
        try:
            return BatchingClassifier(make_onnx_classifier(model, threads, int8_graph))
        except Exception as error:  # noqa: BLE001 - any export failure leaves TensorFlow to serve.
            logger.warning("Cannot run this version on ONNX Runtime (%s); using compiled TensorFlow.", error)
    from registry.keras_models import make_classifier

    return BatchingClassifier(make_classifier(model))


def make_predict_classifier(model) -> Classifier:
    """The seed's path, `model.predict` on every call: the benchmarks' baseline, never the default."""

    def classify(images: np.ndarray) -> np.ndarray:
        batch = np.asarray(images, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE, 1)
        return model.predict(batch, verbose=0)

    classify.runtime = "keras-predict"
    return classify


class ModelStore:
    """Holds the current model; `poll_forever` follows the alias and swaps in new versions."""

    def __init__(
        self,
        model_uri: str,
        tracking_uri: str | None,
        cache_size: int,
        inference: str = "onnx",
        threads: int = 1,
        tf_threads: int = 0,
    ) -> None:
        try:
            self.name, self.alias, self.pinned = parse_model_uri(model_uri)
        except RegistryError as error:
            raise ServeError(str(error)) from None
        self.model_uri, self.tracking_uri = model_uri, tracking_uri
        self._load_options = (cache_size, inference, threads, tf_threads)
        self._client = connect(tracking_uri)
        self.current: ServedModel | None = None
        self.error: str | None = None
        # Polls in a row that could not read the alias: each doubles the wait before the next one.
        self.failures = 0
        # A version that failed to load, how often in a row, and when it is loaded again.
        self._failed: tuple[str, int, float] | None = None
        self._poll_seconds = 1.0

    def load_initial(self) -> ServedModel:
        """Resolve the URI and load that version (blocking); ServeError says what to do if it fails."""
        try:
            ref = resolve(self._client, self.model_uri)
            self.current = load_served_model(ref, self.tracking_uri, *self._load_options)
        except RegistryError as error:
            hint = (
                f"Start the tracking server, or point --tracking-uri at it (now {self._client.tracking_uri})."
                if "unreachable" in str(error)
                else "Train and register a model with `demnistify train` (add --tracking-uri if the registry "
                "is elsewhere)."
            )
            raise ServeError(f"Cannot serve {self.model_uri}: {error}\n{hint}") from error
        freeze_heap()
        return self.current

    async def poll_forever(self, seconds: float, executor: Executor, on_swap: Callable[[ServedModel], None]) -> None:
        """Check the alias every `seconds` until cancelled, backing off after failures; pinned versions are never polled.

        No exception ends it: each is reported (/healthz says degraded) and the poll is tried again.
        """
        self._poll_seconds = seconds
        while self.alias is not None:
            await asyncio.sleep(self.backoff(self.failures))
            try:
                swapped = await self.poll_once(executor)
                if swapped is not None:
                    on_swap(swapped)
            except Exception as error:  # noqa: BLE001 - whatever failed, the next poll may succeed.
                logger.exception("Following %s@%s failed", self.name, self.alias)
                self._fail(
                    f"Following {self.name}@{self.alias} failed ({type(error).__name__}: {error}); still "
                    f"serving version {self.current.ref.version}, retrying."
                )
                self.failures += 1

    def backoff(self, failures: int) -> float:
        """How long to wait after `failures` failures in a row: the poll interval, doubled for each, at most a minute."""
        seconds = self._poll_seconds
        return min(seconds * 2 ** min(failures, 16), max(seconds, MAX_BACKOFF_SECONDS))

    async def poll_once(self, executor: Executor) -> ServedModel | None:
        """Look at the alias once; load and return a new version if it moved (None otherwise)."""
        loop = asyncio.get_running_loop()
        try:
            ref = await loop.run_in_executor(executor, get_alias, self._client, self.name, self.alias)
        except RegistryError as error:
            self.failures += 1
            return self._fail(f"Registry unreachable, still serving version {self.current.ref.version}: {error}")
        self.failures = 0
        if ref is None:
            return self._fail(
                f"{self.name}@{self.alias} no longer exists; still serving version {self.current.ref.version}."
            )
        if ref.version == self.current.ref.version:
            self.error = self._failed = None
            return None
        if self._failed is not None and self._failed[0] == ref.version and time.monotonic() < self._failed[2]:
            return None  # Failed to load; tried again after its backoff.
        return await self._swap(ref, executor)

    async def _swap(self, ref: ModelRef, executor: Executor) -> ServedModel | None:
        logger.info("%s@%s moved to version %s; loading it.", self.name, self.alias, ref.version)
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(executor, load_served_model, ref, self.tracking_uri, *self._load_options)
        except Exception as error:  # noqa: BLE001 - a transient failure of any kind is retried.
            times = self._failed[1] + 1 if self._failed is not None and self._failed[0] == ref.version else 1
            self._failed = (ref.version, times, time.monotonic() + self.backoff(times))
            return self._fail(
                f"Version {ref.version} failed to load; still serving version "
                f"{self.current.ref.version} and retrying with backoff: {error}"
            )
        # One assignment: requests already running finish on the model they started with.
        self.current, self.error, self._failed = model, None, None
        await loop.run_in_executor(executor, freeze_heap)
        logger.info("Now serving %s version %s.", ref.name, ref.version)
        return model

    def _fail(self, message: str) -> None:
        if message != self.error:
            logger.error("%s", message)
        self.error = message
        return None

    def health(self) -> dict:
        """Status and model for /healthz: `degraded` with the error while the alias cannot be followed."""
        ref = self.current.ref
        status = {
            "status": "degraded" if self.error else "ok",
            "model": {"name": ref.name, "version": ref.version, "run_id": ref.run_id},
            "inference": inference_stats(self.current),
        }
        return {**status, "error": self.error} if self.error else status


def freeze_heap() -> None:
    """Collect garbage once, then hide every object alive from the cyclic garbage collector.

    TensorFlow, MLflow and a loaded model leave about 600,000 objects; one full collection of
    them took 290 ms with the GIL held, and stalled every connection at once (bench_load.py saw
    300-500 ms outliers). Frozen objects are still freed by reference counting; only cycles
    among them wait for the next call, at the next model swap.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def inference_stats(model: ServedModel) -> dict:
    """Runtime, cache hits and model calls of a served model (the benchmarks read them from /healthz)."""
    stats, inner = {}, model.classify
    if model.readings is not None:
        stats |= {"reading_hits": model.readings.hits, "reading_misses": model.readings.misses}
    if isinstance(model.render, RenderCache):
        stats |= {"render_hits": model.render.entries.hits, "render_misses": model.render.entries.misses}
    if isinstance(inner, DigitCache):
        stats |= {"cache_hits": inner.entries.hits, "cache_misses": inner.entries.misses}
        inner = inner._classify
    if isinstance(inner, BatchingClassifier):
        stats |= {"model_calls": inner.calls, "batched_requests": inner.batched}
    return {"runtime": runtime_name(model.classify), **stats}


def runtime_name(classify: Classifier) -> str:
    """The runtime at the end of the wrappers: onnxruntime, tensorflow, or keras-predict."""
    inner = classify
    while isinstance(inner, (DigitCache, BatchingClassifier)):
        inner = inner._classify
    return getattr(inner, "runtime", "tensorflow")
