"""Running a bisect: each point of the axis to a verdict (cached), the search, and its report.

Verdicts are cached per (bug, variant, interpreter, pins, deps date, repro file, options, harness
version), and an entry is used only when it verifies (harness/bisect/cache.py); a point whose entry
is missing or ignored is tested again.

An `absent` point next to a transition is tested again until its clean attempts exclude a per-attempt
rate of stats.LOW_RATE (29 attempts for 10%), and the search goes on from what it says: the first
"fixed" release is where a partly fixed one would pass as fixed on a few attempts.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import replace

from harness import stats
from harness.bisect import cache
from harness.bisect.points import NOT_A_RELEASE, Point
from harness.bisect.search import (
    SKIP,
    Probe,
    first_transition,
    map_history,
    state_of,
    transitions,
)
from harness.cell import Options
from harness.errors import UsageError
from harness.paths import cache_dir
from harness.record import CellRecord, as_cell
from harness.registry import Bug
from harness.runner import Planned, run_cells
from harness.text import duration
from harness.verdict import ABSENT, NOT_INSTALLABLE, PRESENT, SKIPPED

# ---------------------------------------------------------------- verdict cache (harness/bisect/cache.py)

def _not_installable(record: CellRecord) -> bool:
    """Skipped because uv cannot make the env: a rerun fails the same way."""
    return record.verdict == SKIPPED and record.skip_kind == NOT_INSTALLABLE


def _cacheable(record) -> bool:
    """Keep verdicts that a rerun would repeat; not a skip for a missing interpreter or service,
    a local env trouble or a variant that does not apply. (`record`: a CellRecord or its JSON.)"""
    record = as_cell(record)
    return record.verdict != SKIPPED or _not_installable(record)


def summary_of(record: CellRecord) -> cache.PointSummary:
    """A point's summary (a timeline row, a cache entry) from its cell record: the verdict and what
    it cost, the env built or reused."""
    env = record.env or {}
    built = bool(env) and not env.get("reused", True)
    failed_build = _not_installable(record)
    return cache.PointSummary(
        verdict=record.verdict, state=state_of(record.verdict), reason=record.reason or "",
        attempts=record.attempts or 0, reproductions=record.reproductions or 0,
        controls=sum(not c.reused_from for c in record.controls or []),  # run here, not reused
        seconds=record.seconds or 0.0, env_built=built or failed_build, env_failed=failed_build,
        env_seconds=env.get("build_seconds", 0.0), installed=record.installed or {},
        python=record.python, exclude_newer=record.exclude_newer)


@contextmanager
def wheels_only():
    """Install from wheels only (uv's no-build, through a config file): an old release whose
    dependency set of its date has no wheel for this Python fails in a second instead of
    compiling pyarrow or numpy from source for minutes; it is skipped."""
    if os.environ.get("UV_CONFIG_FILE"):  # the user's own uv configuration wins
        yield
        return
    path = cache_dir() / "bisect" / "uv-wheels-only.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[pip]\nno-build = true\n")
    os.environ["UV_CONFIG_FILE"] = str(path)
    try:
        yield
    finally:
        os.environ.pop("UV_CONFIG_FILE", None)


class Tester:
    """Runs points to verdicts through run_cells, with the verdict cache; counts what it cost."""

    def __init__(self, bug: Bug, points: list[Point], options: Options, use_cache: bool = True,
                 on_record=None, progress=None, services=None):
        self.bug, self.points, self.options = bug, points, options
        self.use_cache, self.on_record, self.progress = use_cache, on_record, progress
        self.services = services
        self.counts = {"tested": 0, "from_cache": 0, "env_builds": 0, "env_build_failures": 0, "attempts": 0,
                       "confirmed": 0, "confirmed_from_cache": 0}

    def __call__(self, i: int) -> str:
        state = self._test(i, self.options, self.counts["tested"] + 1, "from_cache")
        self.counts["tested"] += 1
        return state

    def strict(self) -> Options | None:
        """The options of a point next to a transition: excluding stats.LOW_RATE; None when the run's
        own already do (a lower --exclude-rate) or a fixed --attempts budget was asked for."""
        if self.options.attempts or (self.options.exclude_rate or 1.0) <= stats.LOW_RATE:
            return None
        return replace(self.options, exclude_rate=stats.LOW_RATE)

    def confirm(self, i: int) -> str:
        """Test an absent point again with the strict options (see the module's text); its state."""
        strict = self.strict()
        if strict is None:
            return self.points[i].result["state"]
        self.counts["confirmed"] += 1
        return self._test(i, strict, self.counts["tested"], "confirmed_from_cache")

    def _test(self, i: int, options: Options, position: int, cache_count: str) -> str:
        """Run point i with `options` (or read its verdict from the cache: counted as `cache_count`)."""
        point = self.points[i]
        inputs = cache.inputs_of(self.bug, point.cell, options)
        entry = cache.read(inputs) if self.use_cache else None
        if entry is not None:
            self.counts[cache_count] += 1
            point.result = {**entry.to_json(), "cached": True}
        else:
            deps_as_of = point.cell.exclude_newer or "today"
            planned = Planned(point.cell, label=f"{point.cell.label} (deps as of {deps_as_of})",
                              position=(position, len(self.points)))
            record, = run_cells([planned], options, progress=self.progress, keep=self.on_record,
                                services=self.services)
            entry = summary_of(record)
            if _cacheable(record):
                cache.store(inputs, entry)
            self.counts["env_builds"] += entry.env_built
            self.counts["env_build_failures"] += entry.env_failed
            self.counts["attempts"] += entry.attempts + entry.controls
            point.result = {**entry.to_json(), "cached": False}
        return point.result["state"]


# ---------------------------------------------------------------- running and reporting

MODES = {"first-fixed": (PRESENT, ABSENT), "first-bad": (ABSENT, PRESENT), "map": None}
STRIDE_NOTE = ("points between two tested ones with the same verdict were not tested: a run of fewer than "
               "{stride} points with another verdict inside such a gap can be missed (--stride 1 tests all)")


def run_bisect(bug: Bug, points: list[Point], mode: str, options: Options, stride: int = 3,
               use_cache: bool = True, on_record=None, progress=None, services=None) -> dict:
    """Search the axis; returns the report (timeline, transitions, counts, wall time).
    `services`: the pool the cells take their services from (else started per cell)."""
    if not points:
        raise UsageError("no release in the range can be tested on this interpreter (see the left-out list)")
    if stride < 1:
        raise UsageError("--stride must be at least 1")
    started = time.monotonic()
    tester = Tester(bug, points, options, use_cache, on_record, progress, services)
    probe = Probe(len(points), tester)
    with wheels_only():
        outcome, confirmed = _search(probe, mode, stride), set()
        while _confirm_transitions(probe, tester, confirmed):  # a confirmation that turned present moves the search
            outcome = _search(probe, mode, stride)
    return _report(bug, points, probe, mode, stride, outcome, tester.counts, time.monotonic() - started)


def _search(probe: Probe, mode: str, stride: int) -> dict:
    if mode == "map":
        map_history(probe, stride)
        return {}
    return first_transition(probe, *MODES[mode])


def _confirm_transitions(probe: Probe, tester: Tester, confirmed: set) -> bool:
    """Test each absent point next to a transition again, strictly (once each: `confirmed` holds
    those done); whether any came out otherwise (the search must then go on)."""
    changed = False
    for a, b in transitions(probe):
        for i in (a, b):
            if probe.states[i] == ABSENT and i not in confirmed:
                confirmed.add(i)
                probe.states[i] = tester.confirm(i)
                changed |= probe.states[i] != ABSENT
    return changed


def _transition(points, probe, a, b) -> dict:
    before, after = probe.states[a], probe.states[b]
    kind = "fixed" if (before, after) == (PRESENT, ABSENT) else "introduced"
    return {"kind": kind, "last": points[a].label, "last_verdict": before,
            "first": points[b].label, "first_verdict": after,
            "skipped_between": [points[i].label for i in range(a + 1, b) if probe.states.get(i) == SKIP],
            "untested_between": [points[i].label for i in probe.untested(a, b)]}


def _inferred(probe: Probe, i: int) -> str | None:
    """An untested point between two judged points that agree, with no transition between them."""
    judged = probe.judged()
    before = [j for j in judged if j < i]
    after = [j for j in judged if j > i]
    if before and after and probe.states[before[-1]] == probe.states[after[0]]:
        return probe.states[before[-1]]
    return None


def _report(bug, points, probe, mode, stride, outcome, counts, seconds) -> dict:
    timeline = []
    for i, point in enumerate(points):
        row = {"point": point.label, "date": (point.date or "")[:10] or None, "tested": i in probe.states,
               "order": probe.order.index(i) + 1 if i in probe.states else None}
        row.update(point.result if i in probe.states else {"state": None, "inferred": _inferred(probe, i)})
        timeline.append(row)
    report = {"kind": "bisect", "bug": bug.id, "mode": mode, "points": len(points), "timeline": timeline,
              "counts": counts, "wall_seconds": round(seconds, 1)}
    report["not_judged"] = unjudged_counts(report)
    if mode == "map":
        report["stride"] = stride
        report["transitions"] = [_transition(points, probe, a, b) for a, b in transitions(probe)]
        report["note"] = STRIDE_NOTE.format(stride=stride) if stride > 1 else "every point was tested"
    else:
        limit = math.ceil(math.log2(len(points))) + 2 if len(points) > 1 else 1
        report["budget_without_skips"] = limit
        report["transitions"] = [_transition(points, probe, *outcome["transition"])] if "transition" in outcome else []
        report["problem"] = outcome.get("problem")
        report["note"] = "assumes one transition in the range; use --map when the history may not be monotonic"
    return report


def _short_reason(reason: str) -> str:
    """The telling end of a skip reason: uv's cause, or the control's error."""
    if reason.startswith("cannot install"):
        return "not installable: " + reason.split(": ", 1)[-1][:100]
    if reason.startswith("control"):
        return "control failed: " + reason.rsplit("signature: ", 1)[-1].rstrip(")")[:100]
    return reason[:110]


def _some(labels: list) -> str:
    return ", ".join(labels) if len(labels) <= 8 else f"{', '.join(labels[:3])}, ..., {', '.join(labels[-3:])}"


def left_out_lines(left_out: list) -> list[str]:
    """Left-out releases grouped by reason, a few named per reason (the JSON report has all)."""
    by_reason: dict = {}
    for version, why in left_out:
        by_reason.setdefault(why, []).append(version)
    lines = [f"left out ({sum(1 for _, why in left_out if why != NOT_A_RELEASE)} releases):"]
    for why, versions in by_reason.items():
        lines.append(f"  {why}: {versions[0]}" if why == NOT_A_RELEASE
                     else f"  {why} ({len(versions)}): {_some(versions)}")
    return lines


def unjudged_counts(report: dict) -> dict:
    """Tested points without a verdict for bisecting, by verdict (error, other-failure, skipped, ...)."""
    counts: dict = {}
    for row in report["timeline"]:
        if row["tested"] and row["state"] == SKIP:
            counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
    return counts


def _span_line(timeline: list, judged: list) -> str:
    """The judged range, and that nothing is known outside it: a bug present at the oldest
    judged point appeared there or earlier, not necessarily there."""
    first, last = judged[0], judged[-1]
    line = f"judged points span {first['point']} ({first['state']}) to {last['point']} ({last['state']})"
    before = timeline[:timeline.index(first)]
    if before:
        line += (f"; before {first['point']} nothing was judged ({sum(r['tested'] for r in before)} tested "
                 f"without a verdict, {sum(not r['tested'] for r in before)} untested), so {first['state']} "
                 f"may begin earlier")
    return line


def summary_lines(report: dict) -> list[str]:
    """What the tested points say, without claiming more: unjudged points are named as such."""
    judged = [row for row in report["timeline"] if row["tested"] and row["state"] != SKIP]
    unjudged = unjudged_counts(report)
    lines = []
    if unjudged:
        lines.append(f"not judged: {sum(unjudged.values())} tested points ("
                     + ", ".join(f"{n} {verdict}" for verdict, n in sorted(unjudged.items()))
                     + "), counted neither present nor absent")
    if judged and (unjudged or report["points"] > len(judged)):
        lines.append(_span_line(report["timeline"], judged))
    if report["transitions"] or report.get("problem"):
        return lines
    states = sorted({row["state"] for row in judged})
    if not judged:
        lines.append("no transition: no tested point could be judged")
    elif len(states) == 1:
        lines.append(f"no transition: all {len(judged)} judged points are {states[0]}"
                     + (" (a change among the points not judged cannot be seen)" if unjudged else ""))
    return lines


def render(report: dict, axis: str, left_out: list | None = None) -> str:
    """The report as text: header, timeline, transitions, figures."""
    lines = [f"{report['bug']}: {report['mode']} over {report['points']} {axis}"
             + (f" on Python {report['python']}" if report.get("python") else "")]
    lines.append(f"  {'point':12} {'uploaded':10}  {'verdict':16} {'attempts':>8}  {'#':>3}  note")
    for row in report["timeline"]:
        if row["tested"]:
            verdict = row["verdict"] + (" (cached)" if row.get("cached") else "")
            note = "" if row["state"] != SKIP else _short_reason(row["reason"])
            if row["state"] == PRESENT:
                note = f"reproduced in {row['reproductions']} of {row['attempts']}"
            elif row["state"] == ABSENT:  # every attempt clean: the bound is a function of their count
                note = stats.exclusion_words(stats.excluded_rate(row["attempts"]))
            lines.append(f"  {row['point']:12} {row['date'] or '':10}  {verdict:16} {row['attempts']:>8}  "
                         f"{row['order']:>3}  {note}")
        else:
            guess = f"untested ({row['inferred']}?)" if row.get("inferred") else "untested"
            lines.append(f"  {row['point']:12} {row['date'] or '':10}  {guess}")
    if left_out:
        lines.extend(left_out_lines(left_out))
    if report.get("problem"):
        lines.append(f"no transition found: {report['problem']}")
    for t in report["transitions"]:
        extra = ""
        if t["skipped_between"]:
            extra = (f" (not judged between: {', '.join(t['skipped_between'])}: the change is in one of them"
                     f" or at {t['first']})")
        lines.append(f"{t['kind'].upper():10} between {t['last']} ({t['last_verdict']}) and {t['first']} "
                     f"({t['first_verdict']}){extra}")
    lines.extend(summary_lines(report))
    c = report["counts"]
    lines.append(f"tested {c['tested']} of {report['points']} ({c['from_cache']} from the verdict cache); "
                 f"env builds {c['env_builds']} ({c['env_build_failures']} failed); "
                 f"attempts {c['attempts']}"
                 + (f"; {c['confirmed']} absent next to a transition tested again to exclude "
                    f">= {stats.percent(stats.LOW_RATE)} ({c.get('confirmed_from_cache', 0)} from the cache)"
                    if c.get("confirmed") else "")
                 + f"; wall {duration(report['wall_seconds'])}")
    if report.get("budget_without_skips"):
        lines.append(f"budget without skips: ceil(log2 {report['points']}) + 2 = {report['budget_without_skips']}")
    lines.append(f"note: {report['note']}")
    return "\n".join(lines)
