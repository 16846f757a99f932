"""The `select` command and annotate.generations: pool from the database, dry run, opening
generations, exclusion and dedup across generations, agreement with the reference oracle."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from annotate.generations import open_generation, pool_samples, preview_selection
from annotate.models import (
    Assignment,
    Campaign,
    Checkpoint,
    Generation,
    Problem,
    Sample,
    Score,
    Selection,
)
from selector.selection import steps_fingerprint
from tests.factories import DATA_DIR
from tests.selector.oracle import reference_select

COT = DATA_DIR / "math_cot_samples.jsonl"


def make_pool(campaign: Campaign, n_problems: int = 5, per_problem: int = 12) -> None:
    """Samples with scores (ties included), wrong and right answers, duplicates, no-answer and
    unscored samples, and a test-split problem that must never be selected."""
    rng = np.random.default_rng(7)
    problems = [
        Problem.objects.create(
            campaign=campaign,
            unique_id=f"p{i}",
            problem=f"Problem {i}",
            ground_truth_answer="1",
            split="test" if i == n_problems else "train",
        )
        for i in range(n_problems + 1)
    ]
    rows = []
    for problem in problems:
        for j in range(per_problem):
            steps = [f"Work {j % 9} on {problem.unique_id}.", f"# Answer\n\n{j % 3}"]
            if j % 9 == 2:  # whitespace variant of an earlier sample's steps: a duplicate
                steps = ["  " + steps[0].replace(" ", "   "), steps[1] + "\n"]
            rows.append(
                Sample(
                    campaign=campaign,
                    problem=problem,
                    external_id=f"{problem.unique_id}/{j}",
                    steps=steps,
                    answer=None if j == 5 else str(j % 3),
                    is_correct=None if j == 5 else (j % 3 == 1),
                    steps_hash=steps_fingerprint(steps).hex(),
                    verifier_score=None if j == 7 else round(float(rng.integers(0, 6)) / 5, 1),
                )
            )
    Sample.objects.bulk_create(rows)


def reference(campaign: Campaign, scores: dict[int, float] | None = None, **params) -> list[int]:
    """The oracle over arrays built straight from the ORM (all train samples with an answer;
    no score -> NaN; already selected -> excluded; wrong: graded wrong, ground truth not
    suspect)."""
    samples = list(
        Sample.objects.filter(campaign=campaign, problem__split="train", answer__isnull=False)
        .order_by("id")
        .values_list(
            "id",
            "problem_id",
            "verifier_score",
            "is_correct",
            "steps_hash",
            "problem__ground_truth_status",
        )
    )
    selected = set(Selection.objects.values_list("sample_id", flat=True))
    ids = [s[0] for s in samples]

    def score_of(s):
        value = s[2] if scores is None else scores.get(s[0])
        return np.nan if value is None else value

    picked = reference_select(
        np.array([s[1] for s in samples], dtype=np.int64),
        np.array(ids, dtype=np.int64),
        np.array([score_of(s) for s in samples], dtype=np.float64),
        np.array([s[3] is False and s[5] != "suspect" for s in samples]),
        np.frombuffer(b"".join(bytes.fromhex(s[4]) for s in samples), dtype="S16"),
        excluded=np.array([i in selected for i in ids], dtype=bool),
        **params,
    )
    return [ids[i] for i in picked]


def select_json(*args: str) -> dict:
    out = io.StringIO()
    call_command("select", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def table_counts() -> tuple[int, int, int]:
    return Generation.objects.count(), Selection.objects.count(), Assignment.objects.count()


@pytest.fixture
def pool(campaign):
    make_pool(campaign)
    return campaign


@pytest.mark.django_db
def test_dry_run_json_shape_and_nothing_written(pool):
    before = table_counts()
    data = select_json("--campaign", pool.slug, "--dry-run")
    assert table_counts() == before == (0, 0, 0)
    assert list(data) == ["selected", "pool", "params", "scores"]
    assert data["selected"], "the pool is not empty"
    assert data["pool"] == pool_samples(pool).filter(verifier_score__isnull=False).count()
    assert data["scores"] == "imported" and data["params"]["k"] == pool.k
    for item in data["selected"]:
        assert list(item) == ["sample", "id", "problem", "score", "wrong"]
        sample = Sample.objects.select_related("problem").get(pk=item["sample"])
        assert item["id"] == sample.external_id
        assert item["problem"] == sample.problem.unique_id
        assert item["score"] == sample.verifier_score
        assert item["wrong"] is (sample.is_correct is False)
        assert sample.problem.split == "train" and sample.answer is not None


@pytest.mark.django_db
@pytest.mark.parametrize(
    "params",
    [
        {"strategy": "per_problem", "k": 4, "wrong_fraction": 0.8},
        {"strategy": "per_problem", "k": 3, "wrong_fraction": 0.5, "max_per_problem": 2},
        {"strategy": "global", "k": 9, "wrong_fraction": 0.8},
        {"strategy": "global", "k": 20, "wrong_fraction": 0.3, "max_per_problem": 3},
    ],
)
def test_selection_agrees_with_reference(pool, params):
    args = ["--campaign", pool.slug, "--dry-run", "--strategy", params["strategy"]]
    args += ["--k", str(params["k"]), "--wrong-fraction", str(params["wrong_fraction"])]
    if "max_per_problem" in params:
        args += ["--max-per-problem", str(params["max_per_problem"])]
    got = [item["sample"] for item in select_json(*args)["selected"]]
    assert got == reference(pool, **params)
    assert len(got) > 0


@pytest.mark.django_db
def test_two_selects_exclude_and_dedup(pool):
    pool.overlap = 2
    pool.save()
    out = io.StringIO()
    call_command("select", "--campaign", pool.slug, "--k", "3", stdout=out)
    assert "Opened generation 0" in out.getvalue()
    first = Generation.objects.get(number=0)
    assert first.status == "open" and first.opened_at is not None
    assert first.params == {
        "strategy": "per_problem",
        "k": 3,
        "wrong_fraction": 0.8,
        "max_per_problem": None,
    }
    assert first.score_source == "imported" and first.checkpoint is None
    sel1 = list(first.selections.order_by("rank"))
    assert [s.rank for s in sel1] == list(range(len(sel1)))
    assert all(s.score == s.sample.verifier_score for s in sel1)
    slots = Assignment.objects.filter(generation=first)
    assert slots.count() == 2 * len(sel1)
    assert set(slots.values_list("kind", "state", "labeler")) == {("regular", "open", None)}

    expected = reference(pool, strategy="per_problem", k=3, wrong_fraction=0.8)
    data = select_json("--campaign", pool.slug, "--k", "3")
    assert data["generation"] == 1
    second = [item["sample"] for item in data["selected"]]
    assert second == expected and second
    first_ids = {s.sample_id for s in sel1}
    assert not first_ids & set(second)
    # No sample of generation 1 repeats (problem, normalized steps) of generation 0.
    keys1 = {(s.sample.problem_id, s.sample.steps_hash) for s in sel1}
    keys2 = set(Sample.objects.filter(pk__in=second).values_list("problem_id", "steps_hash"))
    assert not keys1 & keys2
    assert len(keys2) == len(second)
    assert Generation.objects.get(number=1).selections.count() == len(second)


@pytest.mark.django_db
def test_checkpoint_scores(pool):
    checkpoint = Checkpoint.objects.create(campaign=pool, name="c", path="/nowhere")
    samples = list(Sample.objects.filter(campaign=pool).order_by("id"))
    scores = {s.pk: (s.pk % 7) / 7 for s in samples[::2]}
    Score.objects.bulk_create(
        Score(sample_id=pk, checkpoint=checkpoint, score=v) for pk, v in scores.items()
    )
    with pytest.raises(CommandError, match="no active checkpoint"):
        select_json("--campaign", pool.slug, "--scores", "active", "--dry-run")
    got = select_json("--campaign", pool.slug, "--scores", str(checkpoint.pk), "--dry-run")
    ids = [item["sample"] for item in got["selected"]]
    assert ids == reference(
        pool, scores=scores, strategy="per_problem", k=pool.k, wrong_fraction=0.8
    )
    pool.activate(checkpoint)
    generation, preview = open_generation(pool, scores="active")
    assert generation.checkpoint == checkpoint and generation.score_source == "checkpoint"
    assert list(preview.sample) == ids
    assert [s.score for s in generation.selections.order_by("rank")] == [scores[i] for i in ids]


@pytest.mark.django_db
def test_bad_requests(pool):
    with pytest.raises(CommandError, match="no campaign"):
        select_json("--campaign", "nope", "--dry-run")
    with pytest.raises(CommandError, match="wrong_fraction"):
        select_json("--campaign", pool.slug, "--wrong-fraction", "1.5", "--dry-run")
    with pytest.raises(CommandError, match="no checkpoint with id"):
        select_json("--campaign", pool.slug, "--scores", "999999", "--dry-run")
    Selection.objects.all().delete()
    assert table_counts() == (0, 0, 0)


@pytest.mark.django_db
def test_exhausted_pool_writes_nothing(campaign):
    with pytest.raises(CommandError, match="nothing to select"):
        select_json("--campaign", campaign.slug)
    assert table_counts() == (0, 0, 0)
    assert len(preview_selection(campaign)) == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_opens_pick_disjoint_samples():
    if connection.vendor != "postgresql":
        pytest.skip("row locks (SELECT … FOR UPDATE) need PostgreSQL; SQLite serialises writers")
    campaign = Campaign.objects.create(slug="race", k=2)
    make_pool(campaign)
    results, errors = [], []

    def worker():
        try:
            generation, preview = open_generation(Campaign.objects.get(pk=campaign.pk))
            results.append((generation.number, set(preview.sample.tolist())))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(number for number, _ in results) == [0, 1]
    (_, a), (_, b) = results
    assert a and b and not a & b


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [
        ("--strategy", "per_problem", "--k", "4", "--wrong-fraction", "0.75"),
        ("--strategy", "global", "--k", "60", "--wrong-fraction", "0.8", "--max-per-problem", "2"),
    ],
)
def test_selection_on_imported_math_cot(tmp_path, args):
    """Problems and samples through the import commands (answers extracted and graded at
    import, verifier scores with ties), then the dry run against the oracle."""
    problems, samples = tmp_path / "p.jsonl", tmp_path / "s.jsonl"
    with open(problems, "w") as p_out, open(samples, "w") as s_out:
        for line in COT.read_text().splitlines()[:40]:
            record = json.loads(line)
            uid = f"cot/{record['idx']}"
            p_out.write(
                json.dumps(
                    {
                        "unique_id": uid,
                        "problem": record["problem"],
                        "answer": record["ground_truth_answer"],
                    }
                )
                + "\n"
            )
            for j, sample in enumerate(record["samples"]):
                score = round(((record["idx"] * 7 + j * 13) % 10) / 10, 1)  # ties on purpose
                s_out.write(
                    json.dumps(
                        {
                            "id": f"{uid}/{j}",
                            "unique_id": uid,
                            "response": sample["response"],
                            "verifier_score": score,
                        }
                    )
                    + "\n"
                )
    call_command("import_problems", str(problems), "--campaign", "cot", verbosity=0)
    call_command("import_samples", str(samples), "--campaign", "cot", verbosity=0)
    campaign = Campaign.objects.get(slug="cot")
    assert Sample.objects.filter(campaign=campaign, is_correct=False).exists()
    # The real data's broken "4:30p.." ground truth is flagged (its wrong answers do not count).
    assert list(Problem.objects.suspect().values_list("ground_truth_answer", flat=True)) == [
        "4:30p.."
    ]
    got = [
        item["sample"] for item in select_json("--campaign", "cot", "--dry-run", *args)["selected"]
    ]
    params = {
        "strategy": args[1],
        "k": int(args[3]),
        "wrong_fraction": float(args[5]),
        "max_per_problem": int(args[7]) if len(args) > 6 else None,
    }
    assert got == reference(campaign, **params)
    assert len(got) > 0


@pytest.mark.django_db
def test_pool_tolerates_malformed_steps_hash(campaign, problem):
    """Samples written by other code paths with a non-hex steps_hash still load, and equal
    hashes still dedup (the same stand-in digest in SQL and in Python)."""
    for i in range(3):
        Sample.objects.create(
            campaign=campaign,
            problem=problem,
            external_id=f"odd{i}",
            steps=["x"],
            answer="3",
            is_correct=False,
            steps_hash="not-hex" if i < 2 else "ABC",
            verifier_score=0.5,
        )
    first, _, third = Sample.objects.order_by("id")
    preview = preview_selection(campaign, k=5)
    assert list(preview.sample) == [first.pk, third.pk]
    open_generation(campaign, k=1)  # selects `first`; its twin must stay out from now on
    assert list(preview_selection(campaign, k=5).sample) == [third.pk]


@pytest.mark.django_db
def test_no_imported_scores_fails_with_a_hint(campaign):
    make_pool(campaign)
    Sample.objects.update(verifier_score=None)
    with pytest.raises(CommandError, match="try --scores active"):
        call_command("select", "--campaign", campaign.slug, "--dry-run", "--json")
