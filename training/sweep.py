"""`demnistify sweep`: an Optuna study of training settings, trials as nested MLflow runs, the best one gated.

Workers on several machines join one study through an RDB storage; the first worker (the one
that creates the study) owns the MLflow parent run and, once every trial has ended, registers
the best trial through `train`'s promotion gate. The search space is in `training.sweep_trials`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import optuna

from registry.client import ModelRef, connect
from training import tracking
from training.sweep_config import SweepConfig
from training.sweep_trials import objective

PARENT_RUN_ATTR = "mlflow_parent_run_id"
# Workers send a heartbeat this often; a trial silent for the grace period is marked failed,
# so a worker that died does not keep the study (and the registration of its best) waiting.
HEARTBEAT_SECONDS = 20
GRACE_SECONDS = 120
# How long a joining worker waits for the first worker to create the parent run.
JOIN_SECONDS = 120


@dataclass(frozen=True)
class SweepResult:
    """What one worker saw: the study's trials when it ended and, for the first worker, the registration."""

    study_name: str
    parent_run_id: str
    trials: list[optuna.trial.FrozenTrial]
    best: optuna.trial.FrozenTrial | None
    model: ModelRef | None
    promoted: bool
    wall_seconds: float


def open_study(config: SweepConfig, seed: int | None) -> optuna.Study:
    """The study in the shared storage, created if it is new (maximizing validation accuracy)."""
    storage = optuna.storages.RDBStorage(
        config.storage, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS
    )
    return optuna.create_study(
        study_name=config.study_name,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    )


def join(config: SweepConfig) -> tuple[optuna.Study, str, bool]:
    """(study, parent run id, whether this worker leads): the worker that creates the study leads."""
    if not _create(config):
        # Joiners sample with their own seeds: equal seeds would draw the same first trials.
        study = open_study(config, seed=None)
        return study, _wait_for_parent(study), False
    study = open_study(config, seed=config.seed)
    parent = tracking.start_parent_run(
        f"sweep-{config.study_name}", {"optuna.study": config.study_name, "optuna.storage": _safe(config.storage)}
    )
    study.set_user_attr(PARENT_RUN_ATTR, parent)
    return study, parent, True


def _create(config: SweepConfig) -> bool:
    """Create the study; False when it exists. Workers starting together on an empty database may
    collide while Optuna creates its tables: the loser retries."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(3):
        try:
            optuna.create_study(study_name=config.study_name, storage=config.storage, direction="maximize")
            return True
        except optuna.exceptions.DuplicatedStudyError:
            return False
        except SQLAlchemyError:
            if attempt == 2:
                raise
            time.sleep(1 + attempt)
    return False


def _wait_for_parent(study: optuna.Study) -> str:
    # `user_attrs` reads the storage on every access.
    deadline = time.monotonic() + JOIN_SECONDS
    while (parent := study.user_attrs.get(PARENT_RUN_ATTR)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"Study {study.study_name} has no MLflow parent run after {JOIN_SECONDS} s.")
        time.sleep(1)
    return parent


def _safe(url: str) -> str:
    # Storage URLs may carry a password; the run keeps only the scheme and host part after '@'.
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def sweep(config: SweepConfig) -> SweepResult:
    """Run trials until the study holds `config.trials`; the leading worker then registers the best one."""
    started = time.monotonic()
    tracking.configure_tracking(config.tracking_uri)
    study, parent, leader = join(config)
    stop = optuna.study.MaxTrialsCallback(config.trials, states=None)
    # A failing trial (bad data, a crash in one setting) is recorded FAILED; the study goes on.
    study.optimize(objective(config, parent), callbacks=[stop], catch=(Exception,))
    if not leader:
        return SweepResult(
            config.study_name, parent, study.trials, _best(study), None, False, time.monotonic() - started
        )
    _wait_for_running(study)
    best = _best(study)
    ref, promoted = _register_best(config, best) if best is not None else (None, False)
    summary = {f"best_{name}": value for name, value in (best.params if best else {}).items()}
    tracking.end_parent_run(parent, summary, {"best_val_accuracy": best.value} if best else {})
    return SweepResult(config.study_name, parent, study.trials, best, ref, promoted, time.monotonic() - started)


def _best(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return max(done, key=lambda trial: trial.value) if done else None


def _wait_for_running(study: optuna.Study) -> None:
    while study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        optuna.storages.fail_stale_trials(study)
        time.sleep(2)


def _register_best(config: SweepConfig, best: optuna.trial.FrozenTrial) -> tuple[ModelRef, bool]:
    from training.handwriting_gate import handwriting_gate, handwriting_numbers
    from training.model_logging import register
    from training.promotion import describe_and_gate

    client = connect(config.tracking_uri)
    ref = register(client, best.user_attrs["model_uri"], config.model_name)
    # The gate `train` uses: MNIST test and the validation families' handwriting, read by both versions.
    numbers = handwriting_numbers(config.handwriting_numbers, config.seed)
    verdict = describe_and_gate(
        client,
        ref,
        f"demnistify sweep (study {config.study_name}, trial {best.number})",
        config.promote == "auto",
        gate=handwriting_gate(client, ref, config.tracking_uri, numbers),
    )
    return ref, verdict.promote
