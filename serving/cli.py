"""Subcommand `serve`: fill a ServeConfig from the arguments and run the server until a signal."""

from __future__ import annotations

import argparse
import os
import sys

from demnistify.constants import (
    DEFAULT_HOST,
    DEFAULT_MODEL_URI,
    DEFAULT_PATIENCE_SECONDS,
    DEFAULT_POLL_SECONDS,
    DEFAULT_PORT,
    DEFAULT_PREVIEW_PATIENCE_SECONDS,
    TOKEN_VARIABLE,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `serve` subcommand to the `demnistify` parser, its options in groups."""
    serve = subparsers.add_parser("serve", help="serve live recognition over a websocket, with the drawing page")
    _network_options(serve.add_argument_group("network", "where the server listens"))
    _model_options(serve.add_argument_group("model", "which model reads, and how"))
    _access_options(serve.add_argument_group("access", "who may connect"))
    _load_options(serve.add_argument_group("load", "what waits when the server is busy"))
    serve.set_defaults(handler=run_serve)


def _network_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--host",
        "--address",
        default=DEFAULT_HOST,
        help=f"interface to listen on (default {DEFAULT_HOST}; --address is the same)",
    )
    group.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 picks one)")
    group.add_argument(
        "--workers",
        type=int,
        default=1,
        help="serving processes sharing the port with SO_REUSEPORT, one per core (default 1); "
        "a dead one is replaced while the others serve",
    )


def _model_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--model",
        default=DEFAULT_MODEL_URI,
        help=f"registry URI; an alias is followed live (default {DEFAULT_MODEL_URI})",
    )
    group.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    group.add_argument(
        "--poll-seconds",
        type=float,
        default=DEFAULT_POLL_SECONDS,
        help=f"how often to check the alias for a new version (default {DEFAULT_POLL_SECONDS:g})",
    )
    group.add_argument(
        "--inference",
        choices=("onnx", "onnx-float", "compiled", "predict"),
        default="onnx",
        help="onnx (default): ONNX Runtime, on the version's int8 graph when its run logged one; "
        "onnx-float: ONNX Runtime on the float model; compiled: a tf.function call; "
        "predict: the seed's model.predict per message, only as a benchmark baseline",
    )
    group.add_argument(
        "--cache-size",
        type=int,
        default=4096,
        help="classified digits and rendered candidates remembered per model (0: no caches)",
    )
    group.add_argument(
        "--threads", type=int, help="recognition threads per worker (default: two per core of its share, at least two)"
    )
    group.add_argument(
        "--model-threads",
        type=int,
        help="ONNX Runtime threads per model call (default: the cores shared among the workers)",
    )


def _access_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="also accept websockets from pages at ORIGIN (scheme://host[:port]; '*' for any); "
        "this server's own page and localhost are always accepted",
    )
    group.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also accept requests whose Host header names NAME (the bound host, localhost and "
        "IP addresses always are); needed when clients reach the server by a domain name",
    )
    group.add_argument(
        "--token",
        default=os.environ.get(TOKEN_VARIABLE),
        help=f"require this bearer token on every websocket (default: ${TOKEN_VARIABLE})",
    )
    group.add_argument(
        "--max-connections",
        type=int,
        default=256,
        help="open websockets per worker (default 256); past it, HTTP 503 with Retry-After",
    )
    group.add_argument(
        "--max-connections-per-address",
        type=int,
        default=64,
        help="open websockets per client address and worker (default 64)",
    )


def _load_options(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--patience-seconds",
        type=float,
        default=DEFAULT_PATIENCE_SECONDS,
        help="when busy, how long a drawing that is still changing may be put behind finished "
        f"ones (default {DEFAULT_PATIENCE_SECONDS:g}; 0: first come, first served)",
    )
    group.add_argument(
        "--preview-patience-seconds",
        type=float,
        default=DEFAULT_PREVIEW_PATIENCE_SECONDS,
        help="when busy, how long a drawing sent with the pen still down may be put behind "
        f"finished ones (default {DEFAULT_PREVIEW_PATIENCE_SECONDS:g})",
    )


def run_serve(arguments: argparse.Namespace) -> int:
    """Build the ServeConfig and serve; returns the exit status."""
    from serving.app import serve
    from serving.config import ServeConfig
    from serving.workers import serve_workers

    overrides = {
        name: value
        for name, value in (("threads", arguments.threads), ("model_threads", arguments.model_threads))
        if value
    }
    try:
        config = ServeConfig(
            host=arguments.host,
            port=arguments.port,
            model_uri=arguments.model,
            tracking_uri=arguments.tracking_uri,
            poll_seconds=arguments.poll_seconds,
            cache_size=arguments.cache_size,
            inference=arguments.inference,
            allowed_origins=tuple(arguments.allow_origin),
            token=arguments.token or None,
            allowed_hosts=tuple(arguments.allow_host),
            max_connections=arguments.max_connections,
            max_connections_per_address=arguments.max_connections_per_address,
            workers=arguments.workers,
            patience_seconds=arguments.patience_seconds,
            preview_patience_seconds=arguments.preview_patience_seconds,
            **overrides,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return serve_workers(config) if config.workers > 1 else serve(config)
