"""The base of every Stepwise management command: `--help` shows each option's default."""

import argparse

from django.core.management.base import BaseCommand, DjangoHelpFormatter


class DefaultsHelpFormatter(DjangoHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Django's ordering (the command's own options first) plus argparse's "(default: …)"."""


class StepwiseCommand(BaseCommand):
    def create_parser(self, prog_name: str, subcommand: str, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)
