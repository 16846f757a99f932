"""PRM training on tiny synthetic data (CPU, seconds) and PRM800K example building."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from tests.factories import DATA_DIR

torch = pytest.importorskip("torch")

from selector.evaluation import evaluate_checkpoint, roc_auc  # noqa: E402
from selector.scoring.bootstrap import build_bootstrap_model  # noqa: E402
from selector.scoring.checkpoint import PRM_CONFIG_NAME, read_prm_config  # noqa: E402
from selector.scoring.loading import load_adapter  # noqa: E402
from selector.training import (  # noqa: E402
    BOOTSTRAP_LR,
    TRAINER_STATE,
    TRAINING_RECORD,
    TrainingConfig,
    TrainingExample,
    example_from_first_error,
    examples_from_prm800k,
    is_phase2,
    load_prm800k_examples,
    split_by_problem,
    train_prm,
)

TINY = {"hidden": 32, "layers": 2, "heads": 2, "vocab_size": 400, "max_length": 64}
WORDS = [
    "add",
    "the",
    "two",
    "numbers",
    "then",
    "multiply",
    "by",
    "three",
    "and",
    "divide",
    "so",
    "we",
    "get",
]


def _step(rng: random.Random, rating: int) -> str:
    # The rule to learn: a step ending in "wrong" is −1, in "maybe" is 0, anything else +1.
    words = rng.sample(WORDS, 4)
    if rating == -1:
        words.append("wrong")
    elif rating == 0:
        words.append("maybe")
    return " ".join(words)


def synthetic(n_problems: int, seed: int = 0, per_problem: int = 2) -> list[TrainingExample]:
    rng = random.Random(seed)
    out = []
    for p in range(n_problems):
        problem = f"Problem {p}: compute {rng.randint(1, 99)} plus {rng.randint(1, 99)}."
        for _ in range(per_problem):
            ratings = [rng.choice([1, 1, 0, -1]) for _ in range(rng.randint(1, 4))]
            out.append(TrainingExample(problem, [_step(rng, r) for r in ratings], ratings))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny models on a shared 2-core machine: one intra-op thread is many times faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, one_thread):
    out = tmp_path_factory.mktemp("prm") / "ckpt"
    examples = synthetic(80)
    result = train_prm(
        examples,
        TrainingConfig(
            out_dir=out,
            base=None,
            val_problems=0.25,
            epochs=8,
            lr=3e-3,
            batch_tokens=256,
            seed=0,
            device="cpu",
            bootstrap_options=TINY,
        ),
    )
    return examples, result


# --- examples ---------------------------------------------------------------------------------


def test_examples_keep_supervision_up_to_the_first_error():
    e = TrainingExample("p", ["a", "b", "c", "d"], [1, 0, -1, 1])
    assert (e.steps, e.ratings, e.first_error) == (["a", "b", "c"], [1, 0, -1], 2)
    unfinished = TrainingExample("p", ["a", "b", "c"], [1, None, 1])
    assert (unfinished.steps, unfinished.ratings, unfinished.first_error) == (["a"], [1], -1)
    with pytest.raises(ValueError):
        TrainingExample("p", ["a"], [2])
    with pytest.raises(ValueError):
        TrainingExample("p", ["a", "b"], [1])
    pb = example_from_first_error("p", ["a", "b", "c"], 1)
    assert (pb.steps, pb.ratings) == (["a", "b"], [1, -1])
    assert example_from_first_error("p", ["a", "b"], -1).ratings == [1, 1]


def _records() -> list[dict]:
    path = DATA_DIR / "prm800k_examples.jsonl"
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def test_phase1_alternatives_become_extra_examples_on_the_real_file():
    records = _records()
    phase1 = [r for r in records if not is_phase2(r)]
    assert len(phase1) == 3

    # Record 0 by hand: path = 6 steps (step 1 is the labeler's own completion, counted +1);
    # alternatives: the 5 rejected completions of step 1 (−1) and the 4 unchosen of step 5.
    first = examples_from_prm800k(phase1[0])
    assert len(first) == 1 + 5 + 4
    main = first[0]
    assert main.ratings == [1] * 6
    assert main.steps[1] == phase1[0]["label"]["steps"][1]["human_completion"]["text"]
    assert [len(e.steps) for e in first[1:]] == [2] * 5 + [6] * 4
    assert all(e.ratings[-1] == -1 for e in first[1:6])
    assert [e.ratings[-1] for e in first[6:]] == [0, 1, 1, 1]
    assert all(e.steps[:-1] == main.steps[: len(e.steps) - 1] for e in first[1:])

    # Record 2 by hand: 7 (step 0, human chosen) + 6 + 0 + 0 + 4 (step 4, human) + 6 = 23.
    third = examples_from_prm800k(phase1[2])
    assert len(third) == 1 + 23
    assert len(examples_from_prm800k(phase1[2], alternatives=False)) == 1

    # The whole file: one path example per phase-1 record + every rated unchosen completion.
    alternatives = sum(
        sum(
            1
            for step in r["label"]["steps"]
            for j, c in enumerate(step["completions"])
            if j != step["chosen_completion"] and c["rating"] is not None
        )
        for r in phase1
    )
    phase2 = [r for r in records if is_phase2(r)]
    all_examples = load_prm800k_examples(DATA_DIR / "prm800k_examples.jsonl")
    assert len(all_examples) == len(phase1) + alternatives + len(phase2)
    assert alternatives > 40
    only_paths = load_prm800k_examples(DATA_DIR / "prm800k_examples.jsonl", alternatives=False)
    assert len(all_examples) - len(only_paths) == alternatives


def test_phase2_uses_the_pre_generated_steps():
    record = next(r for r in _records() if is_phase2(r))
    (example,) = examples_from_prm800k(record)
    n = len(record["label"]["steps"])
    assert example.steps == record["question"]["pre_generated_steps"][:n]
    assert example.ratings == [s["completions"][0]["rating"] for s in record["label"]["steps"]]
    assert example.ratings[-1] == -1 and example.first_error == n - 1


def test_split_holds_out_whole_problems():
    examples = synthetic(20, per_problem=3)
    train, val, held = split_by_problem(examples, 0.25, seed=3)
    assert len(held) == 5
    assert {e.problem for e in val} == set(held)
    assert not {e.problem for e in train} & set(held)
    assert split_by_problem(examples, 0.25, seed=3)[2] == held
    explicit = split_by_problem(examples, {examples[0].problem}, seed=0)
    assert [e.problem for e in explicit[1]] == [examples[0].problem] * 3


# --- training ---------------------------------------------------------------------------------


def test_training_lowers_validation_loss(trained):
    _, result = trained
    losses = [h["val_loss"] for h in result.history]
    assert len(losses) == 8 and result.epochs_completed == 8
    assert result.initial_val_loss is not None
    assert losses[-1] < result.initial_val_loss - 0.15
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.n_val_examples > 0 and result.n_val_labels > 0
    assert result.val_metrics["step_auc"] > 0.8


def test_checkpoint_is_native_and_records_the_run(trained):
    examples, result = trained
    out = result.out_dir
    for name in ("model.safetensors", "config.json", PRM_CONFIG_NAME, TRAINER_STATE):
        assert (out / name).is_file(), name
    config = read_prm_config(out)
    assert config.adapter == "token-classification" and config.base_model == "bootstrap"
    record = json.loads((out / TRAINING_RECORD).read_text())
    assert record["data"]["n_train_examples"] == result.n_train_examples
    assert record["data"]["n_train_labels"] + record["data"]["n_val_labels"] == sum(
        len(e.ratings) for e in examples
    )
    assert record["held_out_problems"] == result.held_out_problems
    assert len(result.held_out_problems) == 20
    assert [h["val_loss"] for h in record["history"]] == [h["val_loss"] for h in result.history]
    assert record["hyperparameters"]["lr"] == 3e-3


def test_trained_checkpoint_loads_and_scores_the_learned_rule(trained):
    examples, result = trained
    adapter = load_adapter(result.out_dir, device="cpu")
    held = set(result.held_out_problems)
    val = [e for e in examples if e.problem in held]
    scores = adapter.score([(e.problem, e.steps) for e in val])
    flat_scores = [s for sc in scores for s in sc.step_scores]
    flat_positive = [r != -1 for e in val for r in e.ratings]
    assert roc_auc(flat_scores, flat_positive) > 0.8
    wrong = [s for s, ok in zip(flat_scores, flat_positive, strict=True) if not ok]
    right = [s for s, ok in zip(flat_scores, flat_positive, strict=True) if ok]
    assert sum(wrong) / len(wrong) < sum(right) / len(right) - 0.2

    # The same metrics through evaluate_checkpoint: its val loss is training's.
    metrics = evaluate_checkpoint(adapter, labeled=val)
    assert metrics["val_loss"] == pytest.approx(result.history[-1]["val_loss"], rel=1e-4)
    assert metrics["labeled"]["n_labels"] == result.n_val_labels
    assert metrics["step_auc"] == pytest.approx(result.val_metrics["step_auc"], abs=1e-6)


def _weights(path: Path) -> dict:
    return torch.load(path / TRAINER_STATE, weights_only=False)["model"]


class _Stop(Exception):
    pass


def test_resume_continues_an_interrupted_run_exactly(tmp_path):
    examples = synthetic(12)
    kwargs = {
        "base": None,
        "val_problems": 0.25,
        "epochs": 2,
        "lr": 3e-3,
        "batch_tokens": 256,
        "seed": 1,
        "device": "cpu",
        "bootstrap_options": TINY,
    }
    full = train_prm(examples, TrainingConfig(out_dir=tmp_path / "full", **kwargs))

    def stop_in_second_epoch(epoch, batch, info):
        if epoch == 1:
            raise _Stop

    with pytest.raises(_Stop):
        train_prm(
            examples,
            TrainingConfig(out_dir=tmp_path / "cut", **kwargs),
            progress=stop_in_second_epoch,
        )
    state = torch.load(tmp_path / "cut" / TRAINER_STATE, weights_only=False)
    assert state["epoch"] == 1
    resumed = train_prm(examples, TrainingConfig(out_dir=tmp_path / "cut", resume=True, **kwargs))
    assert resumed.resumed_from_epoch == 1 and resumed.epochs_completed == 2
    assert [h["val_loss"] for h in resumed.history] == pytest.approx(
        [h["val_loss"] for h in full.history], rel=1e-6
    )
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_resume_one_more_epoch_keeps_state(tmp_path):
    examples = synthetic(12)
    kwargs = {"base": None, "lr": 3e-3, "batch_tokens": 256, "device": "cpu"}
    out = tmp_path / "run"
    one = train_prm(
        examples, TrainingConfig(out_dir=out, epochs=1, bootstrap_options=TINY, **kwargs)
    )
    steps = torch.load(out / TRAINER_STATE, weights_only=False)["scheduler"]["last_epoch"]
    before = _weights(out)
    # Resume ignores a different hold-out request: the stored split stays.
    two = train_prm(
        examples, TrainingConfig(out_dir=out, epochs=2, val_problems=0.5, resume=True, **kwargs)
    )
    assert two.resumed_from_epoch == 1 and len(two.history) == 2
    assert two.history[0] == one.history[0]
    assert two.held_out_problems == one.held_out_problems
    state = torch.load(out / TRAINER_STATE, weights_only=False)
    assert state["epoch"] == 2 and state["scheduler"]["last_epoch"] == 2 * steps
    after = state["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before)
    # Nothing left to do: a resume at the target epoch trains no further.
    again = train_prm(examples, TrainingConfig(out_dir=out, epochs=2, resume=True, **kwargs))
    assert again.history == two.history and again.resumed_from_epoch == 2


def test_fine_tunes_a_given_base_without_touching_it(tmp_path):
    examples = synthetic(10)
    texts = [t for e in examples for t in (e.problem, *e.steps)]
    base = build_bootstrap_model(texts, tmp_path / "base", seed=0, **TINY)
    base_bytes = (base / "model.safetensors").read_bytes()
    result = train_prm(
        examples,
        TrainingConfig(
            out_dir=tmp_path / "tuned", base=base, epochs=1, batch_tokens=256, device="cpu"
        ),
    )
    assert (base / "model.safetensors").read_bytes() == base_bytes
    record = json.loads((tmp_path / "tuned" / TRAINING_RECORD).read_text())
    assert record["base"] == str(base)
    assert record["hyperparameters"]["lr"] == BOOTSTRAP_LR  # the base is a bootstrap model
    assert load_adapter(result.out_dir, device="cpu").labels == ("negative", "neutral", "positive")
