"""Shared fixtures: MNIST from MNIST_DIR, a small model trained into a temporary MLflow store, and a
team's deployment (PostgreSQL, `mlflow server` on it) on loopback ports."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.clients_support import free_port

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


POSTGRES_BIN = Path((sorted(glob.glob("/usr/lib/postgresql/*/bin")) or ["/usr/bin"])[-1])


def as_database_user(command: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; Debian's package created the `postgres` user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"{what} did not start within {timeout:.0f} s")


@pytest.fixture(scope="module")
def postgres_uri():
    """A throwaway PostgreSQL cluster on a loopback port, with an `mlflow` and an `optuna` database."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.fail("PostgreSQL is not installed: run scripts/system-packages.sh (Debian's postgresql).")
    data = Path(tempfile.mkdtemp(prefix="demnistify-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(as_database_user([str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust"]),
                   check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(as_database_user([str(POSTGRES_BIN / "postgres"), "-D", str(data), "-p", str(port),
                                                "-h", "127.0.0.1", "-k", str(data)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ready = [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
    wait_until(lambda: subprocess.run(ready, capture_output=True).returncode == 0, 30, "PostgreSQL")
    for database in ("mlflow", "optuna"):
        subprocess.run([str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", database],
                       check=True)
    yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/mlflow"
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


def healthy(url: str, path: str = "/health") -> bool:
    """Whether the server at `url` answers 200 on `path` (mlflow server: /health, models serve: /ping)."""
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def tracking_server(postgres_uri, tmp_path_factory):
    """`mlflow server` backed by PostgreSQL, proxying artifacts to a folder, on a loopback port."""
    artifacts = tmp_path_factory.mktemp("artifact-store")
    port = free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", postgres_uri,
               "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1"]
    log = tmp_path_factory.mktemp("mlflow-server") / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(url) or server.poll() is not None, 120, "mlflow server")
    assert server.poll() is None, f"mlflow server exited: {log.read_text()[-3000:]}"
    yield url, artifacts
    server.terminate()
    server.wait(timeout=30)
