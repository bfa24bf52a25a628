"""The promotion gate and race-checked promotion on a real SQLite registry (versions made without training)."""

from __future__ import annotations

import threading

import pytest
from mlflow import MlflowClient

from registry.client import ModelRef, get_alias
from training.promotion import Verdict, promote_if_better, promotion_verdict

NAME = "gate-test"


@pytest.fixture
def registry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(NAME)
    return client


def version_with(client: MlflowClient, test_accuracy: float, tmp_path) -> ModelRef:
    """A registered version whose run logged `test_accuracy` (the gate reads run metrics)."""
    experiment = client.get_experiment_by_name("Default").experiment_id
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "test_accuracy", test_accuracy)
    client.set_terminated(run.info.run_id)
    version = client.create_model_version(NAME, (tmp_path / "model").as_uri(), run_id=run.info.run_id)
    return ModelRef(NAME, str(version.version), run.info.run_id)


def test_the_gate_compares_candidate_and_champion_metrics():
    assert promotion_verdict({"test_accuracy": 0.9}, None).promote
    assert promotion_verdict({"test_accuracy": 0.99}, {"test_accuracy": 0.98}).promote
    refused = promotion_verdict({"test_accuracy": 0.98}, {"test_accuracy": 0.98})
    assert not refused.promote and "does not beat" in refused.reason


def test_two_promotions_at_once_leave_the_better_version_champion(registry, tmp_path):
    champion = version_with(registry, 0.90, tmp_path)
    registry.set_registered_model_alias(NAME, "champion", champion.version)
    good, better = version_with(registry, 0.95, tmp_path), version_with(registry, 0.97, tmp_path)
    # Both gates compare against version 1 before either moves the alias.
    both_compared = threading.Barrier(2)
    first_calls: set[int] = set()

    def gate(candidate, current) -> Verdict:
        verdict = promotion_verdict(candidate, current)
        if threading.get_ident() not in first_calls:
            first_calls.add(threading.get_ident())
            both_compared.wait(timeout=30)
        return verdict

    verdicts: dict[str, Verdict] = {}

    def promote(ref: ModelRef, accuracy: float) -> None:
        verdicts[ref.version] = promote_if_better(registry, ref, {"test_accuracy": accuracy}, gate=gate)

    threads = [threading.Thread(target=promote, args=args) for args in ((good, 0.95), (better, 0.97))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert get_alias(registry, NAME).version == better.version
    # Whichever moved first, the other saw the alias move and compared again before touching it.
    assert verdicts[better.version].promote
    if not verdicts[good.version].promote:
        assert "does not beat the champion's 0.9700" in verdicts[good.version].reason


def test_a_moved_alias_is_never_overwritten_by_a_stale_comparison(registry, tmp_path):
    champion = version_with(registry, 0.90, tmp_path)
    registry.set_registered_model_alias(NAME, "champion", champion.version)
    stale, newer = version_with(registry, 0.95, tmp_path), version_with(registry, 0.99, tmp_path)

    def gate_while_someone_promotes(candidate, current) -> Verdict:
        # Between this comparison and the move, another promotion takes the alias.
        if get_alias(registry, NAME).version == champion.version:
            registry.set_registered_model_alias(NAME, "champion", newer.version)
        return promotion_verdict(candidate, current)

    verdict = promote_if_better(registry, stale, {"test_accuracy": 0.95}, gate=gate_while_someone_promotes)
    assert not verdict.promote and "0.9900" in verdict.reason
    assert get_alias(registry, NAME).version == newer.version
