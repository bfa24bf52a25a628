"""Cross-connection batching: concurrent classify calls from recognition threads share one model call."""

from __future__ import annotations

import threading

import numpy as np

from pipeline.types import Classifier


class _Call:
    """One caller's images and, once its batch ran, its probabilities or the error."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images
        self.probabilities: np.ndarray | None = None
        self.error: BaseException | None = None
        self.done = False

    def outcome(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        return self.probabilities


class BatchingClassifier:
    """A classifier that merges calls arriving while the model is busy into the next model call.

    A model call costs about a millisecond whatever the batch, plus a little per digit, so
    under load one call for many connections beats one call each. No thread of its own: the
    first waiting caller runs the next batch (its own images and everyone queued behind it),
    then hands over; an idle server pays nothing.
    """

    def __init__(self, classify: Classifier) -> None:
        self._classify = classify
        self._condition = threading.Condition()
        self._queue: list[_Call] = []
        self._busy = False
        self.calls = self.batched = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        call = _Call(np.asarray(images, dtype=np.float32))
        with self._condition:
            self._queue.append(call)
            while self._busy and not call.done:
                self._condition.wait()
            if call.done:
                return call.outcome()
            self._busy = True
            batch, self._queue = self._queue, []
        try:
            self._run(batch)
        finally:
            with self._condition:
                self._busy = False
                self._condition.notify_all()
        return call.outcome()

    def _run(self, batch: list[_Call]) -> None:
        self.calls, self.batched = self.calls + 1, self.batched + len(batch)
        try:
            probabilities = self._classify(np.concatenate([call.images for call in batch]))
        except BaseException as error:  # noqa: BLE001 - every waiting caller must hear of it.
            for call in batch:
                call.error, call.done = error, True
            return
        start = 0
        for call in batch:
            call.probabilities = probabilities[start : start + len(call.images)]
            call.done, start = True, start + len(call.images)
