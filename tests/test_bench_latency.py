"""The latency benchmark's two ways of sending drawings, short, against a real server."""

from __future__ import annotations

import asyncio

import pytest

from bench.bench_latency import measure
from bench.harness import ServerProcess

pytestmark = pytest.mark.slow

REPEATS = 3


def test_fresh_and_live_drawings_time_the_whole_drawing_and_read_it_right(trained_store):
    with ServerProcess(trained_store.tracking_uri) as server:
        fresh = asyncio.run(measure(server.ws_url, 3, REPEATS))
        # Live, every frame but the last holds part of the number: a wrong text would show that
        # an unfinished drawing was the one timed.
        live = asyncio.run(measure(server.ws_url, 3, REPEATS, live=True))
    for latencies, server_ms, wrong in (fresh, live):
        assert wrong == 0 and len(latencies) == len(server_ms) == REPEATS
        # The server's own part of a round trip is measured inside it, so it is the smaller.
        assert all(0 < inside < total for inside, total in zip(server_ms, latencies)), (server_ms, latencies)
