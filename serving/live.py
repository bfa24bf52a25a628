"""Live recognition per connection: the newest drawing wins, stale ones are dropped, never queued."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property, partial

import numpy as np

from pipeline import normalize_digit, recognize_image, recognize_strokes
from pipeline.budget import Budget, Superseded, TooComplex
from serving import metrics
from serving.events import encode, error_event, result_event
from serving.messages import ErrorCode, ImageRequest, MatrixRequest, ProtocolError, Request, StrokesRequest
from serving.model_store import ModelStore
from serving.scheduler import OldestFirst, Pending
from serving.served_model import ServedModel

logger = logging.getLogger(__name__)

# Drawings of more points, and images decoding to more bytes, are heavy: at most
# `serving.app.HEAVY_SHARE` of the recognition threads read them at once, so ordinary
# drawings always find a thread. Ten digits drawn live hold about 400 points.
HEAVY_POINTS = 2_000
HEAVY_IMAGE_BYTES = 2**22
# A reading is stopped once a newer drawing of its connection waits and it has spent this many
# work units (pipeline.budget): cheaper ones finish, so a client drawing fast still sees answers.
SUPERSEDE_GRACE = 20_000


@dataclass(frozen=True)
class Job:
    """One parsed drawing and when its frame arrived (results report the time since)."""

    request: Request
    received: float = field(default_factory=time.perf_counter)

    @property
    def pen_down(self) -> bool:
        """Whether the client sent it with the pen still on the canvas (a preview, soon replaced)."""
        return getattr(self.request, "pen_down", False)

    @cached_property
    def heavy(self) -> bool:
        """Whether it may cost far more than an ordinary drawing (many points, a large image)."""
        if isinstance(self.request, StrokesRequest):
            return sum(len(stroke) for stroke in self.request.strokes) > HEAVY_POINTS
        return isinstance(self.request, ImageRequest) and self.request.decoded_bytes > HEAVY_IMAGE_BYTES


class LatestSlot:
    """Holds at most one pending job; a newer job replaces (drops) the one still waiting.

    The job is taken by the recognition thread when it starts, not when it is queued, so a
    connection waiting behind others for a thread still gets its newest drawing recognized.
    """

    def __init__(self) -> None:
        self._job: Job | None = None
        # When the first drawing still waiting for an answer arrived (replacements keep it).
        self._first = 0.0
        self._lock = threading.Lock()
        self._ready = asyncio.Event()
        self.dropped = 0

    def offer(self, job: Job) -> None:
        """Make `job` the next one to run, dropping a pending older one (event loop thread)."""
        with self._lock:
            if self._job is None:
                self._first = job.received
            self.dropped += self._job is not None
            if self._job is not None:
                metrics.REPLACED.inc()
            self._job = job
        self._ready.set()

    async def wait(self) -> None:
        """Wait until a job is pending."""
        await self._ready.wait()
        self._ready.clear()

    def pending_since(self) -> Pending | None:
        """When the first unanswered drawing and the newest arrived, and the newest's pen; None if none waits."""
        with self._lock:
            job = self._job
            return None if job is None else Pending(self._first, job.received, job.pen_down, job.heavy)

    def take(self) -> Job | None:
        """Take the pending job, if any (any thread)."""
        with self._lock:
            job, self._job = self._job, None
        return job


class TokenBucket:
    """Rate limit: `rate` tokens per second, at most `burst` saved up (one per message, or one per byte)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self._tokens, self._last = float(burst), time.monotonic()

    def allow(self, cost: float = 1.0) -> bool:
        """Take `cost` tokens if that many are left."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < cost:
            return False
        self._tokens -= cost
        return True


def execute(job: Job, model: ServedModel, budget: Budget | None = None) -> str:
    """Recognize one drawing with `model` (blocking, CPU-bound) and return the reply frame.

    Raises pipeline.budget.Superseded when `budget` says the answer is no longer wanted.
    """
    request = job.request
    if isinstance(request, MatrixRequest):
        # The original client expects the bare digit as plain text; a blank matrix gets empty
        # text, as a blank drawing gets "", rather than the model's guess at nothing.
        digit = normalize_digit(request.matrix)
        return str(int(np.argmax(model.classify(digit[None])[0]))) if digit.any() else ""
    try:
        if isinstance(request, StrokesRequest):
            recognition = recognize_strokes(
                request.strokes,
                request.width,
                request.height,
                model.classify,
                pen_width=request.pen_width,
                render=model.render,
                memo=model.readings,
                budget=budget,
            )
        else:
            recognition = recognize_image(request.data, model.picture_classifier, budget)
    except TooComplex as error:
        raise ProtocolError(ErrorCode.TOO_COMPLEX, str(error), request.id) from None
    except ValueError as error:
        code = ErrorCode.BAD_IMAGE if isinstance(request, ImageRequest) else ErrorCode.INVALID_FIELD
        raise ProtocolError(code, str(error), request.id) from None
    elapsed_ms = (time.perf_counter() - job.received) * 1000
    return encode(result_event(request.id, recognition, model.ref, elapsed_ms))


def run_newest(slot: LatestSlot, store: ModelStore) -> str | None:
    """In a recognition thread: recognize the connection's newest drawing with the current model."""
    job = slot.take()
    if job is None:
        return None  # A newer wake-up already took it.
    metrics.WAIT_SECONDS.observe(time.perf_counter() - job.received)
    # Any drawing waiting in the slot now is newer than this one.
    budget = _budget(job, lambda: slot.pending_since() is not None)
    try:
        reply = execute(job, store.current, budget)
    except Superseded:
        metrics.RECOGNITIONS.labels("superseded").inc()
        return None  # The connection's newer drawing is next.
    except ProtocolError as error:
        return _failed(error)
    except Exception:  # noqa: BLE001 - one bad drawing must not end the connection.
        logger.exception("Recognition failed")
        return _failed(
            ProtocolError(
                ErrorCode.INTERNAL,
                "The server failed to recognize this drawing; it was logged. Try again.",
                getattr(job.request, "id", None),
            )
        )
    metrics.RECOGNITIONS.labels("answered").inc()
    metrics.RECOGNITION_SECONDS.observe(time.perf_counter() - job.received)
    return reply


def _failed(error: ProtocolError) -> str:
    metrics.RECOGNITIONS.labels("failed").inc()
    metrics.ERRORS.labels(str(error.code)).inc()
    return encode(error_event(error))


def _budget(job: Job, superseded: Callable[[], bool]) -> Budget | None:
    request = job.request
    if isinstance(request, StrokesRequest):
        return Budget.for_points(sum(len(stroke) for stroke in request.strokes), superseded, SUPERSEDE_GRACE)
    return None  # Pictures get the pipeline's budget for their pixels.


async def run_jobs(
    slot: LatestSlot, store: ModelStore, scheduler: OldestFirst, send: Callable[[str], Awaitable[None]]
) -> None:
    """Whenever a drawing is pending, recognize the newest one when its turn comes and send the reply."""
    while True:
        await slot.wait()
        reply = await scheduler.run(slot, partial(run_newest, store=store))
        if reply is not None:
            await send(reply)
