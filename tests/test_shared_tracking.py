"""A team's deployment: `mlflow server` on PostgreSQL, trained and served through it, on loopback."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.clients_support import free_port, number_strokes
from tests.conftest import small_config

pytestmark = pytest.mark.slow

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
    """A throwaway PostgreSQL cluster on a loopback port, with an `mlflow` database."""
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
    subprocess.run([str(POSTGRES_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlflow", "mlflow"],
                   check=True)
    yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/mlflow"
    server.terminate()
    server.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
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


def test_train_and_serve_through_a_postgres_tracking_server(tracking_server, mnist_dir, monkeypatch):
    from mlflow import MlflowClient

    from training.train import train

    url, artifacts = tracking_server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    result = train(small_config(None, mnist_dir))
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    assert client.get_run(result.run_id).info.status == "FINISHED"
    assert str(client.get_model_version_by_alias("demnistify-cnn", "champion").version) == result.model.version
    # Artifacts went through the server's proxy into its artifact store, not into this repo.
    assert list(artifacts.rglob("MLmodel")) and list(artifacts.rglob("confusion_matrix.png"))

    hello, reply = serve_and_recognize(url, number_strokes("17", 40, 40))
    assert hello["model"]["version"] == result.model.version
    assert reply["type"] == "result" and reply["text"] == "17"


def serve_and_recognize(tracking_uri: str, strokes) -> tuple[dict, dict]:
    """Start the real server on the tracking server's champion, send one drawing, return hello and result."""
    import asyncio

    from websockets.asyncio.client import connect

    from serving.app import running_server
    from serving.config import ServeConfig

    async def exchange():
        async with running_server(ServeConfig(port=0, tracking_uri=tracking_uri)) as running:
            async with connect(f"ws://127.0.0.1:{running.port}/") as websocket:
                hello = json.loads(await websocket.recv())
                request = {"type": "recognize", "id": 1, "width": 800, "height": 300, "strokes": strokes}
                await websocket.send(json.dumps(request))
                return hello, json.loads(await websocket.recv())

    return asyncio.run(exchange())
