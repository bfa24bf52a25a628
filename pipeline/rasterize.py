"""Rasterizing: draw strokes onto an ink-high canvas with anti-aliased OpenCV lines."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pipeline.strokes import Polyline, check_canvas, check_pen_width, check_strokes

# OpenCV draws with fixed-point coordinates; 4 fractional bits keep float input precise.
FIXED_POINT_BITS = 4


def rasterize_strokes(strokes: Sequence, width: int, height: int, pen_width: float | None = None) -> np.ndarray:
    """Draw polylines of [x, y] canvas points as uint8 ink (255) on a zero background.

    Raises ValueError on a bad canvas size, pen width or stroke (see `pipeline.strokes`).
    """
    width, height = check_canvas(width, height)
    pen = check_pen_width(pen_width, width, height)
    return draw_polylines(check_strokes(strokes, width, height), width, height, pen)


def draw_polylines(polylines: list[Polyline], width: int, height: int, pen: float) -> np.ndarray:
    """Draw already validated polylines; a one-point stroke becomes a round dot."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    thickness = max(1, round(pen))
    scale = 1 << FIXED_POINT_BITS
    fixed = [np.round(line * scale).astype(np.int32) for line in polylines]
    cv2.polylines(
        canvas, [line for line in fixed if len(line) > 1], False, 255, thickness, cv2.LINE_AA, FIXED_POINT_BITS
    )
    for line in fixed:
        if len(line) == 1:
            center = (int(line[0, 0]), int(line[0, 1]))
            cv2.circle(canvas, center, max(1, scale * thickness // 2), 255, -1, cv2.LINE_AA, FIXED_POINT_BITS)
    return canvas
