"""Handwriting data: vendored font families and their split, font numbers, allographs, the source mix, the gate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.support import zigzag_row
from training.allographs import FLAG_ANGLE, KINDS, allograph_digits, flagged_one
from training.augment import mixed_order
from training.fonts import (
    FONTS_DIR,
    PEN_RANGE,
    family_group,
    font_digits,
    load_families,
    render_glyph,
    split_families,
    thickened,
)
from training.gate import Scores, decide, paired_z
from training.handwriting import FontNumber, glyph_strokes, make_font_numbers, read_numbers, score_numbers, traced_glyph
from training.sequences import SequenceCase


@pytest.fixture(scope="module")
def families():
    return load_families()


def test_no_held_out_family_nor_a_variant_of_one_is_vendored(families):
    held_out = set((FONTS_DIR / "HELD_OUT.txt").read_text().split())
    assert len(held_out) == 35 and len(families) > 150
    for family in families:
        assert not any(family.id == h or family.id.startswith(h + "-") for h in held_out), family.id
        assert (FONTS_DIR / family.id / "LICENSE").is_file() and all(path.is_file() for path in family.paths)


def test_families_split_by_design_never_by_sample(families):
    train, validation = split_families(families)
    assert {f.id for f in train}.isdisjoint({f.id for f in validation})
    assert len(train) + len(validation) == len(families) and 0.1 < len(validation) / len(families) < 0.3
    train_groups, validation_groups = {family_group(f.id) for f in train}, {family_group(f.id) for f in validation}
    assert train_groups.isdisjoint(validation_groups)
    assert family_group("playwrite-de-grund") == family_group("playwrite-it-trad") == "playwrite"


def test_every_family_draws_ten_distinct_digits(families):
    for family in families[:40]:
        glyphs = [render_glyph(family.paths[0], str(d)).ink for d in range(10)]
        assert all(g.max() > 200 and min(g.shape) >= 2 for g in glyphs), family.id
        assert len({g.tobytes() for g in glyphs}) == 10, family.id
    images, labels, to_trace = font_digits(families[:3])
    assert images.shape[1:] == (28, 28) and images.dtype == np.uint8 and to_trace.shape == images.shape
    assert list(labels[:6]) == [0, 0, 0, 1, 1, 1] and images.reshape(len(images), -1).max(axis=1).min() > 200
    # As drawn, condensed, expanded: the condensed copy's ink is the narrowest.
    widths = [np.ptp(np.nonzero(image.max(axis=0) > 64)[0]) for image in images[3:6]]
    assert widths[1] < widths[0] <= widths[2]
    # The copies to trace are the same glyphs' pen paths, drawn with the thinnest pen: less ink.
    assert (to_trace > 127).sum() < (images > 127).sum()


def test_font_numbers_are_reproducible_and_their_strokes_cover_the_picture(families):
    family = families[0]
    first, again = make_font_numbers(family, 5, seed=3), make_font_numbers(family, 5, seed=3)
    assert [n.text for n in first] == [n.text for n in again]
    for number in first:
        case = number.strokes
        assert case.text == number.text and len(case.digit_strokes) == len(number.text)
        assert number.picture.shape == (case.height, case.width) and number.picture.min() < 60
        ink = np.argwhere(number.picture < 128)[:, ::-1]
        points = np.concatenate(case.strokes)
        # The traced strokes lie on the picture's ink, digit for digit.
        assert np.all(points.min(axis=0) >= ink.min(axis=0) - case.pen_width)
        assert np.all(points.max(axis=0) <= ink.max(axis=0) + case.pen_width)


def test_condensed_font_numbers_are_the_same_numbers_narrower(families):
    family = families[0]
    for usual, condensed in zip(make_font_numbers(family, 4, seed=3), make_font_numbers(family, 4, seed=3, width=0.6)):
        assert condensed.text == usual.text
        spans = [np.ptp(np.nonzero((n.picture < 128).any(axis=0))[0]) for n in (usual, condensed)]
        assert 0.45 * spans[0] < spans[1] < 0.75 * spans[0]


def test_a_glyphs_strokes_keep_apart_what_a_thick_pen_would_join():
    # Two bars 9 px apart at 100 px: the number's widest pen (3.2 px of a 20 px box, 16 px here)
    # fills the gap, and traced from that ink the bars would be one stroke down their middle.
    shape = np.zeros((100, 35), np.uint8)
    shape[:, 5:11] = shape[:, 20:26] = 255
    thick = thickened(shape, PEN_RANGE[1])
    assert len(traced_glyph(thick)) == 1
    strokes = glyph_strokes(shape, thick.shape)
    columns = sorted(float(np.median(line[:, 0])) for line in strokes)
    shift = (thick.shape[1] - shape.shape[1]) / 2
    assert len(strokes) == 2 and abs(columns[0] - 8 - shift) < 3 and abs(columns[1] - 23 - shift) < 3


def _bars_joined_by_a_faint_hairline() -> np.ndarray:
    # A small glyph (30 px tall): two bars joined by a hairline thinner than a pixel, which
    # anti-aliasing drew at a third of full ink (row 15), as in an H.
    shape = np.zeros((30, 24), np.uint8)
    shape[:, 2:5] = shape[:, 19:22] = 255
    shape[15, 5:19] = 85
    return shape


def test_a_widened_pen_inks_a_faint_hairline_as_a_stroke():
    # The widest pen (4.8 px here) draws the hairline as a stroke, not a gray band.
    shape = _bars_joined_by_a_faint_hairline()
    thick = thickened(shape, PEN_RANGE[1])
    grow = (thick.shape[0] - shape.shape[0]) // 2
    assert grow >= 1
    assert thick[15 + grow, 8 + grow : 16 + grow].min() == 255
    assert thick[15 + grow - 1 : 15 + grow + 2, 10 + grow].min() == 255, "the hairline is widened"


def test_a_hairline_drawn_faint_stays_on_the_traced_path():
    shape = _bars_joined_by_a_faint_hairline()
    path = np.zeros_like(shape)
    for line in glyph_strokes(shape, shape.shape):
        cv2.polylines(path, [np.round(line).astype(np.int32)], False, 255, 1)
    assert path[13:18, 8:16].any(axis=0).all(), "a stroke runs along the hairline"


def test_a_number_beyond_the_work_budget_is_read_wrong_not_a_crash():
    strokes = [np.array(stroke) for stroke in zigzag_row(400)]
    case = SequenceCase(tuple(strokes), 4096, 400, 3.0, "7", "font", (len(strokes),))
    picture = np.full((40, 30), 255, np.uint8)
    picture[5:35, 14:17] = 0
    number = FontNumber("test-family", "7", case, picture)
    hits = read_numbers([number], lambda batch: np.full((len(batch), 10), 0.1, np.float32))
    assert hits["strokes"].tolist() == [False] and hits["pictures"].shape == (1,)


def test_a_traced_glyph_keeps_the_glyph_scale():
    ink = np.zeros((200, 60), np.uint8)
    ink[10:190, 25:35] = 255
    (line,) = traced_glyph(ink)
    # The skeleton stops short of the ends by about a pen width of the 28x28 tracing.
    assert 150 < np.ptp(line[:, 1]) <= 180 and abs(line[:, 0].mean() - 30) < 3


def test_allographs_cover_each_kind_with_its_label():
    images, labels, traces = allograph_digits(len(KINDS) * 3)
    assert sorted(set(labels)) == sorted({label for label, _ in KINDS.values()})
    assert images.shape == (len(KINDS) * 3, 28, 28) and len(traces) == len(images)
    assert all(image.max() > 200 for image in images)
    flag, stem_top = flagged_one(np.random.default_rng(0), foot=False)[0][:2]
    assert flag[0] < stem_top[0] and flag[1] > stem_top[1], "a flag rises from the left into the stem's top"


def test_a_ones_flag_rises_too_steeply_to_pass_for_a_sevens_bar():
    rng = np.random.default_rng(0)
    flags = np.array([flagged_one(rng, foot=False)[0][0] for _ in range(300)])
    degrees = np.degrees(np.arctan2(flags[:, 1], -flags[:, 0]))
    assert degrees.min() >= FLAG_ANGLE[0] and degrees.max() <= FLAG_ANGLE[1]
    assert np.ptp(degrees) > 0.8 * (FLAG_ANGLE[1] - FLAG_ANGLE[0]), "the whole range is drawn"


def test_mixed_order_gives_each_source_its_share():
    order = mixed_order([1000, 30, 7], [0.7, 0.25, 0.05], 1000, np.random.default_rng(0))
    assert len(order) == 1000
    counts = np.bincount(np.searchsorted([1000, 1030, 1037], order, side="right"), minlength=3)
    assert list(counts) == [700, 250, 50]
    fonts = np.bincount(order[(order >= 1000) & (order < 1030)] - 1000)
    assert fonts.min() >= 8 and fonts.max() <= 9, "a small source is repeated evenly"


def _scores(test: float, strokes: list[bool], pictures: list[bool]) -> Scores:
    return Scores(test, {"strokes": np.array(strokes), "pictures": np.array(pictures)})


def test_the_gate_refuses_a_version_that_reads_handwriting_worse_beyond_noise():
    champion = _scores(0.990, [True] * 90 + [False] * 10, [True] * 100)
    worse = _scores(0.995, [True] * 60 + [False] * 40, [True] * 100)
    decision = decide(worse, champion)
    assert not decision.promote and "strokes" in decision.reason
    slightly = _scores(0.995, [True] * 88 + [False] * 12, [True] * 100)
    assert decide(slightly, champion).promote, "two numbers fewer is within the noise, MNIST is better"


def test_the_gate_promotes_clearly_better_handwriting_within_mnist_noise():
    champion = _scores(0.9964, [True] * 50 + [False] * 50, [True] * 100)
    better = _scores(0.9962, [True] * 90 + [False] * 10, [True] * 100)
    assert decide(better, champion).promote
    same = _scores(0.9962, [True] * 50 + [False] * 50, [True] * 100)
    assert not decide(same, champion).promote
    much_worse_mnist = _scores(0.9800, [True] * 90 + [False] * 10, [True] * 100)
    assert not decide(much_worse_mnist, champion).promote
    assert decide(same, None).promote
    assert paired_z(np.array([True, False]), np.array([True, False])) == 0.0


def test_scores_by_family_add_up(families):
    numbers = make_font_numbers(families[0], 4, 1) + make_font_numbers(families[1], 2, 1)
    hits = {"strokes": np.array([True, True, False, True, False, True]), "pictures": np.ones(6, bool)}
    report = score_numbers(numbers, hits)
    assert report["numbers"] == 6 and report["strokes"]["accuracy"] == pytest.approx(4 / 6)
    assert report["by_family"][families[1].id] == {"numbers": 2, "strokes": 1, "pictures": 2}
    assert report["strokes"]["worst_family"] == (0.5, families[1].id)


@pytest.mark.slow
def test_the_handwriting_benchmark_scores_every_validation_family(trained_store, tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "handwriting.json"
    command = [
        sys.executable,
        "-m",
        "bench.bench_handwriting",
        "--model-uri",
        trained_store.model_uri,
        "--tracking-uri",
        trained_store.tracking_uri,
        "--numbers",
        "2",
        "--sequence-cases",
        "5",
        "--photo",
        "shadow",
        "--json",
        str(out),
    ]
    # PYTHONPATH as CI has it (unset): `python -m` from the repository root finds bench/.
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    finished = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600, env=environment)
    assert finished.returncode == 0, finished.stderr[-2000:]
    report = json.loads(out.read_text())
    _, validation = split_families(load_families())
    assert sorted(report["handwriting"]["by_family"]) == sorted(f.id for f in validation)
    assert report["handwriting"]["numbers"] == 2 * len(validation) and report["photo"] == "shadow"
    assert set(report["mnist_sequences"]) == {"ordinary", "tight"}
    assert "pictures  whole numbers" in finished.stdout and "worst family" in finished.stdout
    assert all(report["cpu_ms_per_number"][mode] > 0 for mode in ("strokes", "pictures"))


@pytest.mark.slow
def test_a_version_registered_from_a_finished_run_is_gated_on_the_handwriting_it_reads(trained_store):
    # A sweep registers its best trial after the run: the gate has both versions read the numbers.
    from registry.client import connect, get_alias
    from training.handwriting_gate import handwriting_gate, handwriting_numbers
    from training.promotion import run_metrics

    client = connect(trained_store.tracking_uri)
    champion = get_alias(client, "demnistify-cnn", "champion")
    metrics = run_metrics(client, champion)
    numbers = handwriting_numbers(1, seed=5)
    verdict = handwriting_gate(client, champion, trained_store.tracking_uri, numbers)(metrics, metrics)
    # The champion against itself: the same numbers read the same, so nothing is better.
    assert not verdict.promote
    assert "strokes z=+0.00" in verdict.reason and "pictures z=+0.00" in verdict.reason
