"""The generator's prompt, and how its output becomes steps and an answer.

PRM800K's generator wrote "solutions in a newline delimited step-by-step format" (Lightman et
al., "Let's Verify Step by Step", 2023, section 2.3: GPT-4 few-shot prompted, then fine-tuned
on that format), ending with ``# Answer`` and the answer: its ``pre_generated_steps`` end in
``"...= 320,000$.\\n\\n# Answer\\n\\n320,000"`` (openai/prm800k README). The default template
asks for the same shape with a blank line between steps, so that a step may span lines
(display math); the ``# Answer`` block stays part of the last step, as PRM800K stores it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_PROMPT",
    "SPLIT_RULES",
    "Message",
    "PromptTemplate",
    "split_steps",
]

Message = dict[str, str]

# How a response is cut into steps: at blank lines (the default) or at every line break.
SPLIT_RULES: dict[str, re.Pattern[str]] = {
    "blank_line": re.compile(r"\n[ \t]*\n"),
    "newline": re.compile(r"\n"),
}

# A piece that starts the answer block: "# Answer" as a Markdown heading of any level.
_ANSWER_START = re.compile(r"#{1,6}[ \t]*Answer\b", re.IGNORECASE)

DEFAULT_SYSTEM = (
    "You are a careful mathematician. Solve the problem step by step. Write each step as one "
    "short paragraph and separate consecutive steps with a blank line. After the last step, "
    'write a line "# Answer", a blank line, and then only the final answer, in simplest form.'
)

DEFAULT_FEW_SHOT: tuple[tuple[str, str], ...] = (
    (
        "If $3x + 5 = 20$, what is $x^2$?",
        "I subtract $5$ from both sides: $3x = 15$.\n\n"
        "I divide both sides by $3$: $x = 5$.\n\n"
        "So $x^2 = 25$.\n\n# Answer\n\n25",
    ),
)


@dataclass(frozen=True)
class PromptTemplate:
    """System prompt, few-shot (problem, solution) pairs, and the user turns' wording."""

    system: str = DEFAULT_SYSTEM
    few_shot: tuple[tuple[str, str], ...] = DEFAULT_FEW_SHOT
    user: str = "{problem}"
    # Asks for one more step after a given prefix (alternatives at the first error).
    next_step: str = (
        "{problem}\n\nHere is the start of a solution:\n\n{steps}\n\n"
        "Write the next step of this solution only, in the same format."
    )

    def messages(self, problem: str) -> list[Message]:
        """Chat messages that ask for a whole solution to ``problem``."""
        return [*self._preamble(), {"role": "user", "content": self.user.format(problem=problem)}]

    def next_step_messages(self, problem: str, steps: Sequence[str]) -> list[Message]:
        """Chat messages that ask for the step that follows ``steps``."""
        content = self.next_step.format(problem=problem, steps="\n\n".join(steps))
        return [*self._preamble(), {"role": "user", "content": content}]

    def _preamble(self) -> list[Message]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for shot_problem, shot_solution in self.few_shot:
            messages.append({"role": "user", "content": self.user.format(problem=shot_problem)})
            messages.append({"role": "assistant", "content": shot_solution})
        return messages

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "few_shot": [list(pair) for pair in self.few_shot]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptTemplate:
        fields = dict(data)
        if "few_shot" in fields:
            fields["few_shot"] = tuple((str(p), str(s)) for p, s in fields["few_shot"])
        return cls(**fields)


DEFAULT_PROMPT = PromptTemplate()


def split_steps(text: str, rule: str = "blank_line") -> list[str]:
    """Cut a response into steps by ``rule``; the ``# Answer`` block joins the step before it."""
    pieces = [piece.strip() for piece in SPLIT_RULES[rule].split(text)]
    pieces = [piece for piece in pieces if piece]
    for i, piece in enumerate(pieces):
        if _ANSWER_START.match(piece):
            answer_block = "\n\n".join(pieces[i:])
            return [*pieces[: i - 1], f"{pieces[i - 1]}\n\n{answer_block}"] if i else [answer_block]
    return pieces
