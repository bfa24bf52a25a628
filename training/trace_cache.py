"""Digits traced into pen strokes once and cached on disk by content (training, the sequence benchmark)."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from demnistify.constants import TRACE_CACHE_DIR
from training.tracer import trace_digit

logger = logging.getLogger(__name__)

# Part of the cache key: bump it whenever `trace_digit` changes what it returns.
TRACE_FORMAT = 3

Traces = list[list[np.ndarray]]


def traced_digits(images: np.ndarray, cache_dir: Path | None = TRACE_CACHE_DIR) -> Traces:
    """The strokes of every 28x28 uint8 digit in `images`, from the cache when it holds them.

    Tracing is Python code that holds the GIL: run inside the augmentation workers it slowed
    epochs from about 50 to 73 s. Traced once, a redrawing costs only its rendering.
    """
    path = None if cache_dir is None else Path(cache_dir) / f"traces-v{TRACE_FORMAT}-{_content_key(images)}.npz"
    if path is not None and path.exists():
        try:
            return _load(path, len(images))
        except (OSError, ValueError, KeyError) as error:
            logger.warning("Ignoring the unreadable trace cache %s (%s); tracing again.", path, error)
    traces = _trace_all(images)
    if path is not None:
        _save(path, traces)
    return traces


def _content_key(images: np.ndarray) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    digest.update(repr(images.shape).encode())
    return digest.hexdigest()[:24]


def _trace_all(images: np.ndarray) -> Traces:
    # About 0.3 ms a digit: the 54,000 training digits take some 16 s, once.
    logger.info("Tracing %d digits into strokes (cached afterwards).", len(images))
    return [trace_digit(image) for image in images]


def _save(path: Path, traces: Traces) -> None:
    strokes = [stroke for digit in traces for stroke in digit]
    points = np.concatenate(strokes).astype(np.float32) if strokes else np.zeros((0, 2), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(
        partial,
        points=points,
        stroke_lengths=np.array([len(s) for s in strokes], dtype=np.int32),
        strokes_per_digit=np.array([len(d) for d in traces], dtype=np.int32),
    )
    # Renamed into place so that a run killed while writing never leaves half a cache behind.
    os.replace(partial, path)


def _load(path: Path, expected: int) -> Traces:
    with np.load(path) as stored:
        points, lengths, per_digit = stored["points"], stored["stroke_lengths"], stored["strokes_per_digit"]
    if len(per_digit) != expected or lengths.sum() != len(points) or per_digit.sum() != len(lengths):
        raise ValueError("its sizes do not match the digits")
    strokes = np.split(points.astype(np.float64), np.cumsum(lengths)[:-1]) if len(lengths) else []
    bounds = np.concatenate([[0], np.cumsum(per_digit)])
    return [strokes[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
