"""PRM800K's data-efficiency ratio from fitted log curves, and the synthetic source."""

from __future__ import annotations

import math

import pytest

from selector.evaluation import choose_threshold, first_error_metrics
from selector.simulation import bootstrap_ratio, fit_log_curve, fitted_ratio, synthetic_items
from selector.simulation.synthetic import make_problem, solve


def test_fit_and_ratio_by_hand():
    # uniform: q = 0.1 ln L; active: q = 0.1 ln L + 0.1 → uniform needs e¹ times the labels.
    assert fit_log_curve([(10, 0.1 * math.log(10)), (100, 0.1 * math.log(100))]) == pytest.approx(
        (0.0, 0.1)
    )
    assert fitted_ratio((0.0, 0.1), (0.1, 0.1), 100) == pytest.approx(math.e)
    assert fitted_ratio((0.5, 0.0), (0.1, 0.1), 100) is None


def curves(gap: float, noise: float):
    out = {"random": {}, "global": {}}
    for seed in range(4):
        jitter = noise * (seed - 1.5)
        out["random"][seed] = [(x, 0.1 * math.log(x) + jitter) for x in (100, 200, 400)]
        out["global"][seed] = [(x, 0.1 * math.log(x) + gap - jitter) for x in (100, 200, 400)]
    return out


def test_bootstrap_verdicts():
    clear = bootstrap_ratio(curves(0.1, 0.001), "global", n_boot=200)
    assert clear["verdict"] == "more efficient" and clear["ratio"] == pytest.approx(math.e)
    assert clear["ci"][0] > 1
    noisy = bootstrap_ratio(curves(0.0, 0.05), "global", n_boot=200)
    assert noisy["verdict"] == "cannot separate"
    flat = {
        "random": {s: [(100, 0.5), (400, 0.5 - 0.01 * s)] for s in range(3)},
        "global": {s: [(100, 0.5), (400, 0.6)] for s in range(3)},
    }
    assert bootstrap_ratio(flat, "global", n_boot=50)["verdict"] == "no ratio"


def test_threshold_chosen_on_validation_is_not_degenerate():
    # Every score above 0.5: at 0.5 no error is ever predicted and erroneous accuracy is 0.
    scores = [[0.9, 0.6, 0.9], [0.9, 0.9, 0.9], [0.6, 0.9, 0.9], [0.9, 0.9, 0.9]]
    truths = [1, -1, 0, -1]
    assert first_error_metrics(scores, truths)["f1"] == 0.0
    threshold = choose_threshold(scores, truths)
    assert first_error_metrics(scores, truths, threshold=threshold)["f1"] == 1.0


def test_synthetic_first_errors_are_known_by_construction():
    import random

    rng = random.Random(0)
    problem = make_problem(rng, 0, 5)
    for _ in range(200):
        steps, first_error, answer = solve(problem, rng, error_rate=0.7)
        assert steps[-1].endswith(f"# Answer\n\n{answer}")
        if first_error < 0:
            assert answer == problem.answer  # no error: the right answer
    items = synthetic_items(problems=3, per_problem=1000, error_rate=0.3, seed=1)
    assert len(items) == 3000 and len({tuple(i.steps) for i in items}) == 3000
    erroneous = [i for i in items if i.first_error >= 0]
    assert 0.2 < len(erroneous) / len(items) < 0.6
    # Correct answer, wrong process: an error whose slips cancel.
    assert any(i.first_error >= 0 and not i.wrong for i in items)
    assert all(i.wrong for i in items if i.first_error < 0) is False
