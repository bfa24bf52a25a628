"""A team's deployment: `mlflow server` on PostgreSQL, trained and served through it, on loopback."""

from __future__ import annotations

import json

import pytest

from tests.support import number_strokes, small_config

pytestmark = pytest.mark.slow


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
