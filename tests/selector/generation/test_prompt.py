"""The prompt template, the step-splitting rules and the answer taken from "# Answer"."""

import json

import pytest

from selector.generation import DEFAULT_PROMPT, GeneratedSolution, PromptTemplate, split_steps


def test_default_messages_are_system_few_shot_then_the_problem():
    messages = DEFAULT_PROMPT.messages("What is $2+2$?")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "blank line" in messages[0]["content"] and "# Answer" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "What is $2+2$?"}
    shot = messages[2]["content"]
    assert split_steps(shot)[-1].endswith("# Answer\n\n25")


def test_template_without_system_or_shots_is_one_user_turn():
    template = PromptTemplate(system="", few_shot=(), user="Solve: {problem}")
    assert template.messages("x") == [{"role": "user", "content": "Solve: x"}]


def test_next_step_messages_show_the_prefix():
    messages = DEFAULT_PROMPT.next_step_messages("What is $2+2$?", ["I add.", "So far $4$."])
    assert messages[-1]["role"] == "user"
    assert "What is $2+2$?" in messages[-1]["content"]
    assert "I add.\n\nSo far $4$." in messages[-1]["content"]


def test_template_round_trips_through_json():
    template = PromptTemplate(system="s", few_shot=(("p", "a"),), user="Q: {problem}")
    assert PromptTemplate.from_dict(json.loads(json.dumps(template.to_dict()))) == template


@pytest.mark.parametrize(
    ("text", "rule", "steps"),
    [
        # PRM800K's pre_generated_steps keep the answer block inside the last step.
        ("A.\n\nB.\n\n# Answer\n\n5", "blank_line", ["A.", "B.\n\n# Answer\n\n5"]),
        ("A.\nB.\n# Answer\n5", "newline", ["A.", "B.\n\n# Answer\n\n5"]),
        ("  A.\n \t\nB.  \n\n\n\nC.\n", "blank_line", ["A.", "B.", "C."]),
        ("Let\n$$x = 1$$\nso.\n\nNext.", "blank_line", ["Let\n$$x = 1$$\nso.", "Next."]),
        ("# Answer\n\n7", "blank_line", ["# Answer\n\n7"]),
        ("", "blank_line", []),
        ("\n\n  \n", "newline", []),
    ],
)
def test_split_steps(text, rule, steps):
    assert split_steps(text, rule) == steps


def test_solution_answer_comes_from_the_answer_heading():
    text = "A.\n\nB.\n\n# Answer\n\n$\\frac12$"
    solution = GeneratedSolution.from_text("p", 0, text, "blank_line")
    assert solution.steps == ["A.", "B.\n\n# Answer\n\n$\\frac12$"]
    assert solution.answer == "$\\frac12$" and solution.has_answer


def test_solution_answer_falls_back_to_boxed():
    solution = GeneratedSolution.from_text("p", 0, "So it is $\\boxed{3}$.", "blank_line")
    assert solution.answer == "3"


@pytest.mark.parametrize("text", [None, "", "I am not sure how to start."])
def test_outputs_without_an_answer_are_kept_and_flagged(text):
    solution = GeneratedSolution.from_text("p", 4, text, "blank_line", finish_reason="length")
    assert solution.answer is None and not solution.has_answer
    assert (solution.problem_key, solution.index, solution.finish_reason) == ("p", 4, "length")
