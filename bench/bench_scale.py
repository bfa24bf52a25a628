"""Benchmark: bench_load's staggered clients against one process, two (serve --workers 2), and through nginx.

nginx runs deploy/nginx/demnistify.conf with its listen address and replicas rewritten to
loopback ports: in front of one process, of one server with two workers, and of two
single-process replicas (what retiring --workers would leave). Rows alternate, `--rounds` times.
Every client comes from 127.0.0.1, so the per-address caps (nginx's and the servers') are lifted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.bench_load import SERVER_NICENESS, Load, run_clients
from bench.harness import REPO_ROOT, ServerProcess, add_tracking_uri, check_model, free_port, write_results

NGINX_SITE = REPO_ROOT / "deploy" / "nginx" / "demnistify.conf"
NGINX_MAIN = """pid {root}/nginx.pid;
error_log {root}/error.log warn;
worker_processes 1;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  include {root}/site.conf;
}}
"""


def site_for(listen: int, ports: list[int]) -> str:
    """deploy's nginx site with its listen port and replica addresses replaced by loopback ones."""
    site = NGINX_SITE.read_text().replace("listen 80;", f"listen 127.0.0.1:{listen};")
    site = re.sub(r"limit_conn demnistify_clients \d+;", "limit_conn demnistify_clients 10000;", site)
    servers = "".join(f"    server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;\n" for port in ports)
    return re.sub(r"(    server replica-\w:8765[^\n]*\n)+", servers, site)


@contextlib.contextmanager
def nginx_in_front(ports: list[int]):
    """nginx on a free loopback port balancing `ports`; yields its ws:// URL."""
    root, listen = Path(tempfile.mkdtemp(prefix="bench-nginx-")), free_port()
    (root / "site.conf").write_text(site_for(listen, ports))
    (root / "nginx.conf").write_text(NGINX_MAIN.format(root=root))
    subprocess.run(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root)], check=True)
    try:
        time.sleep(0.3)
        pid = int((root / "nginx.pid").read_text())
        for child in [pid, *_children(pid)]:
            os.setpriority(os.PRIO_PROCESS, child, SERVER_NICENESS)
        yield f"ws://127.0.0.1:{listen}/"
    finally:
        subprocess.run(["nginx", "-c", str(root / "nginx.conf"), "-p", str(root), "-s", "quit"], check=False)
        time.sleep(0.3)
        shutil.rmtree(root, ignore_errors=True)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@contextlib.contextmanager
def servers(tracking_uri: str | None, count: int, workers: int):
    """`count` servers of `workers` processes each on fixed loopback ports; yields them."""
    started = []
    try:
        for _ in range(count):
            shared = ("--workers", str(workers), "--port", str(free_port())) if workers > 1 else ()
            # Replicas on one machine get the threads `--workers` would give each of its processes.
            cores = os.cpu_count() or 1
            sized = ("--threads", str(max(2, 2 * cores // count)), "--model-threads", str(max(1, cores // count)))
            server = ServerProcess(
                tracking_uri, "--max-connections-per-address", "10000", *shared, *(sized if count > 1 else ())
            )
            started.append(server)
            for _ in range(workers - 1):
                server.process.stdout.readline()  # Every worker says when it is ready.
            server.lower_priority(SERVER_NICENESS)
        yield started
    finally:
        for server in started:
            server.stop()


def measure(tracking_uri: str | None, load: Load, count: int, workers: int, via_nginx: bool) -> dict:
    """Run the clients against `count` servers of `workers` processes, directly or through nginx."""
    with servers(tracking_uri, count, workers) as started:
        ports = [int(server.http_url.rstrip("/").rsplit(":", 1)[1]) for server in started]
        cpu = sum(server.cpu_seconds() for server in started)
        with nginx_in_front(ports) if via_nginx else contextlib.nullcontext(started[0].ws_url) as url:
            row = asyncio.run(run_clients(url, load))
        return row | {"server_cpu_s": round(sum(server.cpu_seconds() for server in started) - cpu, 2)}


SETUPS = {
    "direct, 1 process": (1, 1, False),
    "direct, 2 workers": (1, 2, False),
    "nginx, 1 process": (1, 1, True),
    "nginx, 2 workers": (1, 2, True),
    "nginx, 2 replicas": (2, 1, True),
}


def main() -> None:
    """Each setup `--rounds` times, interleaved; bench/results/scale.json and a table of the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    add_tracking_uri(parser)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--updates", type=int, default=90)
    parser.add_argument("--drawings", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    check_model(arguments.tracking_uri)
    load = Load(arguments.clients, arguments.updates, 30.0, arguments.drawings, arguments.updates / 30.0)
    runs = {name: [] for name in SETUPS}
    for _ in range(arguments.rounds):
        for name, (count, workers, via_nginx) in SETUPS.items():
            runs[name].append(measure(arguments.tracking_uri, load, count, workers, via_nginx))
    print_table(runs)
    print(f"results: {write_results('scale', runs)}")


def print_table(runs: dict) -> None:
    """One line per setup: each round's recognitions/s, last-update p50 and p99, lost clients."""
    print(f"{'setup':<20} {'recog/s':>16} {'last p50 ms':>16} {'last p99 ms':>18} {'lost':>6} {'server CPU s':>14}")
    for name, rows in runs.items():
        cells = [
            " / ".join(f"{row[key]:.0f}" for row in rows)
            for key in ("recognitions_per_s", "last_p50_ms", "last_p99_ms", "lost", "server_cpu_s")
        ]
        print(f"{name:<20} {cells[0]:>16} {cells[1]:>16} {cells[2]:>18} {cells[3]:>6} {cells[4]:>14}")


if __name__ == "__main__":
    main()
