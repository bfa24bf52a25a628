"""Shared fixtures: the template classifier, MNIST, a small model trained into a temporary MLflow store and
per-module copies of it, a team's deployment (PostgreSQL, `mlflow server` on it) on loopback ports, and headless
Chromium.

Helpers that are not fixtures live in tests/support.py (drawings, configs) and tests/server_support.py (servers).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest

from tests.server_support import CHROMIUM, CHROMIUM_ARGS, POSTGRES_BIN, as_database_user, free_port, healthy, wait_until
from tests.support import TrainedStore, small_config, template_classifier

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Tests must never reach the network nor the repo's own tracking database.
os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="session")
def classify():
    """The template classifier (tests.support): reads the test templates' digits, no model needed."""
    return template_classifier()


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


@pytest.fixture(scope="session")
def trained_store(tmp_path_factory, mnist_dir) -> TrainedStore:
    """Train once per session into a temporary SQLite store; tests that change it copy it first."""
    from training.train import train

    root = tmp_path_factory.mktemp("store")
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    result = train(small_config(tracking_uri, mnist_dir))
    return TrainedStore(tracking_uri=tracking_uri, root=root, result=result)


@pytest.fixture(scope="module")
def own_store(trained_store, tmp_path_factory) -> TrainedStore:
    """A copy of the session's store (same artifacts) for one test module, whose alias and versions it may change."""
    root = tmp_path_factory.mktemp("own-store")
    shutil.copy(trained_store.root / "mlflow.db", root / "mlflow.db")
    return replace(trained_store, tracking_uri=f"sqlite:///{root / 'mlflow.db'}", root=root)


@pytest.fixture(scope="module")
def postgres_uri():
    """A throwaway PostgreSQL cluster on a loopback port, with an `mlflow` and an `optuna` database."""
    if not (POSTGRES_BIN / "initdb").exists():
        pytest.fail("PostgreSQL is not installed: run scripts/system-packages.sh (Debian's postgresql).")
    data = Path(tempfile.mkdtemp(prefix="demnistify-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
    subprocess.run(
        as_database_user([str(POSTGRES_BIN / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        as_database_user(
            [str(POSTGRES_BIN / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(data)]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ready = [str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)]
    wait_until(lambda: subprocess.run(ready, capture_output=True).returncode == 0, 30, "PostgreSQL")
    for database in ("mlflow", "optuna"):
        subprocess.run(
            [str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", database], check=True
        )
    yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/mlflow"
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def tracking_server(postgres_uri, tmp_path_factory):
    """`mlflow server` backed by PostgreSQL, proxying artifacts to a folder, on a loopback port."""
    artifacts = tmp_path_factory.mktemp("artifact-store")
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        postgres_uri,
        "--artifacts-destination",
        artifacts.as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = tmp_path_factory.mktemp("mlflow-server") / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: healthy(url) or server.poll() is not None, 120, "mlflow server")
    assert server.poll() is None, f"mlflow server exited: {log.read_text()[-3000:]}"
    yield url, artifacts
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
