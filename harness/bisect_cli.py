"""`repro bisect` (where did the verdict change across releases or interpreters) and
`repro check` (one verdict of a source checkout as a `git bisect run` exit code)."""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

from harness import bisect, checkout, envs, interpreters, results, services
from harness.cells import Cell, run_cell
from harness.errors import EnvBuildError, UsageError
from harness.progress import Progress
from harness.registry import get_bug

# `git bisect run` reads 0 as good, 125 as skip, 1-127 as bad and anything above 127 as "stop":
# a broken command line or harness must stop the bisection, never mark a commit bad.
CHECK_EXIT = {"absent": 0, "present": 1}
CHECK_SKIP = 125
CHECK_ABORT = 128
PYTHON_MINORS = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]  # the child side needs 3.9+


def add_parsers(sub, common) -> None:
    run = sub.add_parser("bisect", parents=[common], help="find where the verdict changes across releases")
    run.add_argument("bug")
    run.add_argument("--package", help="the package whose releases are the axis (default: the bug's only one)")
    run.add_argument("--from", dest="first", metavar="VERSION", help="oldest release to consider")
    run.add_argument("--to", dest="last", metavar="VERSION", help="newest release to consider")
    modes = run.add_mutually_exclusive_group()
    modes.add_argument("--first-fixed", dest="mode", action="store_const", const="first-fixed",
                       help="binary search: oldest range end present, newest absent (one transition assumed)")
    modes.add_argument("--first-bad", dest="mode", action="store_const", const="first-bad",
                       help="binary search: oldest range end absent, newest present (one transition assumed)")
    modes.add_argument("--map", dest="mode", action="store_const", const="map",
                       help="every transition of a possibly non-monotonic history (the default)")
    run.add_argument("--stride", type=int, help="--map: test every K-th point first (default: 3 for releases, "
                     "1 for interpreters; 1 tests all)")
    run.add_argument("--python-versions", metavar="LIST|available",
                     help="comma-separated interpreters as the axis (or, with --package, one bisect each)")
    run.add_argument("--variant", default="trigger")
    run.add_argument("--no-cache", action="store_true", help="ignore cached verdicts (new ones are still stored)")
    run.add_argument("--report", type=Path, metavar="FILE", help="also write the report as JSON to FILE")
    check = sub.add_parser("check", parents=[common],
                           help="exit 0 absent, 1 present, 125 cannot test: for `git bisect run`")
    check.add_argument("bug")
    check.add_argument("--source", type=Path, default=Path("."), help="the package's source directory (default: .)")
    check.add_argument("--variant", default="trigger")


# ---------------------------------------------------------------- repro bisect

def _interpreters(spec: str) -> list:
    if spec == "available":
        found = [i for i in interpreters.available(PYTHON_MINORS).values() if not isinstance(i, str)]
        if not found:
            raise UsageError("no interpreter found for any of " + ", ".join(PYTHON_MINORS))
        return found
    return [interpreters.find(v.strip()) for v in spec.split(",") if v.strip()]


def _package(bug, name: str | None) -> str | None:
    if name is None:
        return bug.packages[0] if len(bug.packages) == 1 else None
    if envs.requirement_name(name) not in [envs.requirement_name(p) for p in bug.packages]:
        raise UsageError(f"bug {bug.id} is about {', '.join(bug.packages) or 'no package'}, not {name}")
    return name


def cmd_bisect(args) -> int:
    from harness import cli

    bug = get_bug(args.bug)
    bug.variant(args.variant)
    mode = args.mode or "map"
    pins = tuple(cli._check_pins(bug, args.pins))
    options = cli._options(args)
    package = _package(bug, args.package) if (args.package or not args.python_versions) else None
    if package is None and not args.python_versions:
        raise UsageError(f"--package is needed: bug {bug.id} has packages {', '.join(bug.packages) or '(none)'}")
    found = _interpreters(args.python_versions) if args.python_versions else [interpreters.find(args.python)]
    if package and args.exclude_newer:
        raise UsageError("--exclude-newer does not apply to a bisect over releases: each is installed as of its date")
    if package and any(envs.requirement_name(p) == envs.requirement_name(package) for p in pins):
        raise UsageError(f"--with must not pin {package}: its releases are the axis")
    progress = Progress(enabled=not args.quiet)
    on_record = lambda record: results.append(args.results, {**record, "bisect": bug.id})  # noqa: E731
    axes = []
    if package:
        for interpreter in found:
            points, left_out = bisect.release_points(bug, args.variant, package, interpreter, pins,
                                                     args.first, args.last)
            axes.append((f"{package} releases", interpreter.version, points, left_out))
    else:
        exclude_newer = cli._exclude_newer(bug, args.exclude_newer, list(pins))
        axes.append(("interpreters", None, bisect.interpreter_points(bug, args.variant, found, pins, exclude_newer), []))
    reports = []
    with services.started(bug.services) as service_env:
        options.service_env = service_env
        for axis, python, points, left_out in axes:
            stride = args.stride or (3 if package else 1)  # few interpreters: any one of them may flip
            report = bisect.run_bisect(bug, points, mode, options, stride, not args.no_cache,
                                       on_record, progress)
            report.update({"axis": axis, "python": python, "left_out": [list(x) for x in left_out]})
            reports.append(report)
            if not args.json:
                print(bisect.render(report, axis, left_out), flush=True)
    if args.json:
        print(json.dumps(reports if len(reports) > 1 else reports[0], indent=1, default=str))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(reports, indent=1, default=str))
    return 0 if all(r["transitions"] or (mode == "map" and not r.get("problem")) for r in reports) else 1


# ---------------------------------------------------------------- repro check

def _check_cell(args, bug, interpreter) -> Cell:
    from harness import cli

    source = args.source.resolve()
    wheel = checkout.build_wheel(source, interpreter)  # EnvBuildError: this revision cannot be tested
    name = checkout.wheel_name(wheel)
    pins = [p for p in cli._check_pins(bug, args.pins) if envs.requirement_name(p) != name]
    exclude_newer = checkout.commit_date(source) if args.exclude_newer == "commit" else envs.check_date(args.exclude_newer)
    return Cell(bug.id, args.variant, interpreter.version, (f"{name} @ {wheel.as_uri()}", *pins), exclude_newer)


def _check(args) -> int:
    from harness import cli

    bug = get_bug(args.bug)
    bug.variant(args.variant)
    interpreter = interpreters.find(args.python)
    options = cli._options(args)
    progress = Progress(enabled=not args.quiet)
    try:
        cell = _check_cell(args, bug, interpreter)
    except EnvBuildError as exc:
        print(f"repro check: cannot test this revision: {exc}", file=sys.stderr)
        return CHECK_SKIP
    with services.started(bug.services) as service_env:
        options.service_env = service_env
        progress.cell(1, 1, cell.label)
        record = run_cell(cell, options, progress)
    cli._emit(args, record, progress)
    code = CHECK_EXIT.get(record["verdict"], CHECK_SKIP)
    print(f"repro check {bug.id}: {record['verdict']} -> exit {code}", file=sys.stderr)
    return code


def cmd_check(args) -> int:
    """Only 0, 1 and 125 are verdicts; a usage error or a harness failure stops `git bisect run`."""
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
