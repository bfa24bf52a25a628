"""The server follows the registry: hot swap, a version that fails to load, no model, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from demnistify.cli import main
from registry.client import connect as registry_client
from registry.client import promote
from serving.app import running_server
from tests.server_support import add_version, model_source, next_event, serve_config, start_server, until_health
from tests.support import drawing, strokes_message

pytestmark = pytest.mark.slow


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
    assert swapped == {
        "type": "model",
        "model": {"name": name, "version": good, "run_id": own_store.result.model.run_id},
    }
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
