"""Numbers written in handwriting fonts, as pen strokes and as pictures, and their scoring by family."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline import Classifier, recognize_image, recognize_strokes
from pipeline.budget import TooComplex
from training.fonts import PEN_RANGE, FontFamily, Glyph, pen_path, render_glyph, stretched, thickened
from training.sequences import MAX_DIGITS, SequenceCase, accuracy_interval
from training.tracer import trace_digit

# Digits are written this many pixels per em (a digit is about 0.7 em tall).
EM_RANGE = (40, 160)
# Each digit moves on by its advance times a factor drawn here: below 1 neighbours come
# closer than the font sets them, and may touch, as in quick handwriting.
SPACING_RANGE = (0.85, 1.25)
# The tracer reads MNIST-sized digits: a glyph is fitted into this box of a 28x28 field.
TRACE_BOX = 20.0
TRACE_FIELD = 28


@dataclass(frozen=True)
class FontNumber:
    """One number written in one font: as strokes (what a pen drew) and as a dark-on-light picture."""

    family: str
    text: str
    strokes: SequenceCase
    picture: np.ndarray


def make_font_numbers(family: FontFamily, count: int, seed: int, width: float = 1.0) -> list[FontNumber]:
    """`count` numbers of 1-8 digits written in `family`, reproducible by seed and family.

    `width` below 1 writes them condensed: each glyph and its advance that much narrower.
    """
    rng = np.random.default_rng([seed, *family.id.encode()])
    return [_make_number(family, rng, width) for _ in range(count)]


def _make_number(family: FontFamily, rng: np.random.Generator, width: float = 1.0) -> FontNumber:
    text = "".join(str(d) for d in rng.integers(0, 10, size=int(rng.integers(1, MAX_DIGITS + 1))))
    path = family.paths[int(rng.integers(len(family.paths)))]
    em = int(np.exp(rng.uniform(*np.log(EM_RANGE))))
    pen_in_box = rng.uniform(*PEN_RANGE)
    glyphs = [render_glyph(path, digit, em) for digit in text]
    if width != 1.0:
        glyphs = [Glyph(stretched(g.ink, width), g.offset, g.advance * width) for g in glyphs]
    shapes = [g.ink for g in glyphs]
    glyphs = [Glyph(thickened(g.ink, pen_in_box), g.offset, g.advance) for g in glyphs]
    origins, x = [], 0.0
    for glyph in glyphs:
        origins.append((x + glyph.offset[0], glyph.offset[1]))
        x += glyph.advance * rng.uniform(*SPACING_RANGE)
    margin = int(em * 0.3) + 4
    low = np.min([o for o in origins], axis=0) - margin
    placed = [(np.array(o) - low, g) for o, g in zip(origins, glyphs)]
    size = np.max([p + g.ink.shape[::-1] for p, g in placed], axis=0) + margin
    picture = np.zeros((int(size[1]), int(size[0])), np.uint8)
    strokes, counts = [], []
    for (position, glyph), shape in zip(placed, shapes):
        px, py = int(round(position[0])), int(round(position[1]))
        height, width = glyph.ink.shape
        np.maximum(
            picture[py : py + height, px : px + width], glyph.ink, out=picture[py : py + height, px : px + width]
        )
        traced = [line + (px, py) for line in glyph_strokes(shape, glyph.ink.shape)]
        strokes += traced
        counts.append(len(traced))
    pen = max(2.0, pen_in_box * max(g.ink.shape[0] for g in glyphs) / TRACE_BOX)
    case = SequenceCase(tuple(strokes), picture.shape[1], picture.shape[0], pen, text, "font", tuple(counts))
    return FontNumber(family.id, text, case, 255 - picture)


def glyph_strokes(shape: np.ndarray, frame: tuple[int, int]) -> list[np.ndarray]:
    """A glyph's strokes, traced from its pen path (`pen_path`), in the pixels of the `frame`-shaped thickened glyph."""
    # Thickening pads every side alike, so the two frames differ by half their sizes' difference.
    thin = pen_path(shape)
    shift = (frame[1] - thin.shape[1]) / 2
    return [line + shift for line in traced_glyph(thin)]


def traced_glyph(ink: np.ndarray) -> list[np.ndarray]:
    """A glyph's pen strokes, in the glyph's pixels: traced at MNIST size, then scaled back."""
    height, width = ink.shape
    scale = TRACE_BOX / max(height, width)
    small = cv2.resize(ink, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    field = np.zeros((TRACE_FIELD, TRACE_FIELD), np.uint8)
    top, left = (TRACE_FIELD - small.shape[0]) // 2, (TRACE_FIELD - small.shape[1]) // 2
    field[top : top + small.shape[0], left : left + small.shape[1]] = small
    return [(line - (left, top)) / scale for line in trace_digit(field)]


def read_numbers(numbers: Sequence[FontNumber], classify: Classifier) -> dict[str, np.ndarray]:
    """Which numbers the pipeline reads right, as strokes and as pictures (boolean arrays)."""
    return {mode: read_mode(numbers, mode, classify) for mode in ("strokes", "pictures")}


def read_mode(numbers: Sequence[FontNumber], mode: str, classify: Classifier) -> np.ndarray:
    """Which numbers the pipeline reads right in one mode, `strokes` or `pictures` (a boolean array)."""
    return np.array([_read(number, mode, classify) == number.text for number in numbers], dtype=bool)


def _read(number: FontNumber, mode: str, classify: Classifier) -> str | None:
    if mode == "pictures":
        return _text(recognize_image, number.picture, classify)
    case = number.strokes
    return _text(recognize_strokes, case.strokes, case.width, case.height, classify, pen_width=case.pen_width)


def _text(recognize, *args, **kwargs) -> str | None:
    # A number the pipeline refuses as beyond its work budget (a glyph traced into many short
    # strokes) is read wrong: a client would get the too_complex error instead of a reading.
    try:
        return recognize(*args, **kwargs).text
    except TooComplex:
        return None


def score_numbers(numbers: Sequence[FontNumber], hits: dict[str, np.ndarray]) -> dict:
    """Whole numbers read right per mode, overall (with a 95 % interval) and by family."""
    families = sorted({number.family for number in numbers})
    owner = np.array([number.family for number in numbers])
    by_family = {
        family: {
            "numbers": int(np.sum(owner == family)),
            **{mode: int(np.sum(read[owner == family])) for mode, read in hits.items()},
        }
        for family in families
    }
    summary = {}
    for mode, read in hits.items():
        worst = min(((c[mode] / c["numbers"], f) for f, c in by_family.items()), default=(0.0, ""))
        summary[mode] = {
            "accuracy": float(read.mean()) if len(read) else 0.0,
            "interval": accuracy_interval(int(read.sum()), len(read)),
            "worst_family": worst,
        }
    return {"numbers": len(numbers), **summary, "by_family": by_family}
