"""Connected components of a stroke drawing: the labeled raster and the component each stroke falls in."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.rasterize import draw_polylines
from pipeline.segment import Blob, find_blobs
from pipeline.strokes import Polyline

# Strokes are labeled on a raster of at most this many pixels covering the drawing; a
# finer raster would only make connected-component labeling slower.
SEGMENT_PIXELS = 60_000
# Raster values above this are ink for labeling: anti-aliased fringes do not join strokes.
INK_THRESHOLD = 64


@dataclass(frozen=True)
class StrokeLabels:
    """The drawing's components on a reduced raster, and which one each stroke belongs to."""

    labels: np.ndarray
    blobs: tuple[Blob, ...]
    stroke_labels: np.ndarray
    # Raster pixels per canvas pixel, and the canvas point at the raster's corner.
    scale: float
    origin: tuple[float, float]


def label_strokes(strokes: list[Polyline], pen: float) -> StrokeLabels:
    """Rasterize the strokes at a reduced scale and label their connected components."""
    points = np.concatenate(strokes)
    # Only the drawn area is rasterized, with room for the pen around it.
    origin = points.min(axis=0) - pen - 1
    extent = points.max(axis=0) + pen + 1 - origin
    scale = min(1.0, float(np.sqrt(SEGMENT_PIXELS / np.prod(extent))))
    shifted = [(line - origin) * scale for line in strokes]
    raster_size = np.ceil(extent * scale).astype(int) + 1
    raster = draw_polylines(shifted, int(raster_size[0]), int(raster_size[1]), max(1.0, pen * scale))
    _, mask = cv2.threshold(raster, INK_THRESHOLD, 1, cv2.THRESH_BINARY)
    corner = (float(origin[0]), float(origin[1]))
    labels, blobs = find_blobs(mask, scale, corner)
    return StrokeLabels(labels, tuple(blobs), _stroke_labels(labels, shifted), scale, corner)


def stroke_bounds(strokes: list[Polyline]) -> tuple[tuple[float, float, float, float], ...]:
    """Each stroke's box (left, top, right, bottom), as plain floats."""
    # A part's box is the min and max of a few of them, cheaper than numpy.
    points = np.concatenate(strokes)
    starts = np.cumsum([0] + [len(line) for line in strokes[:-1]])
    return tuple(
        map(tuple, np.hstack([np.minimum.reduceat(points, starts), np.maximum.reduceat(points, starts)]).tolist())
    )


def _stroke_labels(labels: np.ndarray, lines: list[np.ndarray]) -> np.ndarray:
    # A stroke's own pixels are ink, so its points name its component: the largest label
    # found along it (a stroke is connected, so all its ink has one label).
    points = np.round(np.concatenate(lines)).astype(np.int64)
    cols = np.clip(points[:, 0], 0, labels.shape[1] - 1)
    rows = np.clip(points[:, 1], 0, labels.shape[0] - 1)
    starts = np.cumsum([0] + [len(line) for line in lines[:-1]])
    return np.maximum.reduceat(labels[rows, cols], starts)
