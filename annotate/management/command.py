"""The base of every Stepwise management command: `--help` shows each option's default and
how long a run with the defaults takes (`runtime`)."""

import argparse

from django.core.management.base import BaseCommand, DjangoHelpFormatter


class DefaultsHelpFormatter(DjangoHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Django's ordering (the command's own options first) plus argparse's "(default: …)"."""


class StepwiseCommand(BaseCommand):
    #: One sentence: how long a run with the defaults takes, and on what (shown in --help).
    runtime: str = ""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django passes `help` as the description; the cost follows it as its own sentence.
        parser.description = " ".join(part for part in (self.help, self.runtime) if part)
        return parser
