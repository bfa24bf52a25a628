"""Image input: decode PNG/JPEG bytes, convert to gray, detect ink polarity, flatten the background."""

from __future__ import annotations

import cv2
import numpy as np

# Pictures larger than this on either side are refused (a 8K photo is still accepted).
MAX_IMAGE_SIDE = 8192
# Ink must stand out from the background by at least this much (of 255) to count at all;
# it keeps a blank photo's sensor noise from becoming digits.
MIN_CONTRAST = 40
# Paper lit evenly is estimated on a copy this many pixels on its longer side: eroded by a square
# of 5 pixels (ink is thinner) and blurred.
EVEN_PAPER_SIDE = 64
# Paper whose estimate along the picture's edge varies by more than this (gray levels, 5th to
# 95th percentile) is lit unevenly: a gradient or a shadow (docs/design.md, "Photographs"). Evenly
# lit paper is taken to be no darker anywhere than its edge's darkest by this much.
EVEN_PAPER = 10
# Uneven paper is estimated on a copy this many pixels on its longer side, fine enough to follow
# the edge of a shadow across the page.
UNEVEN_PAPER_SIDE = 128
# Ink narrower than this share of the picture's longer side is not paper: uneven paper is the
# picture's ink-high values opened (eroded, then dilated back) by a square this wide.
OPENING_SQUARE = 0.15
# A picture whose flattened paper varies more than this (the noise's standard deviation, in gray
# levels) is photo or sensor noise: it is smoothed before the ink is told from the paper.
NOISY_PAPER = 2.0
# Ink must stand this many of the noise's standard deviations above the paper.
NOISE_MARGIN = 3.0
# A row or column of a picture this much inked is ruled: the lines of ruled or squared paper,
# or a frame (the rows through a number's middle are at most two thirds ink). Lines fainter
# than the writing pull Otsu's threshold below them; the threshold is then chosen again on the
# rest of the picture, and ruled ink fainter than it is paper.
RULED_SHARE = 0.9
# Rulings are anti-aliased this many pixels either side of their fully inked rows.
RULING_FRINGE = 2
# Where a ruling lies, ink is writing only if at least this share of the writing's median ink.
RULED_WRITING = 0.6


def prepare_image(image: np.ndarray | bytes) -> tuple[np.ndarray, np.ndarray, float]:
    """Ink-high uint8 image, its 0/1 ink mask and an estimate of the pen width in pixels."""
    gray = to_gray(decode(image) if isinstance(image, (bytes, bytearray, memoryview)) else np.asarray(image))
    ink = _flatten(_ink_high(gray))
    if int(ink.max()) < MIN_CONTRAST:
        return ink, np.zeros_like(ink), 1.0
    threshold, mask = cv2.threshold(ink, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    # Otsu on a nearly blank picture can pick a threshold in the noise; keep it above it.
    if threshold < MIN_CONTRAST:
        _, mask = cv2.threshold(ink, MIN_CONTRAST, 1, cv2.THRESH_BINARY)
    ink, mask = _without_rulings(ink, mask)
    # Faint pixels below the threshold are kept in the ink as anti-aliasing only.
    return ink, mask, estimate_pen_width(mask)


def _without_rulings(ink: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # Writing crosses a ruling where it is as dark as the rest of the writing, so it stays.
    rows, columns = mask.mean(axis=1) >= RULED_SHARE, mask.mean(axis=0) >= RULED_SHARE
    if not rows.any() and not columns.any():
        return ink, mask
    fringe = np.ones(2 * RULING_FRINGE + 1, np.uint8)
    ruled = cv2.dilate(rows.astype(np.uint8)[:, None], fringe[:, None]).astype(bool) | cv2.dilate(
        columns.astype(np.uint8)[None, :], fringe[None, :]
    ).astype(bool)
    rest = ink[~ruled]
    if rest.size == 0 or int(rest.max()) < MIN_CONTRAST:
        return ink, mask
    threshold, _ = cv2.threshold(rest.reshape(1, -1), 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    threshold = max(threshold, MIN_CONTRAST)
    writing = rest[rest > threshold]
    on_rulings = max(threshold, RULED_WRITING * float(np.median(writing))) if writing.size else threshold
    ink = np.where(ruled & (ink <= on_rulings), 0, ink).astype(np.uint8)
    return ink, (ink > threshold).astype(np.uint8)


def decode(data: bytes) -> np.ndarray:
    """Decode PNG/JPEG (any format OpenCV reads) bytes; ValueError when they are not an image."""
    array = cv2.imdecode(np.frombuffer(bytes(data), dtype=np.uint8), cv2.IMREAD_UNCHANGED) if len(data) else None
    if array is None:
        raise ValueError(f"Could not decode the {len(data)} image bytes as PNG, JPEG or another image format.")
    return array


def to_gray(image: np.ndarray) -> np.ndarray:
    """A uint8 gray image from gray, BGR/RGB or RGBA input (transparent pixels become background)."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or min(image.shape[:2]) < 1:
        raise ValueError(f"An image must be 2-D gray or have 3 or 4 channels, got shape {image.shape}.")
    if max(image.shape[:2]) > MAX_IMAGE_SIDE:
        raise ValueError(f"Images may be at most {MAX_IMAGE_SIDE} pixels on a side, got {image.shape[:2]}.")
    image = _to_uint8(image)
    if image.ndim == 2:
        return image
    gray = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    if image.shape[2] == 4 and image[:, :, 3].min() < 255:
        return _flatten_alpha(gray, image[:, :, 3])
    return gray


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    values = np.nan_to_num(image.astype(np.float32), nan=0.0)
    # Floats are read as [0, 1] unless they use a 0..255 range.
    factor = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
    return np.clip(values * factor, 0, 255).astype(np.uint8)


def _flatten_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    # A transparent PNG often has strokes only in alpha: opaque strokes over transparency.
    # Composite over the color the strokes are not, so they stay visible either way.
    opaque = alpha > 127
    strokes_dark = opaque.any() and float(np.median(gray[opaque])) < 128
    backdrop = 255.0 if strokes_dark else 0.0
    weight = alpha.astype(np.float32) / 255
    return (gray * weight + backdrop * (1 - weight)).astype(np.uint8)


def _ink_high(gray: np.ndarray) -> np.ndarray:
    # Ink is the minority of pixels, so the median is background; if the background is
    # lighter than the middle of the picture's range, the ink is dark and is inverted.
    low, high = int(gray.min()), int(gray.max())
    return cv2.bitwise_not(gray) if float(np.median(gray)) > (low + high) / 2 else gray


def _flatten(ink: np.ndarray) -> np.ndarray:
    # Uneven light and shadows in a photo make the paper vary; subtract an estimate of it, take
    # off its noise, then stretch the ink. Signed 16-bit: the paper's noise falls on both sides.
    flat = cv2.subtract(ink.astype(np.int16), _paper(ink).astype(np.int16))
    level, noise = _paper_noise(flat)
    if noise > NOISY_PAPER:
        flat = cv2.GaussianBlur(flat, (0, 0), 1.0)
        level, noise = _paper_noise(flat)
    flat = np.clip(cv2.subtract(flat, round(level + NOISE_MARGIN * noise)), 0, 255).astype(np.uint8)
    top = float(np.percentile(flat[flat > 0], 99)) if flat.any() else 0.0
    return cv2.convertScaleAbs(flat, alpha=255.0 / top) if top >= MIN_CONTRAST else flat


def _paper(ink: np.ndarray) -> np.ndarray:
    # An opening keeps a shadow's edge where it is, where a blur smears it into false ink; evenly
    # lit paper keeps the erosion and blur, whose ink the picture rules were chosen on.
    factor = EVEN_PAPER_SIDE / max(ink.shape)
    small = _shrunk(ink, factor)
    low, high = _edge_paper(small)
    if high - low > EVEN_PAPER:
        return _opened(ink, min(1.0, UNEVEN_PAPER_SIDE / max(ink.shape)))
    if factor >= 1:
        return np.full_like(ink, int(np.median(ink)))
    small = cv2.GaussianBlur(cv2.erode(small, np.ones((5, 5), np.uint8)), (5, 5), 0)
    # Evenly lit paper is nowhere darker than along its edge: what a bold stroke, wider than the
    # erosion's square, leaves above that is ink, and subtracting it would hollow the stroke.
    small = np.minimum(small, np.uint8(min(255, high + EVEN_PAPER)))
    return cv2.resize(small, ink.shape[::-1], interpolation=cv2.INTER_LINEAR)


def _edge_paper(small: np.ndarray) -> tuple[float, float]:
    # The paper's range (5th to 95th percentile) along the picture's edge, where paper is, not
    # under bold ink the square fits in.
    paper = _opened(small, 1.0)
    edge = np.concatenate([paper[0], paper[-1], paper[:, 0], paper[:, -1]])
    low, high = np.percentile(edge, [5, 95])
    return float(low), float(high)


def _opened(ink: np.ndarray, factor: float) -> np.ndarray:
    small = _shrunk(ink, factor)
    side = max(3, round(OPENING_SQUARE * max(small.shape)) | 1)
    paper = cv2.morphologyEx(small, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (side, side)))
    return cv2.resize(paper, ink.shape[::-1], interpolation=cv2.INTER_LINEAR) if factor < 1 else paper


def _shrunk(ink: np.ndarray, factor: float) -> np.ndarray:
    return cv2.resize(ink, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA) if factor < 1 else ink


def _paper_noise(flat: np.ndarray) -> tuple[float, float]:
    # Most of a picture is paper: its median is the paper's level (the opening sits below noisy
    # paper), its median absolute deviation the paper's noise.
    sample = flat[::4, ::4].astype(np.float32)
    level = float(np.median(sample))
    return level, 1.4826 * float(np.median(np.abs(sample - level)))


def estimate_pen_width(mask: np.ndarray) -> float:
    """Typical stroke width of a 0/1 ink mask: twice the median distance to the background
    found along the strokes' middle lines (the local maxima of the distance transform)."""
    if mask.all():
        # No background to measure from: a solid block is as wide as its narrower side.
        return float(min(mask.shape))
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
    ridge = (distance > 0) & (distance >= cv2.dilate(distance, np.ones((3, 3), np.uint8)))
    return max(1.0, 2.0 * float(np.median(distance[ridge])) - 1.0) if ridge.any() else 1.0
