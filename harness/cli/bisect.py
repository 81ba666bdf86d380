"""`repro bisect` (where did the verdict change across releases or interpreters) and
`repro check` (one verdict of a source checkout as a `git bisect run` exit code; with
`--bisect OLD..NEW`, a whole `git bisect` whose ends are checked first)."""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from dataclasses import replace
from pathlib import Path

from harness.bisect import git as git_bisect
from harness.bisect import points as axis_points
from harness.bisect import run as bisect_run
from harness.bisect.git import CHECK_ABORT, CHECK_SKIP, check_exit_codes
from harness.cell import Cell, executor_for, pins_not_applied
from harness.cli.options import (
    WHERE,
    add_run_options,
    build_options,
    check_at_least,
    check_pins,
    emit,
    keep_result,
    resolve_exclude_newer,
    run_option_groups,
)
from harness.envs import checkout, interpreters
from harness.envs.requirements import check_date
from harness.errors import EnvBuildError, UsageError
from harness.executors.base import Executor
from harness.progress import Progress
from harness.record import CellRecord
from harness.registry import get_bug
from harness.runner import run_cells
from harness.services import ServicePool
from harness.table import print_table
from harness.versions import requirement_name

PYTHON_MINORS = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]  # the child side needs 3.9+

GIT_RECIPES = """\
where the bug appeared (OLD absent, NEW present):
  repro check BUG --source DIR --bisect OLD..NEW
  by hand: git bisect start --term-old=good --term-new=bad NEW OLD
           git bisect run repro check BUG --source DIR

where it was fixed (OLD present, NEW absent):
  repro check BUG --source DIR --bisect OLD..NEW --find-fix
  by hand: git bisect start --term-old=broken --term-new=fixed NEW OLD
           git bisect run repro check BUG --source DIR --find-fix
"""

CHECK_DESCRIPTION = """\
Run the bug's trigger against a source checkout (the package built from DIR's working tree, with
the dependencies of the checked-out commit's date) to one verdict, and exit as `git bisect run`
reads it. With --bisect OLD..NEW it runs the whole git bisect itself and names the commit where
the bug appeared (or, with --find-fix, where it was fixed)."""

CHECK_EPILOG = """\
exit codes (what `git bisect run` reads): 0 absent, 1 present, 125 this revision cannot be
tested (skip), 128 usage error or harness failure (stops the bisection); --find-fix swaps 0 and 1.

examples:
""" + GIT_RECIPES + """
--bisect checks both ends first and refuses a range whose ends agree or point the other way,
runs `git bisect run`, prints the first commit of the change with its subject and resets the
repository, also on Ctrl-C or an error; it exits 0 when it names one commit, 1 when skipped
commits leave several candidates, 2 when it refuses. By hand, check both ends first (OLD must
exit 0, NEW 1): git bisect trusts the ends it is given, and with the wrong mode it names a
wrong commit without a warning.
"""

BISECT_DESCRIPTION = """\
Find where a bug's verdict changes: over a package's releases (each installed with the
dependencies of its own upload date) or over interpreters. --map (the default) tests every K-th
point, then narrows each change it sees to adjacent points, so a history that is fixed, comes back
and is fixed again is mapped whole; --first-fixed and --first-bad binary-search one transition.
Each point's verdict is cached, and its record appended to the results file."""

BISECT_EPILOG = """\
exit codes:
  0  the transitions were found (--map: the map is complete)
  1  none found, a point could not be judged where it mattered, or a record was not written
  2  usage error (unknown bug, --package needed, a bad range): nothing ran
  130 interrupted (Ctrl-C, SIGTERM): the points tested so far are cached

examples:
  repro bisect BUG --package PKG --python 3.11 --map            every transition over releases
  repro bisect BUG --package PKG --from A --to B --first-fixed  one transition, binary search
  repro bisect BUG --variant V --python-versions available      over interpreters

Each release is installed with the dependencies of its own upload date. Points that give no
verdict (error, other-failure, skipped: not installable, a control failed) count neither as
present nor as absent; the summary says how many there were.

Over a library's git history instead of its releases (see `repro check --help`):

""" + GIT_RECIPES


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Recipes in the epilog keep their lines; every option that has a default says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, [], argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


# check's --exclude-newer: by default the checked-out commit's date, where `run` has none.
CHECK_EXCLUDE_NEWER = {
    "default": "commit", "metavar": "DATE|commit|none",
    "help": ("resolve dependencies as of DATE; commit: as of the checked-out commit's date, so each "
             "commit is tested with the dependencies of its own date, as releases are; none: today")}


def _add_check_arguments(check) -> list[argparse.Action]:
    """check's arguments, the run options first (with check's own --exclude-newer); returned for
    the command each bisect step runs."""
    what = check.add_argument_group("what to check")
    return add_run_options(check, CHECK_EXCLUDE_NEWER) + [
        what.add_argument("bug", help="the bug's id (`repro list` shows them)"),
        what.add_argument("--source", type=Path, default=Path("."), help="the package's source directory"),
        what.add_argument("--variant", default="trigger", help="the trigger variant to run"),
        what.add_argument("--find-fix", action="store_true", help="look for the fix: exit 0 present, 1 absent "
                          "(for git's --term-old=broken --term-new=fixed)"),
        what.add_argument("--bisect", metavar="OLD..NEW",
                           help="run the whole git bisect over this range of the source's repository: check both "
                                "ends, refuse a range whose ends agree or that is reversed, name the first commit, "
                                "reset")]


def add_parsers(sub) -> None:
    run = sub.add_parser("bisect", help="find where the verdict changes across releases",
                         description=BISECT_DESCRIPTION, formatter_class=HelpFormatter, epilog=BISECT_EPILOG)
    where = run_option_groups(run)[WHERE]
    axis, search = run.add_argument_group("the axis"), run.add_argument_group("the search")
    axis.add_argument("bug", help="the bug's id (`repro list` shows them)")
    axis.add_argument("--package", help="the package whose releases are the axis (default: the bug's only one)")
    axis.add_argument("--from", dest="first", metavar="VERSION", help="oldest release to consider")
    axis.add_argument("--to", dest="last", metavar="VERSION", help="newest release to consider")
    modes = search.add_mutually_exclusive_group()
    modes.add_argument("--first-fixed", dest="mode", action="store_const", const="first-fixed",
                       help="binary search: oldest range end present, newest absent (one transition assumed)")
    modes.add_argument("--first-bad", dest="mode", action="store_const", const="first-bad",
                       help="binary search: oldest range end absent, newest present (one transition assumed)")
    modes.add_argument("--map", dest="mode", action="store_const", const="map",
                       help="every transition of a possibly non-monotonic history (the default)")
    search.add_argument("--stride", type=int, help="--map: test every K-th point first (default: 3 for releases, "
                     "1 for interpreters; 1 tests all)")
    axis.add_argument("--python-versions", metavar="LIST|available",
                     help="comma-separated interpreters as the axis (or, with --package, one bisect each)")
    axis.add_argument("--variant", default="trigger", help="the trigger variant to run")
    search.add_argument("--no-cache", action="store_true", help="ignore cached verdicts (new ones are still stored)")
    where.add_argument("--report", type=Path, metavar="FILE",
                                      help="also write the report as JSON to FILE")
    check = sub.add_parser("check", formatter_class=HelpFormatter, epilog=CHECK_EPILOG,
                           description=CHECK_DESCRIPTION,
                           help="exit 0 absent, 1 present, 125 cannot test: for `git bisect run` "
                                "(--find-fix swaps 0 and 1; --bisect OLD..NEW runs the whole git bisect)")
    _add_check_arguments(check)


# ---------------------------------------------------------------- repro bisect

def _interpreters(spec: str, executor: Executor) -> list:
    """The interpreters of the axis, as the executor finds them (the docker executor: maybe in its image)."""
    if spec == "available":
        found = []
        for version in PYTHON_MINORS:
            try:
                found.append(executor.find_interpreter(version))
            except UsageError:
                continue
        if not found:
            raise UsageError("no interpreter found for any of " + ", ".join(PYTHON_MINORS))
        return found
    # An image recipe's Python (debian-sid:3.14t, 3.13t) is found in the recipe's image, built on first use.
    return [executor_for(v.strip(), executor, _log).find_interpreter(v.strip()) for v in spec.split(",") if v.strip()]


def _log(text: str) -> None:
    print(f"repro: {text}", file=sys.stderr, flush=True)


def _package(bug, name: str | None) -> str | None:
    if name is None:
        return bug.packages[0] if len(bug.packages) == 1 else None
    if requirement_name(name) not in [requirement_name(p) for p in bug.packages]:
        raise UsageError(f"bug {bug.id} is about {', '.join(bug.packages) or 'no package'}, not {name}")
    return name


def cmd_bisect(args) -> int:
    bug = get_bug(args.bug)
    variant = bug.variant(args.variant)
    mode = args.mode or "map"
    if pins_not_applied(bug, variant, args.pins):
        raise UsageError(f"--with {pins_not_applied(bug, variant, args.pins)}")
    pins = tuple(check_pins(args.pins))
    options = build_options(args, bug)
    check_at_least(args.stride, 1, "--stride")  # 0 is no stride, not "the default"
    package = _package(bug, args.package) if (args.package or not args.python_versions) else None
    if package is None and not args.python_versions:
        raise UsageError(f"--package is needed: bug {bug.id} has packages {', '.join(bug.packages) or '(none)'}")
    if package and pins_not_applied(bug, variant, [package]):
        raise UsageError(f"variant {variant.name!r} of {bug.id} installs nothing (a bare interpreter): its verdict "
                         f"cannot change with {package}'s releases; bisect it with --python-versions")
    found = (_interpreters(args.python_versions, options.executor) if args.python_versions
             else [options.executor.find_interpreter(args.python)])
    if package and args.exclude_newer:
        raise UsageError("--exclude-newer does not apply to a bisect over releases: each is installed as of its date")
    if package and any(requirement_name(p) == requirement_name(package) for p in pins):
        raise UsageError(f"--with must not pin {package}: its releases are the axis")
    progress = Progress(enabled=not args.quiet)
    unwritten = []

    def on_record(record: CellRecord) -> None:
        if not keep_result(args, replace(record, bisect=bug.id)):
            unwritten.append(record)
    axes = []
    if package:
        for interpreter in found:
            points, left_out = axis_points.release_points(bug, args.variant, package, interpreter, pins,
                                                     args.first, args.last)
            axes.append((f"{package} releases", interpreter.cell_python, points, left_out))
    else:
        exclude_newer = resolve_exclude_newer(bug, args.exclude_newer, list(pins))
        points = axis_points.interpreter_points(bug, args.variant, found, pins, exclude_newer)
        axes.append(("interpreters", None, points, []))
    reports = []
    with ServicePool() as pool:
        for axis, python, points, left_out in axes:
            # few interpreters: any one of them may flip
            stride = args.stride if args.stride is not None else (3 if package else 1)
            report = bisect_run.run_bisect(bug, points, mode, options, stride, not args.no_cache,
                                           on_record, progress, pool)
            report.update({"axis": axis, "python": python, "left_out": [list(x) for x in left_out]})
            reports.append(report)
            if not args.json:
                print(bisect_run.render(report, axis, left_out), flush=True)
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=1, default=str))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(reports, indent=1, default=str))
    if not args.quiet:
        print_table(_tested_points(reports, bug.id, args.variant, package), title="every point tested:")
    found = all(r["transitions"] or (mode == "map" and not r.get("problem")) for r in reports)
    return 0 if found and not unwritten else 1


def _tested_points(reports: list, bug: str, variant: str, package: str | None) -> list[CellRecord]:
    """Each tested point of the bisect, from the verdict cache (`cached`) or run now, as the cell
    record the verdict table shows."""
    points = []
    for report in reports:
        for row in (r for r in report["timeline"] if r["tested"]):
            point = CellRecord(bug=bug, variant=variant, role="trigger", python=row.get("python"),
                               python_requested=report.get("python") or row.get("python") or "?",
                               pins=[f"{package}=={row['point']}"] if package else [],
                               installed=row.get("installed") or {}, verdict=row["verdict"],
                               attempts=row["attempts"], reproductions=row["reproductions"], reason=row["reason"],
                               cached=bool(row.get("cached")) or None)
            points.append(point)
    return points


# ---------------------------------------------------------------- repro check

def _exclude_newer_of(rule: str | None, source: Path) -> str | None:
    if rule in (None, "none"):
        return None
    if rule != "commit":
        return check_date(rule)
    try:
        return checkout.commit_date(source)
    except UsageError:
        raise UsageError(f"--exclude-newer commit (the default) needs a git checkout with a commit at {source}; "
                         "pass --exclude-newer DATE or none") from None


def _check_cell(args, bug, interpreter, source: Path) -> tuple[Cell, dict]:
    """The cell of the package built from `source`, and what the record keeps of the source."""
    if not source.is_dir():
        raise UsageError(f"no source directory {source}")
    tree = checkout.tree_hash(source)
    exclude_newer = _exclude_newer_of(args.exclude_newer, source)
    wheel = checkout.build_wheel(source, interpreter, tree)  # EnvBuildError: this revision cannot be tested
    name = checkout.wheel_name(wheel)
    pins = [p for p in check_pins(args.pins) if requirement_name(p) != name]
    cell = Cell(bug.id, args.variant, interpreter.version, (f"{name} @ {wheel.as_uri()}", *pins), exclude_newer)
    return cell, checkout.source_info(source, tree)


def _refuse_a_bare_variant(bug, args) -> None:
    """The package built from --source is a pin: a variant that installs nothing would test without it."""
    variant = bug.variant(args.variant)
    if pins_not_applied(bug, variant, [str(args.source)]):
        raise UsageError(f"variant {variant.name!r} of {bug.id} installs nothing (a bare interpreter): the "
                         f"package built from {args.source} would not be installed")


def _check(args) -> int:
    bug = get_bug(args.bug)
    _refuse_a_bare_variant(bug, args)
    interpreter = interpreters.find(args.python)  # the host's: the wheel is built on the host
    options = build_options(args, bug)
    progress = Progress(enabled=not args.quiet)
    try:
        cell, source = _check_cell(args, bug, interpreter, args.source.resolve())
    except EnvBuildError as exc:
        print(f"repro check: cannot test this revision: {exc}", file=sys.stderr)
        return CHECK_SKIP
    record, = run_cells([cell], options, progress=progress)
    code = check_exit_codes(args.find_fix).get(record.verdict, CHECK_SKIP)
    # Two commits of one version string are told apart by the source they were built from.
    record.source, record.check = source, {"find_fix": args.find_fix, "exit_code": code}
    emit(args, record)
    print(f"repro check {bug.id}: {record.verdict} -> exit {code}", file=sys.stderr)
    return code


def cmd_check(args) -> int:
    """Only 0, 1 and 125 are verdicts; a usage error or a harness failure stops `git bisect run`."""
    if args.bisect:
        return cmd_check_bisect(args)  # not under `git bisect run`: a refusal is exit 2, as elsewhere
    try:
        return _check(args)
    except UsageError as exc:
        print(f"repro check: {exc} (exit {CHECK_ABORT}: stops git bisect run)", file=sys.stderr)
        return CHECK_ABORT
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 - a harness bug must not mark a commit bad
        traceback.print_exc()
        print(f"repro check: harness failure (exit {CHECK_ABORT}: stops git bisect run)", file=sys.stderr)
        return CHECK_ABORT


# ---------------------------------------------------------------- repro check --bisect OLD..NEW

NOT_FORWARDED = {"bug", "source", "bisect", "json"}


def _check_command(args, source: Path) -> list[str]:
    """The `repro check` each step runs: this command's options, without --bisect and --json."""
    argv = [sys.executable, "-m", "harness", "check", args.bug, "--source", str(source)]
    for action in _add_check_arguments(argparse.ArgumentParser(add_help=False)):
        value = getattr(args, action.dest, None)
        if action.dest in NOT_FORWARDED or not action.option_strings or value == action.default:
            continue
        flag = action.option_strings[0]
        if action.nargs == 0:
            argv.append(flag)
            continue
        for item in value if isinstance(value, list) else [value]:
            argv += [flag, str(item.resolve()) if isinstance(item, Path) else str(item)]
    return argv


def cmd_check_bisect(args) -> int:
    """A whole git bisect over OLD..NEW: ends checked, git bisect run, the commit named, repo reset."""
    bug = get_bug(args.bug)
    _refuse_a_bare_variant(bug, args)
    interpreters.find(args.python)  # the host's: each `repro check` builds its wheel on the host
    build_options(args, bug)  # bad options are refused before the repository is touched
    source = args.source.resolve()
    if not source.is_dir():
        raise UsageError(f"no source directory {source}")
    repo = checkout.toplevel(source)
    say = (lambda text: None) if args.quiet else (lambda text: print(f"repro check --bisect: {text}",
                                                                      file=sys.stderr, flush=True))
    found = git_bisect.bisect(repo, args.bisect, _check_command(args, source), args.find_fix, say)
    report = {"kind": "git-bisect", "bug": bug.id, "variant": args.variant, "source": str(source), **found}
    print(json.dumps(report, indent=1) if args.json else git_bisect.render(report), flush=True)
    return 0 if report["commit"] else 1
