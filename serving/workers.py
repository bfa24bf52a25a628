"""Several serving processes on one port (SO_REUSEPORT), supervised: a dead worker is replaced while the others serve."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from multiprocessing.connection import wait
from pathlib import Path

from demnistify.constants import LOG_FORMAT
from serving.config import ServeConfig
from serving.metrics import MULTIPROCESS_VARIABLE, process_ended

logger = logging.getLogger(__name__)

# A worker that dies sooner than this after its start is not replaced: it cannot load the model or
# listen, and would fail again. The whole set stops with its status, for systemd to report and retry.
MIN_UPTIME_SECONDS = 10.0
# A replacement waits this long, so a worker that crashes on every drawing cannot spin the CPU.
RESTART_DELAY_SECONDS = 1.0


def _worker(config: ServeConfig, level: int) -> None:
    from serving.app import serve

    # A spawned process starts with no logging set up: it logs as the command that started it.
    logging.basicConfig(level=level, format=LOG_FORMAT)
    sys.exit(serve(config))


class Supervisor:
    """Starts `config.workers` servers on one port and replaces any that dies, until a signal."""

    def __init__(self, config: ServeConfig) -> None:
        # Spawn, not fork: TensorFlow and the event loop must start fresh in each process.
        self.config, self.context = config, multiprocessing.get_context("spawn")
        self.workers: list = [None] * config.workers
        self.started: list[float] = [0.0] * config.workers
        self.signalled: list[int] = []
        self.failed: int | None = None
        self.restarts = 0

    def start(self, index: int) -> None:
        process = self.context.Process(
            target=_worker, args=(self.config, logging.getLogger().level), name=f"worker-{index}"
        )
        process.start()
        self.workers[index], self.started[index] = process, time.monotonic()

    def run(self) -> int:
        """Serve until a signal (0) or until a worker fails at its start (its status)."""
        for index in range(len(self.workers)):
            self.start(index)
        while not self.signalled and self.failed is None:
            wait([process.sentinel for process in self.workers])
            for index, process in enumerate(self.workers):
                if not process.is_alive() and not self.signalled:
                    self.replace(index, process)
        stop_all(self.workers)
        for process in self.workers:
            process.join()
        return self.failed or exit_status([process.exitcode for process in self.workers], bool(self.signalled))

    def replace(self, index: int, process) -> None:
        """Replace a dead worker, unless it died at its start (then the set stops)."""
        process_ended(process.pid)  # Its open connections and model no longer count in /metrics.
        if time.monotonic() - self.started[index] < MIN_UPTIME_SECONDS:
            logger.error(
                "Worker %d (pid %d) exited with %s %.1f s after its start; stopping every worker.",
                index,
                process.pid,
                process.exitcode,
                time.monotonic() - self.started[index],
            )
            self.failed = abs(process.exitcode or 1)
            return
        logger.error(
            "Worker %d (pid %d) died (exit %s); starting another in %g s while the others serve.",
            index,
            process.pid,
            process.exitcode,
            RESTART_DELAY_SECONDS,
        )
        time.sleep(RESTART_DELAY_SECONDS)
        if not self.signalled:
            self.restarts += 1
            self.start(index)


def serve_workers(config: ServeConfig) -> int:
    """Run `config.workers` supervised servers sharing the port until a signal; 0 when all stop cleanly.

    The kernel spreads new connections over the processes; each loads the model and follows
    the alias on its own, so they stay on one version within a poll interval. /metrics adds up
    every worker's series through prometheus_client's multiprocess folder: $PROMETHEUS_MULTIPROC_DIR
    (emptied here) or, without it, a temporary one.
    """
    own_folder = _metrics_folder()
    supervisor = Supervisor(config)

    def stop(signum, frame) -> None:
        supervisor.signalled.append(signum)
        stop_all(supervisor.workers)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return supervisor.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if own_folder:
            shutil.rmtree(own_folder, ignore_errors=True)


def _metrics_folder() -> str | None:
    # Set before the workers are spawned, so they inherit it (prometheus_client reads it at import).
    folder = os.environ.get(MULTIPROCESS_VARIABLE)
    if folder:
        for stale in Path(folder).glob("*.db"):
            stale.unlink()  # Values of an earlier run would be added to this one's.
        return None
    folder = tempfile.mkdtemp(prefix="demnistify-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = folder
    return folder


def stop_all(processes: list) -> None:
    """Ask every live worker to shut down gracefully (SIGTERM: close connections with 1001)."""
    for process in processes:
        if process is not None and process.is_alive():
            process.terminate()


def exit_status(codes: list[int | None], signalled: bool) -> int:
    """The set's exit status: the worst worker's, where being stopped by our signal is a clean exit."""
    stopped = -signal.SIGTERM if signalled else None
    return max((abs(code) for code in codes if code and code != stopped), default=0)
