"""The live server end to end: real server on port 0, real websockets client, the session's small model."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable

import cv2
import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from serving.app import running_server
from serving.config import Limits, ServeConfig
from tests.server_support import SMALL_LIMITS, http_get, serve_config
from tests.support import drawing, png_of, strokes_message

pytestmark = pytest.mark.slow


def with_client(config: ServeConfig, body: Callable[..., Awaitable]) -> object:
    """Start the server, connect one client, read hello, run `body(ws, hello, server)`."""

    async def scenario():
        async with running_server(config) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/", max_size=None) as ws:
                hello = json.loads(await ws.recv())
                return await body(ws, hello, server)

    return asyncio.run(asyncio.wait_for(scenario(), 120))


async def ask(ws, message) -> object:
    await ws.send(message)
    reply = await asyncio.wait_for(ws.recv(), 30)
    return json.loads(reply) if reply.startswith("{") else reply


def test_hello_announces_protocol_model_and_limits(trained_store):
    async def body(ws, hello, server):
        return hello

    hello = with_client(serve_config(trained_store), body)
    model = trained_store.result.model
    assert hello == {
        "type": "hello",
        "protocol": 1,
        "limits": SMALL_LIMITS.announce(),
        "model": {"name": model.name, "version": model.version, "run_id": model.run_id},
    }


@pytest.mark.parametrize("number", ["1", "7", "0", "4", "1740", "701"])
def test_strokes_are_recognized(trained_store, number):
    result = with_client(
        serve_config(trained_store), lambda ws, hello, server: ask(ws, strokes_message(17, drawing(number)))
    )
    assert result["type"] == "result" and result["id"] == 17
    assert result["text"] == number and result["lines"] == [number]
    assert [d["label"] for d in result["digits"]] == [int(c) for c in number]
    first = result["digits"][0]
    assert set(first) == {"label", "confidence", "box", "candidates", "unsure", "line"}
    assert first["candidates"][0] == [first["label"], first["confidence"]] and len(first["box"]) == 4
    assert result["model"] == {"name": trained_store.result.model.name, "version": trained_store.result.model.version}
    assert 0 < result["elapsed_ms"] < 5000


def test_image_as_binary_frame_and_base64_field(trained_store):
    image = png_of(drawing("1740"))

    async def body(ws, hello, server):
        binary = await ask(ws, image)
        field = await ask(ws, json.dumps({"type": "recognize", "id": "img", "image": base64.b64encode(image).decode()}))
        return binary, field

    binary, field = with_client(serve_config(trained_store), body)
    assert (binary["id"], binary["text"]) == (None, "1740")
    assert (field["id"], field["text"]) == ("img", "1740")


def test_legacy_matrix_gets_plain_text_digit(trained_store, mnist):
    images, labels = mnist.test_images[:10], mnist.test_labels[:10]

    async def body(ws, hello, server):
        blank = await ask(ws, json.dumps([[0] * 28] * 28))
        return blank, [await ask(ws, json.dumps((image / 255.0).round(3).tolist())) for image in images]

    blank, replies = with_client(serve_config(trained_store), body)
    assert blank == "", "a blank matrix is not a digit"
    assert all(isinstance(reply, str) and reply.isdigit() for reply in replies)
    assert sum(reply == str(label) for reply, label in zip(replies, labels)) >= 9


def test_every_error_kind_keeps_the_connection_open(trained_store):
    far_off = [[[10, 10], [50000, 10]]]
    cases = {
        "bad_json": "{nope",
        "unknown_type": json.dumps({"type": "draw", "id": 2}),
        "invalid_field": strokes_message(3, far_off),
        "too_many_strokes": strokes_message(4, [[[1, 1]]] * 41),
        "too_many_points": strokes_message(5, [[[1, 1]] * 2001]),
        "canvas_too_large": json.dumps({"type": "recognize", "id": 6, "width": 2001, "height": 10, "strokes": []}),
        "image_too_large": cv2.imencode(".png", np.zeros((1001, 1001), np.uint8))[1].tobytes(),
        "bad_image": b"\x00not an image",
    }

    async def body(ws, hello, server):
        replies = {code: await ask(ws, message) for code, message in cases.items()}
        return replies, await ask(ws, strokes_message(9, drawing("7")))

    replies, after = with_client(serve_config(trained_store), body)
    for code, reply in replies.items():
        assert reply["type"] == "error" and reply["code"] == code, reply
        assert reply["message"]
    assert replies["invalid_field"]["id"] == 3 and "outside" in replies["invalid_field"]["message"]
    assert (after["type"], after["id"], after["text"]) == ("result", 9, "7")


def test_rate_limit_and_oversize_frame(trained_store):
    limits = Limits(max_message_bytes=60_000, max_messages_per_second=0.5, burst=2)

    async def body(ws, hello, server):
        for request_id in range(4):
            await ws.send(strokes_message(request_id, drawing("1")))
        replies = []
        # Message 1 may replace message 0 (latest drawing wins); the two errors come either way.
        while sum(r["type"] == "error" for r in replies) < 2 or not any(
            r.get("id") == 1 for r in replies if r["type"] == "result"
        ):
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        await ws.send("x" * 70_000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 30)
        return replies, closed.value.rcvd.code

    replies, close_code = with_client(serve_config(trained_store, limits=limits), body)
    errors = [reply for reply in replies if reply["type"] == "error"]
    assert [(error["code"], error["id"]) for error in errors] == [("rate_limited", None)] * 2
    assert close_code == 1009


def test_stale_drawings_dropped_but_last_answered(trained_store):
    number = "174017"
    strokes = drawing(number, spacing=125)
    # The drawing grows stroke by stroke, sent on every pointer move (3 per stroke), all at once.
    frames = [strokes[:count] for count in range(1, len(strokes) + 1) for _ in range(3)]

    async def body(ws, hello, server):
        for request_id, strokes in enumerate(frames):
            await ws.send(strokes_message(request_id, strokes))
        results = []
        while not results or results[-1]["id"] != len(frames) - 1:
            results.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        return results

    results = with_client(serve_config(trained_store), body)
    ids = [result["id"] for result in results]
    assert len(ids) < len(frames), "stale drawings must be dropped, not queued"
    assert ids == sorted(ids) and ids[-1] == len(frames) - 1
    assert results[-1]["text"] == number


def test_http_routes(trained_store):
    async def body(ws, hello, server):
        base = f"http://127.0.0.1:{server.port}"
        paths = ["/healthz", "/", "/nope", "/static/../config.py", "/static/%2e%2e/app.py"]
        return [await asyncio.to_thread(http_get, base + path) for path in paths]

    health, page, missing, traversal, encoded = with_client(serve_config(trained_store), body)
    document = json.loads(health[2])
    assert health[:2] == (200, "application/json")
    assert document["status"] == "ok" and document["connections"] == 1 and document["uptime_s"] >= 0
    assert document["model"]["version"] == trained_store.result.model.version
    assert document["inference"]["runtime"] == "onnxruntime-int8"
    assert page[0] == 200 and page[1].startswith("text/html") and b"<" in page[2]
    assert [missing[0], traversal[0], encoded[0]] == [404, 404, 404]
