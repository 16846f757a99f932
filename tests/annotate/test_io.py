"""Import/export: PRM800K round trip, atomic failures, MATH names, grading at import, TRL."""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.io import (
    ImportFailed,
    import_problems,
    import_samples,
    iter_prm800k_lines,
    iter_stepwise_records,
)
from annotate.io.prm800k import LABELER_NAMESPACE
from annotate.models import (
    Assignment,
    Campaign,
    Generation,
    Label,
    Problem,
    Sample,
    StepRating,
)
from selector.grading import extract_answer, grade_answer
from selector.selection import steps_fingerprint
from tests.factories import DATA_DIR

DATA = DATA_DIR
PRM800K = DATA / "prm800k_examples.jsonl"
COT = DATA / "math_cot_samples.jsonl"
MATH500 = DATA / "math500.jsonl"

pytestmark = pytest.mark.django_db


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (Campaign, Problem, Sample, Label, StepRating, Generation, Assignment)
    }


def write_lines(path: Path, objects: list) -> Path:
    path.write_text("".join(o if isinstance(o, str) else json.dumps(o) + "\n" for o in objects))
    return path


def run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err, verbosity=0)
    return out.getvalue()


# --- PRM800K --------------------------------------------------------------------------------


def test_prm800k_round_trip_is_byte_exact(tmp_path):
    summary = run("import_prm800k", str(PRM800K), "--campaign", "prm")
    source = PRM800K.read_text(encoding="utf-8").splitlines()
    assert "12 labels" in summary
    assert Label.objects.count() == len(source) == 12
    # Rebuilt from rows, not kept verbatim: every label has only its phase marker.
    assert all(
        set(extra) == {"phase"} for extra in Label.objects.values_list("question_extra", flat=True)
    )
    phases = sorted(Label.objects.values_list("question_extra__phase", flat=True))
    assert phases == [1] * 3 + [2] * 9

    out = tmp_path / "out.jsonl"
    run("export_prm800k", "--campaign", "prm", "-o", str(out))
    assert out.read_bytes() == PRM800K.read_bytes()

    # The generation filter selects the phase-2 records (generation 6) only, in order.
    gen6 = list(iter_prm800k_lines(Campaign.objects.get(slug="prm"), generation=6))
    assert gen6 == [line for line in source if json.loads(line)["generation"] == 6]


def test_prm800k_import_makes_problems_samples_labels():
    run("import_prm800k", str(PRM800K), "--campaign", "prm")
    records = [json.loads(line) for line in PRM800K.read_text().splitlines()]
    assert Problem.objects.count() == len({r["question"]["problem"] for r in records})
    phase2 = records[3]
    sample = Sample.objects.get(steps=phase2["question"]["pre_generated_steps"])
    q = phase2["question"]
    assert sample.answer == q["pre_generated_answer"]
    assert sample.verifier_score == q["pre_generated_verifier_score"]
    assert sample.is_correct is False  # 7200 vs 28800
    assert sample.steps_hash == steps_fingerprint(sample.steps).hex()
    assert sample.problem.ground_truth_solution == q["ground_truth_solution"]
    label = sample.labels.get()
    assert label.labeler_uuid == phase2["labeler"]
    assert label.timestamp == phase2["timestamp"]
    assert label.finished_at == datetime.fromisoformat(phase2["timestamp"]).replace(tzinfo=UTC)
    assert label.prm800k_generation == 6 and label.finish_reason == "found_error"
    assert label.total_time_ms == phase2["label"]["total_time"]
    assert label.prm800k_steps == phase2["label"]["steps"]
    # Phase 1: the sample is the path the labeler followed (chosen, else human completion).
    first = records[0]["label"]["steps"]
    path = Label.objects.order_by("id").first().sample.steps
    assert path[0] == first[0]["completions"][0]["text"]
    assert path[1] == first[1]["human_completion"]["text"]
    assert path[-1] == first[5]["completions"][4]["text"]
    assert len(path) == 6


def test_prm800k_reimport_reuses_problems_and_samples():
    run("import_prm800k", str(PRM800K), "--campaign", "prm")
    before = counts()
    run("import_prm800k", str(PRM800K), "--campaign", "prm")
    after = counts()
    assert after["Problem"] == before["Problem"] and after["Sample"] == before["Sample"]
    assert after["Label"] == 2 * before["Label"]


def test_prm800k_record_that_cannot_be_rebuilt_is_kept_verbatim(tmp_path):
    record = json.loads(PRM800K.read_text().splitlines()[3])
    record["question"]["pre_generated_verifier_score"] = 1  # an int: a float column gives 1.0
    line = json.dumps(record)
    run("import_prm800k", str(write_lines(tmp_path / "x.jsonl", [record])), "--campaign", "v")
    assert "record_json" in Label.objects.get().question_extra
    assert list(iter_prm800k_lines(Campaign.objects.get(slug="v"))) == [line]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("labeler"), 'line 13: missing field "labeler"'),
        (lambda r: r["question"].pop("problem"), 'line 13: missing field "question.problem"'),
        (lambda r: r["label"].update(total_time="7"), 'line 13: field "label.total_time"'),
        (lambda r: r["label"].update(finish_reason="done"), 'line 13: field "label.finish_reason"'),
        (lambda r: r.update(extra=1), 'line 13: unexpected field "extra"'),
    ],
)
def test_prm800k_bad_line_aborts_everything(tmp_path, mutate, message):
    lines = PRM800K.read_text().splitlines()
    bad = json.loads(lines[4])
    mutate(bad)
    path = write_lines(tmp_path / "bad.jsonl", [line + "\n" for line in lines] + [bad])
    before = counts()
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run("import_prm800k", str(path), "--campaign", "prm", "--batch-size", "5")
    assert counts() == before


# --- problems ---------------------------------------------------------------------------------


def test_import_problems_accepts_math_field_names():
    summary = run("import_problems", str(MATH500), "--campaign", "math", "--split", "test")
    assert "500 problems" in summary
    first = json.loads(MATH500.open().readline())
    problem = Problem.objects.get(unique_id=first["unique_id"])
    assert problem.ground_truth_answer == first["answer"]
    assert problem.ground_truth_solution == first["solution"]
    assert problem.subject == first["subject"] and problem.level == first["level"]
    assert Problem.objects.filter(split="test").count() == 500


def test_import_problems_level_strings_and_split_field(tmp_path):
    path = write_lines(
        tmp_path / "p.jsonl",
        [
            {"unique_id": "a", "problem": "1+1?", "ground_truth_answer": "2", "level": "Level 3"},
            {"unique_id": "b", "problem": "2+2?", "answer": "4", "level": "Level ?"},
            {"unique_id": "c", "problem": "3+3?", "answer": "6", "split": "test"},
        ],
    )
    run("import_problems", str(path), "--campaign", "c1")
    levels = dict(Problem.objects.values_list("unique_id", "level"))
    assert levels == {"a": 3, "b": None, "c": None}
    assert dict(Problem.objects.values_list("unique_id", "split")) == {
        "a": "train",
        "b": "train",
        "c": "test",
    }


def _problem_lines(n: int) -> list[dict]:
    return [
        {"unique_id": f"p{i}", "problem": f"What is {i}+1?", "ground_truth_answer": str(i + 1)}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"problem": "x", "answer": "1"}, 'line 31: missing field "unique_id"'),
        ('{"unique_id": "z", "problem": ', "line 31: invalid JSON"),
        ({"unique_id": 7, "problem": "x", "answer": "1"}, 'line 31: field "unique_id" must be a'),
        ({"unique_id": "p3", "problem": "x", "answer": "1"}, 'line 31: duplicate unique_id "p3"'),
        ({"unique_id": "z", "problem": "x"}, 'line 31: missing field "ground_truth_answer"'),
    ],
)
def test_import_problems_bad_line_after_many_good_ones(tmp_path, bad, message):
    lines = [*_problem_lines(30), bad if isinstance(bad, dict) else bad + "\n"]
    path = write_lines(tmp_path / "p.jsonl", lines)
    before = counts()
    with pytest.raises(CommandError, match=message):
        run("import_problems", str(path), "--campaign", "new-one", "--batch-size", "7")
    assert counts() == before
    assert not Campaign.objects.filter(slug="new-one").exists()


# --- samples ----------------------------------------------------------------------------------


def _cot_files(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    """math_cot_samples.jsonl as a problems file and a samples file (responses, no answers)."""
    problems, samples, source = [], [], []
    for line in COT.read_text().splitlines():
        record = json.loads(line)
        uid = f"cot/{record['idx']}"
        problems.append(
            {
                "unique_id": uid,
                "problem": record["problem"],
                "ground_truth_answer": record["ground_truth_answer"],
                "ground_truth_solution": record["ground_truth_solution"],
                "level": record["level"],
            }
        )
        for j, s in enumerate(record["samples"]):
            samples.append({"id": f"{uid}/{j}", "unique_id": uid, "response": s["response"]})
            source.append({"id": f"{uid}/{j}", "gt": record["ground_truth_answer"], **s})
    return (
        write_lines(tmp_path / "problems.jsonl", problems),
        write_lines(tmp_path / "samples.jsonl", samples),
        source,
    )


def test_import_samples_extracts_and_grades_math_cot(tmp_path):
    problems, samples, source = _cot_files(tmp_path)
    run("import_problems", str(problems), "--campaign", "cot")
    assert Problem.objects.get(unique_id="cot/0").level == 3  # "Level 3"
    summary = run("import_samples", str(samples), "--campaign", "cot", "--batch-size", "300")
    assert "800 samples" in summary
    assert Sample.objects.count() == 800 == len(source)
    rows = {
        s.external_id: s
        for s in Sample.objects.select_related("problem").only(
            "external_id",
            "steps",
            "answer",
            "is_correct",
            "steps_hash",
            "problem__ground_truth_answer",
        )
    }
    agree_answer = agree_grade = 0
    for src in source:
        sample = rows[src["id"]]
        assert sample.steps == [p.strip() for p in src["response"].split("\n\n") if p.strip()]
        assert sample.answer == extract_answer(sample.steps)
        assert sample.steps_hash == steps_fingerprint(sample.steps).hex()
        if sample.answer is None:
            assert sample.is_correct is None
        else:
            assert sample.is_correct == grade_answer(sample.answer, src["gt"])
        agree_answer += sample.answer == src["pred"]
        agree_grade += bool(sample.is_correct) == src["is_correct"]
    # The source's own extractor and grader differ in corner cases only.
    assert agree_answer >= 0.9 * len(source)
    assert agree_grade >= 0.95 * len(source)
    assert Sample.objects.filter(is_correct=False).exists()


def test_import_samples_steps_answer_and_custom_separator(tmp_path):
    run(
        "import_problems",
        str(write_lines(tmp_path / "p.jsonl", _problem_lines(2))),
        "--campaign",
        "s",
    )
    path = write_lines(
        tmp_path / "s.jsonl",
        [
            {"id": "a", "unique_id": "p0", "steps": ["So 0+1=1.", "# Answer\n\n1"]},
            {"id": "b", "unique_id": "p0", "steps": ["It is $\\boxed{2}$."], "answer": "7"},
            {
                "id": 3,
                "unique_id": "p1",
                "response": "First.|Then $\\boxed{2}$.|",
                "verifier_score": 0.5,
            },
            {"id": "d", "unique_id": "p1", "response": "No answer here.", "generator": "g"},
        ],
    )
    run("import_samples", str(path), "--campaign", "s", "--split-steps", "|")
    got = {s.external_id: s for s in Sample.objects.all()}
    assert got["a"].answer == "1" and got["a"].is_correct is True
    assert got["b"].answer == "7" and got["b"].is_correct is False  # given answers are kept
    assert got["3"].steps == ["First.", "Then $\\boxed{2}$."]
    assert got["3"].answer == "2" and got["3"].is_correct is True
    assert got["3"].verifier_score == 0.5
    assert got["d"].answer is None and got["d"].is_correct is None and got["d"].generator == "g"


def _sample_lines(n: int) -> list[dict]:
    return [
        {"id": f"s{i}", "unique_id": f"p{i % 3}", "steps": [f"Step {i}.", f"# Answer\n\n{i % 5}"]}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"id": "x", "steps": ["a"]}, 'line 121: missing field "unique_id"'),
        (
            {"id": "x", "unique_id": "nope", "steps": ["a"]},
            'line 121: unknown problem unique_id "nope"',
        ),
        ({"id": "s5", "unique_id": "p0", "steps": ["a"]}, 'line 121: duplicate id "s5"'),
        ({"id": "x", "unique_id": "p0", "steps": "a"}, 'line 121: field "steps" must be a list'),
        ({"id": "x", "unique_id": "p0"}, 'line 121: missing field "steps"'),
        ({"id": "x", "unique_id": "p0", "steps": ["a"], "verifier_score": "hi"}, "line 121: field"),
        ("[1, 2]", "line 121: expected a JSON object"),
        ("{bad json", "line 121: invalid JSON"),
    ],
)
def test_import_samples_bad_line_after_many_good_ones(tmp_path, bad, message):
    run(
        "import_problems",
        str(write_lines(tmp_path / "p.jsonl", _problem_lines(3))),
        "--campaign",
        "s",
    )
    lines = [*_sample_lines(120), bad if isinstance(bad, dict) else bad + "\n"]
    path = write_lines(tmp_path / "s.jsonl", lines)
    before = counts()
    with pytest.raises(CommandError, match=message):
        run("import_samples", str(path), "--campaign", "s", "--batch-size", "50")
    assert counts() == before


def test_import_samples_rejects_ids_already_in_the_campaign(tmp_path):
    run(
        "import_problems",
        str(write_lines(tmp_path / "p.jsonl", _problem_lines(3))),
        "--campaign",
        "s",
    )
    run(
        "import_samples",
        str(write_lines(tmp_path / "a.jsonl", _sample_lines(4))),
        "--campaign",
        "s",
    )
    before = counts()
    second = write_lines(
        tmp_path / "b.jsonl", [{"id": "new", "unique_id": "p0", "steps": ["x"]}, *_sample_lines(2)]
    )
    with pytest.raises(CommandError, match='line 2: duplicate id "s0"'):
        run("import_samples", str(second), "--campaign", "s")
    assert counts() == before


def test_import_functions_take_a_text_stream(campaign):
    summary = import_problems(io.StringIO(json.dumps(_problem_lines(1)[0]) + "\n"), campaign)
    assert summary.created == {"problems": 1}
    stream = io.StringIO('{"id": "a", "unique_id": "p0", "response": "x\\n\\n# Answer\\n\\n1"}\n\n')
    summary = import_samples(stream, campaign)
    assert summary.created == {"samples": 1} and summary.lines == 1
    with pytest.raises(ImportFailed) as failure:
        import_samples(io.StringIO('{"id": "b"}\n'), campaign)
    assert failure.value.line == 1 and failure.value.message == 'missing field "unique_id"'
    assert Sample.objects.count() == 1


# --- native labels: PRM800K phase-2 shape and TRL stepwise ----------------------------------


def _native_label(sample, user, generation, ratings, finish_reason, *, kind="regular"):
    assignment = Assignment.objects.create(
        generation=generation,
        sample=sample,
        labeler=user,
        kind=kind,
        state="submitted",
    )
    label = Label.objects.create(
        assignment=assignment,
        sample=sample,
        labeler=user,
        finish_reason=finish_reason,
        total_time_ms=1234,
        finished_at=datetime(2024, 5, 6, 7, 8, 9, 1000, tzinfo=UTC),
        is_quality_control=kind == "qc",
    )
    StepRating.objects.bulk_create(
        StepRating(label=label, step=i, rating=r, flagged=f) for i, (r, f) in enumerate(ratings)
    )
    return label


@pytest.fixture
def native(campaign, labeler):
    problem = Problem.objects.create(
        campaign=campaign,
        unique_id="n/1",
        problem="What is $2+2$?",
        ground_truth_answer="4",
        ground_truth_solution="$2+2=\\boxed{4}$.",
    )
    steps = ["We add.", "Two and two.", "It is 5.", "# Answer\n\n5"]
    sample = Sample.objects.create(
        campaign=campaign,
        problem=problem,
        external_id="n1",
        steps=steps,
        answer="5",
        is_correct=False,
        steps_hash=steps_fingerprint(steps).hex(),
        verifier_score=0.25,
    )
    generation = Generation.objects.create(campaign=campaign, number=3, status="open")
    return sample, generation


def test_native_label_exports_in_phase2_shape(native, labeler, campaign):
    sample, generation = native
    from annotate.models import Selection

    Selection.objects.create(
        generation=generation, sample=sample, rank=0, score=0.75, is_wrong=True
    )
    _native_label(sample, labeler, generation, [(1, False), (0, True), (-1, False)], "found_error")
    (line,) = list(iter_prm800k_lines(campaign))
    record = json.loads(line)
    assert list(record) == [
        "labeler",
        "timestamp",
        "generation",
        "is_quality_control_question",
        "is_initial_screening_question",
        "question",
        "label",
    ]
    assert record["labeler"] == str(uuid.uuid5(LABELER_NAMESPACE, "labeler"))
    assert record["timestamp"] == "2024-05-06T07:08:09.001000"
    assert record["generation"] == 3
    assert list(record["question"]) == [
        "problem",
        "ground_truth_solution",
        "ground_truth_answer",
        "pre_generated_steps",
        "pre_generated_answer",
        "pre_generated_verifier_score",
    ]
    assert record["question"]["pre_generated_steps"] == sample.steps
    assert record["question"]["pre_generated_answer"] == "5"
    assert record["question"]["pre_generated_verifier_score"] == 0.75  # the selection's score
    steps = record["label"]["steps"]
    assert [s["chosen_completion"] for s in steps] == [0, 0, None]
    assert [s["completions"] for s in steps] == [
        [{"text": "We add.", "rating": 1, "flagged": False}],
        [{"text": "Two and two.", "rating": 0, "flagged": True}],
        [{"text": "It is 5.", "rating": -1, "flagged": False}],
    ]
    assert all(s["human_completion"] is None for s in steps)
    assert record["label"]["total_time"] == 1234
    assert record["label"]["finish_reason"] == "found_error"
    assert line == json.dumps(record)  # PRM800K's separators and escapes


def test_native_give_up_and_solution_and_screening(native, labeler, other_labeler, campaign):
    sample, generation = native
    _native_label(sample, labeler, generation, [(1, False)], "give_up")
    _native_label(sample, other_labeler, None, [(1, False)] * 4, "solution", kind="screening")
    unfinished = _native_label(sample, labeler, generation, [(1, False)], None)
    give_up, solution = (json.loads(x) for x in iter_prm800k_lines(campaign))
    steps = give_up["label"]["steps"]
    assert [s["chosen_completion"] for s in steps] == [0, None]
    assert steps[1]["completions"][0] == {"text": "Two and two.", "rating": None, "flagged": False}
    assert [s["chosen_completion"] for s in solution["label"]["steps"]] == [0, 0, 0, 0]
    assert solution["generation"] == -1
    assert solution["labeler"] == str(uuid.uuid5(LABELER_NAMESPACE, "other"))
    assert unfinished.finish_reason is None  # unfinished labels are not exported
    assert [json.loads(x)["generation"] for x in iter_prm800k_lines(campaign, generation=-1)] == [
        -1
    ]


def test_export_stepwise_native_labels(native, labeler, campaign, tmp_path):
    sample, generation = native
    _native_label(sample, labeler, generation, [(1, False), (0, False), (-1, False)], "found_error")
    out = tmp_path / "trl.jsonl"
    run("export_stepwise", "--campaign", campaign.slug, "-o", str(out))
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record == {
        "prompt": "What is $2+2$?",
        "completions": ["We add.", "Two and two.", "It is 5."],
        "labels": [True, True, False],
    }
    campaign.neutral_is_positive = False
    campaign.save()
    (record,) = list(iter_stepwise_records(campaign))
    assert record["labels"] == [True, False, False]


def test_export_stepwise_imported_prm800k():
    run("import_prm800k", str(PRM800K), "--campaign", "prm")
    records = list(iter_stepwise_records(Campaign.objects.get(slug="prm")))
    source = [json.loads(line) for line in PRM800K.read_text().splitlines()]
    phase2 = [r for r in source if r["generation"] == 6]
    # Every phase-2 record: its pre-generated steps up to and including the first −1.
    for src in phase2:
        steps = src["label"]["steps"]
        expected = [s["completions"][0]["text"] for s in steps]
        match = next(r for r in records if r["completions"] == expected)
        assert match["labels"] == [True] * (len(steps) - 1) + [False]
        assert match["prompt"] == src["question"]["problem"]
    assert all(len(r["completions"]) == len(r["labels"]) > 0 for r in records)


def test_export_query_count_is_constant(native, labeler, campaign, django_assert_max_num_queries):
    """PRM800K: one streamed query (the labels with their ratings and alternatives) inside a
    savepoint, 3 queries whatever the number of labels or the chunk size. TRL stepwise: one
    server-side cursor plus one StepRating query per chunk, never one per label."""
    sample, generation = native
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"u{i}") for i in range(60)
    )
    for user in users[:10]:
        _native_label(sample, user, generation, [(1, False), (-1, False)], "found_error")
    with django_assert_max_num_queries(3):
        assert len(list(iter_prm800k_lines(campaign))) == 10
    for user in users[10:]:
        _native_label(sample, user, generation, [(1, False), (-1, False)], "found_error")
    with django_assert_max_num_queries(3):
        assert len(list(iter_prm800k_lines(campaign))) == 60
    with django_assert_max_num_queries(4):
        assert len(list(iter_stepwise_records(campaign))) == 60
    with django_assert_max_num_queries(3):
        assert len(list(iter_prm800k_lines(campaign, chunk_size=25))) == 60


def test_export_spells_unusual_text_like_json_dumps(native, labeler, campaign, tmp_path):
    """JSON columns are spliced into lines as stored text; that text must be json.dumps'
    spelling for quotes, backslashes, control characters, DEL and non-ASCII alike."""
    sample, generation = native
    sample.steps = ['Quote " and \\ back\\slash', "tab\there\x01\x7f", "é → ∑ 😀", "# Answer\n\n5"]
    sample.save()
    _native_label(sample, labeler, generation, [(1, False)] * 3 + [(-1, True)], "found_error")
    (line,) = list(iter_prm800k_lines(campaign))
    record = json.loads(line)
    assert line == json.dumps(record)
    assert record["question"]["pre_generated_steps"] == sample.steps
    # An imported record with non-ASCII text and escapes comes back byte for byte too.
    source = json.loads(PRM800K.read_text().splitlines()[3])
    source["question"]["problem"] = "Ünïcode ∑ problem\u2028 with \\ and \x7f"
    source["label"]["steps"][0]["completions"][0]["text"] = "ü\x02"
    source["question"]["pre_generated_steps"][0] = "ü\x02"
    path = write_lines(tmp_path / "u.jsonl", [source])
    run("import_prm800k", str(path), "--campaign", "u")
    imported = Campaign.objects.get(slug="u")
    assert "record_json" not in Label.objects.get(sample__campaign=imported).question_extra
    assert list(iter_prm800k_lines(imported)) == [json.dumps(source)]
