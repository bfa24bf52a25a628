"""The real server for the tests, in a thread or a subprocess, and what they wait for: ports, health, metrics."""

from __future__ import annotations

import asyncio
import glob
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future
from pathlib import Path

import pytest

from demnistify.constants import REPO_ROOT
from serving.config import Limits, ServeConfig

# Limits small enough for the tests to reach, lifted where a test must send fast.
SMALL_LIMITS = Limits(
    max_message_bytes=60_000,
    max_strokes=40,
    max_points=2_000,
    max_canvas_side=2000,
    max_image_pixels=1_000_000,
    max_messages_per_second=1000,
    burst=1000,
)
# Debian's Chromium; without the background-networking flags it keeps dialing out, which this sandbox refuses.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
POSTGRES_BIN = Path((sorted(glob.glob("/usr/lib/postgresql/*/bin")) or ["/usr/bin"])[-1])


def serve_config(store, **overrides) -> ServeConfig:
    """The in-process server's config for a TrainedStore: port 0, two threads, SMALL_LIMITS unless overridden."""
    return ServeConfig(
        host="127.0.0.1", port=0, tracking_uri=store.tracking_uri, threads=2, **{"limits": SMALL_LIMITS, **overrides}
    )


def serve_command(tracking_uri: str, *extra: str, port: int = 0) -> list[str]:
    """`demnistify serve` against `tracking_uri` on `port` (0: a free one), with the `extra` options."""
    return [
        sys.executable,
        "-m",
        "demnistify.cli",
        "serve",
        "--port",
        str(port),
        "--tracking-uri",
        tracking_uri,
        *extra,
    ]


def start_server(tracking_uri: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`demnistify serve --port 0` in a subprocess, its stderr in `log`: the process and, once it
    is ready, the address it prints (http://127.0.0.1:PORT/)."""
    with log.open("w") as stderr:
        process = subprocess.Popen(
            serve_command(tracking_uri), cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    line = process.stdout.readline()
    if "deMNISTify serving" not in line or "open http://127.0.0.1:" not in line:
        process.kill()
        process.wait()
        raise AssertionError(f"The server did not start: {line}{log.read_text()[-3000:]}")
    return process, line.rsplit("open ", 1)[1].strip()


def free_port() -> int:
    """A loopback port nothing listens on right now (for subprocess servers and refused connections)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServerThread:
    """The real server (`serving.app.running_server`) on an event loop in a thread, so sync tests can drive it."""

    def __init__(self, config) -> None:
        self.config = config
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 120) -> int:
        """Start serving; returns the bound port (the config's port 0 picks a free one)."""
        ready: Future = Future()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=timeout)
        return self.port

    def stop(self) -> None:
        """Stop serving and wait for the thread to end."""
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread:
            self._thread.join(timeout=30)
            assert not self._thread.is_alive(), "the server did not stop within 30 s"

    async def _serve(self, ready: Future) -> None:
        from serving.app import running_server

        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with running_server(self.config) as server:
                ready.set_result(getattr(server, "port", server))
                await self._stop.wait()
        except BaseException as error:
            if not ready.done():
                ready.set_exception(error)
            raise

    def __enter__(self) -> "ServerThread":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def http_get(url: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def healthy(url: str, path: str = "/health") -> bool:
    """Whether the server at `url` answers 200 on `path` (mlflow server: /health, models serve: /ping)."""
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(check, timeout: float, what: str) -> None:
    """Poll `check` until it is true; fail the test when `what` has not started within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"{what} did not start within {timeout:.0f} s")


def add_version(store, source: str) -> str:
    """Register another version of the model from `source` (a registry test fixture, not training)."""
    from registry.client import connect as registry_client

    client = registry_client(store.tracking_uri)
    ref = store.result.model
    return str(client.create_model_version(ref.name, source, run_id=ref.run_id).version)


def model_source(store) -> str:
    """Where the model's artifacts lie, as the source of another version of it."""
    from registry.client import connect as registry_client

    # Where the artifacts lie, not the version's `models:/m-...` source: MLflow resolves such a
    # source through the process's global tracking URI, which an earlier test may have moved.
    ref = store.result.model
    return registry_client(store.tracking_uri).get_model_version_download_uri(ref.name, ref.version)


async def health(port: int) -> dict:
    """/healthz of the server on `port`, read off the event loop."""

    def get():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            return json.loads(response.read())

    return await asyncio.to_thread(get)


async def next_event(ws, kind: str, timeout: float = 30) -> dict:
    """The next event of type `kind` on the websocket, passing over the others."""
    async with asyncio.timeout(timeout):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == kind:
                return event


async def until_health(port: int, predicate, timeout: float = 30) -> dict:
    """Poll /healthz until `predicate` holds for it; returns that document."""
    async with asyncio.timeout(timeout):
        while not predicate(document := await health(port)):
            await asyncio.sleep(0.2)
    return document


def wait_for_health(port: int, timeout: float = 120) -> dict:
    """/healthz once the server on `port` answers (it may still be starting), blocking."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def scrape(port: int, headers: dict | None = None) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, sorted labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    status, content_type, body = http_get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), (status, content_type)
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: dict, metric: str, **labels) -> float:
    """One sample of a scrape by name and labels (0 when absent)."""
    return samples.get((metric, tuple(sorted(labels.items()))), 0.0)


def as_database_user(command: list[str]) -> list[str]:
    """The command run as `postgres`: PostgreSQL refuses to run as root (Debian's package made the user)."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command
