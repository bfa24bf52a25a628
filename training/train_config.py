"""`demnistify train`'s settings: the profiles and the frozen `TrainConfig`, every field a logged run parameter."""

from __future__ import annotations

from dataclasses import dataclass

from demnistify.constants import MODEL_NAME

# Epochs fit each profile's time budget on the 2-core reference machine (docs/design.md, "Training").
PROFILES: dict[str, dict] = {
    # Within 3 minutes.
    # Two epochs are too few steps to average weights over.
    "quick": {"epochs": 2, "learning_rate": 3e-3, "sequence_cases": 100, "ema_momentum": 0.0},
    # Within 20 minutes.
    "full": {"epochs": 17, "learning_rate": 2e-3, "sequence_cases": 200},
}
PROMOTE_MODES = ("auto", "never")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run depends on; every field is logged as a run parameter."""

    profile: str = "full"
    epochs: int = 17
    batch_size: int = 128
    learning_rate: float = 2e-3
    model_width: int = 32
    dropout_rate: float = 0.4
    # The model keeps the moving average of its weights over about the last 1,000 steps (0: the
    # last step's weights).
    ema_momentum: float = 0.999
    augment: bool = True
    # Share of training digits redrawn from traced strokes (see AugmentSettings); 0.7 read
    # validation drawings better than 0.4 (docs/design.md).
    stroke_probability: float = 0.7
    # Share of samples that are two traced digits run together, under a random label
    # (AugmentSettings.pair_probability), so that the model is unsure of a merged pair and
    # pipeline.split can count digits by its confidence; 0.05 read validation drawings better
    # than none and than 0.1 (docs/design.md).
    pair_probability: float = 0.05
    # Shares of each epoch drawn from the training font families' digits and from generated
    # allographs (training.allographs); MNIST fills the rest. Chosen on the validation families.
    font_share: float = 0.2
    allograph_share: float = 0.03
    # Numbers per validation font family that score handwriting and gate promotion.
    handwriting_numbers: int = 20
    validation_fraction: float = 0.1
    train_limit: int | None = None
    test_limit: int | None = None
    sequence_cases: int = 200
    seed: int = 42
    promote: str = "auto"
    data_dir: str | None = None
    tracking_uri: str | None = None
    model_name: str = MODEL_NAME
    # False logs the recognizer without registering it (sweep trials: only the best is registered).
    register: bool = True
    # The sweep's run, under which this run is nested.
    parent_run_id: str | None = None

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {self.profile!r}.")
        if self.promote not in PROMOTE_MODES:
            raise ValueError(f"promote must be one of {PROMOTE_MODES}, got {self.promote!r}.")
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0.")
        if self.font_share + self.allograph_share >= 1.0:
            raise ValueError("font_share + allograph_share must leave MNIST a share.")
        for name in ("stroke_probability", "pair_probability", "font_share", "allograph_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if self.handwriting_numbers < 1:
            raise ValueError(f"handwriting_numbers must be >= 1, got {self.handwriting_numbers}.")
        if not 0.0 < self.validation_fraction < 0.5:
            raise ValueError(f"validation_fraction must be in (0, 0.5), got {self.validation_fraction}.")

    @classmethod
    def for_profile(cls, profile: str = "full", **overrides) -> "TrainConfig":
        """The profile's settings, with every override that is not None on top."""
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {profile!r}.")
        chosen = {key: value for key, value in overrides.items() if value is not None}
        return cls(profile=profile, **{**PROFILES[profile], **chosen})
