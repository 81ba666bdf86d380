"""`repro list | run | verify | report | new`: the commands about cells and their results."""
from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from harness.cell import Cell, executor_for, pins_not_applied
from harness.cli import answer
from harness.cli.options import build_options, check_pins, emit, pins_from_file, resolve_exclude_newer
from harness.errors import UsageError
from harness.progress import Progress
from harness.registry import get_bug, project_name
from harness.runner import Planned, run_cells
from harness.table import print_table
from harness.verdict import ABSENT, PRESENT


def cmd_list(args) -> int:
    from harness.registry import discover

    bugs, broken = discover()
    for problem in broken.values():
        print(f"repro: broken repro file: {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps([{"id": b.id, "title": b.title, "failure_kind": b.failure_kind, "packages": b.packages,
                           "variants": {v.name: v.role for v in b.variants.values()}, "services": b.services,
                           "upstream": b.upstream, "trigger_rate": b.trigger_rate} for b in bugs.values()], indent=1))
        return 0
    for bug in bugs.values():
        variants = ", ".join(f"{v.name} ({v.role})" for v in bug.variants.values())
        print(f"{bug.id:32} {bug.failure_kind:10} {' '.join(bug.packages):24} {variants}")
        print(f"{'':32} {bug.title}")
    return 0


def _log(text: str) -> None:
    print(f"repro: {text}", file=sys.stderr, flush=True)


def cmd_run(args) -> int:
    bug = get_bug(args.bug)
    variants = args.variants or ["trigger"]
    for name in variants:
        bug.variant(name)
    if getattr(args, "write", False):
        _check_writable_rate(bug, variants, args.measure)
    options = build_options(args, bug, measure=args.measure, control_attempts=args.control_attempts)
    # No such interpreter (or an image recipe whose image cannot be built): a usage error, before anything runs.
    executor_for(args.python, options.executor, _log).find_interpreter(args.python)
    requested = list(args.pins) + _file_pins(args, bug, variants)
    for name in variants:
        not_applied = pins_not_applied(bug, bug.variant(name), requested)
        if not_applied:
            raise UsageError(f"--with {not_applied}")
    pins = check_pins(requested)
    exclude_newer = resolve_exclude_newer(bug, args.exclude_newer, pins)
    cells = [Cell(bug.id, name, args.python, tuple(pins), exclude_newer) for name in variants]
    unwritten = []
    records = run_cells(cells, options, progress=Progress(enabled=not args.quiet),
                        keep=lambda record: emit(args, record) or unwritten.append(record))
    if len(records) > 1 and not args.quiet:
        print_table(records)
    for line in answer.answer_lines(records, bug, args.results, written=not unwritten):
        print(line, file=sys.stderr)
    if getattr(args, "write", False):
        _write_rates(args, bug, records)
    return answer.exit_code(records, written=not unwritten)


def _check_writable_rate(bug, variants: list[str], measure: bool) -> None:
    """--write is refused before anything runs: without --measure (an early stop is no rate), for a
    control (no rate of its own), for a repro shipped inside the installed harness."""
    if not measure:
        raise UsageError("--write needs --measure: a run that stops at the first reproduction measures no rate")
    controls = [name for name in variants if bug.variant(name).role != "trigger"]
    if controls:
        raise UsageError(f"--write: {', '.join(controls)} is a control; only a trigger has a trigger_rate")
    if "_bundled" in bug.path.parts:
        raise UsageError(f"--write: {bug.path} is shipped inside the installed harness; copy it into ./repros first")


def _write_rates(args, bug, records) -> None:
    """Each measured trigger's rate into the repro file, with the command that measured it."""
    from harness.rate_file import write_measured
    from harness.registry import load_bug

    command = "repro " + shlex.join(args.argv)
    for record in records:
        if record.attempts < 1 or record.verdict == "error":
            print(f"repro: --write: {record.variant}: {record.verdict} ({record.reason}); nothing written",
                  file=sys.stderr)
            continue
        cell = " ".join([f"py{record.python}", *record.pins]) if record.pins else f"bare py{record.python}"
        rate = {"reproduced": record.reproductions, "attempts": record.attempts, "cell": cell, "command": command}
        for line in write_measured(load_bug(bug.path), record.variant, rate):  # the file as the last write left it
            print(f"repro: {line}", file=sys.stderr)


def _file_pins(args, bug, variants: list[str]) -> list[str]:
    """The pins of --with-requirements FILE (none without it), said on stderr: which releases of the
    file the run takes, as only those the variants install matter."""
    path = getattr(args, "with_requirements", None)
    if path is None:
        return []
    pins = pins_from_file(path, bug, [bug.variant(name) for name in variants], args.pins)
    if not args.quiet:
        _log(f"from {path}: {' '.join(pins) or '(none beyond --with)'} (what {bug.id} installs; "
             f"the file's other releases do not matter to it)")
    return pins


def cmd_verify(args) -> int:
    from harness import matrix

    bug = get_bug(args.bug)
    declared = (matrix.for_bug(bug.id) or {}).get("verify", {})  # another bug's broken file is no concern
    if set(declared) != {PRESENT, ABSENT}:
        raise UsageError(f"matrix/{bug.id.replace('-', '_')}.toml declares no [verify] present and absent cells")
    options = build_options(args, bug, control_attempts=0)
    checks = []  # the declared trigger variant expecting its role, then every control expecting absent
    for expected in (declared[PRESENT], declared[ABSENT]):
        base = matrix.resolve(expected)
        checks.append(_check(base, expected.expect[0]))
        checks.extend(_check(replace(base, variant=c.name), ABSENT) for c in bug.controls)
    records = run_cells(checks, options, progress=Progress(enabled=not args.quiet),
                        keep=lambda record: emit(args, record))
    failed = sum(record.verdict not in check.expect for record, check in zip(records, checks))
    if not args.quiet:
        print_table(records)
    print(f"verify {bug.id}: {len(checks) - failed} of {len(checks)} checks hold", file=sys.stderr)
    return 1 if failed else 0


def _check(cell: Cell, want: str) -> Planned:
    return Planned(cell, expect=(want,), label=f"{cell.label} (expect {want})")


def _default_readme() -> Path | None:
    """./README.md if it has the results section; a project's README without one is left alone."""
    from harness.outputs.readme import check_readme

    try:
        check_readme(Path("README.md"))
    except (OSError, ValueError):
        return None
    return Path("README.md")


def cmd_report(args) -> int:
    from harness import report, results
    from harness.outputs.readme import check_readme

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"no such result file or directory: {', '.join(missing)}")
    readme = None if args.no_readme else (args.readme or _default_readme())
    try:
        if readme is not None:
            check_readme(readme)  # before anything is written: the README is written last
        records, skipped = results.collect(args.paths, args.sealed)
    except (OSError, ValueError) as exc:  # an unreadable README or results file
        raise UsageError(str(exc)) from None
    if not records:
        detail = f" ({len(skipped)} left out; the first: {skipped[0]})" if skipped else ""
        raise UsageError(f"no cell results in {', '.join(map(str, args.paths))}{detail}")
    for problem in skipped:
        print(f"repro: warning: {problem}", file=sys.stderr)
    try:
        written = report.write_all(records, args.out, readme)
    except (OSError, ValueError) as exc:  # e.g. --out is a file
        raise UsageError(str(exc)) from None
    for name, path in written.items():
        print(f"{name}: {path}")
    return 0


def _known_repro(bug_id: str) -> str | None:
    """The file of `bug_id` that discovery sees now (shipped, REPRO_PATH, ./repros), broken or not."""
    from harness.registry import discover

    bugs, broken = discover()
    if bug_id in bugs:
        return str(bugs[bug_id].path)
    return next((path for path in broken if Path(path).stem == bug_id.replace("-", "_")), None)


def cmd_new(args) -> int:
    from harness.skeleton import write_skeleton

    package = args.package or project_name(Path.cwd())
    if not package:
        raise UsageError("no pyproject.toml with a [project] name here or above: say the package with --package NAME")
    known_at = _known_repro(args.bug)
    if known_at and not args.force:  # a new file of a known id silently shadows the old one
        raise UsageError(f"bug {args.bug!r} already exists: {known_at}; choose another id, "
                         "or --force to write one that replaces it")
    for path in write_skeleton(args.bug, package, Path.cwd()):
        print(f"wrote {path}")
    print(f"next: fill in the TODOs, then `repro list` and `repro run {args.bug} --with {package}==VERSION`")
    return 0
