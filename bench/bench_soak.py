"""Soak: N clients stream drawings stroke by stroke at 30 updates/s for D seconds; is the server still well after?"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass, field

import numpy as np

from bench.drawings import client_frames
from bench.harness import ServerProcess, add_tracking_uri, check_model, write_results

# Distinct drawings the clients cycle through: enough fresh digits to keep the server's digit cache churning.
VARIANTS = 64


@dataclass
class Tally:
    """What every client saw, together."""

    results: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)


def drawing_pool(updates: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """(text, frames) per variant, each frame split around its id so that every send gets a fresh one."""
    pool = []
    for variant in range(VARIANTS):
        text, frames = client_frames(variant, updates)
        pool.append((text, [tuple(frame.split(f'"id": {n}, ', 1)) for n, frame in enumerate(frames, 1)]))
    return pool


def with_id(parts: tuple[str, str], request_id: int | str) -> str:
    """The frame with its id put back."""
    return f'{parts[0]}"id": {json.dumps(request_id)}, {parts[1]}'


async def stream(ws, index: int, pool: list, rate: float, end: float, sent: dict) -> tuple[str, tuple[str, str]]:
    """Send drawing after drawing, one update at a time at `rate`, until `end`; returns the one being drawn."""
    start, count, cycle = time.perf_counter(), 0, 0
    while True:
        text, frames = pool[(index + 7 * cycle) % len(pool)]
        for parts in frames:
            await asyncio.sleep(max(0.0, start + count / rate - time.perf_counter()))
            if time.perf_counter() >= end:
                return text, frames[-1]
            sent[count] = time.perf_counter()
            await ws.send(with_id(parts, count))
            count += 1
        cycle += 1


async def read_results(ws, sent: dict, tally: Tally) -> str | None:
    """Count results and their latency (stale drawings get none) until the final answer; returns its text."""
    async for message in ws:
        event = json.loads(message)
        if event["type"] == "error":
            tally.errors += 1
        if event["type"] != "result":
            continue
        if event["id"] == "final":
            return event["text"]
        tally.results += 1
        tally.latencies_ms.append((time.perf_counter() - sent[event["id"]]) * 1000)
        # Replies come in order: drawings older than this one will never be answered.
        while sent and next(iter(sent)) <= event["id"]:
            del sent[next(iter(sent))]


async def soak_client(url: str, index: int, pool: list, rate: float, end: float, tally: Tally) -> bool:
    """Stream until `end`, then send the current drawing whole and wait for it; True when read right."""
    from websockets.asyncio.client import connect

    sent: dict[int, float] = {}
    async with connect(url, max_size=None) as ws:
        await ws.recv()
        reader = asyncio.create_task(read_results(ws, sent, tally))
        await asyncio.sleep((index % 10) / (10 * rate))  # No lockstep between clients.
        text, whole = await stream(ws, index, pool, rate, end, sent)
        await ws.send(with_id(whole, "final"))
        return await asyncio.wait_for(reader, 60) == text


async def sample_rss(server, samples: list[tuple[float, float]], every: float = 1.0) -> None:
    """Record (seconds since start, server RSS in MiB) until cancelled."""
    start = time.perf_counter()
    while True:
        samples.append((time.perf_counter() - start, server.rss_mib()))
        await asyncio.sleep(every)


def health(server) -> dict:
    with urllib.request.urlopen(server.http_url + "healthz", timeout=10) as response:
        return json.loads(response.read())


async def settled_health(server, timeout: float = 10) -> dict:
    """/healthz once every client's connection is gone (or after `timeout`)."""
    deadline = time.monotonic() + timeout
    while (document := await asyncio.to_thread(health, server))["connections"] and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return document


async def run_soak(server, clients: int, seconds: float, rate: float, updates: int, warmup: float) -> dict:
    """Run the clients against `server` (a bench.harness.ServerProcess) and summarize what they and it saw."""
    pool, tally, samples = drawing_pool(updates), Tally(), []
    sampler = asyncio.create_task(sample_rss(server, samples))
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(soak_client(server.ws_url, index, pool, rate, started + seconds, tally) for index in range(clients)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    document = await settled_health(server)
    sampler.cancel()
    rss_start = next((rss for at, rss in samples if at >= warmup), samples[-1][1])
    rss_end = server.rss_mib()
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "results": tally.results,
        "errors": tally.errors,
        "recognitions_per_s": round(tally.results / elapsed, 1),
        "p50_ms": round(float(np.percentile(tally.latencies_ms, 50)), 2) if tally.latencies_ms else None,
        "p99_ms": round(float(np.percentile(tally.latencies_ms, 99)), 2) if tally.latencies_ms else None,
        "rss_start_mib": round(rss_start, 1),
        "rss_end_mib": round(rss_end, 1),
        "rss_max_mib": round(max(rss for _, rss in samples), 1),
        "rss_every_10s_mib": [round(rss, 1) for at, rss in samples[::10]],
        "rss_growth_pct": round(100 * (rss_end - rss_start) / rss_start, 1),
        "finals_correct": sum(outcome is True for outcome in outcomes),
        "lost": sum(isinstance(outcome, BaseException) for outcome in outcomes),
        "failures": sorted({repr(outcome)[:200] for outcome in outcomes if isinstance(outcome, BaseException)}),
        "connections_end": document["connections"],
        "tasks_end": document.get("tasks"),
        "status_end": document["status"],
    }


def print_table(row: dict) -> None:
    """The figures, one per line."""
    names = [
        ("clients", "clients"),
        ("seconds", "duration (s)"),
        ("recognitions_per_s", "recognitions/s"),
        ("p50_ms", "result p50 (ms)"),
        ("p99_ms", "result p99 (ms)"),
        ("errors", "error events"),
        ("rss_start_mib", "RSS after warm-up (MiB)"),
        ("rss_end_mib", "RSS at end (MiB)"),
        ("rss_growth_pct", "RSS growth (%)"),
        ("connections_end", "connections at end"),
        ("tasks_end", "asyncio tasks at end"),
        ("finals_correct", "final drawings read right"),
        ("lost", "clients lost"),
        ("exit_status", "server exit status"),
    ]
    for key, label in names:
        print(f"{label:<27} {row.get(key, '-')}")


def main() -> None:
    """Start a server, soak it, stop it with SIGTERM; a table and bench/results/soak.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_tracking_uri(parser)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of streaming")
    parser.add_argument("--rate", type=float, default=30.0, help="updates per second per client")
    parser.add_argument("--updates", type=int, default=90, help="updates per drawing (3 s at 30/s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the starting RSS is taken")
    arguments = parser.parse_args()
    check_model(arguments.tracking_uri)
    with ServerProcess(arguments.tracking_uri) as server:
        row = asyncio.run(
            run_soak(server, arguments.clients, arguments.duration, arguments.rate, arguments.updates, arguments.warmup)
        )
        row["exit_status"] = server.stop()
    print_table(row)
    healthy = row["finals_correct"] == row["clients"] and not row["lost"] and row["exit_status"] == 0
    print(f"every final drawing answered right, no client lost, clean exit: {'yes' if healthy else 'NO'}")
    print(f"results: {write_results('soak', {**row, 'healthy': healthy})}")


if __name__ == "__main__":
    main()
