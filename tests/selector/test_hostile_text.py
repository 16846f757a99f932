"""Degenerate model text (#15 item 7): a 1 MB hostile step or word is handled in bounded time.

Not timed: each call runs under a guard of many seconds that only a pathological (quadratic
or worse) implementation reaches; the old code took hours on these inputs.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from selector.grading import extract_answer, extract_answer_from_text
from selector.grading.extract import last_boxed
from selector.scoring.bootstrap import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]
MEGABYTE = 1_000_000
UNCLOSED = "\\boxed{" * (MEGABYTE // len("\\boxed{"))


@contextmanager
def guard(seconds: int) -> Iterator[None]:
    """Fail with TimeoutError if the block is still running after `seconds`."""

    def expired(signum, frame):
        raise TimeoutError(f"still running after {seconds} s: not linear")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (UNCLOSED, None),
        ("\\fbox{" * (MEGABYTE // 6), None),
        ("\\boxed{\\frac{1}{2}} then " + UNCLOSED, "\\frac{1}{2}"),
        (UNCLOSED[: MEGABYTE // 2] + "\\boxed{5}" + UNCLOSED[: MEGABYTE // 2], "5"),
        ("{" * MEGABYTE + "\\boxed{7}", "7"),
        ("\\boxed" * (MEGABYTE // 6), "\\boxed"),
    ],
    ids=["unclosed", "unclosed-fbox", "closed-before", "closed-between", "braces", "bare"],
)
def test_one_megabyte_of_boxes_in_one_step(text: str, expected: str | None) -> None:
    with guard(20):
        assert extract_answer([text]) == expected
        assert extract_answer_from_text(text) == expected
        assert last_boxed(text) == expected


def test_hostile_answer_section_keeps_its_text() -> None:
    step = "So we are done.\n\n# Answer\n\n" + UNCLOSED
    with guard(20):
        answer = extract_answer(["Let x = 1.", step])
    assert answer is not None and len(answer) == len(UNCLOSED)


def test_many_hostile_steps_then_a_boxed_answer_earlier() -> None:
    steps = ["Thus $\\boxed{42}$."] + [UNCLOSED[:100_000]] * 10
    with guard(20):
        assert extract_answer(steps) == "42"


def test_escaped_braces_still_pair_as_before() -> None:
    assert last_boxed("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"
    assert last_boxed("\\boxed{a\\}") is None  # the only "}" is escaped: unclosed
    assert last_boxed("\\boxed{x} \\boxed{y") == "x"
    assert last_boxed("\\boxed {3} and \\boxedfoo{4}") == "3"


def test_tokenizer_training_on_one_megabyte_word_finishes() -> None:
    """Tokenizers' training runs in Rust, out of reach of a signal: a child process with a
    generous timeout guards it. Before the cap, this word ran for many minutes."""
    code = (
        "from selector.scoring.bootstrap import train_tokenizer\n"
        f"word = 'a' * {MEGABYTE}\n"
        "tok = train_tokenizer([word, 'We add $1+1=2$.'], vocab_size=300)\n"
        "print(len(tok))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.split()[-1]) > 256


def test_capped_tokenizer_still_encodes_long_words_whole() -> None:
    word = "abcdefghij" * 30  # 300 letters, longer than the training cap
    tokenizer = train_tokenizer([word, "We add $\\frac{1}{2}$."], vocab_size=300)
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == word
