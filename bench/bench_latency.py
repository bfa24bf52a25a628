"""Benchmark: end-to-end latency over loopback for 1, 3, 6 and 10 digits, fresh and drawn live, against the seed's path."""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import numpy as np

from bench.drawings import message, number_drawing
from bench.harness import ServerProcess, add_tracking_uri, check_model, write_results

PACE_SECONDS = 0.01


async def measure(ws_url: str, count: int, repeats: int, live: bool = False) -> tuple[list[float], list[float], int]:
    """Round trips of new drawings, one at a time; (latencies, server-side elapsed_ms, wrong answers).

    Fresh: each drawing is sent whole, once. `live`: it is streamed as drawn, one frame per
    finished stroke, each answered before the next, and the frame that completes it is timed.
    That is what a person drawing sees: the server has read the earlier strokes, so its caches
    hold the unchanged digits. Drawings are jittered, so none is cached from an earlier one.
    """
    from websockets.asyncio.client import connect

    latencies, server, wrong = [], [], 0
    async with connect(ws_url, max_size=None) as ws:
        await ws.recv()
        for index in range(repeats + 5):
            text, strokes, width = number_drawing(count, seed=(20_000 if live else 10_000) * count + index)
            for drawn in range(1, len(strokes) + 1) if live else [len(strokes)]:
                frame = message(index, strokes[:drawn], width)
                # Pace at a pointer's rate (the server refuses bursts above its rate limit).
                await asyncio.sleep(PACE_SECONDS)
                started = time.perf_counter()
                await ws.send(frame)
                result = json.loads(await ws.recv())
            if index >= 5:  # The first few warm up the code paths.
                latencies.append((time.perf_counter() - started) * 1000)
                server.append(result.get("elapsed_ms", float("nan")))
                wrong += result.get("text") != text
    return latencies, server, wrong


def run_server(tracking_uri: str | None, counts: list[int], repeats: int, *extra: str, live: bool = False) -> dict:
    """Start one server and measure every drawing size against it (`live`: streamed as drawn)."""
    rows = {}
    with ServerProcess(tracking_uri, *extra) as server:
        for count in counts:
            latencies, inside, wrong = asyncio.run(measure(server.ws_url, count, repeats, live))
            rows[count] = {
                "p50_ms": float(np.percentile(latencies, 50)),
                "p99_ms": float(np.percentile(latencies, 99)),
                "server_p50_ms": float(np.percentile(inside, 50)),
                "n": len(latencies),
                "wrong": wrong,
            }
    return rows


def main() -> None:
    """Measure ours and the baseline in the same run; print a table, write bench/results/latency.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_tracking_uri(parser)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--baseline-repeats", type=int, default=40, help="model.predict is slow; fewer suffice")
    arguments = parser.parse_args()
    check_model(arguments.tracking_uri)
    counts = [1, 3, 6, 10]
    # No cache for either: every drawing is fresh, so this measures the full path.
    ours = run_server(arguments.tracking_uri, counts, arguments.repeats, "--cache-size", "0")
    # The same server on the float graph shows what the int8 graph is worth.
    float_graph = run_server(
        arguments.tracking_uri, counts, arguments.repeats, "--cache-size", "0", "--inference", "onnx-float"
    )
    seed = run_server(
        arguments.tracking_uri, counts, arguments.baseline_repeats, "--cache-size", "0", "--inference", "predict"
    )
    # The served default (caches on), fed as a drawing client feeds it. The seed had no cache,
    # so its live updates cost what its fresh drawings do.
    live = run_server(arguments.tracking_uri, counts, arguments.repeats, live=True)
    # The same without caches shows what they are worth to a person drawing.
    uncached = run_server(arguments.tracking_uri, counts, arguments.repeats, "--cache-size", "0", live=True)
    print_table(counts, ours, float_graph, seed, live, uncached)
    target = {
        name: rows[6]["p50_ms"] <= 3 and rows[6]["p99_ms"] <= 10 for name, rows in (("fresh", ours), ("live", live))
    }
    for name, met in target.items():
        print(f"target for 6 digits (p50 <= 3 ms, p99 <= 10 ms), {name} drawings: {'met' if met else 'NOT met'}")
    results = {
        "ours": ours,
        "onnx_float": float_graph,
        "seed_predict": seed,
        "ours_live": live,
        "ours_live_no_cache": uncached,
        "target_met": target,
    }
    print(f"results: {write_results('latency', results)}")


def print_table(counts: list[int], ours: dict, float_graph: dict, seed: dict, live: dict, uncached: dict) -> None:
    """Fresh drawings on both graphs and the seed's path, then the same sizes drawn live."""
    print(
        f"{'digits':>6} {'p50 ms':>8} {'p99 ms':>8} {'server p50':>10} {'float p50':>9} {'float p99':>9} "
        f"{'seed p50':>9} {'seed p99':>9} {'p50 x':>7} {'p99 x':>7} {'wrong':>6}"
    )
    for count in counts:
        a, f, b = ours[count], float_graph[count], seed[count]
        print(
            f"{count:>6} {a['p50_ms']:>8.2f} {a['p99_ms']:>8.2f} {a['server_p50_ms']:>10.2f} {f['p50_ms']:>9.2f} "
            f"{f['p99_ms']:>9.2f} {b['p50_ms']:>9.1f} {b['p99_ms']:>9.1f} {b['p50_ms'] / a['p50_ms']:>7.1f} "
            f"{b['p99_ms'] / a['p99_ms']:>7.1f} {a['wrong'] + f['wrong']:>6}"
        )
    print("drawn live (one frame per finished stroke, the served default with its caches; the last frame timed):")
    print(
        f"{'digits':>6} {'p50 ms':>8} {'p99 ms':>8} {'server p50':>10} {'seed p50 x':>10} {'no cache p50':>12} "
        f"{'no cache p99':>12} {'wrong':>6}"
    )
    for count in counts:
        c, u = live[count], uncached[count]
        print(
            f"{count:>6} {c['p50_ms']:>8.2f} {c['p99_ms']:>8.2f} {c['server_p50_ms']:>10.2f} "
            f"{seed[count]['p50_ms'] / c['p50_ms']:>10.1f} {u['p50_ms']:>12.2f} {u['p99_ms']:>12.2f} "
            f"{c['wrong'] + u['wrong']:>6}"
        )


if __name__ == "__main__":
    main()
