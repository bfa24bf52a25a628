"""GET /metrics: Prometheus text from the real server, counting what its clients did."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect

from serving.app import running_server
from tests.server_support import http_get, scrape, serve_config, value
from tests.support import drawing, strokes_message

pytestmark = pytest.mark.slow


def test_metrics_count_recognitions_errors_caches_connections_and_the_model(trained_store):
    model = trained_store.result.model

    async def scenario():
        async with running_server(serve_config(trained_store)) as server:
            before = await asyncio.to_thread(scrape, server.port)
            async with (
                connect(f"ws://127.0.0.1:{server.port}/") as first,
                connect(f"ws://127.0.0.1:{server.port}/") as second,
            ):
                await first.recv(), await second.recv()
                for request_id in (1, 2):  # The same drawing twice: the second is read from the caches.
                    await first.send(strokes_message(request_id, drawing("17")))
                    assert json.loads(await asyncio.wait_for(first.recv(), 30))["text"] == "17"
                await second.send("{not json")
                assert json.loads(await asyncio.wait_for(second.recv(), 30))["code"] == "bad_json"
                during = await asyncio.to_thread(scrape, server.port)
            await asyncio.sleep(0.2)
            return before, during, await asyncio.to_thread(scrape, server.port)

    before, during, after = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert (
        value(during, "demnistify_recognitions_total", outcome="answered")
        - value(before, "demnistify_recognitions_total", outcome="answered")
        == 2
    )
    assert (
        value(during, "demnistify_errors_total", code="bad_json")
        - value(before, "demnistify_errors_total", code="bad_json")
        == 1
    )
    assert (
        value(during, "demnistify_recognition_seconds_count") - value(before, "demnistify_recognition_seconds_count")
        == 2
    )
    assert (
        value(during, "demnistify_recognition_wait_seconds_count")
        - value(before, "demnistify_recognition_wait_seconds_count")
        == 2
    )
    # The second reading of the same drawing found its blobs read already.
    assert value(during, "demnistify_cache_lookups_total", cache="readings", result="hit") > value(
        before, "demnistify_cache_lookups_total", cache="readings", result="hit"
    )
    assert value(during, "demnistify_open_connections") - value(before, "demnistify_open_connections") == 2
    assert value(after, "demnistify_open_connections") == value(before, "demnistify_open_connections")
    assert value(during, "demnistify_model_info", name=model.name, version=model.version) == 1


def test_metrics_need_the_token_when_one_is_set(trained_store):
    token = "a-token-of-sixteen-chars"

    async def scenario():
        async with running_server(serve_config(trained_store, token=token)) as server:
            refused = await asyncio.to_thread(http_get, f"http://127.0.0.1:{server.port}/metrics")
            allowed = await asyncio.to_thread(http_get, f"http://127.0.0.1:{server.port}/metrics?token={token}")
            return refused, allowed

    refused, allowed = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert refused[0] == 401 and allowed[0] == 200 and b"demnistify_recognitions" in allowed[2]
