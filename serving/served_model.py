"""One served version: loaded from the registry into a classifier (int8 graph, ONNX or TensorFlow), with its caches."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import numpy as np

from demnistify.constants import DIGIT_GRAPH_ARTIFACT, FLOAT_GRAPH_ARTIFACT, IMAGE_SIZE
from pipeline import render_strokes_digit
from pipeline.types import Classifier, StrokeRenderer
from recognizer.graph import checked_classifier
from registry.client import ModelRef, RegistryError
from registry.loading import load_graph, load_graphs, load_keras_model
from serving.batching import BatchingClassifier
from serving.caches import BoundedLru, DigitCache, RenderCache
from serving.onnx_runtime import make_onnx_classifier

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """One loaded version and its (cached, compiled) classifier."""

    ref: ModelRef
    classify: Classifier
    # Turns a digit candidate's strokes into the model's input (remembered when caching).
    render: StrokeRenderer = render_strokes_digit
    # How blobs were read by this model (pipeline.types.ReadingMemo), None without caches.
    readings: BoundedLru | None = None
    # Reads pictures where it differs from `classify`: the float graph beside a served int8 graph.
    classify_pictures: Classifier | None = None

    @property
    def picture_classifier(self) -> Classifier:
        """The classifier pictures are read with."""
        return self.classify_pictures or self.classify


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
    runs that graph once the digest matches and this CPU reads its probe digits as training
    did, with the float graph registered beside it for pictures; else the float graph alone.
    TensorFlow is never imported then: the server is ready sooner and holds far less memory.
    Anything else loads the Keras model.
    """
    classify, pictures = _registered_classifiers(ref, tracking_uri, threads) if inference == "onnx" else (None, None)
    if classify is None:
        # A graph that is not the one registered with its version is never served; the export is.
        int8_graph = load_graph(ref, tracking_uri) if inference == "onnx" and not ref.int8_digest else None
        classify = _keras_classifier(ref, tracking_uri, inference, threads, tf_threads, int8_graph)
    logger.info("Version %s runs on %s.", ref.version, runtime_name(classify))
    if not cache_size:
        return ServedModel(ref, classify, classify_pictures=pictures)
    return ServedModel(ref, DigitCache(classify, cache_size), RenderCache(cache_size), BoundedLru(cache_size), pictures)


def _registered_classifiers(
    ref: ModelRef, tracking_uri: str | None, threads: int
) -> tuple[Classifier | None, Classifier | None]:
    # The int8 graph registered with the version reads strokes, and the float graph beside it
    # pictures: a picture's shears are chosen by summed log confidence, which int8 blurs.
    # Without a usable int8 graph, the float graph reads both.
    if not (ref.int8_digest or ref.float_digest):
        return None, None
    int8_graph, float_graph = load_graphs(ref, tracking_uri, (DIGIT_GRAPH_ARTIFACT, FLOAT_GRAPH_ARTIFACT))
    int8 = (
        _registered_graph(ref, int8_graph, ref.int8_digest, threads, "int8") if int8_graph and ref.int8_digest else None
    )
    exact = _float_classifier(ref, float_graph, threads)
    return (exact, None) if int8 is None else (int8, exact)


def _float_classifier(ref: ModelRef, float_graph: bytes | None, threads: int) -> Classifier | None:
    if not ref.float_digest:
        return None
    if float_graph is None:
        logger.warning("Version %s has a float graph digest but no float graph; it is not served.", ref.version)
        return None
    return _registered_graph(ref, float_graph, ref.float_digest, threads, "float")


def _registered_graph(ref: ModelRef, graph: bytes, digest: str, threads: int, kind: str) -> Classifier | None:
    # Training logged this graph after checking it on validation digits, and registered its
    # digest with the version: a matching graph needs no Keras model to be compared with.
    if hashlib.sha256(graph).hexdigest() != digest:
        logger.warning(
            "Version %s: its %s graph is not the one registered with it (the digest differs); "
            "loading another graph or its Keras model instead.",
            ref.version,
            kind,
        )
        return None
    try:
        runtime = "onnxruntime-int8" if kind == "int8" else "onnxruntime"
        return BatchingClassifier(checked_classifier(graph, threads, runtime))
    except Exception as error:  # noqa: BLE001 - a graph ONNX Runtime cannot run fails in many ways.
        logger.warning(
            "Version %s: its %s graph is not served (%s); loading another graph or its Keras model instead.",
            ref.version,
            kind,
            error,
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
    if model.classify_pictures is not None:
        stats["picture_runtime"] = runtime_name(model.classify_pictures)
    return {"runtime": runtime_name(model.classify), **stats}


def runtime_name(classify: Classifier) -> str:
    """The runtime at the end of the wrappers: onnxruntime, tensorflow, or keras-predict."""
    inner = classify
    while isinstance(inner, (DigitCache, BatchingClassifier)):
        inner = inner._classify
    return getattr(inner, "runtime", "tensorflow")
