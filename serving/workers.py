"""Several serving processes on one port (SO_REUSEPORT): start them, forward signals, report the worst exit."""

from __future__ import annotations

import multiprocessing
import signal
import sys
from multiprocessing.connection import wait

from serving.config import ServeConfig


def _worker(config: ServeConfig) -> None:
    from serving.app import serve

    sys.exit(serve(config))


def serve_workers(config: ServeConfig) -> int:
    """Run `config.workers` servers sharing the port until a signal; 0 when all stop cleanly.

    The kernel spreads new connections over the processes; each loads the model and follows
    the alias on its own, so they stay on one version within a poll interval. If one worker
    dies the others are stopped too, so a supervisor sees the failure and restarts the set.
    """
    # Spawn, not fork: TensorFlow and the event loop must start fresh in each process.
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(config,), name=f"worker-{index}")
                 for index in range(config.workers)]
    signalled = []

    def stop(signum, frame) -> None:
        signalled.append(signum)
        stop_all(processes)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.start()
        wait([process.sentinel for process in processes])
        stop_all(processes)
        for process in processes:
            process.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return exit_status([process.exitcode for process in processes], bool(signalled))


def stop_all(processes: list) -> None:
    """Ask every live worker to shut down gracefully (SIGTERM: close connections with 1001)."""
    for process in processes:
        if process.is_alive():
            process.terminate()


def exit_status(codes: list[int | None], signalled: bool) -> int:
    """The set's exit status: the worst worker's, where being stopped by our signal is a clean exit."""
    stopped = -signal.SIGTERM if signalled else None
    return max((abs(code) for code in codes if code and code != stopped), default=0)
