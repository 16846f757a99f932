"""The sample import's fast paths change no result: orjson parsing (json.loads stays the
reference for what orjson reads otherwise), the one-buffer COPY encoding, and the ASCII
fingerprint path."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotate.io import ImportFailed, base, import_problems, import_samples
from annotate.io.samples import COPY_COLUMNS
from annotate.models import Campaign, Sample
from selector.selection import fingerprint, normalize_steps, steps_fingerprint

PROBLEMS = [
    {"unique_id": "p/1", "problem": "What is 1+1?", "ground_truth_answer": "2"},
    {"unique_id": "p/2", "problem": "Half of 1?", "ground_truth_answer": "\\frac{1}{2}"},
]
# Lines chosen to cross every branch of the fast paths: non-ASCII and escaped text,
# backslashes, tabs and newlines in COPY text fields, null and empty fields, integer ids
# (one past 64 bits, which orjson would read as a float), integer and float scores.
SAMPLE_LINES = [
    '{"id": "a", "unique_id": "p/1", "steps": ["1 + 1 = 2.", "# Answer\\n\\n2"]}',
    '{"id": 7, "unique_id": "p/1", "steps": ["  so\\t it is  3 "], "answer": "3",'
    ' "generator": "m\\t1\\\\x", "verifier_score": 1}',
    '{"id": 123456789012345678901234567890, "unique_id": "p/2",'
    ' "steps": ["½ is \\\\frac{1}{2} — déjà vu", "\\ud83d\\ude00 done"],'
    ' "answer": "\\\\frac{1}{2}", "generator": "", "verifier_score": 0.125}',
    '{"id": "tab\\tid", "unique_id": "p/2", "response": "A\\n\\nB\\u00a0C\\n\\n# Answer\\n\\n1",'
    ' "answer": null, "verifier_score": -2.5e-7}',
]

# What the import writes, the problem by name (the two campaigns' problem ids differ).
STORED = [
    "problem__unique_id" if column == "problem_id" else column
    for column in COPY_COLUMNS
    if column not in ("campaign_id", "created_at")
]

pytestmark = pytest.mark.django_db


def reference_only():
    """Every line through json.loads, as before orjson."""
    return mock.patch.object(base, "_load_fast", lambda text: base._USE_REFERENCE)


def imported(slug: str, lines: list[str], **options) -> list[tuple]:
    campaign = Campaign.objects.create(slug=slug)
    import_problems(io.StringIO("".join(json.dumps(p) + "\n" for p in PROBLEMS)), campaign)
    import_samples(io.StringIO("".join(line + "\n" for line in lines)), campaign, **options)
    return list(Sample.objects.filter(campaign=campaign).order_by("id").values_list(*STORED))


def test_orjson_and_the_json_reference_store_identical_rows():
    fast = imported("fast", SAMPLE_LINES)
    with reference_only():
        reference = imported("reference", SAMPLE_LINES)
    assert fast == reference
    by_id = {row[1]: row for row in fast}
    assert set(by_id) == {"a", "7", "123456789012345678901234567890", "tab\tid"}
    assert by_id["7"][5] == "m\t1\\x" and by_id["7"][7] == 1.0
    assert by_id["123456789012345678901234567890"][2][0] == "½ is \\frac{1}{2} — déjà vu"
    assert by_id["123456789012345678901234567890"][2][1] == "😀 done"
    assert by_id["tab\tid"][2][1] == "B\u00a0C"
    assert all(row[6] == steps_fingerprint(row[2]).hex() for row in fast)


BAD_LINES = [
    pytest.param('{"id": "b", "unique_id": "p/1", "steps": ["x"],', "invalid JSON", id="json"),
    pytest.param(
        '{"id": "b", "unique_id": "p/1", "steps": ["x"], "verifier_score": NaN}',
        'field "verifier_score" must be a finite number',
        id="nan",
    ),
    pytest.param(
        '{"id": "b", "unique_id": "p/1", "steps": ["x\\udc00"]}', "lone UTF-16", id="surrogate"
    ),
    pytest.param(
        '{"id": "b", "unique_id": "p/1", "steps": ["x"], "verifier_score": 1e400}',
        "finite number",
        id="overflow",
    ),
    pytest.param(
        '{"id": "b", "unique_id": "p/1", "steps": "x"}', "must be a list of strings", id="steps"
    ),
]


@pytest.mark.parametrize(("bad", "text"), BAD_LINES)
def test_a_bad_line_in_a_later_batch_names_its_line_and_writes_nothing(bad: str, text: str):
    lines = [*SAMPLE_LINES[:3], bad]
    messages = []
    for slug, patch in (("fast", contextlib.nullcontext()), ("reference", reference_only())):
        with patch, pytest.raises(ImportFailed) as caught:
            imported(slug, lines, batch_size=2)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert messages[0].startswith("line 4: ") and text in messages[0]
    assert not Sample.objects.exists()


# --- load_json: orjson's answer, where kept, is json.loads's --------------------------------


def outcome(text: str) -> tuple:
    try:
        return ("ok", repr(base.load_json(text)))
    except ValueError as exc:
        return ("error", str(exc))


def assert_same_as_reference(text: str) -> None:
    fast = outcome(text)
    with reference_only():
        assert outcome(text) == fast, text


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
JSON_PIECES = st.sampled_from(
    [*'{}[]",:0123456789.eE+- \t\r\\/', "\\u", "\\ud800", "\\udc00", "é", "\x01", "1e400"]
) | st.sampled_from(["9" * 20, "NaN", "Infinity", "-Infinity", "true", "null", '"a"', "\ufeff"])


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(JSON_VALUES)
def test_load_json_keeps_json_loads_results_for_valid_json(value) -> None:
    assert_same_as_reference(json.dumps(value))
    assert_same_as_reference(json.dumps(value, ensure_ascii=False))


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(JSON_PIECES, max_size=24).map("".join))
def test_load_json_keeps_json_loads_answers_for_near_json(text: str) -> None:
    assert_same_as_reference(text)


@pytest.mark.parametrize("depth", [63, 64, 65, 1100])
def test_load_json_depth_limit_is_unchanged(depth: int) -> None:
    assert_same_as_reference("[" * depth + "1" + "]" * depth)
    assert_same_as_reference('{"a":' * depth + "[]" + "}" * depth)


# --- fingerprints: the ASCII path is the reference, byte for byte ---------------------------


def reference_fingerprint(steps: list[str]) -> bytes:
    data = fingerprint._normalize_any(steps).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16, person=b"stepwise-steps-1").digest()


FINGERPRINT_CASES = [
    [],
    [""],
    ["", ""],
    ["a", ""],
    [" "],
    ["  a \t b\n\nc ", "", "d"],
    ["a\x1cb\x1fc\x0bd\x0ce\rf"],
    ["x ", " y", "   "],
    ["a\x00b"],  # a NUL inside a step: the reference path
    ["déjà  vu", "a\u00a0b", "c\u2003 d"],  # non-ASCII, Unicode spaces
    ("tuple", " of steps "),
    ["Let $x = 2$.", "So  the answer is 4.\n\n# Answer\n\n4"],
]


@pytest.mark.parametrize("steps", FINGERPRINT_CASES)
def test_fingerprint_fast_path_matches_the_reference(steps) -> None:
    assert steps_fingerprint(steps) == reference_fingerprint(steps)
    assert normalize_steps(steps) == fingerprint._normalize_any(steps)


STEP_TEXT = st.text(
    alphabet=st.sampled_from([*"ab $\\{}", " ", "\t", "\n", "\r", "\x0b", "\x1c", "\x1f", "\x00"])
    | st.characters(),
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(st.lists(STEP_TEXT, max_size=6))
def test_fingerprint_fast_path_matches_the_reference_on_any_steps(steps: list[str]) -> None:
    assert steps_fingerprint(steps) == reference_fingerprint(steps)
    fast = fingerprint._normalize_ascii(steps)
    if fast is not None:
        assert fast.decode("ascii") == fingerprint._normalize_any(steps)
