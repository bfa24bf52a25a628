"""A run's handwriting numbers read and logged, and its promotion through the gate where the champion reads them too."""

from __future__ import annotations

import numpy as np

from demnistify.constants import CHAMPION_ALIAS
from registry.client import ModelRef, connect, get_alias
from registry.loading import load_classifier
from training import tracking
from training.fonts import load_families, split_families
from training.gate import Scores, decide
from training.handwriting import FontNumber, make_font_numbers, read_numbers
from training.promotion import Verdict, describe_and_gate


def handwriting_numbers(per_family: int, seed: int) -> list[FontNumber]:
    """`per_family` numbers written in each validation font family (never trained on), seeded."""
    _, validation_families = split_families(load_families())
    return [number for family in validation_families for number in make_font_numbers(family, per_family, seed)]


def log_handwriting(classify, numbers: list[FontNumber]) -> dict[str, np.ndarray]:
    """Read the validation families' numbers; log the accuracy per mode and a table by family."""
    hits = read_numbers(numbers, classify)
    tracking.log_metrics(
        {f"handwriting_accuracy_{mode}": float(read.mean()) for mode, read in hits.items() if len(read)}
    )
    table = ["family\tnumbers\tstrokes\tpictures"]
    for family in sorted({n.family for n in numbers}):
        mine = np.array([n.family == family for n in numbers])
        table.append(f"{family}\t{mine.sum()}\t{hits['strokes'][mine].mean():.3f}\t{hits['pictures'][mine].mean():.3f}")
    tracking.log_text("\n".join(table) + "\n", "handwriting_by_family.tsv")
    return hits


def handwriting_gate(
    client, ref: ModelRef, tracking_uri: str | None, numbers: list[FontNumber], scores: Scores | None = None
):
    """The gate of training.gate: the champion reads the candidate's own handwriting numbers again, so the pairs match.

    Without `scores` (a version registered from a finished run, as a sweep's best trial is), the
    candidate reads the numbers too, once a champion is there to compare with.
    """

    def gate(metrics, champion_metrics) -> Verdict:
        champion = get_alias(client, ref.name, CHAMPION_ALIAS)
        if champion is None or champion_metrics is None:
            return Verdict(True, "no champion yet")
        ours = scores or Scores(metrics.get("test_accuracy", 0.0), _read_with(ref.uri, tracking_uri, numbers))
        theirs = Scores(champion_metrics.get("test_accuracy", 0.0), _read_with(champion.uri, tracking_uri, numbers))
        decision = decide(ours, theirs)
        return Verdict(decision.promote, decision.reason)

    return gate


def _read_with(model_uri: str, tracking_uri: str | None, numbers: list[FontNumber]) -> dict[str, np.ndarray]:
    _, classify = load_classifier(model_uri, tracking_uri)
    return read_numbers(numbers, classify)


def promote_or_roll_back(
    ref: ModelRef, tracking_uri: str | None, auto: bool, scores: Scores, numbers: list[FontNumber]
) -> bool:
    """Apply the promotion rule with the handwriting gate and log its reason; a failure deletes the version."""
    # A run that fails after registering must leave the registry as it found it.
    try:
        client = connect(tracking_uri)
        verdict = describe_and_gate(
            client, ref, "demnistify train", auto, gate=handwriting_gate(client, ref, tracking_uri, numbers, scores)
        )
        tracking.log_text(verdict.reason + "\n", "promotion_decision.txt")
        return verdict.promote
    except BaseException:
        tracking.delete_version(ref)
        raise
