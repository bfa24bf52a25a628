"""Stopping a training run on Ctrl-C or SIGTERM, even when a library swallows the interrupt."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import keras

# Set by the handler, for the rest of the block: a library that catches KeyboardInterrupt with
# a bare `except` (Keras does, converting its logs) loses the exception, not the request.
_requested = threading.Event()


@contextmanager
def stopping_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise KeyboardInterrupt and leave a request that `check` raises again."""
    _requested.clear()
    previous = {signum: signal.signal(signum, _request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested.clear()


def _request_stop(signum, frame):
    _requested.set()
    raise KeyboardInterrupt


def check() -> None:
    """Raise KeyboardInterrupt if a stop was asked for since `stopping_on_signals` began."""
    if _requested.is_set():
        raise KeyboardInterrupt


class StopCheck(keras.callbacks.Callback):
    """Check for a stop before every training and validation batch and at each epoch's end."""

    # Batch-begin hooks: Keras keeps dispatching batch-end hooks off the main thread only
    # while no callback overrides them.
    def on_train_batch_begin(self, batch, logs=None):
        check()

    def on_test_batch_begin(self, batch, logs=None):
        check()

    def on_epoch_end(self, epoch, logs=None):
        check()
