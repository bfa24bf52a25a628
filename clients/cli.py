"""Subcommands `draw` (the desktop window) and `recognize` (numbers in image files, offline)."""

from __future__ import annotations

import argparse
import sys

from demnistify.constants import DEFAULT_HOST, DEFAULT_MODEL_URI, DEFAULT_PORT

DEFAULT_SERVER = f"ws://{DEFAULT_HOST}:{DEFAULT_PORT}/"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the client subcommands to the `demnistify` parser."""
    draw = subparsers.add_parser("draw", help="open a desktop window to draw numbers, read live by the server")
    draw.add_argument(
        "--server", default=DEFAULT_SERVER, help=f"websocket address of `demnistify serve` (default {DEFAULT_SERVER})"
    )
    draw.set_defaults(handler=run_draw)

    recognize = subparsers.add_parser("recognize", help="read the numbers in PNG/JPEG files, offline")
    recognize.add_argument("files", nargs="+", metavar="FILE", help="image files: scans, photos or drawings")
    recognize.add_argument("--json", action="store_true", help="print JSON with digits, boxes and confidences")
    recognize.add_argument("--model-uri", default=DEFAULT_MODEL_URI, help=f"registry URI (default {DEFAULT_MODEL_URI})")
    recognize.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    recognize.set_defaults(handler=run_recognize)


def run_draw(arguments: argparse.Namespace) -> int:
    """Open the matplotlib drawing window."""
    from clients.desktop import run_window

    if not arguments.server.startswith(("ws://", "wss://")):
        print(f"error: --server must be a ws:// or wss:// address, got {arguments.server!r}", file=sys.stderr)
        return 2
    return run_window(arguments.server)


def run_recognize(arguments: argparse.Namespace) -> int:
    """Load the model once, read every file, print the results; 1 if any file failed, 2 without a model."""
    from clients.files import dump_json, format_line, recognize_files
    from registry.client import RegistryError, connect, resolve
    from serving.served_model import load_served_model

    try:
        # The server's loader and its picture classifier: the float graph registered beside an
        # int8 one, without TensorFlow.
        ref = resolve(connect(arguments.tracking_uri), arguments.model_uri)
        classify = load_served_model(ref, arguments.tracking_uri, cache_size=0).picture_classifier
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = recognize_files(arguments.files, classify)
    if arguments.json:
        print(dump_json(results, {"name": ref.name, "version": ref.version, "run_id": ref.run_id}))
    else:
        for result in results:
            print(format_line(result), file=sys.stdout if result.ok else sys.stderr)
    return 0 if all(result.ok for result in results) else 1
