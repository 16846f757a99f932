"""The strategy simulator: the data-efficiency ratio by hand, the selection strategies on
small arrays, and a short end-to-end run of the `simulate` command on both truth sources."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from selector import simulation
from selector.selection import fingerprints_to_array, steps_fingerprint
from selector.simulation import SimItem, SimRow, choose, efficiency_ratio, labels_to_reach

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core box run many times faster on one thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


RANDOM = [(100, 0.50), (200, 0.60), (300, 0.70)]


def test_labels_to_reach_interpolates_the_first_crossing():
    assert labels_to_reach(RANDOM, 0.65) == pytest.approx(250)
    assert labels_to_reach(RANDOM, 0.70) == pytest.approx(300)
    assert labels_to_reach(RANDOM, 0.50) == 100
    assert labels_to_reach(RANDOM, 0.71) is None
    # Not monotone: the first segment that gets there counts.
    assert labels_to_reach([(10, 0.1), (20, 0.5), (30, 0.3), (40, 0.6)], 0.4) == pytest.approx(17.5)


def test_efficiency_ratio_kinds():
    # Active reaches 0.70 with 200 labels; random needs 300: 1.5× as data-efficient.
    assert efficiency_ratio(RANDOM, 200, 0.70) == (pytest.approx(1.5), "exact")
    assert efficiency_ratio(RANDOM, 300, 0.65) == (pytest.approx(250 / 300), "exact")
    # Random never gets to 0.8 within its 300 labels: only a lower bound.
    assert efficiency_ratio(RANDOM, 200, 0.80) == (pytest.approx(1.5), "at_least")
    # Random's first point already beats 0.4: an upper bound.
    assert efficiency_ratio(RANDOM, 200, 0.40) == (pytest.approx(0.5), "at_most")


def row(strategy, rnd, labels, auc, loss):
    return SimRow(0, strategy, rnd, labels, labels * 3, labels // 2, loss, auc, None, None, None)


def test_ratios_handle_lower_is_better_metrics():
    rows = [
        row("random", 0, 100, 0.5, 0.9),
        row("random", 1, 200, 0.6, 0.7),
        row("global", 0, 100, 0.5, 0.9),
        row("global", 1, 200, 0.6, 0.8),
    ]
    by_auc = simulation.ratios(rows, "step_auc")["global"]
    assert by_auc["ratio"] == pytest.approx(1.0) and by_auc["kind"] == "exact"
    by_loss = simulation.ratios(rows, "val_loss")["global"]
    # Random reaches loss 0.8 half way between 100 and 200 labels.
    assert by_loss["random_labels_needed"] == pytest.approx(150)
    assert by_loss["ratio"] == pytest.approx(0.75)


def pool_arrays():
    # Problems 0..3, two samples each; wrong answers at odd positions.
    problem = np.repeat(np.arange(4), 2)
    wrong = np.array([False, True] * 4)
    scores = np.array([0.9, 0.8, 0.7, 0.95, 0.2, 0.3, 0.6, 0.1])
    fingerprint = fingerprints_to_array([steps_fingerprint([f"s{i}"]) for i in range(8)])
    return problem, wrong, scores, fingerprint


def test_global_choice_takes_the_most_convincing_wrong_answers_first():
    problem, wrong, scores, fingerprint = pool_arrays()
    labeled = np.zeros(8, dtype=bool)
    labeled[3] = True  # the best wrong answer is labeled already
    picked = choose(
        "global",
        n=3,
        scores=scores,
        problem=problem,
        wrong=wrong,
        fingerprint=fingerprint,
        labeled=labeled,
        rng=random.Random(0),
    )
    # n_wrong = floor(0.8·3 + 0.5) = 2 wrong by score (0.8, 0.3), then the top remaining (0.9).
    assert picked == [1, 5, 0]


def test_per_problem_choice_takes_whole_problems_and_random_takes_unlabeled():
    problem, wrong, scores, fingerprint = pool_arrays()
    labeled = np.zeros(8, dtype=bool)
    kwargs = dict(scores=scores, problem=problem, wrong=wrong, fingerprint=fingerprint)
    picked = choose(
        "per_problem", n=4, labeled=labeled, rng=random.Random(1), k_per_problem=2, **kwargs
    )
    assert len(picked) == 4
    assert len({int(problem[i]) for i in picked}) == 2  # two whole problems of K = 2
    labeled[[0, 1, 2, 3, 4, 5]] = True
    rest = choose("random", n=5, labeled=labeled, rng=random.Random(0), **kwargs)
    assert sorted(rest) == [6, 7]


def test_simulated_labeler_rates_up_to_the_first_error():
    item = SimItem("x", "p", ["a", "b", "c", "d"], wrong=True, first_error=2)
    assert item.ratings() == [1, 1, -1]
    assert item.example().steps == ["a", "b", "c"]
    assert SimItem("y", "p", ["a", "b"], wrong=False, first_error=-1).ratings() == [1, 1]


def run_command(*args) -> str:
    out = io.StringIO()
    call_command("simulate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


TINY = ["--hidden", "16", "--layers", "1", "--max-length", "64", "--epochs", "1"]


def test_simulate_processbench_writes_table_plot_and_ratio(tmp_path):
    out = tmp_path / "sim"
    text = run_command(
        "--source",
        "processbench",
        "--limit",
        "150",
        "--budget",
        "24",
        "--rounds",
        "3",
        "--seeds",
        "0",
        "--out",
        str(out),
        *TINY,
    )
    assert "Data-efficiency ratio" in text
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["strategy"], r["round"]) for r in rows} == {
        (s, str(n)) for s in simulation.STRATEGIES for n in range(3)
    }
    # Equal budgets: every strategy has the same number of labels at every round.
    for rnd, labels in ((0, 8), (1, 16), (2, 24)):
        assert {int(r["labels"]) for r in rows if r["round"] == str(rnd)} == {labels}
    # Round 0 is shared: the same labels, so the same model and numbers for everyone.
    assert len({r["step_auc"] for r in rows if r["round"] == "0"}) == 1
    assert (out / "quality_vs_labels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "results.json").read_text())
    assert set(summary["ratios"]["step_auc"]) == {"global", "per_problem"}
    assert summary["data"]["eval_solutions"] + summary["data"]["pool_solutions"] == 150
    assert "| global | 2 | 24 |" in (out / "summary.md").read_text()


def test_simulate_with_a_teacher_prm(tmp_path):
    out = tmp_path / "sim"
    teacher = tmp_path / "teacher"
    text = run_command(
        "--source",
        "teacher",
        "--teacher",
        str(teacher),
        "--train-teacher",
        "--teacher-hidden",
        "16",
        "--teacher-layers",
        "1",
        "--teacher-epochs",
        "1",
        "--limit",
        "80",
        "--budget",
        "12",
        "--rounds",
        "2",
        "--seeds",
        "0",
        "--out",
        str(out),
        *TINY,
    )
    assert (teacher / "model.safetensors").is_file()
    summary = json.loads((out / "results.json").read_text())
    assert summary["teacher"]["n_train_examples"] > 800
    assert summary["data"]["pool_solutions"] + summary["data"]["eval_solutions"] == 80
    assert "Teacher PRM" in text
    # math_cot problems have 8 graded samples each: best-of-N is measured on held-out ones.
    assert any(r["best_of_n"] is not None for r in summary["rows"])


def test_per_problem_choice_fills_the_batch_in_several_passes():
    problem, wrong, scores, fingerprint = pool_arrays()
    picked = choose(
        "per_problem",
        n=6,
        scores=scores,
        problem=problem,
        wrong=wrong,
        fingerprint=fingerprint,
        labeled=np.zeros(8, dtype=bool),
        rng=random.Random(2),
    )
    assert len(picked) == len(set(picked)) == 6
    # The first pass takes one sample of each of the 4 problems, the wrong answer first.
    assert sorted(int(problem[i]) for i in picked[:4]) == [0, 1, 2, 3]
    assert all(wrong[i] for i in picked[:4])


def synthetic_items(n_problems: int, per_problem: int, seed: int = 0) -> list[SimItem]:
    """A learnable truth: a step containing "oops" is the first error."""
    rng = random.Random(seed)
    words = ["add", "the", "two", "numbers", "then", "multiply", "by", "three", "so", "we"]
    items = []
    for p in range(n_problems):
        for j in range(per_problem):
            n = rng.randint(2, 4)
            steps = [" ".join(rng.sample(words, 4)) for _ in range(n)]
            error = rng.randrange(n) if j % 2 else -1
            if error >= 0:
                steps[error] += " oops"
            items.append(SimItem(f"{p}/{j}", f"Problem {p}", steps, error >= 0, error))
    return items


def test_the_harness_measures_learning_when_there_is_something_to_learn(tmp_path):
    """On a learnable synthetic truth the simulated loop's quality rises with labels: a flat
    curve on real data is then the model's limit, not the harness's."""
    config = simulation.SimConfig(
        strategies=["random", "global"],
        budget=96,
        rounds=2,
        seeds=[0],
        epochs=10,
        batch_tokens=256,
        lr=3e-3,
        model={"hidden": 32, "layers": 1, "heads": 2, "vocab_size": 400, "max_length": 64},
    )
    rows = simulation.run_simulation(synthetic_items(40, 4), config, tmp_path)
    final = {r.strategy: r for r in rows if r.round == 1}
    start = next(r for r in rows if r.round == 0)
    assert final["random"].labels == final["global"].labels == 96
    # Well above chance (an untrained model scores about 0.5) from the first round on.
    assert start.step_auc > 0.8 and final["random"].step_auc > 0.8
    assert final["random"].f1 > 0.5
    # Global selection prefers wrong answers: more erroneous solutions among its labels.
    assert final["global"].erroneous_labeled > final["random"].erroneous_labeled


def test_a_truth_without_errors_is_refused_before_any_training(tmp_path):
    """A weak teacher that marks every step correct would run for hours and measure nothing."""
    items = [SimItem(i.id, i.problem, i.steps, i.wrong, -1) for i in synthetic_items(20, 4)]
    config = simulation.SimConfig(strategies=["random"], budget=8, rounds=1, seeds=[0])
    with pytest.raises(ValueError, match="no solution in the pool has a wrong step"):
        simulation.run_simulation(items, config, tmp_path)
    assert not any(tmp_path.iterdir())


def test_every_round_fine_tunes_the_pretrained_base(tmp_path):
    """`--base`: a plain hub encoder gets the step separator and a seeded 3-class head once per
    seed, and every strategy's rounds train from those weights, not from a scratch model."""
    from tests.selector.prm.published import tiny_bert_base

    base = tiny_bert_base(tmp_path / "base")
    config = simulation.SimConfig(
        strategies=["random", "global"],
        budget=16,
        rounds=2,
        seeds=[0],
        epochs=1,
        base=str(base),
        model={"hidden": 16, "layers": 1, "heads": 2, "vocab_size": 400, "max_length": 64},
    )
    rows = simulation.run_simulation(synthetic_items(12, 4), config, tmp_path / "work")
    assert {(r.strategy, r.round) for r in rows} == {
        (s, n) for s in ("random", "global") for n in (0, 1)
    }
    init = tmp_path / "work" / "seed0" / "init"
    native = json.loads((init / "config.json").read_text())
    assert native["hidden_size"] == 32  # the base's width, not the scratch model's 16
    assert len(native["id2label"]) == 3
    prm = json.loads((init / "stepwise_prm.json").read_text())
    assert prm["base_model"] == str(base)
    assert all(r.step_auc is not None for r in rows)
