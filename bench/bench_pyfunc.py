"""Benchmark: the registered recognizer as MLflow users run it (pyfunc in-process, `mlflow models serve`)
against the websocket server, per fresh drawing of 1, 3, 6 and 10 digits, in the same run."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

from bench.bench_latency import run_server
from bench.drawings import HEIGHT, PEN, number_drawing
from bench.harness import add_tracking_uri, check_model, free_port, write_results

COUNTS = [1, 3, 6, 10]


def drawing(count: int, index: int) -> tuple[str, dict]:
    """(text, pyfunc drawing) of a fresh jittered `count`-digit number (never one seen before)."""
    text, strokes, width = number_drawing(count, seed=30_000 * count + index)
    return text, {
        "strokes": [np.round(stroke, 2).tolist() for stroke in strokes],
        "width": width,
        "height": HEIGHT,
        "pen_width": PEN,
    }


def timed(read, count: int, repeats: int) -> dict:
    """p50/p99 milliseconds of `read(drawing)` on fresh drawings (5 warm-ups), and wrong answers."""
    latencies, wrong = [], 0
    for index in range(repeats + 5):
        text, one = drawing(count, index)
        started = time.perf_counter()
        answer = read(one)
        if index >= 5:
            latencies.append((time.perf_counter() - started) * 1000)
            wrong += answer != text
    return {
        "p50_ms": float(np.percentile(latencies, 50)),
        "p99_ms": float(np.percentile(latencies, 99)),
        "n": len(latencies),
        "wrong": wrong,
    }


def in_process(model_uri: str, repeats: int) -> dict:
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(model_uri)
    return {count: timed(lambda one: model.predict([one])[0]["text"], count, repeats) for count in COUNTS}


def served(model_uri: str, tracking_uri: str, repeats: int) -> dict:
    """The same through `mlflow models serve --env-manager local` (one worker), POSTing JSON."""
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    log = Path(os.environ.get("TMPDIR", "/tmp")) / "bench-models-serve.log"
    # MLflow starts uvicorn from PATH: the virtual environment's, as if it were activated.
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
    }
    with log.open("w") as output:
        server = subprocess.Popen(command, env=environment, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, server, log)
        return {count: timed(lambda one: _post(url, one), count, repeats) for count in COUNTS}
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"mlflow models serve did not start: {log.read_text()[-2000:]}")


def _post(url: str, one: dict) -> str:
    body = json.dumps({"dataframe_records": [one]}).encode()
    request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["predictions"][0]["text"]


def main() -> None:
    """Measure the three paths in one run; print a table, write bench/results/pyfunc.json."""
    from demnistify.constants import DEFAULT_MODEL_URI
    from registry.client import resolve_tracking_uri

    parser = argparse.ArgumentParser(description=__doc__)
    add_tracking_uri(parser)
    parser.add_argument("--repeats", type=int, default=200)
    arguments = parser.parse_args()
    check_model(arguments.tracking_uri)
    tracking_uri = resolve_tracking_uri(arguments.tracking_uri)
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    results = {
        "pyfunc": in_process(DEFAULT_MODEL_URI, arguments.repeats),
        "models_serve": served(DEFAULT_MODEL_URI, tracking_uri, arguments.repeats),
        "websocket": run_server(tracking_uri, COUNTS, arguments.repeats, "--cache-size", "0"),
    }
    print(f"{'digits':>6}  " + "  ".join(f"{name + ' p50/p99 ms':>26}" for name in results))
    for count in COUNTS:
        cells = [
            f"{rows[count]['p50_ms']:>9.2f} / {rows[count]['p99_ms']:>7.2f} ({rows[count]['wrong']} wrong)"
            for rows in results.values()
        ]
        print(f"{count:>6}  " + "  ".join(f"{cell:>26}" for cell in cells))
    print(f"results: {write_results('pyfunc', results)}")


if __name__ == "__main__":
    main()
