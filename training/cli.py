"""Subcommands `train`, `models`, `promote` and `download-data`: they fill a config and call the entry function."""

from __future__ import annotations

import argparse
import signal
import sys

from demnistify.constants import CHAMPION_ALIAS, MODEL_NAME


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the training subcommands to the `demnistify` parser."""
    train = subparsers.add_parser("train", help="train a CNN on MNIST, track it in MLflow and register it")
    train.add_argument("--profile", choices=("quick", "full"), default="full",
                       help="quick: < 3 min, >= 98.5 %%; full (default): < 15 min, aims at 99.6 %%")
    train.add_argument("--epochs", type=int, help="override the profile's epoch count")
    train.add_argument("--batch-size", type=int, help="override the batch size (default 128)")
    train.add_argument("--learning-rate", type=float, help="override the peak learning rate")
    train.add_argument("--stroke-probability", type=float,
                       help="share of digits redrawn from traced strokes (default 0.7)")
    train.add_argument("--pair-probability", type=float,
                       help="share of samples that are two digits run together, under a random label (default 0.05)")
    train.add_argument("--font-share", type=float,
                       help="share of each epoch from the training font families' digits (default 0.2)")
    train.add_argument("--allograph-share", type=float,
                       help="share of each epoch from generated allographs: flagged 1s, crossed 7s... (default 0.03)")
    train.add_argument("--train-limit", type=int,
                       help="use only the first N training images (trying things out; not for a model to serve)")
    train.add_argument("--promote", choices=("auto", "never"), default="auto",
                       help="auto: move the champion alias if the new version beats it; never: leave it")
    train.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    train.add_argument("--data-dir", help="MNIST folder (default: MNIST_DIR, ./data/mnist, ../shared/data/mnist)")
    train.set_defaults(handler=run_train)

    models = subparsers.add_parser("models", help="list registered versions, their test accuracy and aliases")
    models.add_argument("--tracking-uri")
    models.set_defaults(handler=run_models)

    promote = subparsers.add_parser("promote", help=f"move the `{CHAMPION_ALIAS}` alias to VERSION")
    promote.add_argument("version")
    promote.add_argument("--tracking-uri")
    promote.set_defaults(handler=run_promote)

    download = subparsers.add_parser("download-data", help="download MNIST from the public mirrors (checksummed)")
    download.add_argument("--data-dir", help="target folder (default ./data/mnist)")
    download.set_defaults(handler=run_download)


def _raise_interrupt(signum, frame):
    # SIGTERM ends a run the way Ctrl-C does: marked KILLED, nothing registered.
    raise KeyboardInterrupt


def run_train(arguments: argparse.Namespace) -> int:
    """Fill a TrainConfig from the arguments and train."""
    from training.data import DataError
    from training.train import TrainConfig, train

    config = TrainConfig.for_profile(
        arguments.profile, epochs=arguments.epochs, batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate, promote=arguments.promote, train_limit=arguments.train_limit,
        stroke_probability=arguments.stroke_probability, pair_probability=arguments.pair_probability,
        font_share=arguments.font_share, allograph_share=arguments.allograph_share,
        tracking_uri=arguments.tracking_uri, data_dir=arguments.data_dir,
    )
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        result = train(config)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    state = f"promoted to @{CHAMPION_ALIAS}" if result.promoted else "not promoted"
    print(f"Registered {result.model.name} version {result.model.version} (run {result.run_id}): "
          f"test accuracy {result.test_accuracy:.4f} in {result.wall_seconds:.0f} s, {state}.")
    return 0


def run_models(arguments: argparse.Namespace) -> int:
    """Print every registered version with its accuracy and aliases."""
    from training.registry import RegistryError, connect, list_versions

    try:
        versions = list_versions(connect(arguments.tracking_uri), MODEL_NAME)
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not versions:
        print(f"No version of {MODEL_NAME} is registered yet: run `demnistify train`.")
        return 0
    print(f"{'version':>7}  {'test_acc':>8}  {'aliases':<12} run_id")
    for ref in versions:
        accuracy = f"{ref.test_accuracy:.4f}" if ref.test_accuracy is not None else "-"
        print(f"{ref.version:>7}  {accuracy:>8}  {','.join(ref.aliases) or '-':<12} {ref.run_id}")
    return 0


def run_promote(arguments: argparse.Namespace) -> int:
    """Move the champion alias to the given version."""
    from training.registry import RegistryError, connect, promote

    try:
        ref = promote(connect(arguments.tracking_uri), arguments.version, MODEL_NAME, CHAMPION_ALIAS)
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{MODEL_NAME}@{CHAMPION_ALIAS} -> version {ref.version} (test accuracy {ref.test_accuracy}).")
    return 0


def run_download(arguments: argparse.Namespace) -> int:
    """Download and verify MNIST."""
    from training.data import DataError, download_mnist

    try:
        directory = download_mnist(arguments.data_dir)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"MNIST verified in {directory}.")
    return 0
