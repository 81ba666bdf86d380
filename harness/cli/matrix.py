"""`repro matrix refresh | watch`: keeping the matrix up with the index, and the daily watch.

    repro matrix refresh --list                 releases published since each bug's newest cell
    repro matrix refresh [BUG ...]              run them; write them into the history tier (a diff)
    repro matrix watch RESULTS --published DIR  what changed against the published results: the
                                                tracking issues to open, update or close (--post sends)

`refresh` writes only verdicts it measured: each new cell's `expect` is the verdict its run gave
(an `error` is reported and not written), with a note saying when and what was measured.
"""
from __future__ import annotations

import difflib
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness import github, matrix, results, stats, watch
from harness.cell import Cell, Options
from harness.cli.bisect import HelpFormatter
from harness.envs import interpreters, package_index
from harness.errors import UsageError
from harness.files import write_atomically
from harness.progress import Progress
from harness.registry import get_bug
from harness.runner import run_cells
from harness.versions import exact_pin, requirement_name, version_key

SEALED_HELP = ("read only records whose seal verifies: written by a harness whose key was disclosed at its end "
               "for that results file (harness/seal.py); the others are left out with a warning. CI's report job "
               "uses it")
WRITTEN = ("present", "absent", "hang", "crash", "other-failure", "skipped")  # measured verdicts worth keeping


MATRIX_DESCRIPTION = """\
Keep the matrix files up with the index (refresh) and watch the newest releases for regressions
(watch): the two jobs of the scheduled CI run."""

MATRIX_EPILOG = """\
examples:
  repro matrix refresh --list                     releases published since each bug's newest cell
  repro matrix watch results/ --published site/results.jsonl --summary "$GITHUB_STEP_SUMMARY"

exit codes: those of `repro matrix refresh` and `repro matrix watch` (see their --help); 2 usage error.
"""

REFRESH_DESCRIPTION = """\
For each bug with a matrix file, find the releases of its package published since the newest one
its matrix pins, run their cells (each with the dependencies of its date) and append them to the
history tier with the verdict each run gave: only measured verdicts are written (an error is
reported, not written), with a note of when and what was measured. The diff is printed, and the
file must still load."""

REFRESH_EPILOG = """\
examples:
  repro matrix refresh --list                     what would run; nothing runs
  repro matrix refresh delta-already-borrowed --attempts 10

exit codes:
  0  every new cell was measured and written (or --list)
  1  some cell gave no verdict worth keeping (error): it was reported, not written
  2  usage error (no matrix file of a bug, a bad --attempts)
  130 interrupted (Ctrl-C, SIGTERM)
"""

WATCH_DESCRIPTION = """\
Compare this run's results with the last published ones: the tracking issues to open (a cell that
regressed), update or close (fixed again), as JSON payloads; --post sends them to GitHub, --publish
writes the merged newest records the next run compares with, --summary appends the verdict table."""

WATCH_EPILOG = """\
examples:
  repro matrix watch results/ --published site/results.jsonl --payloads issues.json
  repro matrix watch results/ --published site/results.jsonl --post --repo OWNER/NAME

exit codes:
  0  compared (and, with --post, sent)
  2  usage error (no such result file, --post without GITHUB_TOKEN or --repo)
"""


def add_parsers(sub) -> None:
    parser = sub.add_parser("matrix", help="refresh the matrix from the index; the regression watch",
                            description=MATRIX_DESCRIPTION, epilog=MATRIX_EPILOG, formatter_class=HelpFormatter)
    commands = parser.add_subparsers(dest="matrix_command", required=True, title="commands")
    refresh = commands.add_parser("refresh", help="run the releases published since each bug's newest cell and "
                                                  "add them to the history tier with the verdicts measured",
                                  description=REFRESH_DESCRIPTION, epilog=REFRESH_EPILOG,
                                  formatter_class=HelpFormatter)
    what, where = refresh.add_argument_group("what to run"), refresh.add_argument_group("where results go")
    what.add_argument("bugs", nargs="*", help="only these bugs (default: every bug with a matrix file)")
    what.add_argument("--list", action="store_true", help="list the new releases and the cells; run nothing")
    what.add_argument("--attempts", type=int, default=None, help="fixed attempts per cell (default: the "
                                                                   "confidence rule, as in the matrix)")
    where.add_argument("--matrix-dir", type=Path, default=None,
                       help="the matrix directory to refresh (default: ./matrix, else the shipped one)")
    where.add_argument("--results", type=Path, default=Path("results") / "refresh.jsonl",
                       help="JSON lines file the records of the new cells are appended to")
    where.add_argument("--quiet", action="store_true", help="no progress on stderr")
    track = commands.add_parser("watch", help="compare results with the published ones: tracking-issue payloads",
                                description=WATCH_DESCRIPTION, epilog=WATCH_EPILOG, formatter_class=HelpFormatter)
    inputs, outputs = track.add_argument_group("what to compare"), track.add_argument_group("what to write or send")
    inputs.add_argument("results", nargs="+", type=Path, help="result files or directories of this run")
    inputs.add_argument("--published", type=Path, action="append", default=[],
                        help="the last published results (missing: nothing published yet)")
    outputs.add_argument("--payloads", type=Path, help="write the payloads here as JSON (default: stdout)")
    outputs.add_argument("--summary", type=Path, help="append a short Markdown summary (the verdict table) here")
    outputs.add_argument("--publish", type=Path, help="write the newest record of each cell, published and new, "
                                                      "here: the results the next run compares with")
    inputs.add_argument("--sealed", action="store_true", help=SEALED_HELP)
    outputs.add_argument("--post", action="store_true",
                         help="open, update or close the issues on GitHub (needs GITHUB_TOKEN; --repo or "
                              "GITHUB_REPOSITORY)")
    outputs.add_argument("--repo", default=os.environ.get("GITHUB_REPOSITORY"), help="OWNER/NAME of the issues")


def cmd_matrix(args) -> int:
    return cmd_refresh(args) if args.matrix_command == "refresh" else cmd_watch(args)


# ---------------------------------------------------------------- refresh

def _newest_pin(entry: dict, package: str):
    """The trigger cell whose exact pin of `package` is the newest release in the matrix, and that release."""
    best = None
    for expected in entry["cells"]:
        for pin in expected.cell.pins:
            exact = exact_pin(pin)
            if not exact or exact[0] != package:
                continue
            if best is None or version_key(exact[1]) > version_key(best[1]):
                best = (expected, exact[1])
    return best


def plan_refresh(entry: dict) -> list[dict]:
    """Per package of the bug: the newest release in the matrix, the releases since, and the cells to run."""
    bug = get_bug(entry["bug"])
    plans = []
    for package in bug.packages:
        found = _newest_pin(entry, requirement_name(package))
        if found is None:
            continue
        base, version = found
        python = matrix.concrete_python(base.cell.python)
        try:
            full = interpreters.find(python).version
        except UsageError:
            full = python
        same = [e for e in entry["cells"] if e.cell.python == base.cell.python and e.cell.pins == base.cell.pins
                and bug.variants[e.cell.variant].role == "trigger"]
        variants = sorted({e.cell.variant for e in same})
        cells = []
        for release in package_index.releases_after(package, version, full):
            pins = tuple(f"{package}=={release}" if requirement_name(p) == requirement_name(package) else p
                         for p in base.cell.pins)
            cells.append({"release": release, "python": base.cell.python, "pins": pins, "variants": variants})
        plans.append({"bug": bug.id, "package": package, "newest_in_matrix": version, "cells": cells})
    return plans


def _run(bug_id: str, planned: dict, attempts: int | None, progress: Progress, results_path: Path) -> list:
    """Run the planned cells (each trigger variant), each as of its release's date; keep each record."""
    cells = [matrix.resolve(matrix.Expected(Cell(bug_id, variant, planned["python"], planned["pins"]), (),
                                            "release", "history"))  # no expectation: refresh measures one
             for variant in planned["variants"]]
    # the cells go into the history tier: their absent excludes what the history tier's does
    options = Options(attempts=attempts, exclude_rate=None if attempts else stats.LOW_RATE)
    return run_cells(cells, options, progress=progress,
                     keep=lambda record: results.append(results_path, record))


def entry_text(planned: dict, records: list, today: str) -> str:
    """The [[cells]] entries of what was measured (CellRecords), one per verdict (variants measured
    alike share one)."""
    by_verdict: dict[str, list] = {}
    for record in records:
        by_verdict.setdefault(record.verdict, []).append(record)
    text = ""
    for verdict, members in by_verdict.items():
        reason = members[0].reason.splitlines()[0][:160]
        note = f"added by `repro matrix refresh` on {today}: measured {verdict} ({reason})"
        text += ("\n[[cells]]\n"
                 f"note = {json.dumps(note)}\n"
                 f"python = [{json.dumps(planned['python'])}]\n"
                 f"pins = [{', '.join(json.dumps(p) for p in planned['pins'])}]\n"
                 f"variants = [{', '.join(json.dumps(r.variant) for r in members)}]\n"
                 'exclude_newer = "release"\n'
                 f"expect = {json.dumps(verdict)}\n"
                 'tier = "history"\n')
    return text


def _matrix_file(bug_id: str, directory: Path | None) -> Path:
    for each in [directory] if directory else matrix.matrix_dirs():
        path = Path(each) / f"{bug_id.replace('-', '_')}.toml"
        if path.is_file():
            return path
    raise UsageError(f"no matrix file of {bug_id}")


def cmd_refresh(args) -> int:
    if args.attempts is not None and args.attempts < 1:
        raise UsageError("--attempts must be at least 1")
    loaded = matrix.load(args.matrix_dir)
    unknown = [b for b in args.bugs if b not in loaded]
    if unknown:
        raise UsageError(f"no matrix file of {', '.join(unknown)}; known: {', '.join(sorted(loaded))}")
    progress = Progress(enabled=not args.quiet)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    unmeasured = 0
    for bug_id in args.bugs or sorted(loaded):
        for plan in plan_refresh(loaded[bug_id]):
            releases = ", ".join(c["release"] for c in plan["cells"]) or "none"
            print(f"{bug_id}: {plan['package']} newest in the matrix {plan['newest_in_matrix']}; since: {releases}")
            if args.list:
                for planned in plan["cells"]:
                    print(f"  would run: py{planned['python']} {' '.join(planned['pins'])} "
                          f"{', '.join(planned['variants'])} (deps as of the release)")
                continue
            path = _matrix_file(bug_id, args.matrix_dir)
            for planned in plan["cells"]:
                records = _run(bug_id, planned, args.attempts, progress, args.results)
                kept = [r for r in records if r.verdict in WRITTEN]
                for record in records:
                    if record.verdict not in WRITTEN:
                        unmeasured += 1
                        print(f"  not written: {record.variant} on {planned['release']}: {record.verdict}: "
                              f"{record.reason}")
                if kept:
                    _append(path, entry_text(planned, kept, today))
    return 1 if unmeasured else 0


def _append(path: Path, text: str) -> None:
    """Append entries to a matrix file, print the diff, and check the file still loads."""
    before = path.read_text()
    after = before.rstrip("\n") + "\n" + text
    write_atomically(path, after)
    sys.stdout.writelines(difflib.unified_diff(before.splitlines(True), after.splitlines(True),
                                               f"a/{path.name}", f"b/{path.name}"))
    try:
        matrix.load_file(path)
    except UsageError:
        write_atomically(path, before)  # never leave a broken file behind
        raise


# ---------------------------------------------------------------- watch

def cmd_watch(args) -> int:
    missing = [str(p) for p in args.results if not p.exists()]
    if missing:
        raise UsageError(f"no such result file or directory: {', '.join(missing)}")
    skipped: list[str] = []
    current = watch.newest_records(args.results, args.sealed, skipped)
    published = watch.newest_records(args.published)
    for problem in skipped:
        print(f"repro: warning: {problem}", file=sys.stderr)
    payloads = watch.issue_payloads(current, published)
    text = json.dumps(payloads, indent=1)
    for path in (args.payloads, args.publish):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
    if args.payloads:
        write_atomically(args.payloads, text + "\n")
    else:
        print(text)
    if args.summary:
        _summary(args.summary, current, payloads)
    if args.publish:
        merged = results.newest_per_cell([*published, *current])
        write_atomically(args.publish, "".join(results.encode(r) + "\n" for r in merged))
    if args.post:
        token = os.environ.get("GITHUB_TOKEN")
        if not token or not args.repo:
            raise UsageError("--post needs GITHUB_TOKEN in the environment and --repo OWNER/NAME")
        calls = watch.plan_requests(payloads, github.open_issues(args.repo, token, watch.LABEL), args.repo)
        github.send(calls, token)
        print(f"repro: {len(calls)} call(s) sent to the issues of {args.repo}", file=sys.stderr)
    return 0


def _summary(path: Path, records: list[dict], payloads: list[dict]) -> None:
    from harness.outputs.readme import markdown

    lines = ["## Verdicts", "", markdown(records)]
    if payloads:
        lines += ["## Changed since the last published results", ""]
        lines += [f"- {p['title']}: issue {'open' if p['state'] == 'open' else 'closed'}" for p in payloads]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
