"""Who may connect: Origin allow-list and bearer token, as rules and through a real server; workers on one port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from serving.access import check_upgrade, origin_allowed, presented_token
from serving.app import running_server
from serving.config import ServeConfig
from tests.server_support import free_port, serve_command, serve_config, wait_for_health
from tests.support import drawing, strokes_message

TOKEN = "s3cret-token-for-the-tests"


@pytest.mark.parametrize(
    "origin, host, allowed, expected",
    [
        (None, "example.com:8765", (), True),
        ("http://example.com:8765", "example.com:8765", (), True),
        ("http://localhost:3000", "example.com:8765", (), True),
        ("http://127.0.0.1:9", "10.0.0.5:8765", (), True),
        ("http://[::1]:9", "10.0.0.5:8765", (), True),
        ("https://evil.example", "example.com:8765", (), False),
        ("http://example.com:9999", "example.com:8765", (), False),
        ("http://localhost.evil.example", "example.com:8765", (), False),
        ("null", "example.com:8765", (), False),
        ("https://app.example", "example.com:8765", ("https://app.example",), True),
        ("https://evil.example", "example.com:8765", ("*",), True),
    ],
)
def test_origin_rules(origin, host, allowed, expected):
    assert origin_allowed(origin, host, allowed) is expected


def test_token_from_header_or_query_and_refusals():
    assert presented_token("/?token=abc", None) == "abc"
    assert presented_token("/?token=abc", "Bearer xyz") == "xyz"
    assert presented_token("/", None) is None
    assert check_upgrade("/?token=" + TOKEN, {}, (), TOKEN) is None
    assert check_upgrade("/?token=wrong", {}, (), TOKEN).status == 401
    assert check_upgrade("/", {"Origin": "https://evil.example", "Host": "h:1"}, (), None).status == 403
    with pytest.raises(ValueError, match="at least 16"):
        ServeConfig(token="short")
    with pytest.raises(ValueError, match="fixed port"):
        ServeConfig(port=0, workers=2)


async def status_of(url: str, **options) -> int:
    """101 when the websocket opens (and answers hello), else the HTTP status it was refused with."""
    try:
        async with connect(url, **options) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.slow
def test_server_refuses_foreign_origins_and_missing_tokens(trained_store):
    config = serve_config(trained_store, allowed_origins=("https://app.example",), token=TOKEN)

    async def scenario():
        async with running_server(config) as server:
            base = f"ws://127.0.0.1:{server.port}/"
            bearer = {"additional_headers": {"Authorization": f"Bearer {TOKEN}"}}
            return [
                await status_of(base),
                await status_of(base + "?token=nope"),
                await status_of(base + "?token=" + TOKEN),
                await status_of(base, **bearer),
                await status_of(base, origin="https://evil.example", **bearer),
                await status_of(base, origin="https://app.example", **bearer),
                await status_of(base, origin=f"http://127.0.0.1:{server.port}", **bearer),
            ]

    assert asyncio.run(scenario()) == [401, 401, 101, 101, 403, 101, 101]


async def recognize_many(port: int, count: int) -> list[tuple[str, int]]:
    """Open `count` connections one after another; each recognizes "17" and reads /healthz's pid."""
    answers = []
    for request_id in range(count):
        async with connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.recv()
            await ws.send(strokes_message(request_id, drawing("17")))
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 60))["text"])
    return answers


@pytest.mark.slow
def test_workers_share_one_port_and_stop_together(trained_store):
    port = free_port()
    command = serve_command(trained_store.tracking_uri, "--workers", "2", "--threads", "2", port=port)
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        wait_for_health(port)
        pids = set()
        deadline = time.monotonic() + 120
        # Both workers must be up: the kernel hashes each new connection to one of them.
        while len(pids) < 2 and time.monotonic() < deadline:
            pids.add(wait_for_health(port)["pid"])
        answers = asyncio.run(recognize_many(port, 6))
        server.send_signal(signal.SIGTERM)
        _, errors = server.communicate(timeout=60)
    finally:
        server.kill()
    assert len(pids) == 2 and server.pid not in pids
    assert answers == ["17"] * 6
    assert server.returncode == 0 and "Traceback" not in errors, errors


@pytest.mark.slow
def test_token_refusal_does_not_disturb_open_connections(trained_store):
    config = serve_config(trained_store, token=TOKEN)

    async def scenario():
        async with running_server(config) as server:
            url = f"ws://127.0.0.1:{server.port}/?token={TOKEN}"
            async with connect(url) as ws:
                await ws.recv()
                refused = await status_of(f"ws://127.0.0.1:{server.port}/")
                await ws.send(strokes_message(1, drawing("70")))
                return refused, json.loads(await asyncio.wait_for(ws.recv(), 60))["text"]

    try:
        assert asyncio.run(scenario()) == (401, "70")
    except ConnectionClosed as closed:
        pytest.fail(f"the authorized connection was closed: {closed}")
