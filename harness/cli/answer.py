"""The answer of `repro run`: its exit code and the lines that end it.

A script asks "is the bug in these versions?" and reads the exit code:

    0  absent: every cell ran to `absent` (the bug did not show, with the wanted confidence)
    1  present: a cell reproduced the bug (its controls, when they ran, were clean)
    2  usage error: nothing ran (main.py: every UsageError)
    3  cannot tell: no cell reproduced it and one has no verdict (error, hang, crash,
       other-failure, skipped)
    4  the verdicts are known but the results file could not be written: the records are on stdout

A reader gets the lines: the verdict with the releases it is about, the controls that back a
`present`, where the record went, and what to do next. "What to do" for a present bug names the
release that fixed it, from the bug's matrix file: the oldest release declared `absent` after the
newest declared `present` (the cells CI verifies), as the badges say it from the records.
"""
from __future__ import annotations

from dataclasses import dataclass

from packaging.utils import canonicalize_name

from harness import matrix, osv, stats, story
from harness.errors import UsageError
from harness.record import CellRecord, as_cell, cells, excluded
from harness.registry import Bug, upstream_reference
from harness.verdict import (
    ABSENT,
    CLEAN,
    ENV_BROKEN,
    ERROR,
    NO_INTERPRETER,
    NO_SERVICE,
    NOT_APPLICABLE,
    NOT_INSTALLABLE,
    PRESENT,
    SKIPPED,
    judged,
)
from harness.versions import pinned_versions, version_key

EXIT_ABSENT, EXIT_PRESENT, EXIT_USAGE, EXIT_CANNOT_TELL, EXIT_NOT_WRITTEN = 0, 1, 2, 3, 4
EXIT_WORDS = {EXIT_ABSENT: "absent", EXIT_PRESENT: "present", EXIT_CANNOT_TELL: "cannot tell",
              EXIT_NOT_WRITTEN: "results not written"}
REASON_LIMIT = 200  # characters of a record's reason in the answer: the record has it whole


def exit_code(records: list, written: bool = True) -> int:
    """The run's exit code (see the module's text): a reproduction is the answer even beside a cell
    without a verdict; `absent` needs every cell absent. `records`: CellRecords or their JSON."""
    if not written:
        return EXIT_NOT_WRITTEN
    records = cells(records)
    if any(r.verdict == PRESENT for r in records):
        return EXIT_PRESENT
    if records and all(r.verdict == ABSENT for r in records):
        return EXIT_ABSENT
    return EXIT_CANNOT_TELL


@dataclass(frozen=True)
class Fix:
    """Where the bug's matrix declares it fixed in one package's releases."""
    package: str
    last_bad: str              # the newest release declared present
    first_clean: str | None    # the oldest release declared absent after it; None: still present


def declared_timelines(bug: Bug) -> dict[str, dict]:
    """{package: {release: "present" | "absent"}} of each of the bug's packages whose releases decide
    its verdict in its matrix file (the cells CI verifies: exact pins of trigger cells with one
    expectation, not the ones that follow the index), oldest release first, as osv.py reads records;
    empty without a matrix file, or with a broken one (an answer stands without it)."""
    try:
        entry = matrix.for_bug(bug.id) or {"cells": []}
    except UsageError:
        return {}
    declared = [CellRecord(bug=bug.id, role="trigger", verdict=e.expect[0], installed=pinned_versions(e.cell.pins))
                for e in entry["cells"]
                if len(e.expect) == 1 and bug.variants[e.cell.variant].role == "trigger"
                and not matrix.tracks_latest(e)]
    timelines = {}
    for package in bug.packages:
        timeline = osv.verdicts_by_release(bug.id, canonicalize_name(package), declared)
        if timeline:
            timelines[package] = timeline
    return timelines


def fixed_in(bug: Bug) -> Fix | None:
    """The fix of the first of the bug's packages whose releases decide its verdict in the matrix
    (declared_timelines); None when no matrix cell declares it present."""
    for package, timeline in declared_timelines(bug).items():
        present = [v for v, verdict in timeline.items() if verdict == PRESENT]
        if present:
            after = list(timeline)[list(timeline).index(present[-1]) + 1:]
            return Fix(package, present[-1], after[0] if after else None)
    return None


def upstream_fix(bug: Bug) -> str | None:
    """The bug's last upstream line about a fix (the lines run oldest first; OSV's FIX references)."""
    fixes = [line for line in bug.upstream
             if (found := upstream_reference(line)) and found[0] == "FIX"]
    return fixes[-1] if fixes else None


def _releases(record: CellRecord, bug: Bug) -> str:
    named = [f"{package} {version}" for package, version in story.releases(record, bug.packages)]
    python = record.python or record.python_requested
    return ", ".join(named + [f"Python {python}"])


def _short(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= REASON_LIMIT else text[:REASON_LIMIT - 3] + "..."


def controls_line(record) -> str | None:
    """How the trigger's controls came out ("control-x clean in 2 of 2 attempts"); None for a cell
    that is no trigger, or whose controls were not run because it came out clean."""
    record = as_cell(record)
    if record.role != "trigger" or record.verdict == ABSENT:
        return None
    runs = record.controls or []
    if not runs:
        return "controls: not run (--control-attempts 0, or the bug has none for this variant)"
    parts = []
    for name in dict.fromkeys(r.variant for r in runs):
        outcomes = [r.outcome for r in runs if r.variant == name]
        clean = outcomes.count(CLEAN)
        reused = next((r.reused_from for r in runs if r.variant == name and r.reused_from), None)
        if outcomes == [SKIPPED]:
            parts.append(f"{name} not applicable here")
        else:
            parts.append(f"{name} clean in {clean} of {len(outcomes)} attempts"
                         + (f" (run once, by {reused}, in this env)" if reused else ""))
    return "controls: " + ", ".join(parts)


def _installed_version(record: CellRecord, package: str) -> str | None:
    return dict(story.releases(record, [package])).get(package)


def present_advice(record, bug: Bug) -> str:
    """What to do about a present bug: the release that fixed it, or why none is named."""
    record = as_cell(record)  # or its JSON
    fix, said = fixed_in(bug), upstream_fix(bug)
    upstream = f"; upstream: {said}" if said else ""
    if fix is None:
        return f"no fixed release is known: no cell of its matrix declares a release with the bug{upstream}"
    if fix.first_clean is None:
        return (f"no release of {fix.package} is verified without the bug ({fix.last_bad}, the newest in its "
                f"matrix, has it): avoid what its trigger does (the repro's controls show what avoids it){upstream}")
    mine = _installed_version(record, fix.package)
    if mine and version_key(mine) >= version_key(fix.first_clean):
        return (f"{fix.package} {mine} is not older than {fix.first_clean}, which its matrix verifies without "
                f"the bug: a regression, or conditions the matrix lacks; report it with the record{upstream}")
    return (f"upgrade {fix.package} to {fix.first_clean} or newer: the oldest release its matrix verifies "
            f"without the bug (the newest with it: {fix.last_bad}){upstream}")


# What to do about a cell without a verdict, by its skip kind or verdict.
CANNOT_TELL_ADVICE = {
    NO_INTERPRETER: "install that Python, or choose another --python",
    NOT_INSTALLABLE: "these requirements cannot be installed for this Python: choose other --with pins or --python",
    ENV_BROKEN: "the env build failed on this machine (the record says how): a rerun may pass",
    NOT_APPLICABLE: "the variant does not apply to these releases: choose another --variant",
    NO_SERVICE: "a service the bug needs is not running",
    ERROR: "the repro, a control or the env broke: the record's reason and evidence say which",
}
FAILED_ADVICE = ("the trigger failed without the bug's signature: the record's evidence says how; a rerun "
                 "with more --attempts or a longer --timeout may tell")


def cannot_tell_advice(record) -> str:
    record = as_cell(record)  # or its JSON
    key = record.skip_kind if record.verdict == SKIPPED else record.verdict
    return CANNOT_TELL_ADVICE.get(key, FAILED_ADVICE)


def absent_advice(record) -> str:
    record = as_cell(record)  # or its JSON
    if "below the wanted" in (record.reason or ""):  # verdict.decide: the attempts were capped
        return "the attempts were capped below the wanted confidence: allow more with --max-attempts"
    rate = excluded(record)
    if rate is not None and rate > stats.LOW_RATE:  # a partly fixed release could still have it
        return (f"nothing to do for these versions if the bug is fully fixed in them: {record.attempts} clean "
                f"attempts leave a per-attempt rate below {stats.percent(rate)} possible (a partly fixed release); "
                f"--exclude-rate {stats.LOW_RATE:g} runs {stats.attempts_to_exclude(stats.LOW_RATE)} attempts, "
                f"{stats.exclusion_words(stats.excluded_rate(stats.attempts_to_exclude(stats.LOW_RATE)))}")
    return "nothing to do for these versions"


def answer_lines(records: list, bug: Bug, results_path, written: bool = True) -> list[str]:
    """The lines that end a run: the answer, the controls behind a present, the record, what to do.
    `records`: CellRecords or their JSON."""
    code, records = exit_code(records, written), cells(records)
    main = next((r for r in records if r.verdict == PRESENT), None) \
        or next((r for r in records if not judged(r.verdict)), None) or records[-1]
    lines = [f"answer: {main.verdict.upper()}: {bug.id}[{main.variant}] in {_releases(main, bug)}"
             f" ({_short(main.reason)})"]
    if len(records) > 1:
        lines[0] += f"; {len(records)} cells, see the table above"
    controls = controls_line(main)
    if controls and main.verdict == PRESENT:
        lines.append(controls)
    lines.append(f"record: {results_path}" if written else
                 f"record: on stdout above ({results_path} could not be written)")
    if main.verdict == PRESENT:
        advice = present_advice(main, bug)
    elif main.verdict == ABSENT:
        advice = absent_advice(main)
    else:
        advice = cannot_tell_advice(main)
    lines.append(f"next: {advice} [exit {code}: {EXIT_WORDS[code]}]")
    return lines
