"""`grade GIVEN GROUND_TRUTH`: print `true` or `false` (PRM800K grading rules).

Answers that start with "-" (``-\\frac{1}{2}``) are read as arguments, not options; for an
answer such as ``-x`` that looks like an option, put ``--`` before the answers.
"""

from __future__ import annotations

import re

from django.core.management.base import CommandParser

from annotate.management.command import StepwiseCommand
from selector.grading import DEFAULT_TIMEOUT, grade_answer


class Command(StepwiseCommand):
    help = "Grade a final answer against a ground truth; prints true or false."
    runtime = (
        "A run takes a few seconds, nearly all of it Django's start-up (4–6 s measured on 2 "
        "shared cores); sympy gets at most STEPWISE_GRADE_TIMEOUT (5 s) more."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # argparse only treats "-4" as a value; also accept "-\frac12", "-(1,2)", "-.5"
        parser._negative_number_matcher = re.compile(r"^-(?![-a-zA-Z])")
        return parser

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("given", help="the answer to grade (LaTeX or plain text)")
        parser.add_argument("ground_truth", help="the reference answer")
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            help=f"hard time limit in seconds (default {DEFAULT_TIMEOUT:g})",
        )

    def handle(self, *args, given: str, ground_truth: str, timeout: float, **options) -> None:
        ok = grade_answer(given, ground_truth, timeout=timeout)
        self.stdout.write("true" if ok else "false")
