"""Benchmark: a steady client's latency while 0, 1 or 4 attackers abuse the server, defended against undefended, in one run.

The undefended baseline is the same server at `--baseline` (a commit before the defences),
checked out in a temporary git worktree and started beside ours; scenarios alternate between
the two. Each attack kind runs its attackers for `--seconds` while the steady client draws one
fresh digit every 50 ms and a probe pings the websocket every 20 ms (a pong is written by the
server's event loop, so its delay is how long the loop was stalled). Peak RSS is the server's
VmHWM, reset before each scenario; each attack kind starts fresh server processes. Writes
bench/results/abuse.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.abuse_attacks import KINDS, PAYLOADS, AttackStats, attack
from bench.drawings import drawing_message
from bench.harness import REPO_ROOT, RESULTS_DIR, add_tracking_uri, write_json

# The last commit before the defences of docs/design.md's "Hostile input".
DEFAULT_BASELINE = "cd43055"
STEADY_PERIOD = 0.05
PING_PERIOD = 0.02
# A server still busy this long after its attackers left is restarted (the baseline chews on
# heavy drawings for a minute).
SETTLE_SECONDS = 8.0


class Server:
    """`demnistify serve` from a source tree, in a subprocess; restartable, with its CPU and peak memory."""

    def __init__(self, name: str, tree: Path, tracking_uri: str, model: str) -> None:
        self.name, self.tree, self.tracking_uri, self.model = name, tree, tracking_uri, model
        self.start()

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "demnistify.cli",
            "serve",
            "--port",
            "0",
            "--tracking-uri",
            self.tracking_uri,
            "--model",
            self.model,
        ]
        env = {**os.environ, "PYTHONPATH": str(self.tree)}
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            command, cwd=self.tree, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        line = self.process.stdout.readline()
        if "open http://" not in line:
            self.log.seek(0)
            raise SystemExit(f"{self.name} did not start:\n{line}{self.log.read()[-3000:]}")
        self.ws_url = line.rsplit("open ", 1)[1].strip().replace("http://", "ws://")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def peak_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def settle(self) -> bool:
        """Wait until the server is idle; restart it if it is still busy after SETTLE_SECONDS. True if restarted."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            before = self.cpu_seconds()
            time.sleep(0.5)
            if self.cpu_seconds() - before < 0.05:
                return False
        self.stop()
        self.start()
        return True


async def steady(url: str, until: float, latencies: list[float], errors: list[str]) -> None:
    """One fresh digit every STEADY_PERIOD, each after the answer to the last; an unanswered one counts until `until`."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        await ws.recv()
        index = 0
        while time.monotonic() < until:
            started = time.monotonic()
            await ws.send(drawing_message(index, 1, 10_000 + index))
            try:
                event = json.loads(await asyncio.wait_for(ws.recv(), until + 30 - started))
                errors += [event["code"]] if event["type"] == "error" else []
            except TimeoutError:
                errors.append("timeout")
            latencies.append(time.monotonic() - started)
            index += 1
            await asyncio.sleep(max(0.0, started + STEADY_PERIOD - time.monotonic()))


async def probe(url: str, until: float, delays: list[float]) -> None:
    """Ping every PING_PERIOD: the time to each pong is how long the server's event loop kept it waiting."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        await ws.recv()
        while time.monotonic() < until:
            started = time.monotonic()
            await (await ws.ping())
            delays.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, started + PING_PERIOD - time.monotonic()))


async def scenario(server: Server, kind: str, attackers: int, frames: list, seconds: float) -> dict:
    latencies, errors, delays, stats = [], [], [], AttackStats()
    server.reset_peak()
    until = time.monotonic() + seconds
    clients = [steady(server.ws_url, until, latencies, errors), probe(server.ws_url, until, delays)]
    clients += [
        attack(kind, server.ws_url, index, frames[index::attackers] if frames else [], stats, until)
        for index in range(attackers)
    ]
    await asyncio.gather(*clients)
    ms = sorted(1000 * value for value in latencies)
    return {
        "server": server.name,
        "attack": kind,
        "attackers": attackers,
        "steady_answers": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
        "worst_ms": round(ms[-1], 1),
        "steady_errors": errors[:5],
        "loop_stall_ms": round(1000 * max(delays), 1),
        "peak_rss_mib": round(server.peak_mib(), 1),
        **stats.summary(),
    }


def baseline_tree(ref: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-abuse-baseline-"))
    subprocess.run(
        ["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", str(folder), ref], check=True, capture_output=True
    )
    return folder


def run(args: argparse.Namespace) -> list[dict]:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    frames = {kind: [make(seed) for seed in range(args.variants)] for kind, make in PAYLOADS.items()}
    tree = baseline_tree(args.baseline)
    rows = []
    try:
        servers = [
            Server("undefended", tree, args.tracking_uri, args.baseline_model or args.model),
            Server("defended", REPO_ROOT, args.tracking_uri, args.model),
        ]
        plan = [("none", 0)] + [(kind, count) for kind in args.kinds for count in args.attackers if count]
        for step, (kind, count) in enumerate(plan):
            for server in servers:
                if step and kind != plan[step - 1][0]:
                    server.stop()  # A fresh process per attack kind: glibc keeps what the last one freed.
                    server.start()
                row = asyncio.run(scenario(server, kind, count, frames.get(kind, []), args.seconds))
                row["restarted_after"] = server.settle()
                rows.append(row)
                print(format_row(row), flush=True)
        for server in servers:
            server.stop()
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    return rows


def format_row(row: dict) -> str:
    return (
        f"| {row['attack']} | {row['attackers']} | {row['server']} | {row['p50_ms']} | {row['p99_ms']} | "
        f"{row['worst_ms']} | {row['loop_stall_ms']} | {row['peak_rss_mib']:.0f} | {row['answers']} / "
        f"{row['errors']} / {row['closed']} / {row['refused']} / {row['connections']} | {row['worst_answer_s']} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_tracking_uri(parser)
    parser.add_argument("--model", default="models:/demnistify-cnn@champion")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git ref of the undefended server")
    parser.add_argument(
        "--baseline-model",
        default=None,
        help="the model the undefended server serves (default: --model); it reads only versions registered in its day",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each scenario")
    parser.add_argument("--attackers", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--variants", type=int, default=8, help="distinct frames per attack kind")
    parser.add_argument("--json", default=str(RESULTS_DIR / "abuse.json"))
    args = parser.parse_args(argv)
    if not args.tracking_uri:
        parser.error("give --tracking-uri (or set MLFLOW_TRACKING_URI)")
    print(
        "| attack | attackers | server | steady p50 ms | p99 ms | worst ms | loop stall ms | peak RSS MiB | "
        "attackers' answers / errors / closed / refused / connections held | attackers' worst answer s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = run(args)
    write_json({"seconds": args.seconds, "baseline": args.baseline, "rows": rows}, args.json, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
