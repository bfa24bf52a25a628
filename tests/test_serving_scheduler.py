"""The recognition line: the drawing that waited longest goes first, within the patience bound."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from serving.live import Job, LatestSlot
from serving.messages import StrokesRequest
from serving.scheduler import OldestFirst


def offered(*arrivals: float, pen_down: bool = False) -> LatestSlot:
    """A slot that was sent one drawing at each arrival time (the last one still pending)."""
    slot = LatestSlot()
    for received in arrivals:
        slot.offer(drawing(received, pen_down))
    return slot


def drawing(received: float, pen_down: bool = False) -> Job:
    """A job for a one-stroke drawing that arrived at `received`, sent with the pen up or down."""
    return Job(StrokesRequest(None, 100, 100, [[[10, 10], [20, 20]]], pen_down=pen_down), received)


def served_order(
    slots: dict[str, LatestSlot], patience: float, between=None, preview_patience: float = 10.0
) -> list[str]:
    """Queue every slot behind a busy thread, optionally change them (`between`), then release it."""
    order: list[str] = []

    def run(slot: LatestSlot) -> str:
        name = next(name for name, candidate in slots.items() if candidate is slot)
        order.append(name)
        slot.take()
        return name

    async def scenario() -> list[str]:
        gate = threading.Event()
        with ThreadPoolExecutor(1) as executor:
            executor.submit(gate.wait)  # The only thread is busy until every slot is queued.
            scheduler = OldestFirst(executor, patience, max(patience, preview_patience))
            waiting = [asyncio.create_task(scheduler.run(slot, run)) for slot in slots.values()]
            await asyncio.sleep(0.05)
            if between:
                between(slots, scheduler)
            gate.set()
            replies = await asyncio.gather(*waiting)
        # Each connection gets the reply of its own slot, whatever the order.
        assert replies == list(slots)
        return order

    return asyncio.run(scenario())


def test_a_finished_drawing_overtakes_ones_still_changing():
    slots = {"still drawing": offered(0.0, 1.0, 2.0), "finished": offered(0.5), "also drawing": offered(0.2, 1.5)}
    assert served_order(slots, patience=10.0) == ["finished", "also drawing", "still drawing"]


def test_patience_zero_is_first_come_first_served():
    slots = {"still drawing": offered(0.0, 1.0, 2.0), "finished": offered(0.5), "also drawing": offered(0.2, 1.5)}
    assert served_order(slots, patience=0.0) == ["still drawing", "also drawing", "finished"]


def test_a_drawing_that_keeps_changing_waits_at_most_the_patience():
    # Pending since 0.0 and replaced at 2.0: with 0.3 s of patience it counts as from 0.3,
    # ahead of a drawing finished at 0.5.
    slots = {"finished": offered(0.5), "still drawing": offered(0.0, 2.0)}
    assert served_order(slots, patience=0.3) == ["still drawing", "finished"]


def test_a_drawing_replaced_while_queued_moves_back_in_line():
    slots = {"first": offered(0.0), "second": offered(0.1), "third": offered(0.2)}
    # "first" is queued at the head, then gets a newer drawing while the thread is busy.
    served = served_order(slots, patience=10.0, between=lambda slots, _: slots["first"].offer(drawing(0.3)))
    assert served == ["second", "third", "first"]


def test_a_lifted_pen_goes_ahead_of_previews_sent_earlier():
    slots = {"pen down": offered(0.0, 0.1, pen_down=True), "pen lifted": offered(0.2)}
    assert served_order(slots, patience=0.033) == ["pen lifted", "pen down"]
    # Without preview patience the preview keeps its place from 0.0.
    slots = {"pen down": offered(0.0, 0.1, pen_down=True), "pen lifted": offered(0.2)}
    assert served_order(slots, patience=0.0, preview_patience=0.0) == ["pen down", "pen lifted"]


def test_a_preview_waits_at_most_the_preview_patience():
    # Pending since 0.0 with 0.3 s of preview patience, it counts as from 0.3: ahead of 0.5.
    slots = {"pen lifted": offered(0.5), "pen down": offered(0.0, 2.0, pen_down=True)}
    assert served_order(slots, patience=0.033, preview_patience=0.3) == ["pen down", "pen lifted"]


def test_lifting_the_pen_while_queued_moves_the_drawing_forward():
    slots = {"early": offered(0.1), "late": offered(0.5), "drawing": offered(0.0, pen_down=True)}

    def lift(slots, scheduler):
        slots["drawing"].offer(drawing(0.3))
        scheduler.hurry(slots["drawing"])

    # Queued as a preview (in line from 10.0), it is served as a drawing from 0.3 once lifted.
    assert served_order(slots, patience=10.0, between=lift) == ["early", "drawing", "late"]


def test_a_failure_reaches_the_connection_that_asked():
    def run(slot: LatestSlot) -> str:
        raise RuntimeError("recognition failed")

    async def scenario() -> None:
        with ThreadPoolExecutor(1) as executor:
            await OldestFirst(executor).run(offered(0.0), run)

    with pytest.raises(RuntimeError, match="recognition failed"):
        asyncio.run(scenario())


def test_a_closed_connection_is_skipped_without_work():
    ran: list[LatestSlot] = []

    async def scenario() -> None:
        gate = threading.Event()
        gone, staying = offered(0.0), offered(0.1)
        with ThreadPoolExecutor(1) as executor:
            executor.submit(gate.wait)
            scheduler = OldestFirst(executor)
            closed = asyncio.create_task(scheduler.run(gone, ran.append))
            kept = asyncio.create_task(scheduler.run(staying, ran.append))
            await asyncio.sleep(0.05)
            closed.cancel()
            await asyncio.gather(closed, return_exceptions=True)  # Closed before the thread is free.
            gate.set()
            await kept
        assert ran == [staying]

    asyncio.run(scenario())


def test_negative_patience_or_a_shorter_preview_patience_is_refused():
    with pytest.raises(ValueError, match="patience"):
        OldestFirst(ThreadPoolExecutor(1), patience=-1.0)
    with pytest.raises(ValueError, match="preview_patience"):
        OldestFirst(ThreadPoolExecutor(1), patience=0.5, preview_patience=0.1)


def test_the_server_orders_its_line_with_both_configured_patiences():
    # The preview patience once stayed at its default whatever `serve` was given, so a "first
    # come, first served" server still put previews last.
    from serving.app import App
    from serving.config import ServeConfig

    config = ServeConfig(patience_seconds=0.0, preview_patience_seconds=0.0)
    with ThreadPoolExecutor(max_workers=1) as executor:
        scheduler = App(config, store=None, executor=executor).scheduler
    assert (scheduler.patience, scheduler.preview_patience) == (0.0, 0.0)
