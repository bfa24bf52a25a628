"""Handwriting fonts: the vendored families, their split by family, and their digits drawn as MNIST's."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipeline import normalize_digit
from pipeline.image import estimate_pen_width

FONTS_DIR = Path(__file__).resolve().parent / "fonts"
# Share of font groups kept for validation: they choose the mix of sources and gate promotion,
# and are never trained on.
VALIDATION_SHARE = 0.2
# Families of one design published per country or style stay on one side of the split, or
# validation would read a near copy of what training saw.
SERIES = ("playwrite", "edu", "playpen", "birthstone", "bilbo", "comforter", "sedgwick", "mr", "mrs")
# Glyphs are rasterized this many pixels per em: big enough that thin pens survive, small
# enough that rendering all families' digits takes seconds.
GLYPH_EM_PIXELS = 96
# MNIST's pen is 1.5-3.5 px in the 20 px digit box; thinner font pens are thickened to a width
# drawn in this range, or tracing and the model would see hairlines MNIST never had.
PEN_RANGE = (1.6, 3.2)
# A glyph's strokes are traced from it drawn with the thinnest of those pens: a thick pen joins
# parts of a glyph that the writer's pen path never crossed (a 3's ball terminal touching its
# middle traced as the closed loop of an 8; figures in docs/design.md, "Handwriting beyond MNIST").
TRACE_PEN = PEN_RANGE[0]
# A hairline thinner than a pixel is drawn faint by anti-aliasing, and would vanish from the
# copy that is traced, or be widened into a faint band: a pixel at least this much inked (of
# 255) is where the pen passed.
PATH_COVERAGE = 64
# Besides its own shape, each glyph is also drawn narrower and wider by a factor from these
# ranges: condensed hands write tall, narrow digits, and a wide digit must still read whole.
CONDENSED_RANGE = (0.45, 0.8)
EXPANDED_RANGE = (1.15, 1.5)


@dataclass(frozen=True)
class FontFamily:
    """One vendored family: its id and a font file per weight."""

    id: str
    paths: tuple[Path, ...]


@dataclass(frozen=True)
class Glyph:
    """One digit rasterized: ink-high uint8 crop, its offset from the pen position, the advance."""

    ink: np.ndarray
    offset: tuple[int, int]
    advance: float


def load_families(fonts_dir: Path = FONTS_DIR) -> list[FontFamily]:
    """Every vendored family, in id order (training/fonts/families.json)."""
    listing = json.loads((fonts_dir / "families.json").read_text())
    return [
        FontFamily(entry["id"], tuple(fonts_dir / entry["id"] / f"{w}.ttf" for w in entry["weights"]))
        for entry in sorted(listing, key=lambda e: e["id"])
    ]


def family_group(family_id: str) -> str:
    """The design a family belongs to: its series' name, or its own id."""
    head = family_id.split("-")[0]
    return head if head in SERIES else family_id


def is_validation(family_id: str) -> bool:
    """Whether the family's group is kept for validation (a fixed hash of the group's name)."""
    digest = hashlib.sha256(family_group(family_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < VALIDATION_SHARE


def split_families(families: list[FontFamily]) -> tuple[list[FontFamily], list[FontFamily]]:
    """Training and validation families, split by group, never by sample."""
    return ([f for f in families if not is_validation(f.id)], [f for f in families if is_validation(f.id)])


@lru_cache(maxsize=512)
def _font(path: Path, pixels: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), pixels)


def render_glyph(path: Path, digit: str, pixels: int = GLYPH_EM_PIXELS) -> Glyph:
    """Rasterize one digit of a font at `pixels` per em, ink high, cropped to its ink."""
    font = _font(path, pixels)
    left, top, right, bottom = font.getbbox(digit)
    image = Image.new("L", (max(1, right - left + 2), max(1, bottom - top + 2)), 0)
    ImageDraw.Draw(image).text((1 - left, 1 - top), digit, font=font, fill=255)
    ink = np.asarray(image)
    x, y, width, height = cv2.boundingRect(ink)
    return Glyph(ink[y : y + height, x : x + width].copy(), (left - 1 + x, top - 1 + y), font.getlength(digit))


def thickened(ink: np.ndarray, pen_in_box: float) -> np.ndarray:
    """The glyph with its pen widened to `pen_in_box` pixels of a 20 px digit box, if thinner.

    The wider pen inks fully wherever the glyph's path runs (PATH_COVERAGE): a hairline that
    anti-aliasing drew faint is widened into a stroke, as a pen draws it, not into a gray band.
    """
    height, width = ink.shape
    wanted = pen_in_box * max(height, width) / 20.0
    current = estimate_pen_width((ink > 127).astype(np.uint8))
    grow = int(round(wanted - current))
    if grow < 1:
        return ink
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow + 1, grow + 1))
    path = np.where(ink >= PATH_COVERAGE, 255, ink).astype(np.uint8)
    return cv2.dilate(np.pad(path, grow), kernel)


def pen_path(ink: np.ndarray) -> np.ndarray:
    """The glyph to trace: every pixel inked at least PATH_COVERAGE fully inked, then drawn with TRACE_PEN."""
    return thickened(np.where(ink >= PATH_COVERAGE, 255, 0).astype(np.uint8), TRACE_PEN)


def mnist_digit(ink: np.ndarray) -> np.ndarray:
    """A glyph as an MNIST image: uint8 28x28, fitted into 20x20 and centered by mass."""
    return np.round(normalize_digit(ink) * 255).astype(np.uint8)


def stretched(ink: np.ndarray, factor: float) -> np.ndarray:
    """The glyph with its width scaled by `factor` (below 1: condensed)."""
    height, width = ink.shape
    return cv2.resize(ink, (max(1, round(width * factor)), height), interpolation=cv2.INTER_AREA)


def font_digits(
    families: list[FontFamily], seed: int = 0, variants: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every weight's ten digits of every family as MNIST images, their labels, and the same drawn to be traced.

    With `variants`, each glyph comes three times: as drawn, condensed and expanded. The images
    to trace are the same glyphs' pen paths (`pen_path`).
    """
    rng = np.random.default_rng(seed)
    factors = [lambda: 1.0] + (
        [lambda: rng.uniform(*CONDENSED_RANGE), lambda: rng.uniform(*EXPANDED_RANGE)] if variants else []
    )
    images, labels, to_trace = [], [], []
    for family in families:
        for path in family.paths:
            for digit in range(10):
                glyph = render_glyph(path, str(digit))
                for factor in factors:
                    shaped = stretched(glyph.ink, factor())
                    images.append(mnist_digit(thickened(shaped, rng.uniform(*PEN_RANGE))))
                    to_trace.append(mnist_digit(pen_path(shaped)))
                    labels.append(digit)
    return np.stack(images), np.array(labels, dtype=np.uint8), np.stack(to_trace)
