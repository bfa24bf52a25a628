"""The websocket side: one connection's hello, rate limits and frames, and the model change told to all."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from serving import metrics
from serving.access import ThrottledLog, client_address
from serving.events import encode, error_event, hello_event, model_event
from serving.frames import parse_message
from serving.live import Job, LatestSlot, TokenBucket, run_jobs
from serving.messages import ErrorCode, ProtocolError
from serving.served_model import ServedModel

if TYPE_CHECKING:
    from serving.app import App

logger = logging.getLogger(__name__)
refusals = ThrottledLog(logger)

# A connection that keeps sending past its rate limits is closed with 1008: it may be refused
# this many times at once, and this many times a second after that. Other errors do not count:
# a client developer's malformed frames are answered, not punished.
ABUSE_BURST = 50
ABUSE_PER_SECOND = 2.0


async def handle_connection(app: App, websocket: ServerConnection) -> None:
    """One connection: hello, then read frames into the latest-drawing slot until it closes."""
    limits, address = app.config.limits, client_address(websocket)
    app.caps.opened(address)
    metrics.CONNECTIONS.inc()
    slot = LatestSlot()
    buckets = (
        TokenBucket(limits.max_messages_per_second, limits.burst),
        TokenBucket(limits.max_bytes_per_second, limits.byte_burst),
    )
    abuse = TokenBucket(ABUSE_PER_SECOND, ABUSE_BURST)
    worker = asyncio.create_task(run_jobs(slot, app.store, app.scheduler, websocket.send))
    try:
        await websocket.send(encode(hello_event(app.store.current.ref, limits)))
        async for message in websocket:
            error = _receive(app, message, slot, buckets)
            if error is None:
                continue
            metrics.ERRORS.labels(str(error.code)).inc()
            await websocket.send(encode(error_event(error)))
            if error.code == ErrorCode.RATE_LIMITED and not abuse.allow():
                refusals.warning(
                    "abuse", "Closed a connection from %s with 1008: it kept sending past its rate limits.", address
                )
                app.caps.bar(address)  # Reconnecting at once would start with fresh buckets.
                await websocket.close(1008, "Kept sending past the rate limits; slow down.")
    except ConnectionClosed:
        # A client gone without a close frame (tab killed, network lost) is routine, not a server error.
        logger.debug("Connection dropped by the client.")
    finally:
        app.caps.closed(address)
        metrics.CONNECTIONS.dec()
        worker.cancel()
        # The worker ends with ConnectionClosed when the client left mid-send; that is expected.
        await asyncio.gather(worker, return_exceptions=True)


def _receive(
    app: App, message: str | bytes, slot: LatestSlot, buckets: tuple[TokenBucket, TokenBucket]
) -> ProtocolError | None:
    limits = app.config.limits
    if not buckets[0].allow() or not buckets[1].allow(len(message)):
        return ProtocolError(
            ErrorCode.RATE_LIMITED,
            f"More than {limits.max_messages_per_second:g} messages "
            f"or {limits.max_bytes_per_second} bytes per second; this one was dropped. "
            "Send at most one per frame.",
        )
    try:
        job = Job(parse_message(message, app.config.limits))
    except ProtocolError as error:
        return error
    slot.offer(job)
    app.scheduler.hurry(slot)  # A lifted pen may move a queued preview forward.
    return None


def announce_model(app: App, model: ServedModel) -> None:
    """Tell every client which model answers from now on."""
    metrics.model_served(model.ref.name, model.ref.version, swapped=True)
    if app.server is not None:
        broadcast(app.server.connections, encode(model_event(model.ref)))
