"""Benchmark: `demnistify serve` cold start to ready, and its resident memory after warm-up, with and without TensorFlow."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
sys.path.insert(0, str(REPO_ROOT))


class ServerProcess:
    """`demnistify serve --port 0` in a subprocess: the ready time, its address and memory."""

    def __init__(self, tracking_uri: str | None, *extra: str) -> None:
        command = [sys.executable, "-m", "demnistify.cli", "serve", "--port", "0", *extra]
        command += ["--tracking-uri", tracking_uri] if tracking_uri else []
        self._log = tempfile.TemporaryFile("w+")
        started = time.perf_counter()
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self._log, text=True)
        line = self.process.stdout.readline()
        self.ready_seconds = time.perf_counter() - started
        if "open http://" not in line:
            self._log.seek(0)
            raise SystemExit(f"The server did not start:\n{line}{self._log.read()[-3000:]}")
        self.http_url = line.rsplit("open ", 1)[1].strip()
        self.ws_url = self.http_url.replace("http://", "ws://")

    def rss_mib(self) -> float:
        """Resident set size of the server process, from /proc."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def processes(self) -> list[int]:
        """The server's pid and those of its worker processes (serve --workers), from /proc."""
        found, queue = [], [self.process.pid]
        while queue:
            pid = queue.pop()
            try:
                threads = os.listdir(f"/proc/{pid}/task")
                queue += [int(child) for thread in threads
                          for child in Path(f"/proc/{pid}/task/{thread}/children").read_text().split()]
            except (OSError, ValueError):
                continue  # The process ended meanwhile.
            found.append(pid)
        return found

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its worker processes."""
        tick, total = os.sysconf("SC_CLK_TCK"), 0.0
        for pid in self.processes():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def lower_priority(self, niceness: int) -> None:
        """Renice every thread of the server's processes (threads started later inherit it)."""
        for pid in self.processes():
            for thread in os.listdir(f"/proc/{pid}/task"):
                try:
                    os.setpriority(os.PRIO_PROCESS, int(thread), niceness)
                except OSError:
                    pass  # The thread ended meanwhile.

    def stop(self) -> int:
        """SIGTERM, as a service manager would; returns the exit status."""
        self.process.terminate()
        try:
            return self.process.wait(timeout=30)
        finally:
            self.process.kill()

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.stop()


def check_model(tracking_uri: str | None) -> None:
    """Exit with a clear message when the registry holds no champion model to benchmark."""
    from registry.client import RegistryError, connect, resolve
    from demnistify.constants import DEFAULT_MODEL_URI

    try:
        resolve(connect(tracking_uri), DEFAULT_MODEL_URI)
    except RegistryError as error:
        raise SystemExit(f"{error}\nThe benchmarks need a registered model: run `demnistify train --profile quick` "
                         "(or pass --tracking-uri of a store that has one).") from None


async def warm_up(ws_url: str, messages: list[str]) -> None:
    """Send each message and wait for its reply, so every code path has run once."""
    from websockets.asyncio.client import connect

    async with connect(ws_url) as ws:
        await ws.recv()
        for message in messages:
            await ws.send(message)
            await ws.recv()


def write_results(name: str, document: dict) -> Path:
    """Write bench/results/NAME.json (gitignored) and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(document, indent=2))
    return path


def main() -> None:
    """Start the server a few times, and the same server loading TensorFlow; ready time and RSS after warm-up."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
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
            print(f"{name:<16} {index:>3} {row['ready_s']:>10} {row['rss_ready_mib']:>16} {row['rss_warm_mib']:>15} "
                  f"{row['exit_status']:>5}")
    medians = {name: {key: statistics.median(row[key] for row in runs) for key in ("ready_s", "rss_warm_mib")}
               for name, runs in rows.items()}
    ours, baseline = medians["ours"], medians["with_tensorflow"]
    print(f"medians: ready {ours['ready_s']:.2f} s against {baseline['ready_s']:.2f} s "
          f"({baseline['ready_s'] / ours['ready_s']:.1f}x sooner), RSS warm {ours['rss_warm_mib']:.0f} MiB against "
          f"{baseline['rss_warm_mib']:.0f} MiB ({baseline['rss_warm_mib'] / ours['rss_warm_mib']:.1f}x less)")
    print(f"results: {write_results('startup', {'runs': rows['ours'], 'with_tensorflow': rows['with_tensorflow']})}")


def measure_start(tracking_uri: str | None, *extra: str) -> dict:
    """Start one server, warm every code path up, and stop it: ready time, RSS ready and warm, exit status."""
    from bench_latency import drawing_message

    with ServerProcess(tracking_uri, *extra) as server:
        idle = server.rss_mib()
        asyncio.run(warm_up(server.ws_url, [drawing_message(i, count, seed=i) for i, count in
                                            enumerate([1, 3, 6, 10] * 5)]))
        return {"ready_s": round(server.ready_seconds, 2), "rss_ready_mib": round(idle, 1),
                "rss_warm_mib": round(server.rss_mib(), 1), "exit_status": server.stop()}


if __name__ == "__main__":
    main()
