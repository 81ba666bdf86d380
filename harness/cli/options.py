"""What every `repro` command shares: the run options, checked up front, and the way results are kept.

Bad input (unknown variant parameter, malformed --with, a release not on the index, a bad
number, an unwritable results file) is a UsageError (one line, exit 2) raised here, before
anything runs or is written.
"""
from __future__ import annotations

import argparse
import json
import math
import stat
import sys
import threading
from pathlib import Path

from harness import results
from harness.cell import Cell, Options, requirements_for
from harness.envs import gitref, interpreters, lockfiles, package_index
from harness.envs.requirements import check_date
from harness.errors import UsageError
from harness.executors.base import Executor
from harness.executors.local import LocalExecutor
from harness.registry import Bug
from harness.text import did_you_mean
from harness.versions import LATEST, check_requirement, exact_pin, latest_pin, requirement_name

# Relative: the current directory's results/, the maintainer's project, never inside the install.
DEFAULTS = Options()  # the one place the run defaults live: harness/cell.py Options
DEFAULT_PYTHON = Cell.python  # and the cell's Python
DEFAULT_RESULTS = Path("results") / "results.jsonl"
# The longest deadline any seconds-valued option accepts: a week, and never more than the
# threading module can wait for (a larger value kills the watchdog thread with OverflowError).
MAX_SECONDS = min(7 * 24 * 3600, threading.TIMEOUT_MAX)


# --exclude-newer of the commands that run releases; `repro check` has its own meaning of it.
EXCLUDE_NEWER = {"metavar": "DATE|release",
                 "help": "resolve dependencies as of DATE, or as of the pinned release's upload date"}
# The titles of the option groups of `--help`; a command adds its own options to them (run_option_groups).
WHAT, HOW_LONG, WHERE = "what to run", "how long", "where results go"


def run_option_groups(parser: argparse.ArgumentParser, leading=None) -> dict:
    """Add the run options to `parser` in the option groups of `--help`, and return the groups by
    title, for the command's own options; `leading(group)` adds the command's first arguments to
    the "what to run" group (its BUG, its FILE) so that `--help` shows them before the run options."""
    groups = {title: parser.add_argument_group(title) for title in (WHAT, HOW_LONG, WHERE)}
    if leading:
        leading(groups[WHAT])
    _add_run_options(*groups.values())
    return groups


def add_run_options(parser: argparse.ArgumentParser, exclude_newer: dict | None = None) -> list[argparse.Action]:
    """Add the run options to `parser`, in the option groups of `--help`, and return them (what a command
    forwarding its options iterates over); `exclude_newer`: the keywords of --exclude-newer (default:
    EXCLUDE_NEWER)."""
    return _add_run_options(*(parser.add_argument_group(title) for title in (WHAT, HOW_LONG, WHERE)),
                            exclude_newer=exclude_newer)


def _add_run_options(what, how_long, where, exclude_newer: dict | None = None) -> list[argparse.Action]:
    return [
        what.add_argument("--python", default=DEFAULT_PYTHON, help="interpreter version (3.11, 3.11.7) or 'current'"),
        what.add_argument("--with", dest="pins", action="append", default=[], metavar="REQ",
                          help="requirement override, e.g. deltalake==0.20.1; your own checkout: "
                               "'mylib @ file:///path/to/mylib'; this repository at a git tag, branch or "
                               "commit: 'mylib @ git:v1.2.0' (built from that commit, never the working tree; "
                               "repeatable)"),
        what.add_argument("--exclude-newer", **(exclude_newer or EXCLUDE_NEWER)),
        what.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                          help="variant parameter override (JSON value), e.g. threads=8"),
        what.add_argument("--executor", choices=["local", "docker"], default="local",
                          help="run each attempt as a local process or in a container on the Docker engine"),
        what.add_argument("--image", help="with --executor docker: the container image "
                          "(default: a base image of the host's release, built locally once)"),
        what.add_argument("--python-from", choices=["auto", "host", "image"], default="auto",
                          help="with --executor docker: the interpreter from the host (mounted), from the image, "
                          "or auto: the host's if it has a mountable one, else the image's"),
        how_long.add_argument("--attempts", type=int, help="fixed number of attempts (default: from --confidence)"),
        how_long.add_argument("--confidence", type=float, default=DEFAULTS.confidence,
                              help=f"wanted confidence of `absent` (default: {DEFAULTS.confidence})"),
        how_long.add_argument("--exclude-rate", type=float, metavar="R",
                              help="plan enough attempts that `absent` excludes a per-attempt rate >= R at 95%% "
                                   "(0.1: 29 attempts), even past --max-attempts: a partly fixed release "
                                   "reproduces less often than the known-bad one"),
        how_long.add_argument("--max-attempts", type=int, default=DEFAULTS.max_attempts,
                              help="at most this many attempts when --attempts is not given "
                                   f"(default: {DEFAULTS.max_attempts})"),
        how_long.add_argument("--timeout", type=float,
                              help="per-attempt deadline in seconds (default: the variant's)"),
        where.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                           help=f"JSON lines file to append to (default: {DEFAULT_RESULTS})"),
        where.add_argument("--json", action="store_true", help="print each result record as JSON on stdout"),
        where.add_argument("--quiet", action="store_true", help="no progress on stderr"),
    ]


def parse_params(bug: Bug, pairs: list[str]) -> dict:
    """--param KEY=VALUE pairs, checked against the parameters the bug's variants declare:
    a key none declares, or a value of another type than the declared default, is bad input
    (it would only fail inside the child, as an error of the repro)."""
    declared = {}
    for variant in bug.variants.values():
        for key, default in variant.params.items():
            declared.setdefault(key, default)
    params = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"malformed --param {pair!r}: expected KEY=VALUE")
        if key not in declared:
            raise UsageError(f"--param {key}: {bug.id} has no parameter {key!r}; it has: "
                             f"{', '.join(sorted(declared)) or '(none)'}{did_you_mean(key, declared)}")
        params[key] = _param_value(key, text, declared[key])
    return params


def _param_value(key: str, text: str, default):
    """The value of --param KEY=TEXT, of the type of the declared default."""
    if isinstance(default, str):
        return text
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    kinds = {bool: (bool,), int: (int,), float: (int, float), list: (list,), dict: (dict,)}
    wanted = kinds.get(type(default), (type(default),))
    if value is None or (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted) \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise UsageError(f"--param {key}={text}: expected {_kind(default)} (default {json.dumps(default)})")
    return value


def _kind(default) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", list: "a JSON list",
            dict: "a JSON object"}.get(type(default), type(default).__name__)


def check_pins(pins: list[str]) -> list[str]:
    checked = [check_requirement(p) for p in pins]
    names = [requirement_name(p) for p in checked]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--with pins {', '.join(twice)} more than once: give one requirement per package")
    for pin in checked:
        if gitref.is_git_ref(pin):  # the current directory's repository at that ref
            gitref.check(pin, Path.cwd())
        elif latest_pin(pin):
            raise UsageError(f"--with {pin}: NAME=={LATEST} is for matrix cells; leave the pin out for the "
                             "newest release")
        elif exact_pin(pin):  # a range or a wildcard is uv's to resolve
            package_index.check_pin(*exact_pin(pin))
    return checked


def involved(bug: Bug, variants) -> list[str]:
    """The distributions whose releases matter to these variants of the bug: what they install, and the
    bug's packages (a variant that installs nothing, a bare interpreter, involves none)."""
    names = []
    for variant in variants:
        installs = [requirement_name(r) for r in requirements_for(bug, variant, ())]
        names += installs + (list(bug.packages) if installs else [])
    return list(dict.fromkeys(names))


def pins_from_file(path: Path, bug: Bug, variants, given: list[str]) -> list[str]:
    """`--with-requirements FILE`: the file's releases of the distributions the variants involve, but
    for a name `--with` pins itself (`given` wins). UsageError when the file cannot be read or pins
    none of them: the run would answer about other versions than the file's."""
    names = involved(bug, variants)
    mine = {requirement_name(p) for p in given}
    pins = lockfiles.read(path).pins(n for n in names if requirement_name(n) not in mine)
    if not names:
        raise UsageError(f"--with-requirements {path}: the variant installs nothing (a bare interpreter): "
                         f"no release of the file applies to it")
    about = {requirement_name(p) for p in pins} | mine
    if not about & {requirement_name(p) for p in bug.packages}:
        raise UsageError(f"--with-requirements {path}: it pins none of {', '.join(bug.packages)} (the packages "
                         f"of {bug.id}): the run would not be about the file's versions")
    return pins


def check_python(version: str) -> None:
    """Versions below the floor are refused before any interpreter is looked for."""
    if interpreters.VERSION_RE.match(version):
        interpreters.check_floor(version)


def resolve_exclude_newer(bug: Bug, rule: str | None, pins: list[str]) -> str | None:
    """--exclude-newer: a date as given, or "release": the newest cutoff of the exact pins."""
    if rule != "release":
        return check_date(rule)
    date = package_index.release_cutoff(pins)
    if date is None:
        raise UsageError(f"--exclude-newer release needs --with NAME==VERSION (e.g. for {', '.join(bug.packages)})")
    return date


def build_options(args, bug: Bug, **extra) -> Options:
    """The run's options from the command line; every number is checked here (exit 2), so no
    verdict can rest on zero attempts or on a deadline that is no deadline."""
    check_at_least(args.attempts, 1, "--attempts")
    check_at_least(args.max_attempts, 1, "--max-attempts")
    check_at_least(extra.get("control_attempts"), 0, "--control-attempts")
    if not (math.isfinite(args.confidence) and 0 < args.confidence < 1):
        raise UsageError("--confidence must be between 0 and 1 (exclusive)")
    check_exclude_rate(args.exclude_rate, args.attempts)
    check_seconds(args.timeout, "--timeout")
    check_python(args.python)
    check_results(args.results)
    return Options(confidence=args.confidence, max_attempts=args.max_attempts, attempts=args.attempts,
                   exclude_rate=args.exclude_rate, timeout=args.timeout, params=parse_params(bug, args.param),
                   executor=build_executor(args), **extra)


def check_exclude_rate(rate: float | None, attempts: int | None) -> None:
    """--exclude-rate (None: not asked) is a rate strictly between 0 and 1, and plans the attempts
    itself: a fixed --attempts beside it would say two budgets."""
    if rate is None:
        return
    if not (math.isfinite(rate) and 0 < rate < 1):
        raise UsageError("--exclude-rate must be between 0 and 1 (exclusive), e.g. 0.1")
    if attempts is not None:
        raise UsageError("--exclude-rate plans the attempts itself: give it or --attempts, not both")


def check_seconds(value: float | None, option: str) -> None:
    """Every seconds-valued option (None: the default) is finite, positive and at most MAX_SECONDS."""
    if value is not None and not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise UsageError(f"{option} must be a positive number of seconds, at most {MAX_SECONDS:g} (7 days)")


def check_results(path: Path) -> None:
    """The results file must be writable before any cell runs (a cell may take an hour).

    An existing path must be a regular file or a character device (/dev/null, /dev/full): opening
    a FIFO (or /dev/stdin on a pipe) for writing blocks until a reader comes, a socket cannot be
    opened, a directory holds no lines, and appending to a block device overwrites a disk."""
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = None  # missing or unreachable: check_writable says which
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISCHR(mode)):
        raise UsageError(f"cannot write results to {path}: not a regular file")
    try:
        results.check_writable(path)
    except OSError as exc:
        raise UsageError(f"cannot write results to {path}: {exc.strerror or exc}") from None


def check_at_least(value, floor: int, option: str) -> None:
    """A count option (None: the default) is at least `floor`."""
    if value is not None and value < floor:
        raise UsageError(f"{option} must be at least {floor}")


def build_executor(args) -> Executor:
    """A LocalExecutor for local attempts; a DockerExecutor (engine reachable, image present) for containers."""
    if args.image and args.executor != "docker":
        raise UsageError("--image needs --executor docker")
    if args.python_from == "image" and args.executor != "docker":
        raise UsageError("--python-from image needs --executor docker")
    if args.executor != "docker":
        return LocalExecutor()
    from harness.executors.docker.executor import (
        DockerExecutor,  # the Docker SDK: only when asked for
    )

    return DockerExecutor(args.image, log=lambda text: print(f"repro: {text}", file=sys.stderr),
                          python_from=args.python_from)


def keep_result(args, record: dict) -> bool:
    """Append the record to the results file; False if it could not be written, in which case
    the record itself is printed on stdout, so it is never lost."""
    try:
        results.append(args.results, record)
        return True
    except results.ResultWriteError as exc:
        print(f"repro: {exc}; the record follows on stdout", file=sys.stderr)
        print_line(args, exc.line)
        return False


def emit(args, record) -> bool:
    """Keep the record and, with --json, print it as it was written; False if it could not be
    written (then it is on stdout)."""
    written = keep_result(args, record)
    if args.json and written:
        print_line(args, results.encode(record))
    return written


def print_line(args, line: str) -> None:
    """A line on stdout; a reader that went away (`| head`) stops the printing, not the run."""
    if getattr(args, "stdout_closed", False):
        return
    try:
        print(line, flush=True)
    except BrokenPipeError:
        args.stdout_closed = True
        devnull = open("/dev/null", "w")  # stdout for the rest of the process
        sys.stdout = devnull
        print("repro: stdout was closed; results go on to the results file", file=sys.stderr)
