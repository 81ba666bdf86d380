"""`repro` command line: list, run, verify.

Bad input (unknown bug or variant, malformed --with, a release not on the index, a
missing interpreter, an unreachable index) is one line on stderr and exit code 2,
checked before anything runs or is written.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
from pathlib import Path

from harness import __version__, envs, index, interpreters, results, services
from harness.cells import Cell, Options, run_cell
from harness.errors import UsageError
from harness.progress import Progress
from harness.registry import Bug, get_bug

# Relative: the current directory's results/, the maintainer's project, never inside the install.
DEFAULT_RESULTS = Path("results") / "results.jsonl"


def _options_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--python", default="3.11", help="interpreter version (3.11, 3.11.7) or 'current'")
    common.add_argument("--with", dest="pins", action="append", default=[], metavar="REQ",
                        help="requirement override, e.g. deltalake==0.20.1 (repeatable)")
    common.add_argument("--exclude-newer", metavar="DATE|release",
                        help="resolve dependencies as of DATE, or as of the pinned release's upload date")
    common.add_argument("--attempts", type=int, help="fixed number of attempts (default: from --confidence)")
    common.add_argument("--confidence", type=float, default=0.99, help="wanted confidence of `absent`")
    common.add_argument("--max-attempts", type=int, default=30,
                        help="at most this many attempts when --attempts is not given (default: 30)")
    common.add_argument("--timeout", type=float, help="per-attempt deadline in seconds (default: the variant's)")
    common.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="variant parameter override (JSON value), e.g. threads=8")
    common.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON lines file to append to")
    common.add_argument("--json", action="store_true", help="print each result record as JSON on stdout")
    common.add_argument("--quiet", action="store_true", help="no progress on stderr")
    common.add_argument("--executor", choices=["local", "docker"], default="local",
                        help="run each attempt as a local process or in a container on the Docker engine")
    common.add_argument("--image", help="with --executor docker: the container image "
                        "(default: a base image of the host's release, built locally once)")
    common.add_argument("--python-from", choices=["auto", "host", "image"], default="auto",
                        help="with --executor docker: the interpreter from the host (mounted), from the image, "
                        "or auto: the host's if it has a mountable one, else the image's")
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro", description="Reproduce known concurrency bugs per cell.")
    parser.add_argument("--version", action="version", version=f"repro-harness {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="the known bugs and their variants")
    listing.add_argument("--json", action="store_true")
    common = _options_parser()
    run = sub.add_parser("run", parents=[common], help="run one cell to a verdict")
    run.add_argument("bug")
    run.add_argument("--variant", dest="variants", action="append", metavar="VARIANT",
                     help="variant to run (repeatable; default: trigger)")
    run.add_argument("--measure", action="store_true", help="run every attempt: measure the trigger rate")
    run.add_argument("--control-attempts", type=int, default=1,
                     help="runs of each control when a trigger cell is not clean")
    verify = sub.add_parser("verify", parents=[common], help="present on a known-bad cell, absent on a known-good one")
    verify.add_argument("bug")
    from harness import bisect_cli

    bisect_cli.add_parsers(sub, common)
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
    return parser


def _parse_params(bug: Bug, pairs: list[str]) -> dict:
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
                             f"{', '.join(sorted(declared)) or '(none)'}")
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


def _check_pins(bug: Bug, pins: list[str]) -> list[str]:
    checked = [envs.check_requirement(p) for p in pins]
    names = [envs.requirement_name(p) for p in checked]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"--with pins {', '.join(twice)} more than once: give one requirement per package")
    for pin in checked:
        if "==" in pin:
            name, version = envs.requirement_name(pin), pin.split("==", 1)[1]
            index.check_pin(name, version)
    return checked


def _check_python(version: str) -> None:
    """Versions below the floor are refused before any interpreter is looked for."""
    if interpreters.VERSION_RE.match(version):
        interpreters.check_floor(version)


def _exclude_newer(bug: Bug, rule: str | None, pins: list[str]) -> str | None:
    """--exclude-newer: a date as given, or "release": the newest cutoff of the exact pins."""
    if rule != "release":
        return envs.check_date(rule)
    date = index.release_cutoff(pins)
    if date is None:
        raise UsageError(f"--exclude-newer release needs --with NAME==VERSION (e.g. for {', '.join(bug.packages)})")
    return date


def _options(args, bug: Bug, **extra) -> Options:
    """The run's options from the command line; every number is checked here (exit 2), so no
    verdict can rest on zero attempts or on a deadline that is no deadline."""
    _at_least(args.attempts, 1, "--attempts")
    _at_least(args.max_attempts, 1, "--max-attempts")
    _at_least(extra.get("control_attempts"), 0, "--control-attempts")
    if not (math.isfinite(args.confidence) and 0 < args.confidence < 1):
        raise UsageError("--confidence must be between 0 and 1 (exclusive)")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise UsageError("--timeout must be a positive number of seconds")
    _check_python(args.python)
    _check_results(args.results)
    return Options(confidence=args.confidence, max_attempts=args.max_attempts, attempts=args.attempts,
                   timeout=args.timeout, params=_parse_params(bug, args.param), executor=_executor(args), **extra)


def _check_results(path: Path) -> None:
    """The results file must be writable before any cell runs (a cell may take an hour)."""
    try:
        results.check_writable(path)
    except OSError as exc:
        raise UsageError(f"cannot write results to {path}: {exc.strerror or exc}") from None


def _at_least(value, floor: int, option: str) -> None:
    if value is not None and value < floor:
        raise UsageError(f"{option} must be at least {floor}")


def _executor(args):
    """None for local attempts; a DockerExecutor (engine reachable, image present) for containers."""
    kind, image = getattr(args, "executor", "local"), getattr(args, "image", None)
    python_from = getattr(args, "python_from", "auto")
    if image and kind != "docker":
        raise UsageError("--image needs --executor docker")
    if python_from == "image" and kind != "docker":
        raise UsageError("--python-from image needs --executor docker")
    if kind != "docker":
        return None
    from harness.docker_executor import DockerExecutor

    return DockerExecutor(image, log=lambda text: print(f"repro: {text}", file=sys.stderr), python_from=python_from)


def keep_result(args, record: dict) -> bool:
    """Append the record to the results file; False if it could not be written, in which case
    the record itself is printed on stdout, so it is never lost."""
    try:
        results.append(args.results, record)
        return True
    except results.ResultWriteError as exc:
        print(f"repro: {exc}; the record follows on stdout", file=sys.stderr)
        _print(args, exc.line)
        return False


def _emit(args, record: dict, progress: Progress) -> bool:
    """Keep the record and show it; False if it could not be written (then it is on stdout)."""
    written = keep_result(args, record)
    progress.verdict(record)
    if args.json and written:
        _print(args, json.dumps(record, default=str))
    return written


def _print(args, line: str) -> None:
    """A line on stdout; a reader that went away (`| head`) stops the printing, not the run."""
    if getattr(args, "stdout_closed", False):
        return
    try:
        print(line, flush=True)
    except BrokenPipeError:
        args.stdout_closed = True
        devnull = open("/dev/null", "w")  # noqa: SIM115 - stdout for the rest of the process
        sys.stdout = devnull
        print("repro: stdout was closed; results go on to the results file", file=sys.stderr)


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


def cmd_run(args) -> int:
    bug = get_bug(args.bug)
    variants = args.variants or ["trigger"]
    for name in variants:
        bug.variant(name)
    options = _options(args, bug, measure=args.measure, control_attempts=args.control_attempts)
    # The executor may look beyond the host (the docker executor: in its image).
    getattr(options.executor, "find_interpreter", interpreters.find)(args.python)
    pins = _check_pins(bug, args.pins)
    exclude_newer = _exclude_newer(bug, args.exclude_newer, pins)
    cells = [Cell(bug.id, name, args.python, tuple(pins), exclude_newer) for name in variants]
    progress = Progress(enabled=not args.quiet)
    verdicts, unwritten = [], 0
    with services.started(bug.services) as service_env:
        options.service_env = service_env
        for number, cell in enumerate(cells, 1):
            progress.cell(number, len(cells), cell.label)
            record = run_cell(cell, options, progress)
            # Each finished cell is kept, even if a later one is interrupted.
            unwritten += not _emit(args, record, progress)
            verdicts.append(record["verdict"])
    return 1 if "error" in verdicts or unwritten else 0


def cmd_verify(args) -> int:
    from harness import matrix

    bug = get_bug(args.bug)
    declared = (matrix.for_bug(bug.id) or {}).get("verify", {})  # another bug's broken file is no concern
    if set(declared) != {"present", "absent"}:
        raise UsageError(f"matrix/{bug.id.replace('-', '_')}.toml declares no [verify] present and absent cells")
    options = _options(args, bug, control_attempts=0)
    progress = Progress(enabled=not args.quiet)
    checks = []  # the declared trigger variant expecting its role, then every control expecting absent
    for expected in (declared["present"], declared["absent"]):
        base = matrix.resolve(expected)
        checks.append((base, expected.expect[0]))
        checks.extend((Cell(**{**base.__dict__, "variant": c.name}), "absent") for c in bug.controls)
    failed = 0
    with services.started(bug.services) as service_env:
        options.service_env = service_env
        for number, (cell, want) in enumerate(checks, 1):
            progress.cell(number, len(checks), f"{cell.label} (expect {want})")
            record = run_cell(cell, options, progress)
            record["expected"] = want
            _emit(args, record, progress)
            failed += record["verdict"] != want
    print(f"verify {bug.id}: {len(checks) - failed} of {len(checks)} checks hold", file=sys.stderr)
    return 1 if failed else 0


def _default_readme() -> Path | None:
    """./README.md if it has the results section; a project's README without one is left alone."""
    from harness import report

    try:
        report.check_readme(Path("README.md"))
    except (OSError, ValueError):
        return None
    return Path("README.md")


def cmd_report(args) -> int:
    from harness import report

    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise UsageError(f"no such result file or directory: {', '.join(missing)}")
    readme = None if args.no_readme else (args.readme or _default_readme())
    try:
        if readme is not None:
            report.check_readme(readme)  # before anything is written: the README is written last
        records, skipped = report.collect(args.paths)
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


def _project_name() -> str | None:
    """The [project] name of ./pyproject.toml: the package a maintainer's repro is about."""
    from harness.matrix import tomllib

    try:
        name = tomllib.loads(Path("pyproject.toml").read_text()).get("project", {}).get("name")
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) else None


def cmd_new(args) -> int:
    from harness.registry import write_skeleton

    package = args.package or _project_name()
    if not package:
        raise UsageError("no ./pyproject.toml with a [project] name: say the package with --package NAME")
    for path in write_skeleton(args.bug, package, Path.cwd()):
        print(f"wrote {path}")
    print(f"next: fill in the TODOs, then `repro list` and `repro run {args.bug} --with {package}==VERSION`")
    return 0


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
        if args.command in ("bisect", "check"):
            from harness import bisect_cli

            return {"bisect": bisect_cli.cmd_bisect, "check": bisect_cli.cmd_check}[args.command](args)
        commands = {"list": cmd_list, "run": cmd_run, "verify": cmd_verify, "report": cmd_report, "new": cmd_new}
        return commands[args.command](args)
    except UsageError as exc:
        print(f"repro: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("repro: interrupted; finished cells are kept in the results file", file=sys.stderr)
        return 130
