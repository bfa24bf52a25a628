"""Handwriting benchmark: numbers written in the validation font families, read as pen strokes and as
pictures, whole-number accuracy by family, with the MNIST sequence benchmark beside it.

    python -m bench.bench_handwriting [--model-uri models:/demnistify-cnn@champion] [--numbers 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import cv2
import numpy as np

from bench.harness import add_model_uri, report_main, served_model
from bench.photos import CONDITIONS, photograph, underline_strokes
from training.fonts import load_families, split_families
from training.handwriting import make_font_numbers, read_mode, score_numbers
from training.sequences import LAYOUTS, evaluate_sequences, make_sequence_cases


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_uri(parser)
    parser.add_argument("--numbers", type=int, default=20, help="numbers per family (default 20)")
    parser.add_argument("--families", choices=("validation", "training"), default="validation")
    parser.add_argument("--sequence-cases", type=int, default=500, help="MNIST drawings per layout (0: skip)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--width", type=float, default=1.0, help="glyphs and advances this much narrower: a condensed hand (default 1)"
    )
    parser.add_argument(
        "--photo", choices=CONDITIONS, help="read each picture as photographed in this condition (bench/photos.py)"
    )
    parser.add_argument("--json", default="bench/results/handwriting.json", help="where to write the results")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Score the model, as the server runs it, on the chosen font families and on MNIST sequences."""
    cv2.setNumThreads(1)
    ref, served = served_model(args.model_uri, args.tracking_uri)
    train_families, validation_families = split_families(load_families())
    families = validation_families if args.families == "validation" else train_families
    started = time.perf_counter()
    numbers = [
        number for family in families for number in make_font_numbers(family, args.numbers, args.seed, args.width)
    ]
    if args.photo:
        numbers = photographed(numbers, args.photo, args.seed)
    hits, cpu_ms = {}, {}
    for mode, classify in (("strokes", served.classify), ("pictures", served.picture_classifier)):
        cpu = time.process_time()
        hits[mode] = read_mode(numbers, mode, classify)
        cpu_ms[mode] = (time.process_time() - cpu) * 1000 / max(1, len(numbers))
    report = {
        "model": ref.uri,
        "families": args.families,
        "seed": args.seed,
        "width": args.width,
        "photo": args.photo,
        "handwriting": score_numbers(numbers, hits),
        # CPU (this process, one model thread) to read a number, by mode: what a client's request costs.
        "cpu_ms_per_number": cpu_ms,
        "seconds": time.perf_counter() - started,
    }
    if args.sequence_cases:
        report["mnist_sequences"] = mnist_sequences(served.classify, args.sequence_cases, args.seed)
    return report


def photographed(numbers: list, condition: str, seed: int) -> list:
    """The numbers with their pictures as photographed in `condition`; strokes as drawn (underlined too when it is)."""
    rng = np.random.default_rng([seed, CONDITIONS.index(condition)])
    return [
        dataclasses.replace(
            n, picture=photograph(n.picture, rng, condition), strokes=_underlined(n.strokes, rng, condition)
        )
        for n in numbers
    ]


def _underlined(case, rng: np.random.Generator, condition: str):
    # The number drawn with a line under it, when the pictures are underlined.
    if condition != "underlined":
        return case
    lined = underline_strokes(list(case.strokes), rng, (case.width, case.height))
    return dataclasses.replace(case, strokes=tuple(lined))


def mnist_sequences(classify, cases: int, seed: int) -> dict[str, dict]:
    """The MNIST sequence benchmark's pipeline rows (bench/bench_sequences.py), for comparison."""
    from training.data import load_mnist

    mnist = load_mnist()
    return {
        layout: evaluate_sequences(
            make_sequence_cases(mnist.test_images, mnist.test_labels, cases, layout, seed), classify
        )
        for layout in LAYOUTS
    }


def print_report(report: dict) -> None:
    scores = report["handwriting"]
    print(
        f"model: {report['model']}   {report['families']} families: {len(scores['by_family'])}, "
        f"{scores['numbers']} numbers, width {report['width']:g}"
        + (f", pictures photographed: {report['photo']}" if report.get("photo") else "")
    )
    print(f"{'family':<28}{'numbers':>8}{'strokes':>9}{'pictures':>10}")
    for family, counts in sorted(scores["by_family"].items(), key=lambda kv: kv[1]["strokes"] + kv[1]["pictures"]):
        n = counts["numbers"]
        print(f"{family:<28}{n:>8}{counts['strokes'] / n:>9.0%}{counts['pictures'] / n:>10.0%}")
    for mode in ("strokes", "pictures"):
        low, high = scores[mode]["interval"]
        worst, family = scores[mode]["worst_family"]
        print(
            f"{mode:<9} whole numbers {scores[mode]['accuracy']:.2%} (95 % {low:.1%}-{high:.1%}); "
            f"worst family {family} {worst:.0%}; {report['cpu_ms_per_number'][mode]:.1f} ms of CPU a number"
        )
    for layout, row in report.get("mnist_sequences", {}).items():
        low, high = row["sequence_interval"]
        print(
            f"MNIST sequences, {layout:<8} {row['sequence_accuracy']:.2%} (95 % {low:.1%}-{high:.1%}), "
            f"{row['cases']} drawings"
        )


def main(argv: list[str] | None = None) -> int:
    return report_main(argv, parse_args, run, print_report)


if __name__ == "__main__":
    sys.exit(main())
