"""Digit shapes MNIST's writers rarely used, drawn as pen strokes by a parametric generator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline import render_strokes_digit

Strokes = list[np.ndarray]
# Points per unit of path length: enough for smooth curves after the strokes are rendered.
DENSITY = 24
# Every control point moves by this much (digit heights) from one sample to the next.
JITTER = 0.03
# A 1's flag: its length in digit heights and how steeply it rises into the stem, in degrees
# above level (docs/design.md, "Allographs").
FLAG_LENGTH = (0.18, 0.45)
FLAG_ANGLE = (25.0, 60.0)


def _line(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=np.float64)


def _arc(center: tuple[float, float], radius: tuple[float, float], start: float, end: float) -> np.ndarray:
    turns = np.linspace(np.radians(start), np.radians(end), max(6, int(abs(end - start) / 15)))
    return np.stack([center[0] + radius[0] * np.cos(turns), center[1] + radius[1] * np.sin(turns)], axis=1)


def flagged_one(rng: np.random.Generator, foot: bool) -> Strokes:
    """1 as most of the world writes it: an up-stroke flag into the stem, maybe on a foot."""
    # The flag rises steeply (FLAG_ANGLE): a long, nearly level flag over a stem is a 7's bar.
    length, angle = rng.uniform(*FLAG_LENGTH), np.radians(rng.uniform(*FLAG_ANGLE))
    flag, lift = length * np.cos(angle), length * np.sin(angle)
    strokes = [_line((-flag, lift), (0.0, 0.0), (rng.uniform(-0.05, 0.05), 1.0))]
    if foot:
        half = rng.uniform(0.15, 0.3)
        strokes.append(_line((-half, 1.0), (half, 1.0)))
    return strokes


def crossed_seven(rng: np.random.Generator) -> Strokes:
    """7 with a bar across its stem, sometimes with a serif at the start of its top."""
    width, foot = rng.uniform(0.5, 0.75), rng.uniform(0.0, 0.3)
    top = [(0.0, rng.uniform(0.08, 0.2)), (0.0, 0.0)] if rng.random() < 0.3 else [(0.0, 0.0)]
    bar_y, bar = rng.uniform(0.45, 0.6), rng.uniform(0.18, 0.3)
    stem_x = width - (width - foot) * bar_y
    return [_line(*top, (width, 0.0), (foot, 1.0)), _line((stem_x - bar, bar_y), (stem_x + bar, bar_y))]


def four(rng: np.random.Generator, open_top: bool) -> Strokes:
    """4 with its top open (two strokes that never meet above) or closed into a triangle."""
    width, arm = rng.uniform(0.55, 0.8), rng.uniform(0.55, 0.7)
    stem = width * rng.uniform(0.6, 0.8)
    start = (width * rng.uniform(0.1, 0.3), 0.0) if open_top else (stem, 0.0)
    stem_top = rng.uniform(0.05, 0.35) if open_top else 0.0
    return [_line(start, (0.0, arm), (width, arm)), _line((stem, stem_top), (stem, 1.0))]


def straight_nine(rng: np.random.Generator) -> Strokes:
    """9 as a round head on a straight stem."""
    radius = rng.uniform(0.2, 0.3)
    head = _arc((radius, radius), (radius * rng.uniform(0.9, 1.3), radius), 0, 360)
    stem_x = head[:, 0].max()
    return [head, _line((stem_x, radius), (stem_x - rng.uniform(0.0, 0.1), 1.0))]


def looped_two(rng: np.random.Generator) -> Strokes:
    """2 whose stroke curls into a small loop where it meets the base."""
    width, loop = rng.uniform(0.55, 0.75), rng.uniform(0.08, 0.14)
    crown = _arc((width / 2, 0.28), (width / 2, 0.28), 200, 360)
    descent = _line((width, 0.28), (loop, 1.0 - loop))
    curl = _arc((loop * 1.2, 1.0 - loop), (loop, loop), 180, 450)[::-1]
    return [np.concatenate([crown, descent, curl, _line((loop * 1.2, 1.0), (width * 1.1, 1.0))])]


KINDS: dict[str, tuple[int, Callable[[np.random.Generator], Strokes]]] = {
    "flagged_one": (1, lambda rng: flagged_one(rng, foot=False)),
    "footed_one": (1, lambda rng: flagged_one(rng, foot=True)),
    "crossed_seven": (7, crossed_seven),
    "open_four": (4, lambda rng: four(rng, open_top=True)),
    "closed_four": (4, lambda rng: four(rng, open_top=False)),
    "straight_nine": (9, straight_nine),
    "looped_two": (2, looped_two),
}


def _jittered(strokes: Strokes, rng: np.random.Generator) -> Strokes:
    return [
        line + rng.normal(0.0, JITTER, size=line.shape) if len(line) <= 4 else line + rng.normal(0.0, JITTER, size=2)
        for line in strokes
    ]


def _densified(line: np.ndarray) -> np.ndarray:
    steps = np.linalg.norm(np.diff(line, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    samples = np.linspace(0.0, arc[-1], max(2, int(arc[-1] * DENSITY)))
    return np.stack([np.interp(samples, arc, line[:, 0]), np.interp(samples, arc, line[:, 1])], axis=1)


def allograph_digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[Strokes]]:
    """`count` generated digits, the kinds in turn: MNIST images, labels, and their strokes (28x28 pixels)."""
    rng = np.random.default_rng([seed, 7])
    kinds = list(KINDS.values())
    images, labels, traces = [], [], []
    for index in range(count):
        label, draw = kinds[index % len(kinds)]
        strokes = [_densified(line) for line in _jittered(draw(rng), rng)]
        image = render_strokes_digit(strokes)
        images.append(np.round(image * 255).astype(np.uint8))
        labels.append(label)
        traces.append([line * 20.0 + 4.0 for line in strokes])
    return np.stack(images), np.array(labels, dtype=np.uint8), traces
