"""Prometheus metrics of a serving process, exported at GET /metrics (each series: docs/metrics.md)."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

# prometheus_client's multiprocess mode: every process writes its values to files in this folder
# and a scrape of any one of them adds them all up. It is read when prometheus_client is imported.
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Server time per recognition: a live answer takes 2-30 ms, a large drawing up to its budget (seconds).
RECOGNITION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The wait for a thread is nothing when idle and grows to the scheduler's patience (0.25-1 s) when busy.
WAIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

RECOGNITIONS = Counter(
    "demnistify_recognitions",
    "Drawings taken by a recognition thread, by outcome: answered "
    "(a result), failed (an error event), superseded (stopped for the connection's newer drawing).",
    ["outcome"],
)
REPLACED = Counter(
    "demnistify_drawings_replaced",
    "Drawings replaced by a newer one of their connection before a thread took them (never read).",
)
ERRORS = Counter("demnistify_errors", "Error events sent to clients, by code (serving/PROTOCOL.md).", ["code"])
RECOGNITION_SECONDS = Histogram(
    "demnistify_recognition_seconds",
    "Server time per answered drawing, from its frame's arrival to its reply (the result's server_ms).",
    buckets=RECOGNITION_BUCKETS,
)
WAIT_SECONDS = Histogram(
    "demnistify_recognition_wait_seconds",
    "Wait between a drawing's arrival and a recognition thread taking it.",
    buckets=WAIT_BUCKETS,
)
CACHE_LOOKUPS = Counter(
    "demnistify_cache_lookups",
    "Lookups in the served model's caches (digits: classified "
    "digits, renders: rendered candidates, readings: read blobs), by result: hit or miss.",
    ["cache", "result"],
)
CONNECTIONS = Gauge("demnistify_open_connections", "Open websocket connections.", multiprocess_mode="livesum")
MODEL = Gauge(
    "demnistify_model_info",
    "1 for the model version being served (by name and version), 0 for one served before.",
    ["name", "version"],
    multiprocess_mode="livemax",
)
SWAPS = Counter("demnistify_model_swaps", "Hot swaps to another version after the alias moved.")

_served: list[tuple[str, str]] = []


def cache_counters(cache: str) -> tuple:
    """The (hit, miss) counters of one cache, bound once so a lookup pays a single increment."""
    return CACHE_LOOKUPS.labels(cache, "hit"), CACHE_LOOKUPS.labels(cache, "miss")


def model_served(name: str, version: str, swapped: bool = False) -> None:
    """Mark `name` `version` as the one served (the one before goes to 0: labels cannot be removed across processes)."""
    for previous in _served:
        MODEL.labels(*previous).set(0)
    _served[:] = [(name, version)]
    MODEL.labels(name, version).set(1)
    if swapped:
        SWAPS.inc()


def exposition() -> tuple[bytes, str]:
    """The metrics page (Prometheus text format) and its Content-Type: every process's, in multiprocess mode."""
    if os.environ.get(MULTIPROCESS_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    # The classic text format (0.0.4), which every Prometheus reads; generate_latest writes it.
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4


def process_ended(pid: int) -> None:
    """Drop a dead process's live gauges (its open connections, its model) in multiprocess mode."""
    if os.environ.get(MULTIPROCESS_VARIABLE):
        multiprocess.mark_process_dead(pid)
