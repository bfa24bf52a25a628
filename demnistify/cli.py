"""The `demnistify` command: one parser, subcommands registered by each package's `cli` module.

Exit status: 0 success (a server stopped by a signal too); 1 some input failed (`recognize`: a
file could not be read) or an unexpected error; 2 a usage or set-up error (bad arguments or
configuration, no MNIST, no model, registry unreachable, port taken); 130 stopped by Ctrl-C, or
`train` by SIGTERM.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from demnistify import __version__
from demnistify.constants import LOG_FORMAT

# Each module exposes `register(subparsers)`, adding its subcommands with a `handler`
# default that takes the parsed arguments and returns an exit status.
COMMAND_MODULES = ("training.cli", "serving.cli", "clients.cli")


EXIT_CODES = "exit status: 0 done, 1 some input failed, 2 usage or set-up error, 130 interrupted"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="demnistify",
        description="Recognize handwritten multi-digit numbers live; train and promote models tracked in MLflow.",
        epilog=EXIT_CODES,
    )
    add_global_options(parser, False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    for subparser in subparsers.choices.values():
        # SUPPRESS: an option left out after the subcommand keeps the value given before it.
        add_global_options(subparser, argparse.SUPPRESS)
    return parser


def add_global_options(parser: argparse.ArgumentParser, default: object) -> None:
    """Add the options every command accepts, before or after the subcommand's name."""
    parser.add_argument("-v", "--verbose", action="store_true", default=default, help="log debug messages")
    parser.add_argument("--version", action="version", version=f"demnistify {__version__}")


# The exit status of a command stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run the chosen subcommand; returns the exit status."""
    # TensorFlow's C++ start-up chatter says nothing a user can act on.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.INFO,
        format=LOG_FORMAT,
    )
    try:
        return int(arguments.handler(arguments) or 0)
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return INTERRUPTED


def run() -> None:
    """The `demnistify` command: `main`, then exit with its status."""
    status = main()
    if status == INTERRUPTED:
        # Threads still inside TensorFlow when training is interrupted can make the
        # interpreter's teardown abort (std::terminate: exit status -6 instead of 130, seen
        # once in CI). The run is recorded by now, so the process leaves without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    run()
