"""A picture of a number as a phone or scanner would take it: paper, rulings, uneven light, shadow, blur, noise, JPEG;
and a line drawn under a number's strokes."""

from __future__ import annotations

import cv2
import numpy as np

# How far from a clean scan each condition goes (1: a phone photo in ordinary room light).
STRENGTH = {"scan": 0.3, "photo": 1.0, "shadow": 1.0, "harsh": 1.6, "ruled": 0.3, "squared": 0.3, "underlined": 0.3}
CONDITIONS = tuple(STRENGTH)
# An underline runs this share of the number's height below its lowest ink, as thick as this
# share of it, and rises or falls by up to this share of its length (drawn by hand).
UNDERLINE_GAP = (0.05, 0.2)
UNDERLINE_PEN = 0.04
UNDERLINE_SLOPE = 0.03
# Printed lines, as dark as this share of the writing, this share of the picture's height apart
# (a digit spans one or two squares), scanned.
RULING_DARKNESS = (0.35, 0.6)
RULING_SPACING = (0.25, 0.45)
# A shadow darkens its side of the page by this many gray levels, over an edge this share of the
# page wide (a hand or phone held over the page casts a soft edge).
SHADOW_DEPTH = 45.0
SHADOW_EDGE = 0.03


def photograph(picture: np.ndarray, rng: np.random.Generator, condition: str) -> np.ndarray:
    """`picture` (dark ink on white, uint8) on a margin of paper, as taken in `condition`; uint8 gray."""
    if condition not in STRENGTH:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}.")
    strength = STRENGTH[condition]
    ink = np.pad((255 - picture).astype(np.float32) / 255, max(picture.shape) // 3)
    if condition in ("ruled", "squared"):
        ink = np.maximum(ink, _rulings(ink.shape, rng, picture.shape[0], condition == "squared"))
    if condition == "underlined":
        ink = _underlined(ink, rng)
    height, width = ink.shape
    paper = rng.uniform(200, 240) - strength * rng.uniform(0, 50)
    contrast = paper * rng.uniform(0.75, 0.9) / (1 + 0.5 * strength)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    light = ((xs / width - 0.5) * np.cos(angle) + (ys / height - 0.5) * np.sin(angle)) * strength * rng.uniform(20, 60)
    blur = strength * rng.uniform(0.4, 1.0) * max(1.0, height / 120)
    image = paper + light - contrast * cv2.GaussianBlur(ink, (0, 0), blur)
    if condition in ("shadow", "harsh"):
        edge = (xs - rng.uniform(0.3, 0.7) * width - (ys - height / 2) * rng.uniform(-0.5, 0.5)) / (SHADOW_EDGE * width)
        image -= SHADOW_DEPTH * np.clip(0.5 + edge, 0, 1)
    image += rng.normal(0, 2 + 4 * strength, image.shape)
    quality = int(95 - 25 * strength)
    encoded = cv2.imencode(".jpg", np.clip(image, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def _rulings(shape: tuple[int, int], rng: np.random.Generator, number_height: int, squared: bool) -> np.ndarray:
    spacing = max(4, round(number_height * rng.uniform(*RULING_SPACING)))
    thickness = max(1, round(number_height / 150))
    lines = np.zeros(shape, np.float32)
    offset = int(rng.integers(spacing))
    for start in range(offset, shape[0], spacing):
        lines[start : start + thickness] = 1
    if squared:
        for start in range(offset, shape[1], spacing):
            lines[:, start : start + thickness] = 1
    return lines * rng.uniform(*RULING_DARKNESS)


def _underlined(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rows, columns = np.nonzero(ink.max(axis=1) > 0.5)[0], np.nonzero(ink.max(axis=0) > 0.5)[0]
    if not rows.size:
        return ink
    height, length = rows[-1] - rows[0] + 1, columns[-1] - columns[0] + 1
    y = rows[-1] + rng.uniform(*UNDERLINE_GAP) * height
    rise = rng.uniform(-UNDERLINE_SLOPE, UNDERLINE_SLOPE) * length
    lined = ink.copy()
    start, end = (int(columns[0]), int(round(y))), (int(columns[-1]), int(round(y + rise)))
    cv2.line(lined, start, end, 1.0, max(1, round(UNDERLINE_PEN * height)), cv2.LINE_AA)
    return lined


def underline_strokes(strokes: list[np.ndarray], rng: np.random.Generator, canvas: tuple[int, int]) -> list[np.ndarray]:
    """`strokes` and, drawn last, a hand's line under them (as `_underlined` draws under a picture), on the canvas."""
    points = np.concatenate(strokes)
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    y = bottom + rng.uniform(*UNDERLINE_GAP) * (bottom - top)
    xs = np.linspace(left, right, 24)
    ys = y + rng.uniform(-UNDERLINE_SLOPE, UNDERLINE_SLOPE) * (xs - left)
    line = np.stack([xs, ys], axis=1).clip(0, np.array(canvas, np.float64) - 1)
    return [*strokes, line]
