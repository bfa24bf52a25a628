"""Helpers shared by the client tests: digits as strokes, and the real server on its own thread."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from demnistify.constants import REPO_ROOT


def serve_command(tracking_uri: str) -> list[str]:
    """The command line of `demnistify serve` on a free port against `tracking_uri`."""
    return [sys.executable, "-m", "demnistify.cli", "serve", "--port", "0", "--tracking-uri", tracking_uri]


def start_server(tracking_uri: str, log: Path) -> tuple[subprocess.Popen, str]:
    """`demnistify serve --port 0` in a subprocess, its stderr in `log`: the process and, once it
    is ready, the address it prints (http://127.0.0.1:PORT/)."""
    with log.open("w") as stderr:
        process = subprocess.Popen(serve_command(tracking_uri), cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                   stderr=stderr, text=True)
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


# Digits drawn in a 60x100 box (y down), as a person would: one list of polylines each.
_OVAL = [[30 + 24 * np.sin(t), 50 - 44 * np.cos(t)] for t in np.linspace(0, 2 * np.pi, 25)]
DIGITS = {
    "0": [_OVAL],
    "1": [[[34, 6], [30, 94]]],
    "4": [[[28, 4], [6, 62], [56, 62]], [[44, 26], [42, 96]]],
    "7": [[[6, 8], [56, 8], [44, 40], [26, 96]]],
}


def number_strokes(text: str, x: float, y: float, height: float = 150.0) -> list[list[list[float]]]:
    """Strokes writing `text` left to right with its top-left corner at (x, y), digits `height` tall."""
    scale, strokes = height / 100, []
    for index, char in enumerate(text):
        left = x + index * 90 * scale
        strokes += [[[left + px * scale, y + py * scale] for px, py in stroke] for stroke in DIGITS[char]]
    return strokes


def densify(stroke: list[list[float]], step: float = 4.0) -> list[list[float]]:
    """The polyline with points at most `step` apart, like a pointer sampled at ~60 Hz."""
    points = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        count = max(1, int(np.hypot(x1 - x0, y1 - y0) // step))
        points += [[x0 + (x1 - x0) * k / count, y0 + (y1 - y0) * k / count] for k in range(1, count + 1)]
    return points


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
