"""What the benchmarks share: their common options, a server in a subprocess, the model, results as JSON."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from demnistify.constants import DEFAULT_MODEL_URI

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    """`--tracking-uri`, by default `MLFLOW_TRACKING_URI` (unset: the registry's own default, ./mlflow.db)."""
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)",
    )


def add_model_uri(parser: argparse.ArgumentParser) -> None:
    """`--model-uri` and `--tracking-uri`: the registered model a benchmark reads with."""
    parser.add_argument("--model-uri", default=DEFAULT_MODEL_URI, help="registry URI of the model (default: champion)")
    add_tracking_uri(parser)


def check_model(tracking_uri: str | None) -> None:
    """Exit with a clear message when the registry holds no champion model to benchmark."""
    from registry.client import RegistryError, connect, resolve

    try:
        resolve(connect(tracking_uri), DEFAULT_MODEL_URI)
    except RegistryError as error:
        raise SystemExit(
            f"{error}\nThe benchmarks need a registered model: run `demnistify train --profile quick` "
            "(or pass --tracking-uri of a store that has one)."
        ) from None


def served_model(model_uri: str, tracking_uri: str | None):
    """(version, served model) of a registered model loaded as the server loads it (its int8 graph when registered)."""
    from registry.client import connect, resolve
    from serving.served_model import load_served_model

    ref = resolve(connect(tracking_uri), model_uri)
    return ref, load_served_model(ref, tracking_uri, cache_size=0)


def compiled_classifier(model_uri: str, tracking_uri: str | None, keras_file: str | None = None):
    """(classifier, its name) of a compiled Keras model: a saved `.keras` file, else the registry's version."""
    if keras_file:
        import keras

        from registry.keras_models import make_classifier

        return make_classifier(keras.models.load_model(keras_file)), keras_file
    from registry.loading import load_classifier

    ref, classify = load_classifier(model_uri, tracking_uri)
    return classify, ref.uri


def free_port() -> int:
    """A loopback port nothing listens on right now (for servers sharing one port, and nginx)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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
                queue += [
                    int(child)
                    for thread in threads
                    for child in Path(f"/proc/{pid}/task/{thread}/children").read_text().split()
                ]
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


def write_json(document: dict, path: Path | str, indent: int = 2) -> Path:
    """Write the document as JSON to `path`, creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=indent))
    return path


def write_results(name: str, document: dict) -> Path:
    """Write bench/results/NAME.json (gitignored) and return its path."""
    return write_json(document, RESULTS_DIR / f"{name}.json")


def report_main(argv: list[str] | None, parse_args: Callable, run: Callable, print_report: Callable) -> int:
    """A report benchmark from its parts: parse the options, run, print the table, write JSON to `--json`."""
    args = parse_args(argv)
    report = run(args)
    print_report(report)
    print(f"wrote {write_json(report, args.json)}")
    return 0
