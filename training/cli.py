"""Subcommands `train`, `sweep`, `models`, `promote` and `download-data`: they fill a config and call the entry function."""

from __future__ import annotations

import argparse
import sys

from demnistify.constants import CHAMPION_ALIAS, MODEL_NAME

HANDWRITING_NUMBERS_HELP = (
    "numbers per validation font family read to score the run and gate its promotion (default 20; fewer: "
    "faster, noisier)"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the training subcommands to the `demnistify` parser."""
    _register_train(subparsers)

    _register_sweep(subparsers)

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


def _register_train(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a CNN on MNIST, track it in MLflow and register it")
    train.add_argument(
        "--profile",
        choices=("quick", "full"),
        default="full",
        help="quick: < 3 min, >= 98.5 %%; full (default): < 20 min, aims at 99.6 %%",
    )
    train.add_argument("--epochs", type=int, help="override the profile's epoch count")
    train.add_argument("--batch-size", type=int, help="override the batch size (default 128)")
    train.add_argument("--learning-rate", type=float, help="override the peak learning rate")
    train.add_argument(
        "--stroke-probability", type=float, help="share of digits redrawn from traced strokes (default 0.7)"
    )
    train.add_argument(
        "--pair-probability",
        type=float,
        help="share of samples that are two digits run together, under a random label (default 0.05)",
    )
    train.add_argument(
        "--font-share", type=float, help="share of each epoch from the training font families' digits (default 0.2)"
    )
    train.add_argument(
        "--allograph-share",
        type=float,
        help="share of each epoch from generated allographs: flagged 1s, crossed 7s... (default 0.03)",
    )
    train.add_argument(
        "--train-limit",
        type=int,
        help="use only the first N training images (trying things out; not for a model to serve)",
    )
    train.add_argument("--handwriting-numbers", type=int, help=HANDWRITING_NUMBERS_HELP)
    train.add_argument(
        "--promote",
        choices=("auto", "never"),
        default="auto",
        help="auto: move the champion alias if the new version beats it; never: leave it",
    )
    train.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or ./mlflow.db)")
    train.add_argument("--data-dir", help="MNIST folder (default: MNIST_DIR, ./data/mnist, ../shared/data/mnist)")
    train.set_defaults(handler=run_train)


def _register_sweep(subparsers: argparse._SubParsersAction) -> None:
    sweep = subparsers.add_parser(
        "sweep",
        help="tune training settings with Optuna; trials are nested MLflow runs, "
        "the best is registered through the promotion gate",
    )
    sweep.add_argument(
        "--study", default="demnistify-sweep", help="study name; workers with the same name and storage share one study"
    )
    sweep.add_argument(
        "--storage", help="Optuna RDB storage URL, e.g. postgresql+psycopg://user@host/optuna (default: ./optuna.db)"
    )
    sweep.add_argument("--trials", type=int, default=12, help="trials in the whole study, over all workers")
    sweep.add_argument("--profile", choices=("quick", "full"), default="quick")
    sweep.add_argument("--min-epochs", type=int, default=1)
    sweep.add_argument("--max-epochs", type=int, default=4)
    sweep.add_argument("--train-limit", type=int, help="use only the first N training images per trial")
    sweep.add_argument("--test-limit", type=int, help="score only the first N test images per trial")
    sweep.add_argument("--sequence-cases", type=int, help="multi-digit drawings scored per trial (0: none)")
    sweep.add_argument("--handwriting-numbers", type=int, default=20, help=HANDWRITING_NUMBERS_HELP)
    sweep.add_argument("--promote", choices=("auto", "never"), default="auto")
    sweep.add_argument("--tracking-uri")
    sweep.add_argument("--data-dir")
    sweep.set_defaults(handler=run_sweep)


def run_train(arguments: argparse.Namespace) -> int:
    """Fill a TrainConfig from the arguments and train."""
    from training import interrupts
    from training.data import DataError
    from training.train import train
    from training.train_config import TrainConfig

    config = TrainConfig.for_profile(
        arguments.profile,
        epochs=arguments.epochs,
        batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate,
        promote=arguments.promote,
        train_limit=arguments.train_limit,
        handwriting_numbers=arguments.handwriting_numbers,
        stroke_probability=arguments.stroke_probability,
        pair_probability=arguments.pair_probability,
        font_share=arguments.font_share,
        allograph_share=arguments.allograph_share,
        tracking_uri=arguments.tracking_uri,
        data_dir=arguments.data_dir,
    )
    try:
        # SIGTERM ends a run the way Ctrl-C does: marked KILLED, nothing registered.
        with interrupts.stopping_on_signals():
            result = train(config)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    state = f"promoted to @{CHAMPION_ALIAS}" if result.promoted else "not promoted"
    print(
        f"Registered {result.model.name} version {result.model.version} (run {result.run_id}): "
        f"test accuracy {result.test_accuracy:.4f} in {result.wall_seconds:.0f} s, {state}."
    )
    return 0


def run_sweep(arguments: argparse.Namespace) -> int:
    """Fill a SweepConfig, run this worker's trials and print the study's table."""
    from training import interrupts
    from training.sweep import sweep
    from training.sweep_config import DEFAULT_STORAGE, SweepConfig

    config = SweepConfig(
        study_name=arguments.study,
        storage=arguments.storage or DEFAULT_STORAGE,
        trials=arguments.trials,
        profile=arguments.profile,
        min_epochs=arguments.min_epochs,
        max_epochs=arguments.max_epochs,
        train_limit=arguments.train_limit,
        test_limit=arguments.test_limit,
        sequence_cases=arguments.sequence_cases,
        handwriting_numbers=arguments.handwriting_numbers,
        promote=arguments.promote,
        tracking_uri=arguments.tracking_uri,
        data_dir=arguments.data_dir,
    )
    with interrupts.stopping_on_signals():
        result = sweep(config)
    print(
        f"{'trial':>5}  {'state':<8} {'val_acc':>7}  {'lr':>8} {'width':>5} {'dropout':>7} {'strokes':>7} "
        f"{'epochs':>6}  run_id"
    )
    for trial in result.trials:
        p = trial.params
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        print(
            f"{trial.number:>5}  {trial.state.name:<8} {value:>7}  {p.get('learning_rate', 0):>8.2e} "
            f"{p.get('model_width', '-'):>5} {p.get('dropout_rate', 0):>7.3f} {p.get('stroke_probability', 0):>7.3f} "
            f"{p.get('epochs', '-'):>6}  {trial.user_attrs.get('run_id', '-')}"
        )
    if result.model is not None:
        state = f"promoted to @{CHAMPION_ALIAS}" if result.promoted else "not promoted"
        print(
            f"Best trial {result.best.number} registered as {result.model.name} version {result.model.version}, "
            f"{state}; sweep run {result.parent_run_id}, {result.wall_seconds:.0f} s."
        )
    return 0


def run_models(arguments: argparse.Namespace) -> int:
    """Print every registered version with its accuracy and aliases."""
    from registry.client import RegistryError, connect, list_versions

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
    from registry.client import RegistryError, connect, promote

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
