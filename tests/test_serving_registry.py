"""The server follows the registry: hot swap, a version that fails to load, no model, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import json
import shutil
import signal
import time
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from demnistify.cli import main
from serving.app import running_server
from tests.clients_support import start_server
from tests.test_serving_app import drawing, serve_config, strokes_message
from registry.client import connect as registry_client
from registry.client import promote

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_store(trained_store, tmp_path_factory):
    """A copy of the session store (same artifacts) whose alias this module may move."""
    root = tmp_path_factory.mktemp("serving-store")
    shutil.copy(trained_store.root / "mlflow.db", root / "mlflow.db")
    return type(trained_store)(f"sqlite:///{root / 'mlflow.db'}", root, trained_store.result)


def add_version(store, source: str) -> str:
    """Register another version of the model from `source` (a registry test fixture, not training)."""
    client = registry_client(store.tracking_uri)
    ref = store.result.model
    return str(client.create_model_version(ref.name, source, run_id=ref.run_id).version)


def model_source(store) -> str:
    # Where the artifacts lie, not the version's `models:/m-...` source: MLflow resolves such a
    # source through the process's global tracking URI, which an earlier test may have moved.
    ref = store.result.model
    return registry_client(store.tracking_uri).get_model_version_download_uri(ref.name, ref.version)


async def health(port: int) -> dict:
    def get():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return json.loads(response.read())

    return await asyncio.to_thread(get)


async def next_event(ws, kind: str, timeout: float = 30) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == kind:
                return event


async def until_health(port: int, predicate, timeout: float = 30) -> dict:
    async with asyncio.timeout(timeout):
        while not predicate(document := await health(port)):
            await asyncio.sleep(0.2)
    return document


def test_hot_swap_and_failed_version_keep_serving(own_store, tmp_path):
    good = add_version(own_store, model_source(own_store))
    (tmp_path / "empty").mkdir()
    broken = add_version(own_store, (tmp_path / "empty").as_uri())
    name = own_store.result.model.name
    client = registry_client(own_store.tracking_uri)

    async def scenario():
        gc.unfreeze()
        async with running_server(serve_config(own_store, poll_seconds=0.3)) as server:
            # The loaded model is kept out of the collector's full passes (serving.model_store.freeze_heap).
            assert gc.get_freeze_count() > 10_000
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                hello = json.loads(await ws.recv())
                await asyncio.to_thread(promote, client, good, name)
                swapped = await next_event(ws, "model")
                await ws.send(strokes_message(1, drawing("71")))
                after_swap = await next_event(ws, "result")
                assert gc.get_freeze_count() > 10_000
                await asyncio.to_thread(promote, client, broken, name)
                degraded = await until_health(server.port, lambda doc: doc["status"] == "degraded")
                await ws.send(strokes_message(2, drawing("40")))
                after_failure = await next_event(ws, "result")
                await asyncio.to_thread(promote, client, good, name)
                recovered = await until_health(server.port, lambda doc: doc["status"] == "ok")
                return hello, swapped, after_swap, degraded, after_failure, recovered

    hello, swapped, after_swap, degraded, after_failure, recovered = asyncio.run(scenario())
    assert hello["model"]["version"] == own_store.result.model.version != good
    assert swapped == {"type": "model", "model": {"name": name, "version": good,
                                                  "run_id": own_store.result.model.run_id}}
    assert (after_swap["text"], after_swap["model"]["version"]) == ("71", good)
    assert degraded["model"]["version"] == good and f"Version {broken} failed to load" in degraded["error"]
    # The failed version sent no `model` event: the next event was this result, from the old version.
    assert (after_failure["id"], after_failure["text"], after_failure["model"]["version"]) == (2, "40", good)
    assert recovered["model"]["version"] == good and "error" not in recovered


def test_no_registered_model_exits_with_how_to_train(tmp_path, capsys):
    status = main(["serve", "--port", "0", "--tracking-uri", f"sqlite:///{tmp_path / 'empty.db'}"])
    error = capsys.readouterr().err
    assert status == 2
    assert "No model version is registered" in error and "demnistify train" in error


def test_sigterm_closes_connections_with_1001_and_exits_0(trained_store, tmp_path):
    process, page = start_server(trained_store.tracking_uri, tmp_path / "stderr.log")
    try:
        url = page.replace("http://", "ws://")

        async def client():
            async with connect(url) as ws:
                await ws.recv()
                process.send_signal(signal.SIGTERM)
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 30)
                return closed.value.rcvd.code

        started = time.monotonic()
        code = asyncio.run(client())
        status = process.wait(timeout=30)
    finally:
        process.kill()
        process.wait()
    assert code == 1001
    assert status == 0 and time.monotonic() - started < 20
    assert "Traceback" not in (tmp_path / "stderr.log").read_text()
