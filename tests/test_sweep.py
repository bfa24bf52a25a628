"""`demnistify sweep` as a team runs it: two workers on one Optuna study in PostgreSQL, tracked by `mlflow server`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from demnistify.constants import REPO_ROOT

pytestmark = pytest.mark.slow

TINY_TRIALS = [
    "--trials",
    "4",
    "--min-epochs",
    "1",
    "--max-epochs",
    "2",
    "--train-limit",
    "600",
    "--test-limit",
    "200",
    "--sequence-cases",
    "0",
    "--handwriting-numbers",
    "2",
]


def test_two_workers_share_one_study_and_every_trial_is_a_nested_run(
    tracking_server, postgres_uri, mnist_dir, tmp_path
):
    import optuna
    from mlflow import MlflowClient

    url, _ = tracking_server
    storage = postgres_uri.rsplit("/", 1)[0] + "/optuna"
    command = [
        sys.executable,
        "-m",
        "demnistify.cli",
        "sweep",
        "--study",
        "tiny",
        "--storage",
        storage,
        "--tracking-uri",
        url,
        "--data-dir",
        str(mnist_dir),
        *TINY_TRIALS,
    ]
    logs = [tmp_path / f"worker{index}.log" for index in range(2)]
    workers = [subprocess.Popen(command, cwd=REPO_ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT) for log in logs]
    statuses = [worker.wait(timeout=540) for worker in workers]
    assert statuses == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)

    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    assert len(trials) >= 4
    assert all(trial.state.name in ("COMPLETE", "PRUNED") for trial in trials)
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    experiment = client.get_experiment_by_name("demnistify").experiment_id
    parent_id = optuna.load_study(study_name="tiny", storage=storage).user_attrs["mlflow_parent_run_id"]
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{parent_id}'")
    # Every trial is one nested run, found from either side.
    assert {trial.user_attrs["run_id"] for trial in trials} == {run.info.run_id for run in children}
    by_trial = {run.data.tags["optuna.trial"]: run for run in children}
    for trial in trials:
        run = by_trial[str(trial.number)]
        assert float(run.data.params["learning_rate"]) == pytest.approx(trial.params["learning_rate"])
        assert run.info.status == ("FINISHED" if trial.state.name == "COMPLETE" else "KILLED")
        history = [metric.value for metric in client.get_metric_history(run.info.run_id, "val_accuracy")]
        assert history == pytest.approx(list(trial.intermediate_values.values()))
    # Both workers ran trials (each run names the process that trained it).
    assert len({run.data.tags["sweep.worker"] for run in children}) == 2
    parent = client.get_run(parent_id)
    best = max((trial for trial in trials if trial.state.name == "COMPLETE"), key=lambda trial: trial.value)
    assert parent.info.status == "FINISHED" and parent.data.metrics["best_val_accuracy"] == best.value
    # The best trial went through the promotion gate: registered from its run, champion of an empty registry.
    champion = client.get_model_version_by_alias("demnistify-cnn", "champion")
    assert champion.run_id == best.user_attrs["run_id"]
    assert f"trial {best.number}" in champion.description
    leader = [log.read_text() for log in logs if "registered as demnistify-cnn" in log.read_text()]
    assert len(leader) == 1 and "promoted to @champion" in leader[0]
