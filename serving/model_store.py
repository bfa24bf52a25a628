"""The registry poller: holds the served version, follows its alias and hot-swaps new versions in."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor

from registry.client import ModelRef, RegistryError, connect, get_alias, parse_model_uri, resolve
from serving.served_model import ServedModel, inference_stats, load_served_model

logger = logging.getLogger(__name__)

# After a failed poll or load, the next try waits twice as long as the one before (from the poll
# interval), up to this long: a registry that is down is not hammered, and comes back within a minute.
MAX_BACKOFF_SECONDS = 60.0


class ServeError(RuntimeError):
    """The server cannot start: no registry, no registered model, or it does not load."""


class ModelStore:
    """Holds the current model; `poll_forever` follows the alias and swaps in new versions."""

    def __init__(
        self,
        model_uri: str,
        tracking_uri: str | None,
        cache_size: int,
        inference: str = "onnx",
        threads: int = 1,
        tf_threads: int = 0,
    ) -> None:
        try:
            self.name, self.alias, self.pinned = parse_model_uri(model_uri)
        except RegistryError as error:
            raise ServeError(str(error)) from None
        self.model_uri, self.tracking_uri = model_uri, tracking_uri
        self._load_options = (cache_size, inference, threads, tf_threads)
        self._client = connect(tracking_uri)
        self.current: ServedModel | None = None
        self.error: str | None = None
        # Polls in a row that could not read the alias: each doubles the wait before the next one.
        self.failures = 0
        # A version that failed to load, how often in a row, and when it is loaded again.
        self._failed: tuple[str, int, float] | None = None
        self._poll_seconds = 1.0

    def load_initial(self) -> ServedModel:
        """Resolve the URI and load that version (blocking); ServeError says what to do if it fails."""
        try:
            ref = resolve(self._client, self.model_uri)
            self.current = load_served_model(ref, self.tracking_uri, *self._load_options)
        except RegistryError as error:
            hint = (
                f"Start the tracking server, or point --tracking-uri at it (now {self._client.tracking_uri})."
                if "unreachable" in str(error)
                else "Train and register a model with `demnistify train` (add --tracking-uri if the registry "
                "is elsewhere)."
            )
            raise ServeError(f"Cannot serve {self.model_uri}: {error}\n{hint}") from error
        freeze_heap()
        return self.current

    async def poll_forever(self, seconds: float, executor: Executor, on_swap: Callable[[ServedModel], None]) -> None:
        """Check the alias every `seconds` until cancelled, backing off after failures; pinned versions are never polled.

        No exception ends it: each is reported (/healthz says degraded) and the poll is tried again.
        """
        self._poll_seconds = seconds
        while self.alias is not None:
            await asyncio.sleep(self.backoff(self.failures))
            try:
                swapped = await self.poll_once(executor)
                if swapped is not None:
                    on_swap(swapped)
            except Exception as error:  # noqa: BLE001 - whatever failed, the next poll may succeed.
                logger.exception("Following %s@%s failed", self.name, self.alias)
                self._fail(
                    f"Following {self.name}@{self.alias} failed ({type(error).__name__}: {error}); still "
                    f"serving version {self.current.ref.version}, retrying."
                )
                self.failures += 1

    def backoff(self, failures: int) -> float:
        """How long to wait after `failures` failures in a row: the poll interval, doubled for each, at most a minute."""
        seconds = self._poll_seconds
        return min(seconds * 2 ** min(failures, 16), max(seconds, MAX_BACKOFF_SECONDS))

    async def poll_once(self, executor: Executor) -> ServedModel | None:
        """Look at the alias once; load and return a new version if it moved (None otherwise)."""
        loop = asyncio.get_running_loop()
        try:
            ref = await loop.run_in_executor(executor, get_alias, self._client, self.name, self.alias)
        except RegistryError as error:
            self.failures += 1
            return self._fail(f"Registry unreachable, still serving version {self.current.ref.version}: {error}")
        self.failures = 0
        if ref is None:
            return self._fail(
                f"{self.name}@{self.alias} no longer exists; still serving version {self.current.ref.version}."
            )
        if ref.version == self.current.ref.version:
            self.error = self._failed = None
            return None
        if self._failed is not None and self._failed[0] == ref.version and time.monotonic() < self._failed[2]:
            return None  # Failed to load; tried again after its backoff.
        return await self._swap(ref, executor)

    async def _swap(self, ref: ModelRef, executor: Executor) -> ServedModel | None:
        logger.info("%s@%s moved to version %s; loading it.", self.name, self.alias, ref.version)
        loop = asyncio.get_running_loop()
        try:
            model = await loop.run_in_executor(executor, load_served_model, ref, self.tracking_uri, *self._load_options)
        except Exception as error:  # noqa: BLE001 - a transient failure of any kind is retried.
            times = self._failed[1] + 1 if self._failed is not None and self._failed[0] == ref.version else 1
            self._failed = (ref.version, times, time.monotonic() + self.backoff(times))
            return self._fail(
                f"Version {ref.version} failed to load; still serving version "
                f"{self.current.ref.version} and retrying with backoff: {error}"
            )
        # One assignment: requests already running finish on the model they started with.
        self.current, self.error, self._failed = model, None, None
        await loop.run_in_executor(executor, freeze_heap)
        logger.info("Now serving %s version %s.", ref.name, ref.version)
        return model

    def _fail(self, message: str) -> None:
        if message != self.error:
            logger.error("%s", message)
        self.error = message
        return None

    def health(self) -> dict:
        """Status and model for /healthz: `degraded` with the error while the alias cannot be followed."""
        ref = self.current.ref
        status = {
            "status": "degraded" if self.error else "ok",
            "model": {"name": ref.name, "version": ref.version, "run_id": ref.run_id},
            "inference": inference_stats(self.current),
        }
        return {**status, "error": self.error} if self.error else status


def freeze_heap() -> None:
    """Collect garbage once, then hide every object alive from the cyclic garbage collector.

    TensorFlow, MLflow and a loaded model leave about 600,000 objects; one full collection of
    them took 290 ms with the GIL held, and stalled every connection at once (bench_load.py saw
    300-500 ms outliers). Frozen objects are still freed by reference counting; only cycles
    among them wait for the next call, at the next model swap.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
