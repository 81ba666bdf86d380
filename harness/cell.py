"""A cell (bug, variant, Python, pins) run to a verdict through repeated attempts.

The verdicts and how they follow from the attempts: harness.verdict. Here: finding the
interpreter and the env (or the reason the cell is skipped), the attempts, the controls, and
the cell's record.
"""
from __future__ import annotations

import errno
import math
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__, stats, verdict
from harness.attempt import Attempt, child_env, run_attempt
from harness.envs import gitref
from harness.envs.interpreters import image_python
from harness.envs.requirements import merge_requirements
from harness.errors import EnvBuildError, UsageError
from harness.executors.base import Executor
from harness.executors.local import LocalExecutor
from harness.paths import source_commit
from harness.record import AttemptRecord, CellRecord
from harness.registry import Bug, Variant, get_bug
from harness.verdict import ABSENT, CLEAN, ERROR, SKIPPED, Decision, decide
from harness.versions import requirement_name


@dataclass(frozen=True)
class Cell:
    bug: str
    variant: str = "trigger"
    python: str = "3.11"
    pins: tuple = ()              # requirement overrides, e.g. ("deltalake==0.20.1",)
    exclude_newer: str | None = None
    # Where a `NAME @ git:REF` pin's repository is (the declaring matrix file's directory; None: the
    # current directory). Not part of the cell's identity: the same pins are the same cell.
    origin: str | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        pins = " ".join(self.pins)
        return f"{self.bug}[{self.variant}] py{self.python}" + (f" {pins}" if pins else "")


@dataclass
class Options:
    confidence: float = 0.99
    max_attempts: int = 30
    attempts: int | None = None   # a fixed budget instead of the confidence rule
    # a per-attempt rate an `absent` must exclude (harness/stats.py): plans enough attempts for it,
    # past max_attempts (a partly fixed release reproduces at a lower rate than the known-bad one)
    exclude_rate: float | None = None
    measure: bool = False         # run every attempt (trigger-rate measurement), no early stop
    control_attempts: int = 1
    timeout: float | None = None  # overrides the variant's timeout
    kill_grace: float = 2.0
    params: dict = field(default_factory=dict)
    service_env: dict = field(default_factory=dict)
    # where the attempts run: interpreter, env and child command (harness/executors/base.py)
    executor: Executor = field(default_factory=LocalExecutor)


@dataclass(frozen=True)
class ControlRun:
    """A control's attempts as one cell ran them (as records), and that cell's label."""
    label: str
    attempts: tuple


class ControlLedger:
    """The controls run so far in a run, by env and control (and what decides their attempts: the
    parameters, the deadline). A control validates the repro in an env, so each runs once per env
    and control in a run, and every cell of the same env reuses its result, saying from which cell:
    a present trigger after the control's own cell, or a second trigger that shares the control."""

    def __init__(self):
        self._runs: dict[str, ControlRun] = {}

    @staticmethod
    def key(executor: Executor, env, control: Variant, options: Options) -> str:
        import json

        return json.dumps([executor.describe(), env.python, env.installed, control.name, options.params,
                           options.timeout], sort_keys=True, default=str)

    def find(self, key: str, wanted: int) -> ControlRun | None:
        """The run of the control under `key` if it says as much as `wanted` attempts would: that many
        or more, or fewer that ended in a failure (a control stops at its first)."""
        done = self._runs.get(key)
        if done is None or not done.attempts:
            return None
        if len(done.attempts) >= wanted or verdict.failed(done.attempts[-1].outcome):
            return done
        return None

    def keep(self, key: str, label: str, attempts: list) -> None:
        """Keep a control's attempts (records), unless one could not run (that says nothing of the repro)."""
        if attempts and all(a.outcome != ERROR for a in attempts):
            self._runs.setdefault(key, ControlRun(label, tuple(attempts)))


def plan_attempts(rate_bound: float, options: Options) -> int:
    """The attempt budget: as many as an `absent` needs at this trigger rate, within the cap, and
    at least as many as excluding `options.exclude_rate` needs (29 for 0.10), whatever the cap."""
    if options.attempts:
        return options.attempts
    planned = min(stats.attempts_needed(rate_bound, options.confidence), options.max_attempts)
    if options.exclude_rate:
        planned = max(planned, stats.attempts_to_exclude(options.exclude_rate))
    return planned


def _defaults(bug: Bug, variant) -> list:
    return bug.requirements if variant.requirements is None else variant.requirements


def requirements_for(bug: Bug, variant, pins) -> list:
    """The cell's install set: the variant's (or the bug's) requirements with the pins applied."""
    defaults = _defaults(bug, variant)
    return merge_requirements(defaults, list(pins) if defaults else [])


def pins_not_applied(bug: Bug, variant, pins) -> str | None:
    """Why `pins` would not be installed in the variant's cell, or None. A variant that installs
    nothing (a bare interpreter, `"requirements": []`) takes no pin: a cell of it with pins would
    record pins that were never installed, so callers refuse it (exit 2) instead of running it."""
    if not pins or _defaults(bug, variant):
        return None
    return (f"{', '.join(pins)}: variant {variant.name!r} of {bug.id} installs nothing (a bare interpreter), "
            f"so no pin applies to it; run it without pins")


def _summary(attempts: list[Attempt]) -> dict:
    return dict(Counter(a.outcome for a in attempts))


def not_applicable(variant: Variant, installed: dict) -> str | None:
    """Why the variant does not apply to these installed releases (its `requires`), or None."""
    from packaging.specifiers import SpecifierSet

    for package, spec in variant.requires.items():
        version = installed.get(requirement_name(package))
        if version is None or not SpecifierSet(spec).contains(version, prereleases=True):
            return f"variant {variant.name!r} needs {package}{spec}; installed: {version or 'none'}"
    return None


def _own_package_from_index(bug: Bug, requirements: list, warn) -> None:
    """A maintainer's bug installs their own package from the index only when asked for by version.

    The index's newest release of that name may be a stranger's project (or not theirs yet): an
    unpinned requirement of it is refused (UsageError) with the ways to name their code; an exact
    release (`NAME==1.2.0`) is installed, and `warn(text)` says it came from the index."""
    own = bug.own_package
    for requirement in requirements:
        if own is None or requirement_name(requirement) != own or "@" in requirement:
            continue
        ways = (f"'{own} @ git:REF' (this repository at a tag, branch or commit), '{own} @ file:///PATH' "
                f"or repro check --source DIR")
        if "==" not in requirement:
            raise UsageError(f"{bug.id} would install {requirement!r} from the package index, which may be "
                             f"another project of that name, not the code of the project {bug.path.name} lives in "
                             f"({own}): pin it as {ways}, or an index release as {own}==VERSION")
        warn(f"warning: {requirement} comes from the package index, not from this repository; "
             f"your code at a ref: {ways}")


def _warn(text: str) -> None:
    print(f"repro: {text}", file=sys.stderr, flush=True)


def _warning_channel(progress):
    """Where a warning goes: the progress display's notes while it shows them, else stderr. A
    progress object is any with the run_cells protocol (cell, attempt, outcome, verdict, note);
    `enabled` is only the display's, so one without it is taken as showing its notes."""
    if progress is not None and getattr(progress, "enabled", True):
        return progress.note
    return _warn


def executor_for(python: str, executor: Executor, note=None) -> Executor:
    """The executor of a cell of `python`: `executor` itself, but for the Python of an image recipe
    (debian-trixie:3.13t, 3.13t): the docker executor with the recipe's image, built on first use
    (`note(text)` hears of the build). UsageError when that cannot be (no engine, a failed build)."""
    if image_python(python) is None:
        return executor
    from harness.executors.docker.recipes import (
        executor_for as recipe_executor,  # the Docker SDK: only then
    )

    return recipe_executor(python, executor, note)


def run_cell(cell: Cell, options: Options, progress=None, ledger: ControlLedger | None = None) -> CellRecord:
    """Run the cell to a verdict; returns the result record (also for skipped/error cells).
    `ledger`: the controls this run has run so far (a fresh one: none), reused and added to."""
    ledger = ledger if ledger is not None else ControlLedger()
    started = time.monotonic()
    bug = get_bug(cell.bug)
    variant = bug.variant(cell.variant)
    record = CellRecord(bug=bug.id, variant=variant.name, role=variant.role, python_requested=cell.python,
                        pins=list(cell.pins), exclude_newer=cell.exclude_newer, failure_kind=bug.failure_kind,
                        host=platform.node(),
                        harness={"version": __version__, "commit": source_commit()},  # what the report says ran it
                        executor=options.executor.describe(),
                        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    try:
        executor = executor_for(cell.python, options.executor, progress.note if progress else None)
        record.executor = executor.describe()
        interpreter = executor.find_interpreter(cell.python)
    except UsageError as exc:
        return _skipped(record, verdict.NO_INTERPRETER, str(exc), started, bug)
    try:
        requirements, record.source = gitref.built(requirements_for(bug, variant, cell.pins),
                                                   Path(cell.origin or "."), interpreter)
        _own_package_from_index(bug, requirements, _warning_channel(progress))
        env = executor.ensure_env(interpreter, requirements, cell.exclude_newer,
                                  progress.note if progress else None)
    except EnvBuildError as exc:  # an unreachable index (UsageError) stops the whole run instead
        if NO_SPACE in " ".join(str(exc).split()) or (isinstance(exc.__cause__, OSError)
                                                       and exc.__cause__.errno == errno.ENOSPC):
            return _finish(record, verdict.broken(f"the env build ran out of disk space: {exc}",
                                                  bug.trigger_rate_lower_bound()), [], started, bug.rate_of())
        kind = verdict.NOT_INSTALLABLE if exc.lasting else verdict.ENV_BROKEN
        return _skipped(record, kind, str(exc), started, bug)
    with env:  # held to the cell's end: no other run deletes it under our attempts (harness/envs/holds.py)
        record.python, record.interpreter = interpreter.version, interpreter.describe()
        record.requirements = requirements
        record.installed = {n: env.installed.get(n) for n in bug.packages} if env.installed else {}
        record.environment = dict(env.installed)  # every release in the env: what moved since the last run
        record.env = {"build_seconds": round(env.build_seconds, 2), "reused": env.reused}
        inapplicable = not_applicable(variant, env.installed)
        if inapplicable:
            return _skipped(record, verdict.NOT_APPLICABLE, inapplicable, started, bug)
        missing = [s for s in bug.services if s not in options.service_env.get("REPRO_SERVICES", "").split(",")]
        if missing:
            return _skipped(record, verdict.NO_SERVICE, f"service(s) not running: {', '.join(missing)}", started, bug)
        extra = dict(options.service_env) if bug.services else {}  # service addresses: only for a bug that needs them
        command = executor.command(env, bug, child_env(extra))

        rate_bound = bug.trigger_rate_lower_bound(variant=variant)  # once: the budget, the verdict, the record
        attempts = _run_attempts(bug, variant, command, options, progress, plan_attempts(rate_bound, options))
        decision = decide(variant.role, [a.for_verdict(bug) for a in attempts], rate_bound, options.confidence)
        # The controls validate a failure of the trigger: that it needs the trigger's conditions (the
        # workaround avoids it) and that the setup itself is sound. A clean trigger (absent) claims
        # nothing they could invalidate, so they run only when the trigger did not come out clean.
        shared = _Shared(ledger, lambda control: ControlLedger.key(executor, env, control, options), cell.label)
        if variant.role == "control":
            shared.keep(variant, [AttemptRecord.of(a, variant=variant.name) for a in attempts])
        if variant.role == "trigger" and options.control_attempts and decision.verdict not in (ABSENT, ERROR):
            failed = _run_controls(bug, variant, command, options, record, progress, env.installed, shared)
            if failed:
                decision = verdict.overruled_by_control(decision, failed)
        elif variant.role == "trigger":
            record.controls = []  # not run: see above
        return _finish(record, decision, attempts, started, bug.rate_of(variant))


@dataclass(frozen=True)
class _Shared:
    """The ledger as one cell sees it: the key of each control in its env, and its own label."""
    ledger: ControlLedger
    key_of: Callable[[Variant], str]
    label: str

    def find(self, control: Variant, wanted: int) -> ControlRun | None:
        return self.ledger.find(self.key_of(control), wanted)

    def keep(self, control: Variant, attempts: list) -> None:
        self.ledger.keep(self.key_of(control), self.label, attempts)


def _run_controls(bug, variant, command, options, record: CellRecord, progress, installed,
                  shared: _Shared) -> str | None:
    """Each control of the trigger that applies, run here or reused from the cell of this run and env
    that ran it (record.controls says which); the reason of the first failure, or None."""
    record.controls = []
    for control in bug.controls_for(variant):
        inapplicable = not_applicable(control, installed)
        if inapplicable:
            record.controls.append(AttemptRecord(variant=control.name, outcome=SKIPPED, reason=inapplicable))
            continue
        done = shared.find(control, options.control_attempts)
        if done is not None:
            runs = [replace(a, reused_from=done.label) for a in done.attempts]
        else:
            runs = _run_control(bug, control, command, options, progress)
            shared.keep(control, runs)
        record.controls.extend(runs)
        failed = next((a for a in runs if verdict.failed(a.outcome)), None)
        if failed is not None:
            return f"control {control.name!r} was not clean ({failed.outcome}: {failed.reason})"
    return None


def _run_control(bug, control, command, options, progress) -> list[AttemptRecord]:
    """Up to options.control_attempts attempts of the control, to its first failure."""
    runs = []
    for k in range(options.control_attempts):
        if progress:
            progress.attempt(control.name, k + 1, options.control_attempts)
        attempt = run_attempt(bug, control, command, timeout=options.timeout, params=options.params,
                              kill_grace=options.kill_grace)
        runs.append(AttemptRecord.of(attempt, variant=control.name))
        if verdict.failed(attempt.outcome):
            break
    return runs


def _run_attempts(bug, variant, command, options, progress, planned: int) -> list[Attempt]:
    attempts: list[Attempt] = []
    for k in range(planned):
        if progress:
            progress.attempt(variant.name, k + 1, planned)
        attempt = run_attempt(bug, variant, command, timeout=options.timeout, params=options.params,
                              kill_grace=options.kill_grace)
        attempts.append(attempt)
        if progress:
            progress.outcome(attempt)
        if attempt.outcome == ERROR or (attempt.matches_bug(bug) and not options.measure):
            break
    return attempts


NO_SPACE = "No space left on device"  # strerror(ENOSPC), as uv and pip print it


def _skipped(record: CellRecord, kind: str, reason: str, started, bug: Bug) -> CellRecord:
    """The record of a cell that could not run here (the bug's own trigger rate, as always)."""
    return _finish(record, verdict.skipped(kind, reason, bug.trigger_rate_lower_bound()), [], started,
                   bug.rate_of())


def _finish(record: CellRecord, decision: Decision, attempts, started, rate_measured: dict) -> CellRecord:
    record.verdict, record.reason, record.attempts = decision.verdict, decision.reason, decision.attempts
    record.outcomes, record.durations = _summary(attempts), [round(a.duration, 3) for a in attempts]
    record.seconds = round(time.monotonic() - started, 2)
    record.skip_kind = decision.skip_kind or None
    record.reproductions = decision.reproductions
    record.trigger_rate_assumed = round(decision.rate_bound, 4)
    record.trigger_rate_measured = rate_measured
    record.confidence = round(decision.confidence, 6) if decision.confidence is not None else None
    # rounded up: a bound rounded down would claim a rate the attempts do not exclude
    record.excludes_rate = (math.ceil(decision.excludes_rate * 1e6) / 1e6
                            if decision.excludes_rate is not None else None)
    record.evidence = _evidence(attempts)
    record.installed = next((a.versions for a in attempts if a.versions), None) or record.installed
    record.gil = gil_summary(attempts) or None
    # what the child really imported, and from where
    record.imported = next((a.evidence.imported for a in attempts if a.evidence.imported), None)
    return record


def gil_summary(attempts: list[Attempt]) -> dict | None:
    """The GIL as the attempts' children saw it at their end: `state` is "off" (a free-threaded build,
    the GIL off in every attempt), "re-enabled" (a free-threaded build where it was on in some
    attempt: an extension turned it back on; not a free-threaded run) or "on" (a default build)."""
    seen = [a.evidence.gil for a in attempts if isinstance(a.evidence.gil, dict)]
    if not seen:
        return None
    free_threaded = any(g.get("free_threaded_build") for g in seen)
    on = sum(bool(g.get("enabled", True)) for g in seen)
    state = "on" if not free_threaded else ("re-enabled" if on else "off")
    return {"state": state, "free_threaded_build": free_threaded, "abiflags": seen[0].get("abiflags", ""),
            "attempts_with_gil": on, "attempts_seen": len(seen)}


def _evidence(attempts: list[Attempt]) -> list[AttemptRecord]:
    """Full evidence of the first attempt of each non-clean outcome, a line for the rest."""
    kept, seen = [], set()
    for index, attempt in enumerate(attempts, 1):
        if attempt.outcome == CLEAN or attempt.outcome in seen:
            continue
        seen.add(attempt.outcome)
        kept.append(AttemptRecord.of(attempt, attempt=index))
    return kept
