"""The promotion gate (candidate metrics against the champion's) and a promotion that refuses a moved alias."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mlflow import MlflowClient

from demnistify.constants import CHAMPION_ALIAS
from registry.client import ModelRef, get_alias, run_metrics

logger = logging.getLogger(__name__)

Metrics = Mapping[str, float]
# Times the gate compares again when the alias moved between its comparison and the move.
PROMOTION_ATTEMPTS = 3
# Promotions from one process (the threads of a sweep, tests) take turns at the re-read and
# the move; between processes the window is the one registry call that moves the alias.
_MOVING = threading.Lock()


@dataclass(frozen=True)
class Verdict:
    """Whether a candidate version may become champion, and why."""

    promote: bool
    reason: str


def beats_on_test_accuracy(candidate: Metrics, champion: Metrics) -> Verdict:
    """Strictly higher test accuracy than the champion's (a tie keeps the champion)."""
    new, old = candidate.get("test_accuracy", 0.0), champion.get("test_accuracy", 0.0)
    if new > old:
        return Verdict(True, f"test accuracy {new:.4f} beats the champion's {old:.4f}")
    return Verdict(False, f"test accuracy {new:.4f} does not beat the champion's {old:.4f}")


# Every criterion must pass; each takes the candidate's and the champion's run metrics.
CRITERIA: tuple[Callable[[Metrics, Metrics], Verdict], ...] = (beats_on_test_accuracy,)


def promotion_verdict(candidate: Metrics, champion: Metrics | None) -> Verdict:
    """The gate: promote over no champion, else only when every criterion passes (the first failure says why)."""
    if champion is None:
        return Verdict(True, "there is no champion yet")
    verdicts = [criterion(candidate, champion) for criterion in CRITERIA]
    failed = [verdict for verdict in verdicts if not verdict.promote]
    return failed[0] if failed else Verdict(True, "; ".join(verdict.reason for verdict in verdicts))


Gate = Callable[[Metrics, Metrics | None], Verdict]


def promote_if_better(
    client: MlflowClient,
    candidate: ModelRef,
    metrics: Metrics,
    alias: str = CHAMPION_ALIAS,
    gate: Gate = promotion_verdict,
) -> Verdict:
    """Move the alias to `candidate` if the gate passes against the version it points to now.

    Right before moving it, the alias is read again; if it moved since the gate compared, this
    comparison is void and the gate compares with the new champion (PROMOTION_ATTEMPTS times).
    """
    for _ in range(PROMOTION_ATTEMPTS):
        champion = get_alias(client, candidate.name, alias)
        verdict = gate(metrics, run_metrics(client, champion) if champion is not None else None)
        if not verdict.promote:
            return verdict
        with _MOVING:
            now = get_alias(client, candidate.name, alias)
            if _version(now) == _version(champion):
                client.set_registered_model_alias(candidate.name, alias, candidate.version)
                return verdict
        logger.info(
            "%s@%s moved from version %s to %s while version %s was compared; comparing again.",
            candidate.name,
            alias,
            _version(champion),
            _version(now),
            candidate.version,
        )
    return Verdict(False, f"{candidate.name}@{alias} kept moving during {PROMOTION_ATTEMPTS} comparisons")


def _version(ref: ModelRef | None) -> str | None:
    return ref.version if ref is not None else None


def describe_and_gate(
    client: MlflowClient, ref: ModelRef, trained_by: str, gate_it: bool, gate: Gate = promotion_verdict
) -> Verdict:
    """Describe a new version (what trained it, its accuracies, its run), then put it through the gate."""
    from training.model_logging import describe

    metrics = run_metrics(client, ref)
    describe(client, ref, metrics, trained_by)
    if not gate_it:
        return Verdict(False, "promotion was not asked for")
    verdict = promote_if_better(client, ref, metrics, gate=gate)
    logger.info("Version %s %s: %s.", ref.version, "promoted" if verdict.promote else "not promoted", verdict.reason)
    return verdict
