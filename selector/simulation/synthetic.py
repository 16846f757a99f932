"""Word problems whose solutions' first error is known by construction (``--source synthetic``).

A problem is a chain of arithmetic operations on a starting quantity ("Ada has 7 apples. She
buys 5 more, gives away 3, then doubles them. How many?"). A solution walks the chain one
step per operation, writing each intermediate result, and ends with ``# Answer``. Solutions
are drawn many per problem (the paper's pool had 1000 per problem), each with, at
``error_rate``:

* an arithmetic slip: one step's result is off (that step is the first error, and every later
  step carries the wrong value on, so the final answer is wrong);
* a wrong operation: one step applies the wrong operator (first error there);
* a distractor step: a true but irrelevant remark (rated neutral-or-better: not an error);
* correct answer, wrong process: two slips that cancel (the first slip is the first error,
  yet the final answer is right, so answer-only grading calls it correct).

A clean solution (no error) may still contain distractors. Everything is seeded: the same
arguments give the same items.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from selector.simulation.run import SimItem

NAMES = ("Ada", "Ben", "Chloe", "Dev", "Esme", "Farid", "Gus", "Hana", "Ivo", "Jun")
THINGS = ("apples", "marbles", "stamps", "coins", "books", "shells", "cards", "pens")
DISTRACTORS = (
    "Note that the order of the purchases does not matter here.",
    "It helps to keep a running total after every change.",
    "We only need the final count, not the intermediate ones.",
    "Let us double-check that we read the question correctly.",
)


@dataclass(frozen=True)
class Operation:
    verb: str  # how the problem says it
    op: str  # "+", "-", "*"
    amount: int

    def apply(self, value: int) -> int:
        if self.op == "+":
            return value + self.amount
        if self.op == "-":
            return value - self.amount
        return value * self.amount


@dataclass(frozen=True)
class Problem:
    text: str
    start: int
    operations: tuple[Operation, ...]
    thing: str

    @property
    def answer(self) -> int:
        value = self.start
        for operation in self.operations:
            value = operation.apply(value)
        return value


def make_problem(rng: random.Random, index: int, n_operations: int) -> Problem:
    name, thing = NAMES[index % len(NAMES)], rng.choice(THINGS)
    start = rng.randint(12, 40)
    operations = []
    for _ in range(n_operations):
        kind = rng.choice("+-*")
        if kind == "+":
            amount = rng.randint(2, 15)
            operations.append(Operation(f"gets {amount} more", "+", amount))
        elif kind == "-":
            amount = rng.randint(1, 5)
            operations.append(Operation(f"gives away {amount}", "-", amount))
        else:
            amount = rng.randint(2, 3)
            operations.append(Operation(f"multiplies the pile by {amount}", "*", amount))
    chain = ", then ".join(o.verb for o in operations)
    text = (
        f"Problem {index}: {name} has {start} {thing}. {name} {chain}. "
        f"How many {thing} does {name} have at the end?"
    )
    return Problem(text, start, tuple(operations), thing)


def _wrong_op(op: str) -> str:
    return {"+": "-", "-": "+", "*": "+"}[op]


STEP_TEMPLATES = (
    "{value} {op} {amount} = {result} {thing}.",
    "Now {value} {op} {amount} gives {result}.",
    "After that step we have {value} {op} {amount} = {result} {thing}.",
)


def solve(
    problem: Problem, rng: random.Random, error_rate: float, distractor_rate: float = 0.15
) -> tuple[list[str], int, int]:
    """(steps, first error or −1, final answer) of one drawn solution.

    A step is wrong when it applies another operation than the problem's or miscomputes its
    own sum; steps after a slip that carry its value on correctly are not errors, but only the
    first error is labeled anyway (PRM800K's rule)."""
    n = len(problem.operations)
    kind = None
    if rng.random() < error_rate:
        kind = rng.choices(["slip", "wrong_op", "cancel"], weights=[5, 3, 2])[0]
        if kind == "cancel" and n < 2:
            kind = "slip"
    at = rng.randrange(n - 1 if kind == "cancel" else n) if kind else -1
    fix_at = rng.randrange(at + 1, n) if kind == "cancel" else -1
    offset = rng.choice([-3, -2, -1, 1, 2, 3])
    steps: list[str] = []
    first_error = -1
    value, true_value = problem.start, problem.start
    for i, operation in enumerate(problem.operations):
        if rng.random() < distractor_rate:
            steps.append(rng.choice(DISTRACTORS))
        true_value = operation.apply(true_value)
        op = _wrong_op(operation.op) if i == at and kind == "wrong_op" else operation.op
        result = Operation("", op, operation.amount).apply(value)
        if i == at and kind in ("slip", "cancel"):
            result += offset
        if i == fix_at:
            result = true_value  # the second slip lands back on the true value
        wrong = op != operation.op or result != Operation("", op, operation.amount).apply(value)
        if wrong and first_error < 0:
            first_error = len(steps)
        template = rng.choice(STEP_TEMPLATES)
        steps.append(
            template.format(
                value=value, op=op, amount=operation.amount, result=result, thing=problem.thing
            )
        )
        value = result
    steps.append(f"So the answer is {value}.\n\n# Answer\n\n{value}")
    return steps, first_error, value


def synthetic_items(
    *,
    problems: int = 40,
    per_problem: int = 1000,
    error_rate: float = 0.5,
    operations: tuple[int, int] = (4, 7),
    seed: int = 0,
) -> list[SimItem]:
    """``problems × per_problem`` solutions with known first errors (see the module docstring);
    duplicates of a problem's earlier solution are skipped (selection would dedup them)."""
    return list(_items(problems, per_problem, error_rate, operations, seed))


def _items(
    problems: int, per_problem: int, error_rate: float, operations: tuple[int, int], seed: int
) -> Iterator[SimItem]:
    rng = random.Random(seed)
    for p in range(problems):
        problem = make_problem(rng, p, rng.randint(*operations))
        seen: set[tuple[str, ...]] = set()
        tries = 0
        made = 0
        while made < per_problem and tries < per_problem * 20:
            tries += 1
            steps, first_error, answer = solve(problem, rng, error_rate)
            if tuple(steps) in seen:
                continue
            seen.add(tuple(steps))
            correct = answer == problem.answer
            yield SimItem(
                f"synthetic/{p}/{made}",
                problem.text,
                steps,
                not correct,
                first_error,
                correct,
                str(answer),
            )
            made += 1
