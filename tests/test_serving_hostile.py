"""Hostile clients against the real server: heavy drawings, superseded work, rate and connection limits, Host, /healthz, the poller."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bench.abuse_attacks import heavy_strokes, huge_json, png_16bit, png_chunk_bomb
from registry.client import connect as registry_client
from registry.client import promote
from serving import model_store
from serving.app import running_server
from serving.config import Limits
from tests.server_support import add_version, model_source, serve_config, until_health
from tests.support import drawing, strokes_message

pytestmark = pytest.mark.slow

WIDE = Limits(max_canvas_side=4096, max_messages_per_second=1000, burst=1000)


def scenario(config, body):
    async def run():
        async with running_server(config) as server:
            return await asyncio.wait_for(body(server.port), 120)

    return asyncio.run(run())


async def opened(port: int, **options):
    ws = await connect(f"ws://127.0.0.1:{port}/", max_size=None, **options)
    await ws.recv()
    return ws


def test_heavy_drawings_get_too_complex_while_an_ordinary_client_is_answered_first(trained_store):
    async def body(port):
        attackers = [await opened(port, local_addr=(f"127.0.0.{2 + index}", 0)) for index in range(4)]
        steady = await opened(port)
        for index, ws in enumerate(attackers):
            await ws.send(heavy_strokes(index))
        await asyncio.sleep(0.05)
        await steady.send(strokes_message("steady", drawing("17")))
        order = asyncio.Queue()

        async def answer(ws, name):
            await order.put((name, json.loads(await ws.recv())))

        await asyncio.gather(answer(steady, "steady"), *(answer(ws, index) for index, ws in enumerate(attackers)))
        return [order.get_nowait() for _ in range(5)]

    events = scenario(serve_config(trained_store, limits=WIDE), body)
    names = [name for name, _ in events]
    # The four heavy drawings share one heavy lane; the other thread answers the ordinary drawing.
    assert names.index("steady") < 4, names
    assert dict(events)["steady"]["text"] == "17"
    heavy = [event for name, event in events if name != "steady"]
    # Each is read within its budget or stopped at it (these four lie near it, on either side).
    assert all(event["type"] == "result" or event["code"] == "too_complex" for event in heavy), heavy
    assert any(event["type"] == "error" for event in heavy)
    assert sorted(event["id"] for event in heavy) == [0, 1, 2, 3]


def test_superseded_heavy_reading_stops_and_the_newer_drawing_is_answered(trained_store):
    async def body(port):
        ws = await opened(port)
        await ws.send(heavy_strokes(7))
        await asyncio.sleep(0.1)  # Its reading is under way.
        await ws.send(strokes_message("newer", drawing("40")))
        first = json.loads(await ws.recv())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.recv(), 1.5)
        return first

    first = scenario(serve_config(trained_store, limits=WIDE), body)
    # Not stopped, the heavy drawing would have been answered (too_complex) before the newer one.
    assert (first["type"], first["id"], first["text"]) == ("result", "newer", "40")


def test_huge_frames_and_image_bombs_are_refused_unread_or_read_cheaply(trained_store):
    async def body(port):
        ws = await opened(port)
        answers = []
        for frame in (huge_json(3), png_chunk_bomb(3), png_16bit(3)):
            await ws.send(frame)
            answers.append(json.loads(await ws.recv()))
        return answers

    limits = Limits(max_image_bytes=2**24, max_image_pixels=16_000_000)
    huge, bomb, deep = scenario(serve_config(trained_store, limits=limits), body)
    assert (huge["code"], bomb["type"], deep["code"]) == ("too_many_points", "result", "image_too_large")
    assert "not read" in huge["message"] and "16 bits" in deep["message"]


def test_byte_rate_limit_then_1008_for_a_client_that_keeps_on(trained_store):
    frame = heavy_strokes(1)  # 294 KB: one fits the byte burst, the next does not.
    limits = Limits(max_canvas_side=4096, max_bytes_per_second=1000, byte_burst=len(frame) + 1000)

    async def body(port):
        ws = await opened(port)
        codes = []
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(200):
                await ws.send(frame)
                event = json.loads(await ws.recv())
                codes.append(event.get("code", event["type"]))
        return codes, closed.value.rcvd.code

    codes, close_code = scenario(serve_config(trained_store, limits=limits), body)
    assert codes[0] in ("result", "too_complex") and set(codes[1:]) == {"rate_limited"}
    assert close_code == 1008 and 40 <= len(codes) <= 60


def test_connection_caps_answer_503_with_retry_after(trained_store):
    async def body(port):
        held = [await opened(port), await opened(port)]
        statuses = []
        for address in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            try:
                held.append(await opened(port, local_addr=(address, 0)))
                statuses.append(101)
            except InvalidStatus as refused:
                statuses.append((refused.response.status_code, refused.response.headers.get("Retry-After")))
        await held[0].close()
        await asyncio.sleep(0.2)
        held.append(await opened(port))  # A closed connection frees its place.
        return statuses

    config = serve_config(trained_store, max_connections=3, max_connections_per_address=2)
    assert scenario(config, body) == [(503, "5"), 101, (503, "5")]


def get(port: int, path: str, **headers: str) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def test_host_check_and_health_detail_only_with_the_token(trained_store):
    token = "a-token-for-the-hostile-tests"

    async def body(port):
        requests = [
            ("/healthz", {"Host": f"rebound.evil.example:{port}"}),
            (f"/?token={token}", {"Host": f"rebound.evil.example:{port}", **UPGRADE}),
            ("/", {"Host": f"digits.example:{port}"}),
            ("/healthz", {}),
            ("/healthz", {"Authorization": f"Bearer {token}"}),
        ]
        return [await asyncio.to_thread(get, port, path, **headers) for path, headers in requests]

    config = serve_config(trained_store, token=token, allowed_hosts=("digits.example",))
    rebound, upgrade, allowed, anonymous, detailed = scenario(config, body)
    assert rebound[0] == upgrade[0] == 421 and b"--allow-host" in rebound[1]
    assert allowed[0] == 200
    assert anonymous == (200, b'{"status": "ok"}')
    assert detailed[0] == 200 and {"model", "pid", "inference"} <= set(json.loads(detailed[1]))


def test_poller_survives_a_one_off_failure_and_retries_a_failed_load(own_store, monkeypatch):  # noqa: F811
    good = add_version(own_store, model_source(own_store))
    client = registry_client(own_store.tracking_uri)
    real_alias, real_load, failures = model_store.get_alias, model_store.load_served_model, []

    def failing_once(real):
        def call(*args, **kwargs):
            if real not in failures:
                failures.append(real)
                raise OSError(f"injected failure of {real.__name__}")
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(model_store, "get_alias", failing_once(real_alias))

    async def body(port):
        # The first load has happened: the next one, of the promoted version, fails once.
        monkeypatch.setattr(model_store, "load_served_model", failing_once(real_load))
        polled_badly = await until_health(port, lambda doc: "get_alias" in doc.get("error", ""))
        await asyncio.to_thread(promote, client, good, own_store.result.model.name)
        loaded_badly = await until_health(port, lambda doc: "load_served_model" in doc.get("error", ""))
        recovered = await until_health(port, lambda doc: doc["status"] == "ok" and doc["model"]["version"] == good)
        return polled_badly, loaded_badly, recovered

    polled_badly, loaded_badly, recovered = scenario(serve_config(own_store, poll_seconds=0.2), body)
    assert polled_badly["status"] == loaded_badly["status"] == "degraded"
    assert f"Version {good} failed to load" in loaded_badly["error"] and "error" not in recovered
