"""Tracing MNIST digits into pen strokes: skeletonize, then walk the skeleton into polylines."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import skeletonize

# Digits are traced on a copy enlarged this much, so the skeleton follows curves smoothly.
TRACE_UPSCALE = 2
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def trace_digit(image: np.ndarray) -> list[np.ndarray]:
    """Trace a 28x28 uint8 digit into pen strokes: polylines of (x, y) in the image's pixels."""
    large = cv2.resize(image, None, fx=TRACE_UPSCALE, fy=TRACE_UPSCALE, interpolation=cv2.INTER_LINEAR)
    skeleton = skeletonize(large > 100)
    pixels = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton))}
    paths = _walk(pixels)
    # Offsetting by half a pixel maps pixel centres of the enlarged copy back onto the original.
    return [_simplify(np.array(path, dtype=np.float64)[:, ::-1] / TRACE_UPSCALE + 0.25) for path in paths]


def _walk(pixels: set[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    # Walk every edge of the 8-connected skeleton graph once: first from line ends, then from
    # junctions, then around closed loops (a 0 has neither ends nor junctions).
    neighbours = {p: [(p[0] + dr, p[1] + dc) for dr, dc in NEIGHBOURS if (p[0] + dr, p[1] + dc) in pixels] for p in pixels}
    used: set[frozenset] = set()
    order = sorted(pixels, key=lambda p: (len(neighbours[p]) != 1, len(neighbours[p]) < 3, p))
    paths = []
    for start in order:
        while any(frozenset((start, n)) not in used for n in neighbours[start]):
            paths.append(_follow(start, neighbours, used))
    isolated = [[p] for p in pixels if not neighbours[p]]
    # Skeletons grow one-step spurs and triangles at junctions; a pen would not draw them.
    long_paths = [path for path in paths if len(path) > 2]
    return (long_paths or paths) + isolated


def _follow(start, neighbours, used) -> list[tuple[int, int]]:
    path, current = [start], start
    while True:
        free = [n for n in neighbours[current] if frozenset((current, n)) not in used]
        if not free:
            return path
        # Prefer 4-connected steps so the walk does not cut the corners of the skeleton.
        step = min(free, key=lambda n: abs(n[0] - current[0]) + abs(n[1] - current[1]))
        used.add(frozenset((current, step)))
        path.append(step)
        current = step
        if len(neighbours[current]) > 2 and current != start:
            return path


def _simplify(path: np.ndarray) -> np.ndarray:
    if len(path) < 3:
        return path
    return cv2.approxPolyDP(path.astype(np.float32).reshape(-1, 1, 2), 0.3, False).reshape(-1, 2).astype(np.float64)
