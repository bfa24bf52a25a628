"""The promotion rule: a new version replaces the champion only if it reads no worse, beyond noise, anywhere."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# A difference counts as real beyond this many standard errors (two-sided 95 %).
NOISE_Z = 1.96
# MNIST test has 10,000 digits.
TEST_DIGITS = 10_000


@dataclass(frozen=True)
class Scores:
    """What the rule compares: MNIST test accuracy and, per handwriting mode, which numbers were read right."""

    test_accuracy: float
    handwriting: dict[str, np.ndarray]


@dataclass(frozen=True)
class Decision:
    """Whether to promote, and why, in a sentence for the log and the run."""

    promote: bool
    reason: str


def paired_z(candidate: np.ndarray, champion: np.ndarray) -> float:
    """McNemar's z for two readers of the same numbers: positive when the candidate reads more right."""
    wins, losses = int(np.sum(candidate & ~champion)), int(np.sum(~candidate & champion))
    return 0.0 if wins + losses == 0 else (wins - losses) / math.sqrt(wins + losses)


def test_z(candidate: float, champion: float) -> float:
    """The difference of two MNIST test accuracies in standard errors of that difference."""
    mean = (candidate + champion) / 2
    spread = math.sqrt(max(2 * mean * (1 - mean) / TEST_DIGITS, 1e-12))
    return (candidate - champion) / spread


def decide(candidate: Scores, champion: Scores | None) -> Decision:
    """Promote when nothing is worse beyond noise and the candidate is better on MNIST test or clearly
    better on a handwriting mode; without a champion, always."""
    if champion is None:
        return Decision(True, "no champion yet")
    z = {"test": test_z(candidate.test_accuracy, champion.test_accuracy)}
    z |= {
        mode: paired_z(hits, champion.handwriting[mode])
        for mode, hits in candidate.handwriting.items()
        if mode in champion.handwriting and len(champion.handwriting[mode]) == len(hits)
    }
    summary = ", ".join(f"{name} z={value:+.2f}" for name, value in z.items())
    worse = [name for name, value in z.items() if value < -NOISE_Z]
    if worse:
        return Decision(False, f"reads {' and '.join(worse)} worse than the champion beyond noise ({summary})")
    better_test = candidate.test_accuracy > champion.test_accuracy
    better_writing = [name for name, value in z.items() if name != "test" and value > NOISE_Z]
    if better_test or better_writing:
        return Decision(True, f"better on {'MNIST test' if better_test else ' and '.join(better_writing)} ({summary})")
    return Decision(False, f"not better than the champion ({summary})")
