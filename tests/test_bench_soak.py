"""The soak benchmark, short: 20 clients stream drawings for 8 s; every final drawing is read, memory stays put."""

from __future__ import annotations

import asyncio

import pytest

from bench.bench_soak import run_soak
from bench.harness import ServerProcess

pytestmark = pytest.mark.slow

CLIENTS = 20


def test_short_soak_reads_every_final_drawing_with_bounded_memory(trained_store):
    with ServerProcess(trained_store.tracking_uri) as server:
        row = asyncio.run(run_soak(server, CLIENTS, seconds=8, rate=30, updates=60, warmup=3))
        status = server.stop()
    print(row)
    assert row["lost"] == 0 and row["finals_correct"] == CLIENTS, row
    assert row["errors"] == 0 and row["results"] > CLIENTS * 8, row
    assert row["rss_growth_pct"] < 10, row
    assert row["connections_end"] == 0 and row["status_end"] == "ok" and status == 0, row
    # Once every client has gone, only the server's own few tasks are left (when /healthz reports them).
    assert row["tasks_end"] is None or row["tasks_end"] < 10, row
