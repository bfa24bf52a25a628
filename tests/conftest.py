"""Shared fixtures: MNIST from MNIST_DIR, and a small model trained into a temporary MLflow store."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests must never reach the network nor the repo's own tracking database.
os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The MNIST folder the tests read (MNIST_DIR, else the shared copy beside the repo)."""
    from training.data import default_data_dir

    directory = default_data_dir()
    if not (directory / "train-images-idx3-ubyte.gz").exists() and not (directory / "mnist.npz").exists():
        pytest.fail(f"MNIST not found in {directory}: set MNIST_DIR to the folder of the IDX files.")
    return directory


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    """The verified MNIST arrays."""
    from training.data import load_mnist

    return load_mnist(mnist_dir)


@dataclass(frozen=True)
class TrainedStore:
    """A temporary tracking store holding one registered, promoted small model."""

    tracking_uri: str
    root: Path
    result: object  # training.train.TrainResult

    @property
    def model_uri(self) -> str:
        return self.result.model.uri


def small_config(tracking_uri: str, data_dir: Path, **overrides):
    """A fast training config: a narrow CNN on a slice of MNIST, good to about 97.5 % (~40 s)."""
    from training.train import TrainConfig

    settings = dict(epochs=3, train_limit=20000, test_limit=1000, model_width=16, augment=True,
                    sequence_cases=0, handwriting_numbers=2, tracking_uri=tracking_uri,
                    data_dir=str(data_dir))
    return TrainConfig.for_profile("quick", **{**settings, **overrides})


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, mnist_dir) -> TrainedStore:
    """Train once per session into a temporary SQLite store; tests that change it copy it first."""
    from training.train import train

    root = tmp_path_factory.mktemp("store")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    result = train(small_config(tracking_uri, mnist_dir))
    return TrainedStore(tracking_uri=tracking_uri, root=root, result=result)
