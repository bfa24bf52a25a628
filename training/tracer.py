"""Tracing MNIST digits into pen strokes: skeletonize, walk the skeleton into polylines, redraw blots as loops."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import skeletonize

# Digits are traced on a copy enlarged this much, so the skeleton follows curves smoothly.
TRACE_UPSCALE = 2
NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
INK_THRESHOLD = 100
# Ink deeper than this many stroke half-widths from the background is a blot: a loop filled
# with ink (the head of a 9 or a 6 written with a wet pen). Its skeleton is a mere line, so it
# is traced as the loop a pen would have drawn (chosen on the validation split: docs/design.md).
BLOT_FACTOR = 1.4
# The median skeleton depth measures the pen, except in a digit written so wet that ink fills
# its loops: then the skeleton lies deep inside ink everywhere and no part counts as a blot, so
# a solid 8 was traced as its skeleton, an "r". The pen measure is capped at this depth (pixels
# of the enlarged copy), which ordinary pens do not reach.
MAX_HALF_WIDTH = 5.0
MIN_LOOP_POINTS = 6
# Faint ink (below INK_THRESHOLD) often joins two parts of one pen line, and thresholding cuts
# it. Parts whose nearest points lie within BRIDGE_PIXELS (28x28 pixels) with at least
# FAINT_INK all along the way between them are joined by a short stroke, as the pen was.
BRIDGE_PIXELS = 8.0
FAINT_INK = 48


def trace_digit(image: np.ndarray) -> list[np.ndarray]:
    """Trace a 28x28 uint8 digit into pen strokes: polylines of (x, y) in the image's pixels."""
    large = cv2.resize(image, None, fx=TRACE_UPSCALE, fy=TRACE_UPSCALE, interpolation=cv2.INTER_LINEAR)
    ink = (large > INK_THRESHOLD).astype(np.uint8)
    skeleton = skeletonize(ink > 0)
    loops, blots = _blot_loops(ink, skeleton)
    pixels = {(int(r), int(c)) for r, c in zip(*np.nonzero(skeleton & ~blots))}
    lines = [np.array(path, dtype=np.float64)[:, ::-1] for path in _walk(pixels)] if pixels else []
    # Offsetting by half a pixel maps pixel centres of the enlarged copy back onto the original.
    strokes = [_simplify(line / TRACE_UPSCALE + 0.25) for line in lines + loops]
    return strokes + _bridges(strokes, image)


def _bridges(strokes: list[np.ndarray], image: np.ndarray) -> list[np.ndarray]:
    """Two-point strokes joining separate parts of the tracing across faint ink of the image."""
    groups = _touching_groups(strokes)
    bridges = []
    while len(groups) > 1:
        gap, ends, first, second = min(
            (_nearest(a, b) + (i, j)) for i, a in enumerate(groups) for j, b in enumerate(groups) if i < j
        )
        if gap > BRIDGE_PIXELS or not _inked_between(image, *ends):
            return bridges
        bridges.append(np.array(ends, dtype=np.float64))
        groups = [g for k, g in enumerate(groups) if k not in (first, second)] + [groups[first] + groups[second]]
    return bridges


def _touching_groups(strokes: list[np.ndarray]) -> list[list[np.ndarray]]:
    # Strokes whose points come within a pixel of each other belong to one part.
    groups: list[list[np.ndarray]] = []
    for stroke in strokes:
        touching = [g for g in groups if _nearest(g, [stroke])[0] <= 1.0]
        groups = [g for g in groups if not any(g is t for t in touching)] + [sum(touching, []) + [stroke]]
    return groups


def _nearest(first: list[np.ndarray], second: list[np.ndarray]) -> tuple[float, tuple]:
    a, b = (np.vstack([_densify(stroke) for stroke in group]) for group in (first, second))
    distances = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
    return float(distances[i, j]), (tuple(a[i]), tuple(b[j]))


def _densify(points: np.ndarray) -> np.ndarray:
    # Simplified polylines keep only corners; points every half pixel find the true nearest gap.
    if len(points) < 2:
        return points
    steps = np.maximum(1, np.ceil(np.linalg.norm(np.diff(points, axis=0), axis=1) * 2).astype(int))
    parts = [
        start + (end - start) * np.linspace(0, 1, n, endpoint=False)[:, None]
        for start, end, n in zip(points[:-1], points[1:], steps)
    ]
    return np.vstack(parts + [points[-1:]])


def _inked_between(image: np.ndarray, start: tuple, end: tuple) -> bool:
    samples = np.linspace(start, end, 12)
    cols = np.clip(np.round(samples[:, 0] - 0.5).astype(int), 0, image.shape[1] - 1)
    rows = np.clip(np.round(samples[:, 1] - 0.5).astype(int), 0, image.shape[0] - 1)
    return bool((image[rows, cols] >= FAINT_INK).all())


def _blot_loops(ink: np.ndarray, skeleton: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Closed (x, y) loops around each blot, one stroke half-width inside its edge, and the blots' mask."""
    depth = cv2.distanceTransform(ink, cv2.DIST_L2, 3)
    half_width = min(float(np.median(depth[skeleton])), MAX_HALF_WIDTH) if skeleton.any() else 1.0
    core = (depth > BLOT_FACTOR * half_width).astype(np.uint8)
    none = np.zeros(ink.shape, dtype=bool)
    if not core.any():
        return [], none
    reach = int(2 * BLOT_FACTOR * half_width) + 1
    blots = cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (reach, reach))) > 0
    ring = ((depth >= half_width) & blots).astype(np.uint8)
    contours, _ = cv2.findContours(ring, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    loops = [
        np.vstack([points, points[:1]]).astype(np.float64)
        for points in (contour.reshape(-1, 2) for contour in contours)
        if len(points) >= MIN_LOOP_POINTS
    ]
    return loops, (blots if loops else none)


def _walk(pixels: set[tuple[int, int]]) -> list[list[tuple[int, int]]]:
    # Walk every edge of the 8-connected skeleton graph once: first from line ends, then from
    # junctions, then around closed loops (a 0 has neither ends nor junctions).
    neighbours = {
        p: [(p[0] + dr, p[1] + dc) for dr, dc in NEIGHBOURS if (p[0] + dr, p[1] + dc) in pixels] for p in pixels
    }
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
    # OpenCV drops the end of an open curve that returns to its start, so loops are simplified
    # as closed curves and closed again by hand.
    closed = bool(np.array_equal(path[0], path[-1]))
    points = path[:-1] if closed else path
    simple = cv2.approxPolyDP(points.astype(np.float32).reshape(-1, 1, 2), 0.3, closed).reshape(-1, 2)
    return np.vstack([simple, simple[:1]]).astype(np.float64) if closed else simple.astype(np.float64)
