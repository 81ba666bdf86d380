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
from harness.cli import audit as audit_cli
from harness.cli import bisect as bisect_cli
from harness.cli import matrix as matrix_cli
from harness.cli.options import DEFAULTS, HOW_LONG, WHAT, run_option_groups
from harness.cli.run import cmd_list, cmd_new, cmd_report, cmd_run, cmd_verify
from harness.errors import UsageError

RUN_DESCRIPTION = """\
Run the bug's trigger (or the --variant given) in fresh child processes under a watchdog, for one
Python and the releases pinned with --with, until the bug shows (present) or enough clean
attempts make `absent` a statistical claim of the wanted --confidence. When the trigger fails,
the bug's controls run too: a control that fails as well makes the verdict an error. The record
is appended to the results file; the last lines say the answer, where the record went and what
to do (for a present bug: the release its matrix verifies as fixed)."""

RUN_EPILOG = """\
examples:
  repro run wrangler-athena-cache-race --with awswrangler==3.10.0       is the bug in my release?
  repro run delta-already-borrowed --with deltalake==0.20.1 --exclude-newer release
                                               with the dependencies of that release's date
  repro run delta-already-borrowed --with-requirements uv.lock     the versions your lock file pins
  repro run delta-already-borrowed --variant control-uri --attempts 20 --measure --json
  repro run mylib-write-race --with mylib==1.2.0 --attempts 20 --measure --write
                                               measure the trigger rate, write it into the repro
  repro run mylib-write-race --with "mylib @ file:///path/to/mylib"      your own checkout
  repro run mylib-write-race --with "mylib @ git:v1.2.0"    this repository at a tag (or branch, commit)

exit codes (for scripts: "is the bug in these versions?"):
  0  absent: every cell came out absent (the bug did not show, with the wanted confidence)
  1  present: a cell reproduced the bug
  2  usage error (unknown bug or variant, bad --with, no such Python...): nothing ran
  3  cannot tell: no cell reproduced it and one has no verdict (error, hang, crash,
     other-failure, skipped: the last line says why and what to do)
  4  results not written: the verdicts are known, but the results file could not be
     written: the records are on stdout
  130 interrupted (Ctrl-C, SIGTERM): the finished cells are kept

  repro run BUG --with PKG==VERSION --quiet; case $? in 0) echo fine;; 1) echo upgrade;; *) echo look;; esac
"""

AUDIT_DESCRIPTION = """\
For each known bug, whether the versions given fall in the releases its matrix file verifies:
affected (a release verified with the bug, or between two such), not affected (verified without
it, between or after releases verified without it, or none of its packages installed) or unknown
(not verified either way: the line says why). The versions: a requirements file, a uv.lock or a
pylock.toml, or without FILE the distributions of the current environment (the active virtualenv,
else the harness's own). Each bug it concerns comes with the `repro run` command that verifies
the answer for real; --run runs them."""

AUDIT_EPILOG = """\
examples:
  repro audit uv.lock                       which known bugs does my lock file have?
  repro audit requirements.txt --run        ... and run each bug's cell to be sure
  repro audit                               the current environment (the active virtualenv)
  repro audit pylock.toml --with deltalake==1.6.6 --json       as if deltalake were upgraded

exit codes:
  0  none affected, none unknown
  1  a bug is affected (with --run: a run reproduced one)
  2  usage error (no such file, a file that cannot be parsed, ...): nothing ran
  3  none affected, some unknown (with --run: none present, some run could not tell)
  4  with --run: the results file could not be written (the records are on stdout)
"""

VERIFY_EPILOG = """\
examples:
  repro verify delta-already-borrowed                  does the repro still tell bad from good?
  repro verify wrangler-athena-cache-race --attempts 5 --json

exit codes:
  0  every check holds
  1  a check does not (the table says which)
  2  usage error (unknown bug, no [verify] cells in its matrix file): nothing ran
  130 interrupted (Ctrl-C, SIGTERM): the finished cells are kept
"""

TOP_DESCRIPTION = """\
Reproduce known concurrency bugs of Python data libraries, and tell whether your versions have
them. A cell (a bug's variant, one Python, pinned releases) runs in fresh child processes under a
watchdog, in its own uv env, until the bug shows (present) or enough clean attempts make `absent`
a statistical claim; a bug's controls check that a failure is the bug. Each command's --help has
its examples and exit codes."""

TOP_EPILOG = """\
examples:
  repro list                                                       the known bugs
  repro run wrangler-athena-cache-race --with awswrangler==3.10.0  is the bug in my release?
  repro audit uv.lock                                              which known bugs has my lock file?
  repro bisect delta-already-borrowed --package deltalake --map    where it came and went

exit codes (every command; its --help says what 1, 3 and 4 mean for it):
  0  success: absent, every check holds, written
  1  present, or a check that does not hold
  2  usage error: one line on stderr, nothing ran or was written
  130 interrupted (Ctrl-C, SIGTERM)
"""

LIST_DESCRIPTION = """\
The known bugs: those shipped with the harness, those in $REPRO_PATH and in ./repros (a
maintainer's own), each with its failure kind, packages and variants (trigger or control) and a
line of title. A repro file that cannot be loaded is reported on stderr; the others are listed."""

LIST_EPILOG = """\
examples:
  repro list
  repro list --json | python3 -c 'import json, sys; print([b["id"] for b in json.load(sys.stdin)])'

exit codes:
  0  listed (a broken repro file is reported on stderr, the others are listed)
  2  usage error
"""

REPORT_DESCRIPTION = """\
Turn result files (JSON lines of cell records, as run, verify, bisect and the matrix write them)
into what a reader sees: the verdict table between the README's results markers, an HTML page,
badges, OSV records of the verified ranges and JUnit XML under --out. Every input is checked
before anything is written, and the README is written last."""

REPORT_EPILOG = """\
examples:
  repro report                                    ./results -> ./matrix/reports and README.md
  repro report results/ ci-results/ --out site --no-readme

exit codes:
  0  written (the paths are printed)
  2  usage error (no such result file, no cell records, an unreadable README, an unwritable --out)
"""

NEW_DESCRIPTION = """\
Write a commented skeleton of a new bug: ./repros/BUG.py (the trigger, a control, the failure's
signature) and ./matrix/BUG.toml (the cells and the verdicts they should give), for the package
of ./pyproject.toml or --package. A file that exists is never overwritten."""

NEW_EPILOG = """\
examples:
  repro new mylib-write-race                      in your project's root (its pyproject.toml names it)
  repro new mylib-write-race --package mylib
  then: fill in the TODOs, `repro list`, `repro run mylib-write-race --with "mylib @ file://$PWD"`

exit codes:
  0  written (the files are printed)
  2  usage error (a bad or known id, no package name, a file of the skeleton already there)
"""


def _bug(what) -> None:
    what.add_argument("bug", help="the bug's id (`repro list` shows them)")


def _bug_and_variants(what) -> None:
    _bug(what)
    what.add_argument("--variant", dest="variants", action="append", metavar="VARIANT",
                      help="variant to run (repeatable; default: trigger)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro", description=TOP_DESCRIPTION, epilog=TOP_EPILOG,
                                     formatter_class=bisect_cli.HelpFormatter)
    parser.add_argument("--version", action="version", version=f"repro-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, title="commands")
    listing = sub.add_parser("list", help="the known bugs and their variants", description=LIST_DESCRIPTION,
                             epilog=LIST_EPILOG, formatter_class=bisect_cli.HelpFormatter)
    listing.add_argument_group("output").add_argument("--json", action="store_true",
                                                      help="one JSON list of the bugs on stdout")
    run = sub.add_parser("run", help="run one cell to a verdict: is the bug in these versions?",
                         description=RUN_DESCRIPTION, epilog=RUN_EPILOG, formatter_class=bisect_cli.HelpFormatter)
    groups = run_option_groups(run, leading=_bug_and_variants)
    what, how_long = groups[WHAT], groups[HOW_LONG]
    what.add_argument("--with-requirements", type=Path, metavar="FILE",
                      help="pin the releases a requirements file, uv.lock or pylock.toml pins, of the "
                           "distributions the variant installs (--with wins for a name it pins)")
    how_long.add_argument("--measure", action="store_true",
                          help="run every attempt, also after a reproduction: measure the trigger rate")
    how_long.add_argument("--write", action="store_true",
                          help="with --measure: write the measured rate (and this command) into the repro "
                               "file's trigger_rate, in place")
    how_long.add_argument("--control-attempts", type=int, default=DEFAULTS.control_attempts,
                          help="runs of each control when a trigger cell is not clean (default: %(default)s)")
    verify = sub.add_parser("verify", help="present on a known-bad cell, absent on a known-good one",
                            description="Run the [verify] cells of the bug's matrix file: its trigger on the\n"
                                        "known-bad cell must be present, on the known-good one absent, and every\n"
                                        "control absent on both.",
                            epilog=VERIFY_EPILOG, formatter_class=bisect_cli.HelpFormatter)
    run_option_groups(verify, leading=_bug)
    audit = sub.add_parser("audit", help="which known bugs affect these versions (a lock "
                           "file, or the current env)?", description=AUDIT_DESCRIPTION, epilog=AUDIT_EPILOG,
                           formatter_class=bisect_cli.HelpFormatter)
    groups = run_option_groups(audit, leading=lambda what: what.add_argument(
        "file", nargs="?", type=Path, metavar="FILE",
        help="a requirements file, uv.lock or pylock.toml (default: the current environment)"))
    groups[WHAT].add_argument("--run", action="store_true",
                      help="run each bug's verifying command (its cells, for real) and exit as those runs do")
    audit.set_defaults(python=None)  # the env's Python, or the run's default for a file (its own parent's copy)
    groups[HOW_LONG].description = "with --run, and in each verifying command"
    bisect_cli.add_parsers(sub)
    matrix_cli.add_parsers(sub)
    report = sub.add_parser("report", help="results -> README table, HTML page, badges, JUnit XML",
                            description=REPORT_DESCRIPTION, epilog=REPORT_EPILOG,
                            formatter_class=bisect_cli.HelpFormatter)
    inputs, outputs = report.add_argument_group("what to read"), report.add_argument_group("what to write")
    inputs.add_argument("paths", nargs="*", type=Path, default=[Path("results")],
                        help="result files or directories of *.jsonl (default: ./results)")
    outputs.add_argument("--out", type=Path, default=Path("matrix") / "reports",
                         help="output directory (default: ./matrix/reports)")
    outputs.add_argument("--readme", type=Path, default=None,
                         help="README with a results section (default: ./README.md if it has one)")
    outputs.add_argument("--no-readme", action="store_true", help="leave the README alone")
    inputs.add_argument("--sealed", action="store_true", help=matrix_cli.SEALED_HELP)
    new = sub.add_parser("new", help="write a commented skeleton of a repro and its matrix entry "
                                     "(./repros/BUG.py, ./matrix/BUG.toml)",
                         description=NEW_DESCRIPTION, epilog=NEW_EPILOG, formatter_class=bisect_cli.HelpFormatter)
    what = new.add_argument_group("what to write")
    what.add_argument("bug", help="the new bug's id, e.g. mylib-write-race")
    what.add_argument("--package", help="the package under test (default: the name in ./pyproject.toml)")
    what.add_argument("--force", action="store_true",
                      help="write it even if a repro of this id exists (shipped or elsewhere): the new one "
                           "replaces it; an existing file of the skeleton is still never overwritten")
    return parser


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = argv  # what --measure --write records as the command that measured
    except SystemExit as exc:  # `check` runs under `git bisect run`: a bad command line must stop it
        if argv[:1] == ["check"] and exc.code:
            return 128
        raise
    signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM cleans up like Ctrl-C
    try:
        commands = {"list": cmd_list, "run": cmd_run, "verify": cmd_verify, "report": cmd_report, "new": cmd_new,
                    "bisect": bisect_cli.cmd_bisect, "check": bisect_cli.cmd_check, "matrix": matrix_cli.cmd_matrix,
                    "audit": audit_cli.cmd_audit}
        return commands[args.command](args)
    except UsageError as exc:
        print(f"repro: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("repro: interrupted; finished cells are kept in the results file", file=sys.stderr)
        return 130
