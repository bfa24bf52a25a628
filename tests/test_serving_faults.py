"""Faults the service must survive: registry down, broken versions, vanishing and stalled clients, signals.

Corrupted MNIST files are covered in tests/test_data.py (altered npz, corrupted IDX, truncated gzip,
missing files); an empty registry at start in tests/test_serving_registry.py.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from mlflow import MlflowClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from demnistify.constants import MODEL_NAME, REPO_ROOT
from registry.client import connect as registry_client
from registry.client import promote
from serving.app import running_server
from tests.server_support import (
    SMALL_LIMITS,
    add_version,
    free_port,
    health,
    next_event,
    serve_command,
    serve_config,
    start_server,
    until_health,
)
from tests.support import drawing, strokes_message

pytestmark = pytest.mark.slow

FAST = replace(SMALL_LIMITS, max_messages_per_second=1e6, burst=10**6, max_bytes_per_second=2**30, byte_burst=2**30)


def server_errors(caplog) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR and record.name.split(".")[0] in ("serving", "websockets", "asyncio")
    ]


def rss_mib() -> float:
    """Resident memory of this process (server and clients alike)."""
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def jittered(number: str, seed: int) -> list:
    """`number` drawn a little larger or smaller, so that its digits miss the server's digit cache."""
    scale = np.random.default_rng(seed).uniform(0.85, 1.0)
    return [[[400 + (x - 400) * scale, 150 + (y - 150) * scale] for x, y in stroke] for stroke in drawing(number, 110)]


def test_unreachable_registry_at_start_exits_2_with_a_clear_message(monkeypatch):
    # MLflow retries a refused connection for minutes by default; a test cannot wait that long.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    closed_port = free_port()
    started = time.monotonic()
    done = subprocess.run(
        serve_command(f"http://127.0.0.1:{closed_port}"), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"error: Cannot serve models:/{MODEL_NAME}@champion" in done.stderr, done.stderr[-3000:]
    assert f"127.0.0.1:{closed_port}" in done.stderr and "Connection refused" in done.stderr
    assert "Traceback" not in done.stderr and time.monotonic() - started < 120


def broken_copies(store, folder: Path) -> tuple[str, str]:
    """Sources of two copies of the model's artifacts: one with its Keras file overwritten, one deleted."""
    ref = store.result.model
    source = Path(
        urlparse(registry_client(store.tracking_uri).get_model_version_download_uri(ref.name, ref.version)).path
    )
    corrupt, missing = folder / "corrupt", folder / "missing"
    for copy in (corrupt, missing):
        shutil.copytree(source, copy)
    keras_file = next(corrupt.rglob("*.keras"))
    keras_file.write_bytes(np.random.default_rng(0).bytes(keras_file.stat().st_size))
    shutil.rmtree(missing)
    return corrupt.as_uri(), missing.as_uri()


def test_corrupt_and_missing_artifacts_keep_the_old_version_serving(own_store, tmp_path):
    versions = [add_version(own_store, source) for source in broken_copies(own_store, tmp_path)]
    name, old = own_store.result.model.name, own_store.result.model.version
    client = registry_client(own_store.tracking_uri)

    async def degraded_by(ws, port: int, version: str) -> tuple[dict, dict]:
        await asyncio.to_thread(promote, client, version, name)
        document = await until_health(port, lambda doc: f"Version {version} failed" in doc.get("error", ""))
        await ws.send(strokes_message(version, drawing("17")))
        return document, await next_event(ws, "result")

    async def scenario():
        async with running_server(serve_config(own_store, poll_seconds=0.3)) as server:
            async with connect(f"ws://127.0.0.1:{server.port}/") as ws:
                await ws.recv()
                return [await degraded_by(ws, server.port, version) for version in versions]

    for version, (document, result) in zip(versions, asyncio.run(asyncio.wait_for(scenario(), 120))):
        assert document["status"] == "degraded" and document["model"]["version"] == old
        assert f"Version {version} failed to load; still serving version {old}" in document["error"]
        assert (result["id"], result["text"], result["model"]["version"]) == (version, "17", old)


async def leave_mid_recognition(url: str, index: int) -> None:
    """Send a fresh seven-digit drawing and go at once: politely half the time, by dropping the socket else."""
    ws = await connect(url)
    await ws.recv()
    await ws.send(strokes_message(index, jittered("1740174", index)))
    if index % 2:
        ws.transport.abort()
    else:
        await ws.close()


def test_clients_leaving_mid_recognition_do_not_disturb_others(trained_store, caplog):
    caplog.set_level(logging.ERROR)

    async def scenario():
        async with running_server(serve_config(trained_store, limits=FAST)) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with connect(url) as steady:
                await steady.recv()
                misses = (await health(server.port))["inference"]["cache_misses"]
                await asyncio.gather(*(leave_mid_recognition(url, index) for index in range(30)))
                await steady.send(strokes_message("steady", drawing("17")))
                kept = await next_event(steady, "result")
                async with connect(url) as fresh:
                    await fresh.recv()
                    await fresh.send(strokes_message("fresh", drawing("40")))
                    new = await next_event(fresh, "result")
                    document = await until_health(server.port, lambda doc: doc["connections"] == 2)
                return misses, kept, new, document

    misses, kept, new, document = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert (kept["id"], kept["text"]) == ("steady", "17") and (new["id"], new["text"]) == ("fresh", "40")
    # The leavers' drawings were being recognized: their digits reached the model.
    assert document["inference"]["cache_misses"] > misses + 4
    assert not server_errors(caplog)


async def stalled_client(server, url: str):
    """A client that never reads, on a link with tiny kernel buffers both ways so that it stalls within seconds.

    Loopback buffers grow to megabytes; the small buffers stand for a slow network, not for a server change.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    # max_queue=1: the unread hello already stops the client reading its socket.
    client = await connect(url, sock=sock, max_queue=1)
    for conn in server.server.connections:
        if conn.remote_address[1] == sock.getsockname()[1]:
            conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            return client, conn
    raise AssertionError("the server does not list the new connection")


async def flood(ws, seconds: float) -> int:
    """Send valid drawings as fast as the connection takes them, never reading; returns how many."""
    frames = [strokes_message(index, drawing(number, 95)) for index, number in enumerate(["17401740", "40171740"])]
    sent, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        await ws.send(frames[sent % 2])
        sent += 1
        await asyncio.sleep(0)  # Sends that need no drain never yield; let the other client run.
    return sent


async def round_trips(ws, seconds: float) -> list[float]:
    """Latencies of fresh drawings sent one after another every 50 ms."""
    latencies, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.perf_counter()
        await ws.send(strokes_message(len(latencies), jittered("17", len(latencies))))
        assert (await next_event(ws, "result"))["text"] == "17"
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.05)
    return latencies


def test_a_client_that_never_reads_costs_bounded_memory_and_no_latency(trained_store):
    async def scenario():
        async with running_server(serve_config(trained_store, limits=FAST)) as server:
            url = f"ws://127.0.0.1:{server.port}/"
            async with connect(url) as steady:
                await steady.recv()
                await round_trips(steady, 1.0)
                slow, server_side = await stalled_client(server, url)
                before = rss_mib()
                sent, latencies = await asyncio.gather(flood(slow, 8.0), round_trips(steady, 8.0))
                buffered, growth = server_side.transport.get_write_buffer_size(), rss_mib() - before
                slow.transport.abort()
                return sent, latencies, buffered, growth

    sent, latencies, buffered, growth = asyncio.run(asyncio.wait_for(scenario(), 120))
    print(
        f"stalled client: {sent} drawings sent, {buffered} bytes held, RSS +{growth:.1f} MiB, other client "
        f"p95 {np.percentile(latencies, 95) * 1000:.0f} ms over {len(latencies)} round trips"
    )
    # The server holds unsent replies for the stalled client (backpressure reached) but only a bounded amount.
    assert sent > 1000 and 0 < buffered < 2**20, (sent, buffered)
    assert np.percentile(latencies, 95) < 1.0 and len(latencies) > 40, latencies
    assert growth < 40, f"RSS grew {growth:.1f} MiB while flooding"


async def stream_until_closed(url: str, index: int, connected: list) -> int | None:
    """Stream a growing drawing at 20 updates/s until the server closes; returns the close code."""
    strokes = drawing("1740")
    async with connect(url) as ws:
        await ws.recv()
        connected.append(index)

        async def send_forever():
            for update in range(10**6):
                await ws.send(strokes_message(update, strokes[: 1 + update % len(strokes)]))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(send_forever())
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)


def test_sigterm_with_50_streaming_clients_closes_every_one_with_1001(trained_store, tmp_path):
    process, page = start_server(trained_store.tracking_uri, tmp_path / "stderr.log")

    async def scenario(url: str) -> list:
        connected = []
        clients = [asyncio.create_task(stream_until_closed(url, index, connected)) for index in range(50)]
        async with asyncio.timeout(60):
            while len(connected) < 50:
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)
        process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(asyncio.gather(*clients), 60)

    try:
        codes = asyncio.run(scenario(page.replace("http://", "ws://")))
        status = process.wait(timeout=60)
    finally:
        process.kill()
        process.wait()
    errors = (tmp_path / "stderr.log").read_text()
    assert codes == [1001] * 50
    assert status == 0 and "Traceback" not in errors, errors[-3000:]


def first_epoch_logged(tracking_uri: str, log: Path, process: subprocess.Popen, timeout: float) -> str:
    """Wait until the training run has logged its first epoch's metrics; returns the run id."""
    deadline = time.monotonic() + timeout
    # The store is created by the trainer; opening it earlier would race its schema creation.
    while "Epoch 1/" not in log.read_text():
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("demnistify").experiment_id
    while True:
        runs = client.search_runs([experiment])
        if runs and client.get_metric_history(runs[0].info.run_id, "val_accuracy"):
            return runs[0].info.run_id
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)


def test_sigterm_during_training_marks_the_run_killed_and_registers_nothing(tmp_path, mnist_dir):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # A slice keeps each epoch to seconds; thirty epochs outlast the wait for the first, however
    # slowly the store is polled.
    command = [
        sys.executable,
        "-m",
        "demnistify.cli",
        "train",
        "--profile",
        "quick",
        "--epochs",
        "30",
        "--train-limit",
        "6000",
        "--tracking-uri",
        tracking_uri,
        "--data-dir",
        str(mnist_dir),
    ]
    log_path = tmp_path / "train.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        run_id = first_epoch_logged(tracking_uri, log_path, process, timeout=400)
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=120)
    finally:
        process.kill()
        process.wait()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    assert status == 130 and "Interrupted." in log_path.read_text()
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.search_model_versions(f"name = '{MODEL_NAME}'") == []
