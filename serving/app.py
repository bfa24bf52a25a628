"""The websocket server: one port for the live protocol, the drawing page, static files and /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import http
import json
import logging
import mimetypes
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import formatdate

from websockets.asyncio.server import Server, ServerConnection, broadcast
from websockets.asyncio.server import serve as websockets_serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from serving import metrics
from serving.access import (
    RETRY_AFTER_SECONDS,
    ConnectionCaps,
    Refusal,
    ThrottledLog,
    check_upgrade,
    full_health_allowed,
    host_allowed,
)
from serving.config import ServeConfig
from serving.events import encode, error_event, hello_event, model_event
from serving.frames import parse_message
from serving.live import Job, LatestSlot, TokenBucket, run_jobs
from serving.messages import ErrorCode, ProtocolError
from serving.model_store import ModelStore, ServeError
from serving.scheduler import OldestFirst
from serving.served_model import ServedModel

logger = logging.getLogger(__name__)
refusals = ThrottledLog(logger)

# A connection that keeps sending past its rate limits is closed with 1008: it may be refused
# this many times at once, and this many times a second after that. Other errors do not count:
# a client developer's malformed frames are answered, not punished.
ABUSE_BURST = 50
ABUSE_PER_SECOND = 2.0
# Frames a connection may have read but not yet handled; each may be max_message_bytes long.
MAX_QUEUED_FRAMES = 4
# A quarter of the recognition threads (at least one) may read heavy drawings at once.
HEAVY_SHARE = 0.25

REGISTRY_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
PLACEHOLDER_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>deMNISTify</title><p>deMNISTify is serving. "
    b"The drawing page is not built yet; connect a websocket client to this address "
    b"(see serving/PROTOCOL.md).</p>"
)


@dataclass(frozen=True)
class RunningServer:
    """A started server: where it listens and what it serves."""

    host: str
    port: int
    store: ModelStore
    server: Server

    @property
    def url(self) -> str:
        """The address of the drawing page (and of the websocket, as ws://)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"


class App:
    """Per-server state shared by every connection: model store, executor, limits."""

    def __init__(self, config: ServeConfig, store: ModelStore, executor: ThreadPoolExecutor) -> None:
        self.config, self.store = config, store
        heavy_lanes = max(1, int(HEAVY_SHARE * config.threads_per_worker))
        self.scheduler = OldestFirst(executor, config.patience_seconds, config.preview_patience_seconds, heavy_lanes)
        self.caps = ConnectionCaps(config.max_connections, config.max_connections_per_address)
        self.server: Server | None = None
        self.started = time.monotonic()

    async def handler(self, websocket: ServerConnection) -> None:
        """One connection: hello, then read frames into the latest-drawing slot until it closes."""
        limits, address = self.config.limits, _address(websocket)
        self.caps.opened(address)
        metrics.CONNECTIONS.inc()
        slot = LatestSlot()
        buckets = (
            TokenBucket(limits.max_messages_per_second, limits.burst),
            TokenBucket(limits.max_bytes_per_second, limits.byte_burst),
        )
        abuse = TokenBucket(ABUSE_PER_SECOND, ABUSE_BURST)
        worker = asyncio.create_task(run_jobs(slot, self.store, self.scheduler, websocket.send))
        try:
            await websocket.send(encode(hello_event(self.store.current.ref, limits)))
            async for message in websocket:
                error = self._receive(message, slot, buckets)
                if error is None:
                    continue
                metrics.ERRORS.labels(str(error.code)).inc()
                await websocket.send(encode(error_event(error)))
                if error.code == ErrorCode.RATE_LIMITED and not abuse.allow():
                    refusals.warning(
                        "abuse", "Closed a connection from %s with 1008: it kept sending past its rate limits.", address
                    )
                    self.caps.bar(address)  # Reconnecting at once would start with fresh buckets.
                    await websocket.close(1008, "Kept sending past the rate limits; slow down.")
        except ConnectionClosed:
            # A client gone without a close frame (tab killed, network lost) is routine, not a server error.
            logger.debug("Connection dropped by the client.")
        finally:
            self.caps.closed(address)
            metrics.CONNECTIONS.dec()
            worker.cancel()
            # The worker ends with ConnectionClosed when the client left mid-send; that is expected.
            await asyncio.gather(worker, return_exceptions=True)

    def _receive(
        self, message: str | bytes, slot: LatestSlot, buckets: tuple[TokenBucket, TokenBucket]
    ) -> ProtocolError | None:
        limits = self.config.limits
        if not buckets[0].allow() or not buckets[1].allow(len(message)):
            return ProtocolError(
                ErrorCode.RATE_LIMITED,
                f"More than {limits.max_messages_per_second:g} messages "
                f"or {limits.max_bytes_per_second} bytes per second; this one was dropped. "
                "Send at most one per frame.",
            )
        try:
            job = Job(parse_message(message, self.config.limits))
        except ProtocolError as error:
            return error
        slot.offer(job)
        self.scheduler.hurry(slot)  # A lifted pen may move a queued preview forward.
        return None

    def on_swap(self, model: ServedModel) -> None:
        """Tell every client which model answers from now on."""
        metrics.model_served(model.ref.name, model.ref.version, swapped=True)
        if self.server is not None:
            broadcast(self.server.connections, encode(model_event(model.ref)))

    def health(self, full: bool = True) -> dict:
        """The /healthz document; without `full`, only whether the server is ok or degraded."""
        if not full:
            return {"status": self.store.health()["status"]}
        connections = len(self.server.connections) if self.server is not None else 0
        # pid tells workers sharing a port apart; tasks lets a soak test see that none leak.
        return {
            **self.store.health(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "connections": connections,
            "pid": os.getpid(),
            "tasks": len(asyncio.all_tasks()),
        }

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Let websocket upgrades through (any path) unless refused; answer plain HTTP GETs."""
        host = request.headers.get("Host")
        if not host_allowed(host, self.config.host, self.config.allowed_hosts):
            return self._refuse(
                connection,
                "host",
                Refusal(
                    http.HTTPStatus.MISDIRECTED_REQUEST,
                    (
                        f"This server does not answer to the name {host!r}; use its address, or start it with "
                        "--allow-host NAME."
                    ),
                ),
            )
        if request.headers.get("Upgrade", "").lower() == "websocket":
            refusal = check_upgrade(
                request.path, request.headers, self.config.allowed_origins, self.config.token
            ) or self.caps.refusal(_address(connection))
            return None if refusal is None else self._refuse(connection, "websocket", refusal)
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            full = full_health_allowed(request.path, request.headers, self.config.token, connection.remote_address)
            body = json.dumps(self.health(full)).encode()
            return http_response(http.HTTPStatus.OK, body, "application/json")
        if path == "/metrics":
            return self._metrics(connection, request)
        if path in ("/", "/index.html"):
            page = self.config.static_dir / "index.html"
            body = page.read_bytes() if page.is_file() else PLACEHOLDER_PAGE
            return http_response(http.HTTPStatus.OK, body, "text/html; charset=utf-8")
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        return not_found(path)

    def _metrics(self, connection: ServerConnection, request: Request) -> Response:
        # With a token set, Prometheus presents it (a scrape config's `authorization`), as /healthz's details need.
        if self.config.token is not None and not full_health_allowed(
            request.path, request.headers, self.config.token, connection.remote_address
        ):
            return self._refuse(
                connection,
                "metrics",
                Refusal(http.HTTPStatus.UNAUTHORIZED, ("/metrics needs the server's token (Authorization: Bearer).")),
            )
        return http_response(http.HTTPStatus.OK, *metrics.exposition())

    def _refuse(self, connection: ServerConnection, kind: str, refusal: Refusal) -> Response:
        refusals.warning(kind, "Refused a %s request from %s: %s", kind, connection.remote_address, refusal.message)
        response = http_response(refusal.status, (refusal.message + "\n").encode(), "text/plain; charset=utf-8")
        if refusal.status == http.HTTPStatus.SERVICE_UNAVAILABLE:
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    def _static(self, name: str) -> Response:
        root = self.config.static_dir.resolve()
        target = (root / name).resolve()
        # resolve() folds "..", so anything outside the folder is refused, whatever the spelling.
        if not name or not target.is_relative_to(root) or not target.is_file():
            return not_found(f"/static/{name}")
        return http_response(http.HTTPStatus.OK, target.read_bytes(), content_type(target.name))


def _address(connection: ServerConnection) -> str:
    # The client's IP address (a closed socket has none left to name).
    remote = connection.remote_address
    return str(remote[0]) if remote else "?"


def content_type(name: str) -> str:
    """The Content-Type for a static file name; text types are UTF-8."""
    guessed = "text/javascript" if name.endswith((".js", ".mjs")) else mimetypes.guess_type(name)[0]
    guessed = guessed or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("json") else guessed


def http_response(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    """A complete HTTP response (the connection closes after it)."""
    headers = Headers(
        [
            ("Date", formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", content_type),
            ("Cache-Control", "no-cache"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def not_found(path: str) -> Response:
    """404 naming the routes that exist."""
    text = f"404 Not Found: {path}\nRoutes: / (drawing page), /static/<file>, /healthz, /metrics, and the websocket.\n"
    return http_response(http.HTTPStatus.NOT_FOUND, text.encode(), "text/plain; charset=utf-8")


@contextlib.asynccontextmanager
async def running_server(config: ServeConfig) -> AsyncIterator[RunningServer]:
    """Load the model, listen, follow the registry; on exit close every connection with 1001."""
    loop = asyncio.get_running_loop()
    store = ModelStore(
        config.model_uri,
        config.tracking_uri,
        config.cache_size,
        config.inference,
        config.model_threads_per_worker,
        config.tf_threads,
    )
    # Registry calls and model loads get their own thread so recognitions never wait behind them.
    registry_executor = ThreadPoolExecutor(1, thread_name_prefix="registry")
    executor = ThreadPoolExecutor(config.threads_per_worker, thread_name_prefix="recognize")
    try:
        await loop.run_in_executor(registry_executor, store.load_initial)
        metrics.model_served(store.current.ref.name, store.current.ref.version)
        app = App(config, store, executor)
        # No compression: frames are small and deflate would cost CPU that recognition needs.
        async with websockets_serve(
            app.handler,
            config.host,
            config.port,
            process_request=app.process_request,
            max_size=config.limits.max_message_bytes,
            max_queue=MAX_QUEUED_FRAMES,
            compression=None,
            reuse_port=config.workers > 1,
        ) as server:
            app.server = server
            poller = asyncio.create_task(store.poll_forever(config.poll_seconds, registry_executor, app.on_swap))
            try:
                yield RunningServer(config.host, server.sockets[0].getsockname()[1], store, server)
            finally:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
        registry_executor.shutdown(wait=False, cancel_futures=True)


async def serve_until_signal(config: ServeConfig) -> None:
    """Serve until SIGINT or SIGTERM, printing the address to open."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with running_server(config) as running:
        ref = running.store.current.ref
        print(f"deMNISTify serving {ref.name} v{ref.version} — open {running.url}", flush=True)
        await stop.wait()
        logger.info("Shutting down: closing %d connection(s) with 1001.", len(running.server.connections))


def serve(config: ServeConfig) -> int:
    """The `demnistify serve` entry point: 0 after a signal, 2 when no model can be served."""
    # MLflow retries a tracking server that is down for minutes by default; a server should
    # fail fast at start and keep polling later. The environment still overrides these.
    for variable, value in REGISTRY_HTTP_DEFAULTS.items():
        os.environ.setdefault(variable, value)
    try:
        asyncio.run(serve_until_signal(config))
    except ServeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot listen on {config.host}:{config.port}: {error}", file=sys.stderr)
        return 2
    return 0
