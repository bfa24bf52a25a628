"""Benchmark: 100 clients each streaming a drawing stroke by stroke at 30 updates/s, against the seed's path."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from bench.drawings import client_frames
from bench.harness import ServerProcess, add_tracking_uri, check_model, free_port, write_results

# The server runs this much nicer than the clients generating its load (see `measure`).
SERVER_NICENESS = 5


async def stream(ws_url: str, drawings: list[list[str]], rate: float, stats: dict, delay: float) -> list[dict]:
    """After `delay`, draw each drawing in turn (the next once the last one's result is back)."""
    from websockets.asyncio.client import connect

    async with connect(ws_url, max_size=None) as ws:
        await ws.recv()
        await asyncio.sleep(delay + np.random.default_rng().uniform(0, 1 / rate))  # No lockstep between clients.
        return [await _draw(ws, frames, rate, stats) for frames in drawings]


async def _draw(ws, frames: list[str], rate: float, stats: dict) -> dict:
    """Send the frames at `rate` per second, collect results until the last frame's arrives."""
    sender = asyncio.create_task(_send(ws, frames, rate))
    final, results = json.loads(frames[-1])["id"], 0
    async with asyncio.timeout(120):
        while True:
            event = json.loads(await ws.recv())
            stats["results"] += event["type"] == "result"
            results += event["type"] == "result"
            if event.get("id") == final:
                last_sent = await sender
                return {
                    "latency_ms": (time.perf_counter() - last_sent) * 1000,
                    "text": event.get("text"),
                    "results": results,
                    "server_ms": event.get("elapsed_ms"),
                    "final_sent": last_sent,
                }


async def _send(ws, frames: list[str], rate: float) -> float:
    start = time.perf_counter()
    for index, frame in enumerate(frames):
        await asyncio.sleep(max(0.0, start + index / rate - time.perf_counter()))
        sent = time.perf_counter()
        await ws.send(frame)
    return sent


@dataclass(frozen=True)
class Load:
    """What the clients do: how many, how fast, how many drawings each, and how their starts spread."""

    clients: int = 100
    updates: int = 90
    rate: float = 30.0
    drawings: int = 1
    stagger: float = 0.0  # Clients start at random within this many seconds.
    hints: bool = True  # Frames say whether the pen is down.


async def run_clients(ws_url: str, load: Load) -> dict:
    """Every client's drawings; recognitions/s, last-update latency percentiles, wrong and lost finals."""
    work = [client_work(client, load) for client in range(load.clients)]
    stats, starts = {"results": 0}, np.random.default_rng(0).uniform(0, load.stagger, load.clients)
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(stream(ws_url, frames, load.rate, stats, delay) for (_, frames), delay in zip(work, starts)),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - started
    done = [(text, o) for (text, _), o in zip(work, outcomes) if isinstance(o, list)]
    # A client's last drawing ends as the others stop drawing, under a lighter load: with several
    # drawings each, only the ones finished while every client was still drawing are timed.
    timed = [o for _, o in done for o in (o[:-1] if load.drawings > 1 else o)]
    latencies, server_ms = [o["latency_ms"] for o in timed], [o["server_ms"] or 0 for o in timed]
    return {
        **asdict(load),
        "results": stats["results"],
        "seconds": round(elapsed, 2),
        "recognitions_per_s": round(stats["results"] / elapsed, 1),
        "timed_finals": len(timed),
        "last_p50_ms": float(np.percentile(latencies, 50)) if latencies else None,
        "last_p99_ms": float(np.percentile(latencies, 99)) if latencies else None,
        # The part of it spent in the server, from the frame's arrival to its reply.
        "last_server_p99_ms": float(np.percentile(server_ms, 99)) if server_ms else None,
        "lost": load.clients - len(done),
        "wrong": sum(d["text"] != text for text, o in done for d in o),
        # A client that keeps drawing must still see results while it draws.
        "fewest_results": min((d["results"] for _, o in done for d in o), default=0),
        # How close together the clients sent their first drawings' last updates.
        "finals_spread_ms": 1000 * float(np.ptp([o[0]["final_sent"] for _, o in done])) if done else None,
    }


def client_work(client: int, load: Load) -> tuple[str, list[list[str]]]:
    """(expected text, frames of each drawing): the client draws its number `drawings` times, ids growing."""
    frames = [
        client_frames(client, load.updates, 1 + drawing * load.updates, load.hints) for drawing in range(load.drawings)
    ]
    return frames[0][0], [drawing for _, drawing in frames]


def measure(tracking_uri: str | None, load: Load, *extra: str, workers: int = 1) -> dict:
    """Start a server (`workers` processes), run the clients against it, stop it."""
    import urllib.request

    # Processes sharing a port need a fixed one.
    shared = ("--workers", str(workers), "--port", str(free_port())) if workers > 1 else ()
    with ServerProcess(tracking_uri, *extra, *shared) as server:
        for _ in range(workers - 1):
            server.process.stdout.readline()  # Every worker says when it is ready.
        # The load generator shares the cores with the server. Without this, whenever the
        # server took both cores the generator read its replies late, and that delay counted
        # as server latency (docs/design.md, "Benchmarks").
        server.lower_priority(SERVER_NICENESS)
        server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
        row = asyncio.run(run_clients(server.ws_url, load))
        # The clients run on the same cores: how the CPU time was shared tells what a server
        # with the machine to itself could do.
        row |= {
            "server_cpu_s": round(server.cpu_seconds() - server_cpu, 2),
            "clients_cpu_s": round(time.process_time() - client_cpu, 2),
        }
        with urllib.request.urlopen(server.http_url + "healthz", timeout=10) as response:
            return {**row, "server": json.loads(response.read())["inference"]}


def main() -> None:
    """Both scenarios, ours against first come first served (and the seed's path); bench/results/load.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_tracking_uri(parser)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--updates", type=int, default=90, help="updates per drawing (3 s at 30/s)")
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--drawings", type=int, default=3, help="drawings per client when staggered")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="our server's processes (serve --workers; default: one per core)",
    )
    arguments = parser.parse_args()
    check_model(arguments.tracking_uri)
    together = Load(arguments.clients, arguments.updates, arguments.rate)
    # Clients start at random within one drawing's time and draw one number after another, so
    # about 100 draw at any moment, as on a busy service; each final is timed while all draw.
    staggered = Load(
        arguments.clients, arguments.updates, arguments.rate, arguments.drawings, arguments.updates / arguments.rate
    )
    ours, fcfs = {"workers": arguments.workers}, ("--patience-seconds", "0", "--preview-patience-seconds", "0")
    # First come, first served shows what the line order (serving/scheduler.py) is worth; frames
    # without pen hints what `pen_down` is worth; the seed's path where the project started.
    rows = {
        "staggered": {
            "ours": measure(arguments.tracking_uri, staggered, **ours),
            "ours_no_pen_hints": measure(arguments.tracking_uri, replace(staggered, hints=False), **ours),
            "ours_fcfs": measure(arguments.tracking_uri, staggered, *fcfs, **ours),
        },
        "together": {
            "ours": measure(arguments.tracking_uri, together, **ours),
            "ours_fcfs": measure(arguments.tracking_uri, together, *fcfs, **ours),
            "seed_predict": measure(arguments.tracking_uri, together, "--inference", "predict", "--cache-size", "0"),
        },
    }
    met = {name: _met(scenario["ours"]) for name, scenario in rows.items()}
    print_table(rows, met)
    print(f"results: {write_results('load', {**rows, 'target_met': met})}")


def _met(row: dict) -> bool:
    return row["recognitions_per_s"] >= 800 and (row["last_p99_ms"] or 1e9) <= 50 and not row["lost"]


def print_table(rows: dict, met: dict) -> None:
    """One line per scenario and server, then where the CPU went and the cache figures."""
    print(
        f"{'scenario':<10} {'server':<18} {'recog/s':>8} {'last p50 ms':>12} {'last p99 ms':>12} {'lost':>5} "
        f"{'wrong':>6} {'fewest results':>15}"
    )
    for scenario, servers in rows.items():
        for name, row in servers.items():
            p50, p99 = (f"{row[k]:.1f}" if row[k] is not None else "-" for k in ("last_p50_ms", "last_p99_ms"))
            print(
                f"{scenario:<10} {name:<18} {row['recognitions_per_s']:>8} {p50:>12} {p99:>12} {row['lost']:>5} "
                f"{row['wrong']:>6} {row['fewest_results']:>15}"
            )
    for scenario, servers in rows.items():
        for name, row in servers.items():
            print(
                f"{scenario} {name}: CPU over {row['seconds']} s: server {row['server_cpu_s']} s, load-generating "
                f"clients {row['clients_cpu_s']} s"
            )
    print(f"together: the clients sent their last updates within {rows['together']['ours']['finals_spread_ms']:.0f} ms")
    stats = rows["staggered"]["ours"]["server"]
    if stats:
        hits = stats["cache_hits"] / max(1, stats["cache_hits"] + stats["cache_misses"])
        print(
            f"staggered ours: digit cache hit rate {hits:.0%}, "
            f"{stats['batched_requests'] / max(1, stats['model_calls']):.2f} requests per model call"
        )
    for scenario, ok in met.items():
        print(f"target (>= 800 recognitions/s, p99 <= 50 ms, none lost), {scenario}: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
