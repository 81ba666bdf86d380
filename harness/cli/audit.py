"""`repro audit [FILE]`: which known bugs these versions have, from the releases the bugs' matrix
files verify, each with the `repro run` command that verifies it for real (`--run` runs them).

The versions: those a requirements file, a uv.lock or a pylock.toml pins (envs/lockfiles.py), or,
without FILE, the distributions installed in the current environment (importlib.metadata): the
active virtualenv ($VIRTUAL_ENV) when one is active, else the interpreter running the harness.

Per bug, one word: `affected` (a release of the packages that decide it is verified present, or
lies between two verified present), `not affected` (verified absent, between two verified absent,
newer than the newest verified absent, or none of the bug's packages is in these versions), or
`unknown` (not verified either way: the line says why). The ranges are the matrix's own
(answer.declared_timelines: the cells CI verifies), read as OSV ranges are (osv.standing).

Exit codes (for scripts):
  0  none affected, none unknown
  1  a bug is affected (with --run: a run reproduced one)
  2  usage error (no such file, a file that cannot be parsed, ...): nothing ran
  3  none affected, but some unknown (with --run: none present, some run could not tell)
  4  with --run: the results file could not be written (the records are on stdout)
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from argparse import ArgumentParser, Namespace
from pathlib import Path

from packaging.utils import canonicalize_name

from harness.cli import answer
from harness.cli.options import DEFAULT_PYTHON, DEFAULTS, add_run_options, involved, print_line
from harness.envs import lockfiles
from harness.errors import UsageError
from harness.osv import AFFECTED, NOT_AFFECTED, UNKNOWN, standing
from harness.registry import Bug, discover
from harness.versions import pinned_versions, requirement_name

EXIT_CANNOT_TELL = answer.EXIT_CANNOT_TELL
SEVERITY = {NOT_AFFECTED: 0, UNKNOWN: 1, AFFECTED: 2}  # a bug's word: the worst of its packages'


def environment_versions() -> tuple[str, dict[str, str]]:
    """(what it is, {normalised name: version}) of the current environment's distributions."""
    from importlib import metadata

    venv = os.environ.get("VIRTUAL_ENV")
    paths = sorted(str(p) for p in Path(venv).glob("lib/python*/site-packages")) if venv else []
    where = f"the virtualenv {venv}" if paths else f"the environment of {sys.executable}"
    found = {}
    for dist in metadata.distributions(path=paths) if paths else metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist.version)
    return where, found


def file_versions(path: Path) -> tuple[str, dict]:
    locked = lockfiles.read(path)
    return f"{path} ({locked.kind})", locked


def judge(bug: Bug, version_of) -> tuple[str, list[str]]:
    """The bug's word for these versions and the reasons, one per package that decides it."""
    if not bug.packages:
        return UNKNOWN, ["it is about no distribution's releases: the interpreter decides it"]
    mine = {p: version_of(p) for p in bug.packages}
    if not any(mine.values()):
        return NOT_AFFECTED, [f"none of {', '.join(bug.packages)} in these versions"]
    timelines = answer.declared_timelines(bug)
    if not timelines:
        return UNKNOWN, ["its matrix file verifies no release"]
    worst, reasons = NOT_AFFECTED, []
    for package, timeline in timelines.items():
        if not mine.get(package):
            reasons.append(f"no {package} in these versions (its releases decide the bug)")
            continue
        word, why = standing(timeline, mine[package])
        worst = max(worst, word, key=SEVERITY.get)
        reasons.append(f"{package} {mine[package]}: {why}")
    return worst, reasons


def _involved(bug: Bug) -> set[str]:
    names = involved(bug, [bug.variant("trigger")]) if "trigger" in bug.variants else bug.packages
    return {canonicalize_name(n) for n in names}


def pins_for(bug: Bug, args, version_of) -> list[str]:
    """The --with pins of the bug's verifying run: the releases of what its trigger involves, from the
    env (a file is named whole, with --with-requirements), and the audit's own --with of those names."""
    names = _involved(bug)
    given = [p for p in args.pins if canonicalize_name(requirement_name(p)) in names]
    taken = {canonicalize_name(requirement_name(p)) for p in given}
    mine = [] if args.file else [f"{n}=={version_of(n)}" for n in sorted(names - taken) if version_of(n)]
    return mine + given


def command(bug: Bug, args, pins: list[str], from_file: Path | None) -> list[str]:
    """The `repro run` command line that verifies the word for real."""
    argv = ["repro", "run", bug.id] + (["--with-requirements", str(from_file)] if from_file else [])
    argv += [a for p in pins for a in ("--with", p)]
    return argv + (["--python", args.python] if args.python else []) + forwarded(args)


def forwarded(args) -> list[str]:
    """The run options given to the audit (other than --python and --with), as `repro run` takes them."""
    argv = []
    for action in add_run_options(ArgumentParser(add_help=False)):  # its public list of the run options
        value = getattr(args, action.dest, None)
        if action.dest in ("help", "python", "pins", "json") or value == action.default:  # --json: the audit's
            continue
        if action.nargs == 0:  # a flag: --json, --quiet
            argv.append(action.option_strings[0])
            continue
        for each in value if isinstance(value, list) else [value]:
            argv += [action.option_strings[0], str(each)]
    return argv


def cmd_audit(args) -> int:
    if args.file is None:
        where, versions = environment_versions()
        found = versions.get
        args.python = args.python or "%d.%d" % sys.version_info[:2]  # the env's own Python
    else:
        where, locked = file_versions(args.file)
        found = locked.version_of
    given = pinned_versions(args.pins)  # --with: these releases instead of the file's or the env's

    def version_of(name: str) -> str | None:
        return given.get(canonicalize_name(name)) or found(canonicalize_name(name))

    bugs, broken = discover()
    for problem in broken.values():
        print(f"repro: broken repro file: {problem}", file=sys.stderr)
    rows = [_row(bug, args, version_of) for bug in bugs.values()]
    _print(rows, where, args)
    if args.run:
        return _run(rows, args)
    words = {row["word"] for row in rows}
    return 1 if AFFECTED in words else EXIT_CANNOT_TELL if UNKNOWN in words else 0


def _row(bug: Bug, args, version_of) -> dict:
    word, reasons = judge(bug, version_of)
    pins = pins_for(bug, args, version_of)
    concerned = not bug.packages or any(version_of(p) for p in bug.packages)
    from_file = args.file if _involved(bug) else None  # a bare interpreter's trigger takes no release of it
    return {"bug": bug.id, "word": word, "reasons": reasons, "pins": pins, "from_file": from_file,
            "command": command(bug, args, pins, from_file) if concerned else None}


def _print(rows: list[dict], where: str, args) -> None:
    if args.json:
        print_line(args, json.dumps([{**r, "command": shlex.join(r["command"]) if r["command"] else None,
                                      "from_file": str(r["from_file"]) if r["from_file"] else None}
                                     for r in rows], indent=1))
        return
    print_line(args, f"versions: {where}")
    width = max(len(r["bug"]) for r in rows) if rows else 0
    for row in rows:
        print_line(args, f"{row['bug']:{width}}  {row['word'].upper():12}  {'; '.join(row['reasons'])}")
        if row["command"]:
            print_line(args, f"{'':{width}}  verify: {shlex.join(row['command'])}")
    counts = {word: sum(r["word"] == word for r in rows) for word in (AFFECTED, UNKNOWN, NOT_AFFECTED)}
    print_line(args, f"audit: {counts[AFFECTED]} affected, {counts[UNKNOWN]} unknown, {counts[NOT_AFFECTED]} "
                     f"not affected of {len(rows)} known bugs (from the releases their matrix files verify)")


def _run(rows: list[dict], args) -> int:
    """Run each command's cell, as `repro run` would; the exit code is that of the runs together."""
    from harness.cli.run import cmd_run

    codes = []
    for row in rows:
        if not row["command"]:
            continue
        print(f"audit: running {shlex.join(row['command'])}", file=sys.stderr, flush=True)
        run_args = Namespace(**{**vars(args), "bug": row["bug"], "variants": None, "measure": False, "json": False,
                                "control_attempts": DEFAULTS.control_attempts,
                                "pins": row["pins"],
                                "with_requirements": row["from_file"], "python": args.python or DEFAULT_PYTHON})
        try:
            codes.append(cmd_run(run_args))
        except UsageError as exc:  # this bug's run cannot start (a pin not on the index...): the others still run
            print(f"repro: {row['bug']}: {exc}", file=sys.stderr)
            codes.append(EXIT_CANNOT_TELL)
    if answer.EXIT_NOT_WRITTEN in codes:
        return answer.EXIT_NOT_WRITTEN
    if answer.EXIT_PRESENT in codes:
        return answer.EXIT_PRESENT
    return EXIT_CANNOT_TELL if any(code != answer.EXIT_ABSENT for code in codes) else 0
