"""The cost model: heavy legal drawings stop at a budget linear in their points; ordinary ones never reach it."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import recognize_strokes
from pipeline.budget import BASE_UNITS, UNITS_PER_POINT, Budget, Superseded, TooComplex
from tests.support import densify, number_strokes, zigzag_row


def uniform(batch: np.ndarray) -> np.ndarray:
    return np.full((len(batch), 10), 0.1, dtype=np.float32)


def test_budget_grows_linearly_with_points():
    assert Budget.for_points(0).limit == BASE_UNITS
    assert Budget.for_points(20_000).limit - Budget.for_points(10_000).limit == 10_000 * UNITS_PER_POINT


@pytest.mark.parametrize("count", [400, 500])
def test_heavy_legal_drawing_stops_within_its_budget(count):
    strokes = zigzag_row(count)
    budget = Budget.for_points(sum(len(stroke) for stroke in strokes))
    with pytest.raises(TooComplex, match="budget"):
        recognize_strokes(strokes, 4096, 400, uniform, budget=budget)
    # Charged before it is done, so the work stops one step past the limit at most.
    assert budget.limit < budget.spent < 1.2 * budget.limit


def test_ordinary_drawing_spends_a_small_part_of_its_budget():
    strokes = [densify(stroke) for stroke in number_strokes("7410" * 3, 10, 10)]
    budget = Budget.for_points(sum(len(stroke) for stroke in strokes))
    unlimited = recognize_strokes(strokes, 2000, 200, uniform, budget=Budget())
    assert recognize_strokes(strokes, 2000, 200, uniform, budget=budget) == unlimited
    assert 0 < budget.spent < 0.25 * budget.limit


def test_superseded_reading_stops_only_after_its_grace():
    strokes = zigzag_row(60)
    asked = []
    cheap = Budget(stop=lambda: asked.append(True) or True, grace=float("inf"))
    recognize_strokes(strokes[:2], 4096, 400, uniform, budget=cheap)
    assert not asked
    with pytest.raises(Superseded):
        recognize_strokes(strokes, 4096, 400, uniform, budget=Budget(stop=lambda: True, grace=1000))
