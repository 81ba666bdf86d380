"""`repro` command line: the parser and the dispatch to each command.

Bad input (unknown bug or variant, malformed --with, a release not on the index, a
missing interpreter, an unreachable index) is one line on stderr and exit code 2,
checked before anything runs or is written.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from harness import __version__
from harness.cli import bisect as bisect_cli
from harness.cli import matrix as matrix_cli
from harness.cli.options import DEFAULTS, options_parser
from harness.cli.run import cmd_list, cmd_new, cmd_report, cmd_run, cmd_verify
from harness.errors import UsageError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro", description="Reproduce known concurrency bugs per cell.")
    parser.add_argument("--version", action="version", version=f"repro-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="the known bugs and their variants")
    listing.add_argument("--json", action="store_true")
    common = options_parser()
    run = sub.add_parser("run", parents=[common], help="run one cell to a verdict")
    run.add_argument("bug")
    run.add_argument("--variant", dest="variants", action="append", metavar="VARIANT",
                     help="variant to run (repeatable; default: trigger)")
    run.add_argument("--measure", action="store_true", help="run every attempt: measure the trigger rate")
    run.add_argument("--control-attempts", type=int, default=DEFAULTS.control_attempts,
                     help="runs of each control when a trigger cell is not clean (default: %(default)s)")
    verify = sub.add_parser("verify", parents=[common], help="present on a known-bad cell, absent on a known-good one")
    verify.add_argument("bug")
    bisect_cli.add_parsers(sub, common)
    matrix_cli.add_parsers(sub)
    report = sub.add_parser("report", help="results -> README table, HTML page, badges, JUnit XML")
    report.add_argument("paths", nargs="*", type=Path, default=[Path("results")],
                        help="result files or directories of *.jsonl (default: ./results)")
    report.add_argument("--out", type=Path, default=Path("matrix") / "reports",
                        help="output directory (default: ./matrix/reports)")
    report.add_argument("--readme", type=Path, default=None,
                        help="README with a results section (default: ./README.md if it has one)")
    report.add_argument("--no-readme", action="store_true", help="leave the README alone")
    new = sub.add_parser("new", help="write a commented skeleton of a repro and its matrix entry "
                                     "(./repros/BUG.py, ./matrix/BUG.toml)")
    new.add_argument("bug", help="the new bug's id, e.g. mylib-write-race")
    new.add_argument("--package", help="the package under test (default: the name in ./pyproject.toml)")
    new.add_argument("--force", action="store_true",
                     help="write it even if a repro of this id exists (shipped or elsewhere): the new one "
                          "replaces it; an existing file of the skeleton is still never overwritten")
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # `check` runs under `git bisect run`: a bad command line must stop it
        if argv[:1] == ["check"] and exc.code:
            return 128
        raise
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    try:
        commands = {"list": cmd_list, "run": cmd_run, "verify": cmd_verify, "report": cmd_report, "new": cmd_new,
                    "bisect": bisect_cli.cmd_bisect, "check": bisect_cli.cmd_check, "matrix": matrix_cli.cmd_matrix}
        return commands[args.command](args)
    except UsageError as exc:
        print(f"repro: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("repro: interrupted; finished cells are kept in the results file", file=sys.stderr)
        return 130
