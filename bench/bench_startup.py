"""Benchmark: `demnistify serve` cold start to ready, and its resident memory after warm-up, with and without TensorFlow."""

from __future__ import annotations

import argparse
import asyncio
import statistics

from bench.drawings import drawing_message
from bench.harness import ServerProcess, add_tracking_uri, check_model, write_results


async def warm_up(ws_url: str, messages: list[str]) -> None:
    """Send each message and wait for its reply, so every code path has run once."""
    from websockets.asyncio.client import connect

    async with connect(ws_url) as ws:
        await ws.recv()
        for message in messages:
            await ws.send(message)
            await ws.recv()


def main() -> None:
    """Start the server a few times, and the same server loading TensorFlow; ready time and RSS after warm-up."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_tracking_uri(parser)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    check_model(arguments.tracking_uri)
    # The default runs the version's registered int8 graph without TensorFlow; the baseline, in
    # turn with it, loads TensorFlow and the Keras model to export it (what a version registered
    # without its graph's digest costs, and what every start cost before).
    modes = {"ours": (), "with_tensorflow": ("--inference", "onnx-float")}
    rows = {name: [] for name in modes}
    for _ in range(arguments.runs):
        for name, extra in modes.items():
            rows[name].append(measure_start(arguments.tracking_uri, *extra))
    print(f"{'server':<16} {'run':>3} {'ready (s)':>10} {'RSS ready (MiB)':>16} {'RSS warm (MiB)':>15} {'exit':>5}")
    for name, runs in rows.items():
        for index, row in enumerate(runs):
            print(
                f"{name:<16} {index:>3} {row['ready_s']:>10} {row['rss_ready_mib']:>16} {row['rss_warm_mib']:>15} "
                f"{row['exit_status']:>5}"
            )
    medians = {
        name: {key: statistics.median(row[key] for row in runs) for key in ("ready_s", "rss_warm_mib")}
        for name, runs in rows.items()
    }
    ours, baseline = medians["ours"], medians["with_tensorflow"]
    print(
        f"medians: ready {ours['ready_s']:.2f} s against {baseline['ready_s']:.2f} s "
        f"({baseline['ready_s'] / ours['ready_s']:.1f}x sooner), RSS warm {ours['rss_warm_mib']:.0f} MiB against "
        f"{baseline['rss_warm_mib']:.0f} MiB ({baseline['rss_warm_mib'] / ours['rss_warm_mib']:.1f}x less)"
    )
    print(f"results: {write_results('startup', {'runs': rows['ours'], 'with_tensorflow': rows['with_tensorflow']})}")


def measure_start(tracking_uri: str | None, *extra: str) -> dict:
    """Start one server, warm every code path up, and stop it: ready time, RSS ready and warm, exit status."""
    with ServerProcess(tracking_uri, *extra) as server:
        idle = server.rss_mib()
        asyncio.run(
            warm_up(server.ws_url, [drawing_message(i, count, seed=i) for i, count in enumerate([1, 3, 6, 10] * 5)])
        )
        return {
            "ready_s": round(server.ready_seconds, 2),
            "rss_ready_mib": round(idle, 1),
            "rss_warm_mib": round(server.rss_mib(), 1),
            "exit_status": server.stop(),
        }


if __name__ == "__main__":
    main()
