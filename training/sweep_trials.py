"""The sweep's trials: the search space, the trial function, and pruning on validation accuracy after each epoch.

Search space (each trial trains `demnistify train`'s model with these, the rest from the profile):

| parameter            | range                              | why                                                    |
|----------------------|------------------------------------|--------------------------------------------------------|
| `learning_rate`      | 3e-4 .. 1e-2, log-uniform          | the profiles' 2e-3 / 3e-3 sit mid-range                |
| `model_width`        | 16, 24, 32, 48 (first conv filters)| 32 is the default; 16 halves the cost, 48 tests more   |
| `dropout_rate`       | 0.2 .. 0.5                         | around the default 0.4                                 |
| `stroke_probability` | 0.3 .. 0.9 (stroke share)          | 0.7 beat 0.4 on drawn digits; both ends stay in reach  |
| `epochs`             | `min_epochs` .. `max_epochs`       | the budget: quick 2, full 17                           |

Trials are judged on validation accuracy (never on the test digits) and pruned on it after
each epoch by a median pruner.
"""

from __future__ import annotations

import os
import socket
from dataclasses import replace

import keras
import optuna

from training import tracking
from training.sweep_config import SweepConfig

WIDTHS = (16, 24, 32, 48)
LEARNING_RATES = (3e-4, 1e-2)
DROPOUTS = (0.2, 0.5)
STROKE_SHARES = (0.3, 0.9)


class PruneOnValidation(keras.callbacks.Callback):
    """Reports validation accuracy to the trial after each epoch and stops the run when Optuna prunes it."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial, self.last = trial, None

    def on_train_begin(self, logs=None) -> None:
        self.trial.set_user_attr("run_id", tracking.active_run_id())
        tracking.set_tags(
            {
                "optuna.study": self.trial.study.study_name,
                "optuna.trial": str(self.trial.number),
                "sweep.worker": f"{socket.gethostname()}:{os.getpid()}",
            }
        )

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.last = float((logs or {})["val_accuracy"])
        self.trial.report(self.last, step=epoch + 1)
        if self.trial.should_prune():
            raise TrialStopped(f"Pruned at epoch {epoch + 1} (validation accuracy {self.last:.4f}).")


class TrialStopped(optuna.TrialPruned, tracking.RunStopped):
    """A pruned trial: Optuna records it PRUNED, MLflow ends its run KILLED."""


def suggest(trial: optuna.Trial, config: SweepConfig) -> dict:
    """One point of the search space (see the module docstring)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", *LEARNING_RATES, log=True),
        "model_width": trial.suggest_categorical("model_width", WIDTHS),
        "dropout_rate": trial.suggest_float("dropout_rate", *DROPOUTS),
        "stroke_probability": trial.suggest_float("stroke_probability", *STROKE_SHARES),
        "epochs": trial.suggest_int("epochs", config.min_epochs, config.max_epochs),
    }


def objective(config: SweepConfig, parent_run_id: str):
    """The trial function: train with the suggested settings, nested under the parent run, unregistered."""
    from training.train import train
    from training.train_config import TrainConfig

    def run_trial(trial: optuna.Trial) -> float:
        settings = TrainConfig.for_profile(
            config.profile,
            **suggest(trial, config),
            train_limit=config.train_limit,
            test_limit=config.test_limit,
            sequence_cases=config.sequence_cases,
            handwriting_numbers=config.handwriting_numbers,
            seed=config.seed,
            tracking_uri=config.tracking_uri,
            data_dir=config.data_dir,
            model_name=config.model_name,
        )
        pruning = PruneOnValidation(trial)
        result = train(replace(settings, register=False, promote="never", parent_run_id=parent_run_id), [pruning])
        trial.set_user_attr("model_uri", result.model_uri)
        return pruning.last

    return run_trial
