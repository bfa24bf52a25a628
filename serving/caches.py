"""Caches that spare a live drawing's repeated work: blob readings, rendered candidates, classified digits.

A live client resends its whole drawing on every stroke, so most of its digits are unchanged
from one message to the next; the caches are LRUs bounded by entries and by bytes, keyed by a
digest of the exact bytes a value depends on, holding copies that share no memory with a request.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from demnistify.constants import IMAGE_SIZE, NUM_CLASSES
from pipeline import render_strokes_digit
from pipeline.types import Classifier, StrokeRenderer
from serving.metrics import cache_counters

# Each cache of each served model holds at most this many bytes of values, besides its entry cap.
CACHE_BYTES = 2**25
# What an entry costs beyond its value: the 16-byte digest, the dict slot and the LRU links.
ENTRY_OVERHEAD = 200
# A remembered reading's digits each hold a label, scores, a box and candidates as Python objects.
DIGIT_BYTES = 600


def digest(key: bytes) -> bytes:
    """The 16-byte digest a cache keeps instead of the key (a drawing's stroke bytes may be 300 KB)."""
    return hashlib.blake2b(key, digest_size=16).digest()


def value_bytes(value: Any) -> int:
    """About how many bytes a cached value holds: an array's buffer, a reading's digits."""
    if isinstance(value, np.ndarray):
        return value.nbytes + ENTRY_OVERHEAD
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], tuple):
        return DIGIT_BYTES * len(value[1]) + ENTRY_OVERHEAD
    return sys.getsizeof(value) + ENTRY_OVERHEAD


class BoundedLru:
    """A thread-safe LRU mapping of bytes to values, holding at most `size` entries and `max_bytes` of them.

    Keys are kept as digests. Also the pipeline's `ReadingMemo`: how each blob of a drawing was read.
    """

    def __init__(self, size: int, max_bytes: int = CACHE_BYTES, name: str = "readings") -> None:
        self._size, self._max_bytes, self._entries = size, max_bytes, OrderedDict()
        self._hit, self._miss = cache_counters(name)
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        self.bytes = 0

    def get(self, key: bytes) -> Any | None:
        """The value stored under `key` (now the most recently used), or None."""
        key = digest(key)
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                self._miss.inc()
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            self._hit.inc()
            return found[0]

    def put(self, key: bytes, value: Any) -> None:
        """Store `value`, evicting the least recently used entries beyond the size and the bytes."""
        key, size = digest(key), value_bytes(value)
        if size > self._max_bytes:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            self.bytes += size - (previous[1] if previous else 0)
            self._entries[key] = (value, size)
            while len(self._entries) > self._size or self.bytes > self._max_bytes:
                self.bytes -= self._entries.popitem(last=False)[1][1]


class DigitCache:
    """A classifier that remembers the probabilities of normalized digits it has seen.

    The key is the bytes of the normalized 28x28 image, exact and cheap to hash.
    """

    def __init__(self, classify: Classifier, size: int) -> None:
        self._classify, self.entries = classify, BoundedLru(size, name="digits")

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
                # A copy: a row of `fresh` would keep the whole batch alive.
                self.entries.put(keys[index], row.copy())
        return out


class RenderCache:
    """`render_strokes_digit`, remembered: a digit candidate whose strokes did not change is not drawn again.

    Rendering takes 30-60 us a candidate, and a drawing has a few candidates per digit: under
    load it was about a quarter of the pipeline's time.
    """

    def __init__(self, size: int, render: StrokeRenderer = render_strokes_digit) -> None:
        self._render, self.entries = render, BoundedLru(size, name="renders")

    def __call__(self, strokes: list[np.ndarray], box: tuple[float, float, float, float]) -> np.ndarray:
        key = _strokes_key(strokes, box)
        image = self.entries.get(key)
        if image is None:
            image = np.array(self._render(strokes, box), copy=True)
            # Shared by later drawings, so nobody may change it in place.
            image.flags.writeable = False
            self.entries.put(key, image)
        return image


def _strokes_key(strokes: list[np.ndarray], box: tuple[float, float, float, float]) -> bytes:
    # The points, where each stroke ends, and the box: equal keys mean equal renderings.
    lines = [np.ascontiguousarray(stroke, dtype=np.float64) for stroke in strokes]
    ends = np.cumsum([len(line) for line in lines], dtype=np.int64)
    return np.asarray(box, dtype=np.float64).tobytes() + ends.tobytes() + b"".join(line.tobytes() for line in lines)
