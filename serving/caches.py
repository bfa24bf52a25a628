"""Caches that spare a live drawing's repeated work: blob readings, rendered candidates, classified digits.

A live client resends its whole drawing on every stroke, so most of its digits are unchanged
from one message to the next; both caches are bounded LRUs keyed by exact bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from demnistify.constants import IMAGE_SIZE, NUM_CLASSES
from pipeline import render_strokes_digit
from pipeline.types import Classifier, StrokeRenderer


class BoundedLru:
    """A thread-safe LRU mapping of bytes to values, holding at most `size` entries.

    Also the pipeline's `ReadingMemo`: how each blob of a drawing was read.
    """

    def __init__(self, size: int) -> None:
        self._size, self._entries = size, OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: bytes) -> Any | None:
        """The value stored under `key` (now the most recently used), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: bytes, value: Any) -> None:
        """Store `value`, evicting the least recently used entries beyond the size."""
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


class DigitCache:
    """A classifier that remembers the probabilities of normalized digits it has seen.

    The key is the bytes of the normalized 28x28 image, exact and cheap to hash.
    """

    def __init__(self, classify: Classifier, size: int) -> None:
        self._classify, self.entries = classify, BoundedLru(size)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(images, dtype=np.float32).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)
        keys = [image.tobytes() for image in batch]
        out = np.empty((len(batch), NUM_CLASSES), dtype=np.float32)
        missing = []
        for index, key in enumerate(keys):
            found = self.entries.get(key)
            if found is None:
                missing.append(index)
            else:
                out[index] = found
        if missing:
            fresh = np.asarray(self._classify(batch[missing]), dtype=np.float32)
            out[missing] = fresh
            for index, row in zip(missing, fresh):
                self.entries.put(keys[index], row)
        return out


class RenderCache:
    """`render_strokes_digit`, remembered: a digit candidate whose strokes did not change is not drawn again.

    Rendering takes 30-60 us a candidate, and a drawing has a few candidates per digit: under
    load it was about a quarter of the pipeline's time.
    """

    def __init__(self, size: int, render: StrokeRenderer = render_strokes_digit) -> None:
        self._render, self.entries = render, BoundedLru(size)

    def __call__(self, strokes: list[np.ndarray], box: tuple[float, float, float, float]) -> np.ndarray:
        key = _strokes_key(strokes, box)
        image = self.entries.get(key)
        if image is None:
            image = self._render(strokes, box)
            # Shared by later drawings, so nobody may change it in place.
            image.flags.writeable = False
            self.entries.put(key, image)
        return image


def _strokes_key(strokes: list[np.ndarray], box: tuple[float, float, float, float]) -> bytes:
    # The points, where each stroke ends, and the box: equal keys mean equal renderings.
    lines = [np.ascontiguousarray(stroke, dtype=np.float64) for stroke in strokes]
    ends = np.cumsum([len(line) for line in lines], dtype=np.int64)
    return np.asarray(box, dtype=np.float64).tobytes() + ends.tobytes() + b"".join(line.tobytes() for line in lines)
