"""Evaluation metrics against hand-computed values (no model needed)."""

from __future__ import annotations

import json
import math
from itertools import combinations

import numpy as np
import pytest

from selector.evaluation import (
    FirstErrorSample,
    GradedSamples,
    GradedSolution,
    average_ranks,
    best_of_n_curves,
    default_ns,
    evaluate_checkpoint,
    first_error_metrics,
    predict_first_error,
    roc_auc,
    step_auc,
    step_auc_from_ratings,
)
from selector.scoring.formulas import sample_score

# Problem A: the PRM ties a right and a wrong sample; the ORM prefers a wrong one; three
# different answers tie the vote. Problem B: everything picks a right answer.
PROBLEM_A = GradedSamples(
    solution_scores=[0.9, 0.5, 0.9],
    last_step_scores=[0.2, 0.8, 0.1],
    answers=["4", "5", "6"],
    is_correct=[True, False, False],
)
PROBLEM_B = GradedSamples(
    solution_scores=[0.1, 0.7, 0.3],
    last_step_scores=[0.9, 0.2, 0.3],
    answers=["2", " 2", "3"],
    is_correct=[True, True, False],
)


def _curve(curves, method):
    return dict(curves[method])


def test_best_of_n_with_n_equal_m_is_deterministic_and_hand_computed():
    curves = best_of_n_curves([PROBLEM_A, PROBLEM_B], [3], trials=5, seed=1)
    # A: PRM tie between sample 0 (right) and 2 (wrong) → 1/2; B: sample 1 (right) → 1.
    assert _curve(curves, "prm")[3] == pytest.approx((0.5 + 1.0) / 2)
    # A: last-step max is sample 1 (wrong) → 0; B: sample 0 (right) → 1.
    assert _curve(curves, "orm")[3] == pytest.approx((0.0 + 1.0) / 2)
    # A: three answers one vote each → (1 + 0 + 0)/3; B: "2" (stripped) wins 2–1 → 1.
    assert _curve(curves, "majority")[3] == pytest.approx((1 / 3 + 1.0) / 2)
    again = best_of_n_curves([PROBLEM_A, PROBLEM_B], [3], trials=5, seed=99)
    assert again == curves


def test_best_of_n_with_n_one_is_mean_correctness():
    curves = best_of_n_curves([PROBLEM_A, PROBLEM_B], [1], trials=1000)
    expected = (1 / 3 + 2 / 3) / 2
    for method in ("prm", "orm", "majority"):
        assert _curve(curves, method)[1] == pytest.approx(expected)


def test_best_of_n_two_of_three_enumerates_every_subset():
    curves = best_of_n_curves([PROBLEM_A], [2], trials=3)
    # Subsets of A: {0,1} → PRM picks 0 (right); {0,2} → tie, 1/2; {1,2} → 2 (wrong).
    assert _curve(curves, "prm")[2] == pytest.approx((1 + 0.5 + 0) / 3)
    # ORM: {0,1} → 1 (wrong); {0,2} → 0 (right); {1,2} → 1 (wrong).
    assert _curve(curves, "orm")[2] == pytest.approx(1 / 3)
    # Votes: every pair is a 1–1 tie → mean correctness of the pair: 1/2, 1/2, 0.
    assert _curve(curves, "majority")[2] == pytest.approx((0.5 + 0.5 + 0) / 3)


def test_majority_uses_the_normalizer_and_ignores_missing_answers():
    problem = GradedSamples(
        solution_scores=[0.1, 0.2, 0.3, 0.4],
        last_step_scores=[0.1, 0.2, 0.3, 0.4],
        answers=["\\frac12", "1/2", "0.3", None],
        is_correct=[True, True, False, False],
    )
    plain = best_of_n_curves([problem], [4])
    # Unnormalized: 3 answers with one vote each (None does not vote) → (1 + 1 + 0)/3.
    assert _curve(plain, "majority")[4] == pytest.approx(2 / 3)

    def normalize(answer: str) -> str:
        return answer.replace("\\frac12", "1/2")

    normalized = best_of_n_curves([problem], [4], normalize=normalize)
    assert _curve(normalized, "majority")[4] == pytest.approx(1.0)
    nobody = GradedSamples([0.5], [0.5], [None], [False])
    assert _curve(best_of_n_curves([nobody], [1]), "majority")[1] == 0.0


def test_best_of_n_sampling_is_seeded_and_close_to_the_exact_expectation():
    m, n = 12, 4
    rng = np.random.default_rng(0)
    scores = rng.permutation(m) / m
    correct = rng.random(m) < 0.4
    problem = GradedSamples(scores, scores, [str(i) for i in range(m)], correct)
    # Exact PRM best-of-n: mean over all n-subsets of the correctness of its best member.
    exact = np.mean([correct[max(s, key=lambda i: scores[i])] for s in combinations(range(m), n)])
    assert math.comb(m, n) > 400
    a = best_of_n_curves([problem], [n], trials=400, seed=7, methods=["prm"])
    b = best_of_n_curves([problem], [n], trials=400, seed=7, methods=["prm"])
    assert a == b
    assert set(a) == {"prm"}
    assert _curve(a, "prm")[n] == pytest.approx(exact, abs=0.08)


def test_best_of_n_defaults_and_errors():
    assert default_ns(8) == [1, 2, 4, 8]
    assert default_ns(6) == [1, 2, 4, 6]
    curves = best_of_n_curves([PROBLEM_A, PROBLEM_B])
    assert [n for n, _ in curves["prm"]] == [1, 2, 3]
    with pytest.raises(ValueError):
        best_of_n_curves([PROBLEM_A], [4])
    with pytest.raises(ValueError):
        GradedSamples([0.1], [0.1, 0.2], ["1"], [True])


def test_predict_first_error_uses_a_strict_threshold():
    assert predict_first_error([0.9, 0.5, 0.49]) == 2
    assert predict_first_error([0.9, 0.8]) == -1
    assert predict_first_error([0.9, 0.8], threshold=0.85) == 1


def test_processbench_f1_on_five_samples():
    scores = [
        [0.9, 0.8, 0.3],  # truth 2 → predicted 2: hit
        [0.9, 0.4, 0.2],  # truth 2 → predicted 1: miss
        [0.7, 0.6],  # no error → predicted −1: hit
        [0.2, 0.9],  # no error → predicted 0: miss
        [0.5, 0.49, 0.1],  # truth 1 → predicted 1 (0.5 is not < 0.5): hit
    ]
    truths = [2, 2, -1, -1, 1]
    m = first_error_metrics(scores, truths)
    assert m["acc_erroneous"] == pytest.approx(2 / 3)
    assert m["acc_correct"] == pytest.approx(1 / 2)
    assert m["f1"] == pytest.approx(4 / 7)  # 2·(2/3)(1/2) / (2/3 + 1/2)
    assert (m["n_erroneous"], m["n_correct"]) == (3, 2)
    lower = first_error_metrics(scores, truths, threshold=0.45)
    # Sample 5 now predicts step 2 (miss): erroneous acc 1/3, correct acc unchanged.
    assert lower["acc_erroneous"] == pytest.approx(1 / 3)
    assert lower["f1"] == pytest.approx(2 / 5)
    only_correct = first_error_metrics([[0.9]], [-1])
    assert only_correct["acc_erroneous"] is None and only_correct["f1"] is None


def test_roc_auc_with_ties_by_hand():
    scores = [0.9, 0.8, 0.8, 0.4, 0.8, 0.2]
    positive = [True, True, False, True, False, False]
    # Pairs (positive, negative): 0.9 beats all 3; 0.8 ties two 0.8s (½ each) and beats 0.2;
    # 0.4 loses to both 0.8s and beats 0.2 → (3 + 2 + 1) / 9.
    assert roc_auc(scores, positive) == pytest.approx(6 / 9)
    assert roc_auc([0.1, 0.2], [True, True]) is None
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_step_auc_stops_at_the_first_error():
    step_scores = [[0.9, 0.8, 0.3], [0.6, 0.7], [0.6, 0.95, 0.1]]
    truths = [2, -1, 0]
    # Positives 0.9, 0.8, 0.6, 0.7; negatives 0.3 and 0.6 (0.95, 0.1 come after an error):
    # all positives beat 0.3 (4), three beat 0.6 and one ties it (3.5) → 7.5 / 8.
    assert step_auc(step_scores, truths) == pytest.approx(7.5 / 8)
    ratings = [[1, 0, -1], [1, 1], [-1, 1, 1]]
    assert step_auc_from_ratings(step_scores, ratings) == pytest.approx(7.5 / 8)


class _TableAdapter:
    """A stand-in adapter whose step scores come from a table keyed by the first step."""

    labels = ("negative", "neutral", "positive")

    def __init__(self, table):
        self.table = table

    def score(self, samples, *, aggregation="product", token_budget=None):
        return [sample_score(self.table[steps[0]], how=aggregation) for _, steps in samples]


def test_evaluate_checkpoint_groups_by_problem_and_is_json_serialisable():
    table = {"a1": [0.9, 0.9], "a2": [0.5, 0.2], "b1": [0.95], "b2": [0.3], "p": [0.9, 0.3]}
    adapter = _TableAdapter(table)
    solutions = [
        GradedSolution("A", "pa", ["a1", "x"], "1", False),
        GradedSolution("A", "pa", ["a2", "y"], "2", True),
        GradedSolution("B", "pb", ["b1"], "3", True),
        GradedSolution("B", "pb", ["b2"], "3", True),
    ]
    first = [FirstErrorSample("pp", ["p", "q"], 1), FirstErrorSample("pp", ["b1"], -1)]
    metrics = evaluate_checkpoint(adapter, best_of_n=solutions, first_error=first, ns=[1, 2])
    json.dumps(metrics)
    bon = metrics["best_of_n"]
    assert bon["n_problems"] == 2 and bon["samples_per_problem"] == [2, 2]
    # N=2: A picks a1 (0.81 > 0.1, wrong), B picks b1 (right) → 1/2. Last step: a1 (0.9).
    assert dict(bon["prm"])[2] == pytest.approx(0.5)
    assert dict(bon["orm"])[2] == pytest.approx(0.5)
    assert dict(bon["prm"])[1] == pytest.approx((0.5 + 1.0) / 2)
    # First error: [0.9, 0.3] truth 1 → hit; [0.95] no error → hit.
    assert metrics["first_error"]["f1"] == pytest.approx(1.0)
    # Steps: 0.9 (+), 0.3 (−), 0.95 (+) → AUC 1.
    assert metrics["step_auc"] == pytest.approx(1.0)
    assert "val_loss" not in metrics
