"""Every `repro` command's --help, walked from the parser itself (a new command is walked too): a
paragraph of description, options in named groups, an "examples:" section and the exit codes."""
import argparse
import re

import pytest

from harness.cli.main import build_parser
from test_cli import repro

DEFAULT_GROUPS = {"options", "optional arguments", "positional arguments"}


def commands(parser, path=()):
    """(command words, parser) of the top parser and every subcommand, nested ones too."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*path, name))


COMMANDS = list(commands(build_parser()))


def test_every_command_is_walked():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "run", "verify", "audit", "list", "new", "check", "bisect",
            "report", "matrix", "matrix refresh", "matrix watch"} <= names


@pytest.mark.parametrize("path, parser", COMMANDS, ids=[" ".join(p) or "repro" for p, _ in COMMANDS])
def test_help_has_a_description_groups_examples_and_exit_codes(path, parser):
    text = parser.format_help()
    assert parser.description and len(parser.description.split()) >= 12, f"repro {' '.join(path)}: no description"
    assert "\nexamples:\n" in text, f"repro {' '.join(path)} --help has no examples"
    assert re.search(r"^exit codes", text, re.M) and "usage error" in text, \
        f"repro {' '.join(path)} --help does not say its exit codes"
    ungrouped = [action.dest for group in parser._action_groups if group.title in DEFAULT_GROUPS
                 for action in group._group_actions
                 if not isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))]
    assert not ungrouped, f"repro {' '.join(path)}: options outside a named group: {ungrouped}"


def test_help_runs_from_the_command_line():
    out = repro("audit", "--help")
    assert out.returncode == 0 and "exit codes:" in out.stdout and "what to run:" in out.stdout
