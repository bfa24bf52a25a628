"""Replicas behind nginx on real (namespaced) hosts, with deploy/'s files as written.

Host a runs PostgreSQL and `mlflow server` (deploy/mlflow.service), b and c a replica each
(deploy/demnistify.service), d nginx (deploy/nginx/demnistify.conf), and a client host, which
reaches nothing but nginx, drives 50 drawing clients. A promotion on a reaches both replicas;
killing b moves its clients to c and every finished drawing is answered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.multihost_support import (
    DEPLOY,
    PUBLIC_NAME,
    Network,
    environment_file,
    exec_start,
    host_env,
    unit_environment,
)
from tests.server_support import POSTGRES_BIN

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CLIENTS = 50
PROMOTION_SECONDS = 5.0
NGINX_MAIN = """pid {root}/nginx.pid;
error_log {root}/error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  include {site};
}}
"""


def as_root_reason() -> str | None:
    if os.geteuid() != 0:
        return "creating network namespaces (ip netns) needs root; CI runs the suite as root"
    return None


@pytest.fixture(scope="module")
def int8_graph(trained_store, mnist, tmp_path_factory) -> Path:
    """The session model's int8 graph (quantized without the accuracy check: any graph runs here)."""
    from registry.keras_models import export_onnx
    from registry.loading import load_keras_model
    from training.evaluate import to_model_input
    from training.quantize import quantize_onnx

    model = load_keras_model(trained_store.result.model, trained_store.tracking_uri)
    calibration = to_model_input(mnist.train_images[:256])
    path = tmp_path_factory.mktemp("graph") / "model-int8.onnx"
    path.write_bytes(quantize_onnx(export_onnx(model), calibration))
    return path


@pytest.fixture
def network(tmp_path):
    reason = as_root_reason()
    if reason:
        # CI (.ci/run sets DEMNISTIFY_CI) must run this test; a developer without root is told why it did not run.
        if os.environ.get("DEMNISTIFY_CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    for tool in ("nginx", "ip", "curl"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            pytest.fail(f"{tool} is not installed: run scripts/system-packages.sh")
    network = Network()
    try:
        network.create()
        yield network
    finally:
        network.destroy()


def start_tracking(network: Network, tmp: Path, env: dict) -> None:
    """PostgreSQL and deploy/mlflow.service on host a."""
    # Outside pytest's folders, which only root may enter; removed with the namespaces' processes.
    data = Path(tempfile.mkdtemp(prefix="demnistify-pg-"))
    network.cleanups.append(lambda: shutil.rmtree(data, ignore_errors=True))
    os.chown(data, *_postgres_ids())
    user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            network.ns("a"),
            *user,
            str(POSTGRES_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "mlflow",
            "--auth=trust",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    network.start(
        "a",
        [*user, str(POSTGRES_BIN / "postgres"), "-D", str(data), "-p", "5432", "-h", "127.0.0.1", "-k", str(data)],
        tmp / "postgres.log",
    )
    ready = ["ip", "netns", "exec", network.ns("a"), str(POSTGRES_BIN / "pg_isready"), "-h", "127.0.0.1"]
    wait_for(lambda: subprocess.run(ready, capture_output=True).returncode == 0, 60, "PostgreSQL")
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            network.ns("a"),
            str(POSTGRES_BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-U",
            "mlflow",
            "mlflow",
        ],
        check=True,
        timeout=60,
    )
    network.start("a", exec_start(DEPLOY / "mlflow.service", env), tmp / "mlflow.log", host_env(**env))
    wait_for(lambda: http_ok(network, "a", "http://tracking:5000/health"), 180, "mlflow server")


def _postgres_ids() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def fetch(network: Network, host: str, url: str) -> str | None:
    """GET `url` from `host` with curl (it starts in milliseconds, so polls are timed closely); None if it fails."""
    done = subprocess.run(
        ["ip", "netns", "exec", network.ns(host), "curl", "-sf", "-m", "3", url],
        capture_output=True,
        text=True,
        timeout=15,
    )
    return done.stdout if done.returncode == 0 else None


def http_ok(network: Network, host: str, url: str) -> bool:
    return fetch(network, host, url) is not None


def scrape(network: Network, replica: str) -> dict:
    """The replica's /metrics, read from host d, as {'version': served by all its workers, 'connections': open}."""
    text = fetch(network, "d", f"http://{replica}:8765/metrics")
    if text is None:
        return {"version": None, "connections": 0}
    samples = [sample for family in text_string_to_metric_families(text) for sample in family.samples]
    # With several workers, a version is 1 while any live worker serves it: one version means all moved.
    served = {sample.labels["version"] for sample in samples if sample.name == "demnistify_model_info" and sample.value}
    return {
        "version": served.pop() if len(served) == 1 else None,
        "connections": sum(sample.value for sample in samples if sample.name == "demnistify_open_connections"),
    }


def wait_for(check, timeout: float, what: str) -> float:
    """Poll `check` until it is true; the wall-clock time it became true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(0.1)
    pytest.fail(f"{what}: not within {timeout:.0f} s")


def in_namespace(network: Network, host: str, action: str, *arguments: str) -> str:
    command = [
        "ip",
        "netns",
        "exec",
        network.ns(host),
        sys.executable,
        "-m",
        "tests.multihost_support",
        action,
        "--tracking-uri",
        "http://tracking:5000",
        *arguments,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=host_env(), cwd=DEPLOY.parent)
    assert done.returncode == 0, f"{action} failed: {done.stderr[-3000:]}"
    return done.stdout.strip().splitlines()[-1]  # MLflow prints where to view the run before it.


def start_replicas_and_nginx(network: Network, tmp: Path, env: dict) -> dict:
    """deploy/demnistify.service on hosts b and c, deploy/nginx/demnistify.conf on d; the replicas' processes."""
    replicas = {}
    for host in ("b", "c"):
        unit = DEPLOY / "demnistify.service"
        # systemd's RuntimeDirectory= would make the unit's metrics folder; each replica gets its own.
        metrics_dir = Path(unit_environment(unit)["PROMETHEUS_MULTIPROC_DIR"].replace("/run", str(tmp / host), 1))
        metrics_dir.mkdir(parents=True)
        replica_env = host_env(**env, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
        replicas[host] = network.start(
            host, exec_start(unit, env, f"replica-{host}"), tmp / f"replica-{host}.log", replica_env
        )
    for replica in ("replica-b", "replica-c"):
        wait_for(lambda replica=replica: http_ok(network, "d", f"http://{replica}:8765/healthz"), 120, replica)
    (tmp / "nginx").mkdir()
    (tmp / "nginx.conf").write_text(NGINX_MAIN.format(root=tmp / "nginx", site=DEPLOY / "nginx" / "demnistify.conf"))
    network.start("d", ["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp / "nginx")], tmp / "nginx.log")
    wait_for(lambda: http_ok(network, "cl", f"http://{PUBLIC_NAME}/healthz"), 30, "nginx")
    return replicas


def test_replicas_behind_nginx_follow_one_registry_and_take_over_each_other(network, int8_graph, tmp_path):
    env = {**environment_file(), "MLFLOW_ARTIFACTS_DESTINATION": (tmp_path / "artifacts").as_uri()}
    start_tracking(network, tmp_path, env)
    assert in_namespace(network, "a", "register", "--graph", str(int8_graph), "--champion") == "1"
    assert in_namespace(network, "a", "register", "--graph", str(int8_graph)) == "2"
    replicas = start_replicas_and_nginx(network, tmp_path, env)

    stop_file, out = tmp_path / "stop", tmp_path / "clients.json"
    clients = network.start(
        "cl",
        [
            sys.executable,
            "-m",
            "tests.multihost_support",
            "clients",
            "--url",
            f"ws://{PUBLIC_NAME}/",
            "--count",
            str(CLIENTS),
            "--stop-file",
            str(stop_file),
            "--out",
            str(out),
        ],
        tmp_path / "clients.log",
        host_env(),
    )
    wait_for(
        lambda: "ready" in (tmp_path / "clients.log").read_text() or clients.poll() is not None,
        120,
        "every client answered once",
    )
    assert clients.poll() is None, (tmp_path / "clients.log").read_text()[-3000:]
    before = {replica: scrape(network, replica) for replica in ("replica-b", "replica-c")}
    # nginx spread the clients over both replicas, and only nginx can be reached from the client host.
    assert before["replica-b"]["connections"] > 0 and before["replica-c"]["connections"] > 0, before
    assert sum(row["connections"] for row in before.values()) == CLIENTS, before
    assert not reachable(network, "cl", "replica-b", 8765) and reachable(network, "cl", PUBLIC_NAME, 80)

    promoted = json.loads(in_namespace(network, "a", "promote", "--version", "2"))["promoted_at"]
    served = {
        replica: wait_for(lambda replica=replica: scrape(network, replica)["version"] == "2", 30, f"{replica} on v2")
        for replica in ("replica-b", "replica-c")
    }

    killed = time.time()
    os.killpg(replicas["b"].pid, 9)
    time.sleep(12)
    after = scrape(network, "replica-c")
    stop_file.touch()
    assert clients.wait(timeout=60) == 0, (tmp_path / "clients.log").read_text()[-3000:]
    logs = json.loads(out.read_text())
    timeline = report(logs, promoted, served, killed, after)
    print(json.dumps(timeline, indent=2))

    assert max(served.values()) - promoted <= PROMOTION_SECONDS, timeline
    assert timeline["clients_told_of_v2_within_s"] <= PROMOTION_SECONDS, timeline
    assert after == {"version": "2", "connections": CLIENTS}, after
    finals = [final for log in logs for final in log["finals"]]
    # Every finished drawing was answered (by a result), read right, and by v2 once it was served everywhere.
    assert all(final["type"] == "result" and final["text"] == "17" for final in finals), timeline
    assert all(final["version"] == "2" for final in finals if final["sent"] > max(served.values()) + 1)
    assert timeline["clients_dropped_by_b"] > 0 and timeline["finals_after_kill"] >= CLIENTS, timeline
    assert timeline["failover_max_s"] < 10, timeline
    assert_traffic_stayed_inside(network)


def reachable(network: Network, host: str, name: str, port: int) -> bool:
    code = (
        f"import socket\ntry:\n socket.create_connection(({name!r}, {port}), timeout=2).close(); print(1)\n"
        "except OSError:\n print(0)"
    )
    return network.python(host, code).strip() == "1"


def report(logs: list[dict], promoted: float, served: dict, killed: float, after: dict) -> dict:
    """The timeline: promotion to each replica and to every client, failover of b's clients to c."""
    told = [min((t for t, version in log["models"] if version == "2"), default=float("inf")) for log in logs]
    dropped = [log for log in logs if any(drop >= killed for drop in log["drops"])]
    # A dropped client's failover: from the kill to its first answer on its new connection.
    failover = [
        min(
            (
                final["answered"]
                for final in log["finals"]
                if final["answered"]
                > min((connect for connect, _ in log["connects"] if connect >= killed), default=float("inf"))
            ),
            default=float("inf"),
        )
        - killed
        for log in dropped
    ]
    return {
        "promotion_to_replica_s": {name: round(at - promoted, 2) for name, at in served.items()},
        "clients_told_of_v2_within_s": round(max(told) - promoted, 2),
        "clients_dropped_by_b": len(dropped),
        "failover_median_s": round(float(np.median(failover)), 2),
        "failover_max_s": round(max(failover), 2),
        "retried_finals": sum(final["tries"] > 1 for log in logs for final in log["finals"]),
        "finals_after_kill": sum(final["sent"] > killed for log in logs for final in log["finals"]),
        "finals": sum(len(log["finals"]) for log in logs),
        "replica_c_after_kill": after,
    }


def assert_traffic_stayed_inside(network: Network) -> None:
    """No host has a way out: only its own links, no default route; and the links carried the traffic."""
    for host in ("a", "b", "c", "d", "cl"):
        routes = subprocess.run(["ip", "-n", network.ns(host), "route"], capture_output=True, text=True).stdout
        assert "default" not in routes and all(line.startswith(("10.23.", "10.24.")) for line in routes.splitlines())
    counters = subprocess.run(
        ["ip", "-n", network.ns("cl"), "-s", "-j", "link", "show", "eth0"], capture_output=True, text=True
    ).stdout
    assert json.loads(counters)[0]["stats64"]["rx"]["bytes"] > 100_000
