"""Which connection's drawing a free recognition thread takes next: the one that has waited longest.

A live client sends its drawing on every change. When the server is busy, drawings that are
still changing lose little by waiting (the next one replaces them anyway), while a drawing that
stopped changing is the one its user is looking at. So a free thread takes the connection whose
newest drawing is the oldest: a drawing that is replaced keeps moving back in the line, a
finished one moves forward. A connection that keeps changing its drawing waits at most
`patience` seconds longer than a first-come-first-served line would make it wait, so every
client still sees results while it draws.

A client that says its pen is still on the canvas (`"pen_down": true`) needs no guessing: that
drawing is a preview, sure to be replaced, and waits up to `preview_patience` longer than first
come, first served would make it, so every drawing whose pen was lifted goes ahead of it.

A heavy drawing (many points, a large image) also waits for one of `heavy_lanes`: however many
clients send heavy drawings, the other threads stay free for ordinary ones.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

from demnistify.constants import DEFAULT_PATIENCE_SECONDS, DEFAULT_PREVIEW_PATIENCE_SECONDS


class Pending(NamedTuple):
    """A connection's unanswered drawings: when the first and the newest arrived, and the newest's pen."""

    first: float
    newest: float
    pen_down: bool = False
    # A heavy drawing waits for a heavy lane (HEAVY_SHARE) as well as a thread.
    heavy: bool = False


class Waiting(Protocol):
    """What the scheduler needs of a connection's slot (serving.live.LatestSlot)."""

    def pending_since(self) -> Pending | None:
        """The connection's unanswered drawings, or None if none waits."""


@dataclass(order=True)
class _Entry:
    key: float
    order: int
    slot: Waiting = field(compare=False)
    run: Callable[[Waiting], object] = field(compare=False)
    future: asyncio.Future = field(compare=False)
    loop: asyncio.AbstractEventLoop = field(compare=False)
    # Set when the slot was moved forward: a fresh entry stands in for this one.
    replaced: bool = field(default=False, compare=False)
    # Set when it was taken as heavy: it holds a heavy lane until it is done.
    heavy: bool = field(default=False, compare=False)


class OldestFirst:
    """Runs slots' jobs on an executor's threads, the longest-waiting drawing first.

    Every `run` hands the executor one task, and whichever thread starts it serves the most
    urgent queued slot at that moment (not necessarily the one that asked), so there is never
    more work than threads take, and the order is decided as late as possible.
    """

    def __init__(
        self,
        executor: Executor,
        patience: float = DEFAULT_PATIENCE_SECONDS,
        preview_patience: float = DEFAULT_PREVIEW_PATIENCE_SECONDS,
        heavy_lanes: int = 1,
    ) -> None:
        if not 0 <= patience <= preview_patience:
            raise ValueError(
                f"patience must be >= 0 seconds and preview_patience at least as long, got "
                f"{patience!r} and {preview_patience!r}."
            )
        self._executor, self.patience, self.preview_patience = executor, patience, preview_patience
        self._heap: list[_Entry] = []
        self._queued: dict[int, _Entry] = {}  # id(slot) -> its live entry.
        self._lock = threading.Lock()
        self._order = itertools.count()
        self.heavy_lanes, self._heavy_running = heavy_lanes, 0

    def urgency(self, slot: Waiting) -> float:
        """The slot's place in line (smaller first): its newest drawing's arrival, within `patience`."""
        since = slot.pending_since()
        if since is None:
            return float("-inf")  # Nothing left to do: let a thread drop it at once.
        if since.pen_down:
            return since.first + self.preview_patience
        return min(since.newest, since.first + self.patience)

    async def run(self, slot: Waiting, run: Callable[[Waiting], object]) -> object:
        """Queue `slot`; `run(slot)` is called in a thread when its turn comes, and its result returned."""
        loop = asyncio.get_running_loop()
        entry = _Entry(self.urgency(slot), next(self._order), slot, run, loop.create_future(), loop)
        with self._lock:
            heapq.heappush(self._heap, entry)
            self._queued[id(slot)] = entry
        self._executor.submit(self._serve_next)
        return await entry.future

    def hurry(self, slot: Waiting) -> None:
        """Move a queued slot forward if its place in line got earlier (its pen was lifted).

        Called after every new drawing. Keys otherwise only grow while a slot waits, which the
        heap checks lazily when it pops; a drawing that stops being a preview is the one
        exception, so it is re-queued here.
        """
        with self._lock:
            entry = self._queued.get(id(slot))
            current = self.urgency(slot)
            if entry is None or current >= entry.key:
                return
            fresh = replace(entry, key=current, order=next(self._order))
            entry.replaced = True
            heapq.heappush(self._heap, fresh)
            self._queued[id(slot)] = fresh

    def _serve_next(self) -> None:
        entry = self._pop()
        if entry is None:
            return
        try:
            if entry.future.cancelled():
                return  # A connection that closed while it waited needs no work.
            try:
                outcome, failed = entry.run(entry.slot), False
            except BaseException as error:  # noqa: BLE001 - handed to the awaiting connection.
                outcome, failed = error, True
            entry.loop.call_soon_threadsafe(_settle, entry.future, outcome, failed)
        finally:
            if entry.heavy:
                with self._lock:
                    self._heavy_running -= 1
                # A heavy drawing passed over while the lanes were taken has no task left to take it.
                self._executor.submit(self._serve_next)

    def _pop(self) -> _Entry | None:
        # Keys only grow while an entry waits (a newer drawing arrives; `hurry` re-queues the
        # one exception), so a stored key is a lower bound: the top entry is the most urgent
        # once its key is checked to be current.
        # Heavy entries are passed over while every heavy lane is taken.
        with self._lock:
            passed, found = [], None
            while self._heap:
                entry = heapq.heappop(self._heap)
                if entry.replaced:
                    continue
                since = entry.slot.pending_since()
                if since is not None and since.heavy and self._heavy_running >= self.heavy_lanes:
                    passed.append(entry)
                    continue
                current = self.urgency(entry.slot)
                if current <= entry.key or not self._heap or current <= self._heap[0].key:
                    del self._queued[id(entry.slot)]
                    entry.heavy = since is not None and since.heavy
                    self._heavy_running += entry.heavy
                    found = entry
                    break
                entry.key = current
                heapq.heappush(self._heap, entry)
            for entry in passed:
                heapq.heappush(self._heap, entry)
        return found


def _settle(future: asyncio.Future, outcome: object, failed: bool) -> None:
    if future.done():
        return  # The connection closed meanwhile.
    if failed:
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
