"""Where a blob of touching digits may be cut by position: the thinnest columns of its ink, then even divisions."""

from __future__ import annotations

import numpy as np

from pipeline.segment import Blob

# Widths are fractions of the drawing's digit height. Blobs wider than SPLIT_MIN_WIDTH may
# be touching digits that one stroke runs through, and are also cut by position; no cut leaves
# a piece narrower than MIN_PIECE_WIDTH.
SPLIT_MIN_WIDTH = 0.8
MIN_PIECE_WIDTH = 0.1
# Cut positions per digit-width of blob, and the closest two cuts may be.
CUTS_PER_DIGIT = 2.0
CUT_RESOLUTION = 0.06
DIGIT_PITCH = 0.75


def ink_profile(labels: np.ndarray, blob: Blob, scale: float, origin: tuple[float, float]) -> tuple[np.ndarray, float]:
    """The blob's ink per raster column of a label image drawn at `scale` from `origin`, and the first column's x."""
    x0, x1 = round((blob.left - origin[0]) * scale), round((blob.right - origin[0]) * scale)
    y0, y1 = round((blob.top - origin[1]) * scale), round((blob.bottom - origin[1]) * scale)
    window = np.isin(labels[y0:y1, x0:x1], blob.labels)
    return window.sum(axis=0).astype(np.float64), x0 / scale + origin[0]


def cut_positions(
    blob: Blob,
    profile: np.ndarray,
    first_x: float,
    scale: float,
    digit_height: float,
    narrow: tuple[float, float] = (SPLIT_MIN_WIDTH, DIGIT_PITCH),
) -> list[float]:
    """Cut x positions: the thinnest columns of the ink profile, then even divisions of the width.

    `narrow`: the least blob width that is cut, and the pitch of the digits whose count sets how
    many of the thinnest columns are tried, both in digit heights (narrower for pictures).
    """
    min_width, minima_pitch = narrow
    if blob.width <= min_width * digit_height or len(profile) < 3:
        return []
    inner = np.arange(1, len(profile) - 1)
    minima = inner[(profile[inner] <= profile[inner - 1]) & (profile[inner] <= profile[inner + 1])]
    minima = minima[np.argsort(profile[minima], kind="stable")]
    pieces = max(2, round(blob.width / (DIGIT_PITCH * digit_height)))
    # Touching round digits (two 0s) meet where the profile is thick, so even divisions of
    # the width are candidates too.
    even = [blob.left + blob.width * step / pieces for step in range(1, pieces)]
    thin = [first_x + (index + 0.5) / scale for index in minima]
    tried = max(pieces, round(blob.width / (minima_pitch * digit_height)))
    limit = int(np.ceil(CUTS_PER_DIGIT * tried))
    cuts: list[float] = []
    for x in thin[:tried] + even + thin[tried:]:
        inside = blob.left + MIN_PIECE_WIDTH * digit_height <= x <= blob.right - MIN_PIECE_WIDTH * digit_height
        if inside and all(abs(x - cut) >= CUT_RESOLUTION * digit_height for cut in cuts) and len(cuts) < limit:
            cuts.append(float(x))
    return sorted(cuts)
