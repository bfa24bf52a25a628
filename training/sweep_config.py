"""`demnistify sweep`'s settings: where the study lives, how many trials it runs and what each one trains."""

from __future__ import annotations

from dataclasses import dataclass

from demnistify.constants import MODEL_NAME, REPO_ROOT
from training.train_config import TrainConfig

DEFAULT_STORAGE = f"sqlite:///{REPO_ROOT / 'optuna.db'}"


@dataclass(frozen=True)
class SweepConfig:
    """Everything `demnistify sweep` depends on; the CLI only fills it."""

    study_name: str = "demnistify-sweep"
    # Optuna's RDB storage URL; workers on several machines share one (PostgreSQL).
    storage: str = DEFAULT_STORAGE
    # Trials in the whole study, over all workers (a worker may start one more while others finish).
    trials: int = 12
    profile: str = "quick"
    min_epochs: int = 1
    max_epochs: int = 4
    train_limit: int | None = None
    test_limit: int | None = None
    sequence_cases: int | None = None
    # Numbers per validation font family that score each trial and gate the best one's promotion.
    handwriting_numbers: int = TrainConfig.handwriting_numbers
    seed: int = 42
    promote: str = "auto"
    tracking_uri: str | None = None
    data_dir: str | None = None
    model_name: str = MODEL_NAME

    def __post_init__(self) -> None:
        if self.trials < 1 or not 1 <= self.min_epochs <= self.max_epochs:
            raise ValueError("trials must be >= 1 and 1 <= min_epochs <= max_epochs.")
        if self.handwriting_numbers < 1:
            raise ValueError(f"handwriting_numbers must be >= 1, got {self.handwriting_numbers}.")
        if self.promote not in ("auto", "never"):
            raise ValueError(f"promote must be auto or never, got {self.promote!r}.")
