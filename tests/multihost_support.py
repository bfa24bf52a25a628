"""Hosts for the multi-host test: network namespaces on one bridge, deploy/'s units run as written, and the clients.

Run as `python -m tests.multihost_support register|promote|clients ...` inside a namespace
(`ip netns exec`), where the test itself cannot reach.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demnistify.constants import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
# Back network (tracking server, replicas, nginx) on one bridge; the client reaches nginx only.
HOSTS = {
    "a": ("tracking", "10.23.0.1"),
    "b": ("replica-b", "10.23.0.2"),
    "c": ("replica-c", "10.23.0.3"),
    "d": ("proxy", "10.23.0.4"),
}
FRONT = ("10.24.0.1", "10.24.0.2")  # nginx's public address, the client host's.
PUBLIC_NAME = "demnistify.example.org"


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=60)


class Network:
    """Namespaces a (tracking), b and c (replicas), d (nginx), cl (client), sw (the back network's bridge)."""

    def __init__(self) -> None:
        self.prefix = f"dmn{os.getpid()}"
        self.names = {host: f"{self.prefix}-{host}" for host in ("a", "b", "c", "d", "cl", "sw")}
        self.processes: list[subprocess.Popen] = []
        self.cleanups: list = []  # Called once everything has stopped.

    def ns(self, host: str) -> str:
        return self.names[host]

    def create(self) -> None:
        for name in self.names.values():
            run("ip", "netns", "add", name)
            run("ip", "-n", name, "link", "set", "lo", "up")
            self._hosts_file(name)
        sw = self.ns("sw")
        run("ip", "-n", sw, "link", "add", "br0", "type", "bridge")
        run("ip", "-n", sw, "link", "set", "br0", "up")
        for host, (_, address) in HOSTS.items():
            # Both ends are made inside the namespaces: nothing appears in the test's own.
            run(
                "ip",
                "link",
                "add",
                "eth0",
                "netns",
                self.ns(host),
                "type",
                "veth",
                "peer",
                "name",
                f"to-{host}",
                "netns",
                sw,
            )
            run("ip", "-n", sw, "link", "set", f"to-{host}", "master", "br0", "up")
            self._address(host, "eth0", f"{address}/24")
        run(
            "ip",
            "link",
            "add",
            "eth1",
            "netns",
            self.ns("d"),
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            self.ns("cl"),
        )
        self._address("d", "eth1", f"{FRONT[0]}/24")
        self._address("cl", "eth0", f"{FRONT[1]}/24")

    def _address(self, host: str, device: str, cidr: str) -> None:
        run("ip", "-n", self.ns(host), "addr", "add", cidr, "dev", device)
        run("ip", "-n", self.ns(host), "link", "set", device, "up")

    def _hosts_file(self, name: str) -> None:
        # `ip netns exec` mounts /etc/netns/NAME/hosts over /etc/hosts: the hosts know each other by name.
        folder = Path("/etc/netns") / name
        folder.mkdir(parents=True, exist_ok=True)
        lines = [
            "127.0.0.1 localhost",
            *(f"{address} {host}" for host, address in HOSTS.values()),
            f"{FRONT[0]} {PUBLIC_NAME}",
        ]
        (folder / "hosts").write_text("\n".join(lines) + "\n")

    def start(self, host: str, command: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
        """Run `command` on `host` in its own process group, output to `log`."""
        with log.open("w") as output:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(host), *command],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                cwd=REPO_ROOT,
            )
        self.processes.append(process)
        return process

    def python(self, host: str, code: str, timeout: float = 30) -> str:
        """Run a Python snippet on `host` and return its output."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns(host), sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=host_env(),
        ).stdout

    def destroy(self) -> None:
        """Stop every process started in the namespaces, then remove them with their links and hosts files."""
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
        for name in self.names.values():
            # Anything else still running in a namespace this test made (nginx's workers, postgres').
            pids = run("ip", "netns", "pids", name, check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for name in self.names.values():
            run("ip", "netns", "del", name, check=False)
            shutil.rmtree(Path("/etc/netns") / name, ignore_errors=True)
        for cleanup in self.cleanups:
            cleanup()


def host_env(**extra: str) -> dict:
    """This environment, importing this checkout's code in every subprocess."""
    inherited = {name: value for name, value in os.environ.items() if not name.startswith("MLFLOW_EXPERIMENT")}
    return {**inherited, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **extra}


def environment_file(path: Path = DEPLOY / "demnistify.env") -> dict[str, str]:
    """The NAME=value lines of a systemd EnvironmentFile."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def unit_environment(unit: Path) -> dict[str, str]:
    """A unit's own Environment=NAME=value lines."""
    lines = [
        line.removeprefix("Environment=") for line in unit.read_text().splitlines() if line.startswith("Environment=")
    ]
    return dict(line.split("=", 1) for line in lines)


def exec_start(unit: Path, env: dict[str, str], hostname: str = "") -> list[str]:
    """A unit's ExecStart as systemd runs it on `hostname`: ${NAME} from the environment, %H the host
    name, the program from this venv."""
    line = next(line for line in unit.read_text().splitlines() if line.startswith("ExecStart="))
    words = shlex.split(line.removeprefix("ExecStart="))
    words = [re.sub(r"\$\{(\w+)\}", lambda match: env[match.group(1)], word).replace("%H", hostname) for word in words]
    # The units name the install in /opt/demnistify/venv; the test runs the one it is in.
    return [str(Path(sys.executable).parent / Path(words[0]).name), *words[1:]]


def register_version(tracking_uri: str, graph_path: Path, champion: bool) -> str:
    """Log an int8 graph as a recognizer's digit graph in a new run on the tracking server and register
    it with its digest; the version."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from demnistify.constants import CHAMPION_ALIAS, DIGIT_GRAPH_ARTIFACT, MODEL_NAME
    from registry.client import INT8_DIGEST_TAG

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri, tracking_uri)
    experiment = mlflow.set_experiment("multihost").experiment_id
    with tempfile.TemporaryDirectory() as staging, mlflow.start_run(experiment_id=experiment) as run:
        # The layout the server reads a version from (registry.loading.model_artifact): an MLmodel
        # whose pyfunc flavour names the digit graph's folder.
        model = Path(staging) / "recognizer"
        (model / "artifacts" / DIGIT_GRAPH_ARTIFACT).mkdir(parents=True)
        shutil.copy(graph_path, model / "artifacts" / DIGIT_GRAPH_ARTIFACT / "model.onnx")
        (model / "MLmodel").write_text(
            f"flavors:\n  python_function:\n    artifacts:\n      {DIGIT_GRAPH_ARTIFACT}:\n"
            f"        path: artifacts/{DIGIT_GRAPH_ARTIFACT}\n"
        )
        mlflow.log_artifacts(str(model), artifact_path="recognizer")
    with contextlib.suppress(MlflowException):
        client.create_registered_model(MODEL_NAME)
    digest = hashlib.sha256(graph_path.read_bytes()).hexdigest()
    version = client.create_model_version(
        MODEL_NAME, f"{run.info.artifact_uri}/recognizer", run.info.run_id, tags={INT8_DIGEST_TAG: digest}
    ).version
    if champion:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, str(version))
    return str(version)


def promote(tracking_uri: str, version: str) -> float:
    """Move the champion alias to `version`; the wall-clock time it was moved."""
    from mlflow import MlflowClient

    from demnistify.constants import CHAMPION_ALIAS, MODEL_NAME

    MlflowClient(tracking_uri, tracking_uri).set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, version)
    return time.time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("register", "promote", "clients"))
    parser.add_argument("--tracking-uri")
    parser.add_argument("--graph", type=Path)
    parser.add_argument("--champion", action="store_true")
    parser.add_argument("--version")
    parser.add_argument("--url")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--stop-file", type=Path)
    parser.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    if arguments.action == "register":
        print(register_version(arguments.tracking_uri, arguments.graph, arguments.champion))
    elif arguments.action == "promote":
        print(json.dumps({"promoted_at": promote(arguments.tracking_uri, arguments.version)}))
    else:
        from tests.multihost_clients import drive

        asyncio.run(drive(arguments.url, arguments.count, arguments.stop_file, arguments.out))


if __name__ == "__main__":
    main()
