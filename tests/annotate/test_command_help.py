"""Every project command explains itself: each option has a help line, defaults shown."""

import argparse
import re

import pytest
from django.core.management import get_commands, load_command_class

from annotate.management.command import StepwiseCommand

DJANGO_OPTIONS = {
    "help",
    "version",
    "verbosity",
    "settings",
    "pythonpath",
    "traceback",
    "no_color",
    "force_color",
    "skip_checks",
}
PROJECT_APPS = {"annotate", "workers"}


def project_commands() -> list[tuple[str, str]]:
    return sorted((name, app) for name, app in get_commands().items() if app in PROJECT_APPS)


@pytest.mark.parametrize(("name", "app"), project_commands())
def test_every_option_has_help_with_its_default(name, app):
    command = load_command_class(app, name)
    assert isinstance(command, StepwiseCommand)
    parser = command.create_parser("manage.py", name)
    undocumented = []
    for action in parser._actions:
        if action.dest in DJANGO_OPTIONS or not action.option_strings:
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            undocumented.append(action.option_strings[0])
    assert undocumented == []
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "%(default)" in formatter._get_help_string(action), action.dest


def test_the_list_covers_the_commands_people_run():
    names = {name for name, _ in project_commands()}
    assert {"import_samples", "select", "train_prm", "simulate", "demo"} <= names


DURATION = re.compile(r"\b(second|minute|hour)s?\b|\b\d+ s\b")


@pytest.mark.parametrize(("name", "app"), project_commands())
def test_help_says_how_long_a_default_run_takes(name, app):
    command = load_command_class(app, name)
    assert DURATION.search(command.runtime), f"{name}: runtime names no duration"
    assert command.runtime.endswith("."), "one sentence"
    parser = command.create_parser("manage.py", name)
    text = " ".join(parser.format_help().split())
    assert " ".join(command.runtime.split()) in text
    assert parser.description == f"{command.help} {command.runtime}"
