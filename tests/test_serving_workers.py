"""`serve --workers 2`: a killed worker is replaced while the other serves, and /metrics adds both up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import pytest
from websockets.asyncio.client import connect

from serving.workers import MIN_UPTIME_SECONDS
from tests.server_support import free_port, scrape, serve_command, value, wait_for_health
from tests.support import drawing, strokes_message

pytestmark = pytest.mark.slow


def live_pids(port: int, wanted: int, timeout: float = 120) -> set[int]:
    """The pids of `wanted` workers answering /healthz (the kernel hashes each connection to one)."""
    pids, deadline = set(), time.monotonic() + timeout
    while len(pids) < wanted and time.monotonic() < deadline:
        pids.add(wait_for_health(port)["pid"])
    return pids


async def hold_and_recognize(port: int, count: int) -> tuple[list[str], list[dict]]:
    """Open `count` connections, recognize one drawing on each, scrape /metrics while they are all open."""
    sockets = [await connect(f"ws://127.0.0.1:{port}/") for _ in range(count)]
    try:
        answers = []
        for index, ws in enumerate(sockets):
            await ws.recv()
            await ws.send(strokes_message(index, drawing("17")))
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 60))["text"])
        # Each scrape is answered by whichever worker the kernel picks, and must count both.
        scrapes = [await asyncio.to_thread(scrape, port) for _ in range(6)]
        return answers, scrapes
    finally:
        for ws in sockets:
            await ws.close()


def test_a_dead_worker_is_replaced_while_the_other_serves_and_metrics_add_up(trained_store, tmp_path):
    port = free_port()
    command = serve_command(trained_store.tracking_uri, "--workers", "2", "--threads", "2", port=port)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    # A file, not a pipe: the workers log every request, and a full pipe would block them.
    log = (tmp_path / "stderr.log").open("w")
    server = subprocess.Popen(command, stderr=log, text=True, env=environment)
    try:
        first = live_pids(port, 2)
        # A worker that dies this soon after its start stops the set (a crash loop, for systemd).
        time.sleep(MIN_UPTIME_SECONDS)
        os.kill(min(first), signal.SIGKILL)
        # Until it is gone, connections the kernel hands its listening socket are reset.
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{min(first)}") and time.monotonic() < deadline:
            time.sleep(0.1)
        # The survivor answers meanwhile; the replacement joins it.
        answered_meanwhile = asyncio.run(hold_and_recognize(port, 2))[0]
        second = live_pids(port, 2) - {min(first)}
        for _ in range(60):
            second |= live_pids(port, 1)
            if len(second) == 2:
                break
        answers, scrapes = asyncio.run(hold_and_recognize(port, 6))
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        server.kill()
        log.close()
    errors = (tmp_path / "stderr.log").read_text()
    assert len(first) == 2 and len(second) == 2 and min(first) not in second, (first, second)
    assert answered_meanwhile == ["17", "17"] and answers == ["17"] * 6
    # Every scrape sees the six open connections of both workers, and the answers of all of them.
    assert [value(row, "demnistify_open_connections") for row in scrapes] == [6] * 6
    assert [value(row, "demnistify_recognitions_total", outcome="answered") for row in scrapes] == [8] * 6
    assert "died (exit -9); starting another" in errors
    # Workers log as the command does: the two first ones and the replacement each say what they run.
    assert errors.count(f"Version {trained_store.result.model.version} runs on") == 3, errors
    assert server.returncode == 0, errors
