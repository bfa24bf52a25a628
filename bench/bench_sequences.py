"""Multi-digit benchmark: MNIST test digits traced into strokes and drawn as numbers, read by the
pipeline and by the naive baseline; prints accuracy and speed per layout and writes JSON.

    python -m bench.bench_sequences [--model-uri models:/demnistify-cnn@champion] [--cases 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from bench.harness import add_model_uri, compiled_classifier, report_main
from demnistify.constants import NUM_CLASSES
from pipeline import naive_recognize_strokes, normalize_digit, recognize_strokes, render_strokes_digit
from training.sequences import LAYOUTS, evaluate_oracle, evaluate_sequences, make_canvas_case, make_sequence_cases

METHODS = {"pipeline": recognize_strokes, "naive": naive_recognize_strokes}
SPEED_CANVAS = (1000, 400)
SPEED_DIGITS = 8
SPEED_TARGET_MS = 2.0


def uniform_classifier(batch: np.ndarray) -> np.ndarray:
    """A stand-in model that costs nothing, so timings cover everything but the CNN."""
    return np.full((len(batch), NUM_CLASSES), 1.0 / NUM_CLASSES, dtype=np.float32)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_uri(parser)
    parser.add_argument("--keras-model", default=None, help="a saved .keras file to use instead of the registry")
    parser.add_argument("--cases", type=int, default=500, help="drawings per layout (default 500)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="bench/results/sequences.json", help="where to write the results")
    return parser.parse_args(argv)


def cpu_ms_per_drawing(recognizer, cases) -> float:
    """Milliseconds per drawing for everything but the CNN (a free stand-in classifier)."""
    started = time.perf_counter()
    for case in cases:
        recognizer(case.strokes, case.width, case.height, uniform_classifier, pen_width=case.pen_width)
    return 1000 * (time.perf_counter() - started) / max(len(cases), 1)


def speed_figure(images: np.ndarray, labels: np.ndarray, repeats: int = 300) -> dict[str, float]:
    """Median milliseconds, CNN excluded, for one 1000x400 canvas holding 8 digits."""
    from serving.model_store import freeze_heap

    # Timed as the server runs it, with the objects alive now frozen: otherwise the
    # collector's full passes over what the evaluation left behind (TensorFlow and 1,000
    # drawings) would count in the figure, more the more drawings were evaluated.
    freeze_heap()
    case = make_canvas_case(images, labels, SPEED_DIGITS, *SPEED_CANVAS)
    result = {}
    for name, recognizer in METHODS.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            recognizer(case.strokes, case.width, case.height, uniform_classifier, pen_width=case.pen_width)
            times.append(1000 * (time.perf_counter() - started))
        result[f"{name}_ms"] = statistics.median(times)
    return result


def run(args: argparse.Namespace) -> dict:
    """Build the cases, score both methods on each layout, and time them."""
    from training.data import load_mnist

    cv2.setNumThreads(1)
    mnist = load_mnist()
    classify, model_name = compiled_classifier(args.model_uri, args.tracking_uri, args.keras_model)
    rows = []
    for layout in LAYOUTS:
        cases = make_sequence_cases(mnist.test_images, mnist.test_labels, args.cases, layout, args.seed)
        for method, recognizer in METHODS.items():
            scores = evaluate_sequences(cases, classify, recognizer)
            scores["cpu_ms_per_drawing"] = cpu_ms_per_drawing(recognizer, cases)
            rows.append({"layout": layout, "method": method, **scores})
        # Perfect segmentation: the ceiling that the classifier and the traced strokes allow.
        rows.append(
            {"layout": layout, "method": "oracle", **evaluate_oracle(cases, classify), "cpu_ms_per_drawing": None}
        )
    speed = speed_figure(mnist.test_images, mnist.test_labels)
    return {
        "model": model_name,
        "cases_per_layout": args.cases,
        "seed": args.seed,
        "results": rows,
        "single_digits": single_digit_accuracy(mnist.test_images, mnist.test_labels, classify),
        "speed_1000x400_8_digits": {**speed, "target_ms": SPEED_TARGET_MS},
    }


def single_digit_accuracy(images: np.ndarray, labels: np.ndarray, classify) -> dict[str, float]:
    """The classifier on every test digit, as scanned and as traced: what tracing costs the oracle."""
    from training.trace_cache import traced_digits

    scans = np.stack([normalize_digit(image.astype(np.float32) / 255) for image in images])
    traced = np.stack([render_strokes_digit(strokes) for strokes in traced_digits(images)])
    read = {
        name: np.asarray(classify(batch)).argmax(axis=1) for name, batch in (("scanned", scans), ("traced", traced))
    }
    return {name: float((guess == labels).mean()) for name, guess in read.items()}


def print_report(report: dict) -> None:
    print(f"model: {report['model']}   cases per layout: {report['cases_per_layout']}")
    print(
        f"{'layout':<10}{'method':<10}{'sequence acc':>14}{'95 % interval':>15}{'digit acc':>11}{'count errors':>14}"
        f"{'ms/drawing*':>13}"
    )
    for row in report["results"]:
        ms, (low, high) = row["cpu_ms_per_drawing"], row["sequence_interval"]
        print(
            f"{row['layout']:<10}{row['method']:<10}{row['sequence_accuracy']:>14.2%}{f'{low:.1%}-{high:.1%}':>15}"
            f"{row['digit_accuracy']:>11.2%}{row['count_errors']:>14d}{'-' if ms is None else f'{ms:.2f}':>13}"
        )
    speed, single = report["speed_1000x400_8_digits"], report["single_digits"]
    print("* everything but the CNN, one core; oracle: each digit's own strokes classified (perfect segmentation)")
    print(
        f"1000x400 canvas, 8 digits, CNN excluded, one core: pipeline {speed['pipeline_ms']:.2f} ms, "
        f"naive {speed['naive_ms']:.2f} ms (target < {speed['target_ms']:.0f} ms)"
    )
    print(
        f"single test digits: {single['scanned']:.2%} of the scans read right, {single['traced']:.2%} of their traced renders"
    )


def main(argv: list[str] | None = None) -> int:
    return report_main(argv, parse_args, run, print_report)


if __name__ == "__main__":
    sys.exit(main())
