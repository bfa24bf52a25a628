"""The server's start-up: load the model, listen on one port for websockets and HTTP, follow the registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

from websockets.asyncio.server import Server
from websockets.asyncio.server import serve as websockets_serve

from serving import metrics
from serving.access import ConnectionCaps
from serving.config import ServeConfig
from serving.connection import announce_model, handle_connection
from serving.http_routes import process_request
from serving.model_store import ModelStore, ServeError
from serving.scheduler import OldestFirst

logger = logging.getLogger(__name__)
# Frames a connection may have read but not yet handled; each may be max_message_bytes long.
MAX_QUEUED_FRAMES = 4
# A quarter of the recognition threads (at least one) may read heavy drawings at once.
HEAVY_SHARE = 0.25

REGISTRY_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


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
            partial(handle_connection, app),
            config.host,
            config.port,
            process_request=partial(process_request, app),
            max_size=config.limits.max_message_bytes,
            max_queue=MAX_QUEUED_FRAMES,
            compression=None,
            reuse_port=config.workers > 1,
        ) as server:
            app.server = server
            poller = asyncio.create_task(
                store.poll_forever(config.poll_seconds, registry_executor, partial(announce_model, app))
            )
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
