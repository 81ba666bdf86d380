"""The regression watch: what changed in a cell since its last recorded run, and the tracking issues.

A cell that tracks the newest releases (`NAME==latest`, python = "newest") gets a new env when a
release comes out. When its verdict then fails its expectation, the record carries `watch`: the
releases it resolved, the verdict of the last recorded run of the same cell, and the env diff
between the two runs (which packages moved, from what to what).

The daily CI job compares its results with the last published ones: per bug and cell group
(one Python and one set of pins) whose verdicts changed, it opens an issue (a verdict that now
fails its expectation), updates it, or closes it (every verdict meets its expectation again).
`plan_requests` computes what would be sent to GitHub; harness.github sends it, with the workflow's token.
"""
from __future__ import annotations

from pathlib import Path

from harness import results
from harness.github import API
from harness.matrix import CellGroup
from harness.record import CellRecord, cell_key, cells, expected_verdicts, unexpected
from harness.text import fenced, inline

LABEL = "repro-watch"  # the label of every tracking issue: how the job finds the ones it opened


# ---------------------------------------------------------------- one cell: its change and the env diff

def previous_record(record: CellRecord, paths: list) -> CellRecord | None:
    """The newest record of the same cell started before `record` (or in its second), in the given files
    or directories; `record` itself is not written yet."""
    key, started = cell_key(record), record.started_at or ""
    found = None
    for file in _jsonl_files(paths):
        for other in cells(r for r in results.read(file) if r.get("kind") == "cell"):
            if other.bug is None or cell_key(other) != key:
                continue
            # started_at has whole seconds: a run of the same second counts as earlier (this record is not written yet)
            at = other.started_at or ""
            if at <= started and (found is None or at >= (found.started_at or "")):
                found = other
    return found


def _jsonl_files(paths: list) -> list[Path]:
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(path.rglob("*.jsonl")))
        elif path.is_file():
            files.append(path)
    return files


def env_of(record: CellRecord) -> dict:
    """Every release the cell's env held (older records: the bug's packages only)."""
    return dict(record.environment or record.installed or {})


def env_diff(before: dict, after: dict) -> dict:
    """Which packages moved between two envs: {"moved": {name: [old, new]}, "added": {...}, "removed": {...}}."""
    return {"moved": {n: [before[n], after[n]] for n in sorted(before) if n in after and before[n] != after[n]},
            "added": {n: after[n] for n in sorted(after) if n not in before},
            "removed": {n: before[n] for n in sorted(before) if n not in after}}


def change_evidence(record: CellRecord, previous: CellRecord | None) -> dict:
    """The evidence of a tracking cell's run: what it resolved, and what changed since the last run."""
    evidence = {"resolved": record.resolved, "previous": None, "env_diff": None}
    if previous is not None:
        evidence["previous"] = {"verdict": previous.verdict, "started_at": previous.started_at,
                                "installed": previous.installed}
        evidence["env_diff"] = env_diff(env_of(previous), env_of(record))
    return evidence


def judge(record: CellRecord, expected, previous_paths: list) -> CellRecord:
    """Complete a matrix cell's record (its expectation is set by run_cells): for a cell that tracks
    the newest releases, the watch evidence (looked up in `previous_paths` before this record is written)."""
    from harness import matrix

    [record] = cells([record])
    if matrix.tracks_latest(expected):
        record.watch = change_evidence(record, previous_record(record, previous_paths))
    return record


def diff_lines(diff: dict | None) -> list[str]:
    if not diff:
        return ["env diff: no earlier run of this cell recorded"]
    lines = [f"  {name}: {old} -> {new}" for name, (old, new) in diff["moved"].items()]
    lines += [f"  {name}: (none) -> {new}" for name, new in diff["added"].items()]
    lines += [f"  {name}: {old} -> (none)" for name, old in diff["removed"].items()]
    return ["env diff since the last run:"] + (lines or ["  (no package moved)"])


def explain(record) -> str:
    """A failed expectation of a tracking cell, for a person: the release, the verdict before, the env diff."""
    [record] = cells([record])
    watch = record.watch or {}
    resolved = watch.get("resolved") or {}
    lines = []
    if resolved:
        releases = ", ".join(f"{n} {v}" for n, v in (resolved.get("releases") or {}).items())
        lines.append(f"resolved: {releases or 'no pin'} on Python {record.python or resolved.get('python')}")
    previous = watch.get("previous")
    if previous:
        lines.append(f"last recorded run ({previous['started_at']}): {previous['verdict']}")
    return "\n".join(lines + diff_lines(watch.get("env_diff")))


# ---------------------------------------------------------------- the tracking issues

def group_key(record: CellRecord) -> CellGroup:
    """The cell group of a record: the bug, the Python and the pins as declared."""
    return CellGroup(record.bug, str(record.python_requested), tuple(record.pins or ()))


def group_title(group: tuple) -> str:
    bug, python, pins = group
    return f"[{LABEL}] {bug}: py{python} {' '.join(pins) or 'default'}"


def changes(current: list[CellRecord], published: list[CellRecord]) -> dict[tuple, list[tuple]]:
    """Per cell group, each cell whose verdict differs from the published one: [(published, current)].
    A cell never published before is a change only when it fails its expectation."""
    before = {cell_key(r): r for r in published}
    changed: dict[tuple, list[tuple]] = {}
    for record in current:
        old = before.get(cell_key(record))
        if (old is None and unexpected(record)) or (old is not None and old.verdict != record.verdict):
            changed.setdefault(group_key(record), []).append((old, record))
    return changed


def issue_payloads(current: list, published: list) -> list[dict]:
    """One payload per cell group whose verdicts changed: the issue to open or update (a cell of the
    group fails its expectation now) or to close (every cell of the group meets it again). The
    records: CellRecords, or dicts as a results file holds them."""
    current, published = cells(current), cells(published)
    payloads = []
    for group, pairs in sorted(changes(current, published).items()):
        members = [r for r in current if group_key(r) == group]
        failing = [r for r in members if unexpected(r)]
        payloads.append({"title": group_title(group), "bug": group[0], "state": "open" if failing else "closed",
                         "labels": [LABEL, group[0]], "body": _body(group, pairs, failing)})
    return payloads


def _body(group: tuple, pairs: list[tuple], failing: list[CellRecord]) -> str:
    bug, python, pins = group
    head = (f"The regression watch saw the verdicts of **{inline(bug)}** change (Python {inline(python)}, "
            f"pins {inline(' '.join(pins) or 'default')}).\n\n"
            + ("**Failing its expectation now.**" if failing else "Every cell meets its expectation again.") + "\n\n"
            "| variant | published | now | expected | installed |\n|---|---|---|---|---|\n")
    rows, details = [], []
    for old, new in pairs:
        installed = ", ".join(f"{k} {v}" for k, v in (new.installed or {}).items() if v) or "-"
        rows.append(f"| {inline(new.variant)} | {inline(old.verdict) if old else '-'} | "
                    f"**{inline(new.verdict)}** | {inline(' or '.join(expected_verdicts(new)) or '-')} | "
                    f"{inline(installed)} |")
        diff = env_diff(env_of(old), env_of(new)) if old else (new.watch or {}).get("env_diff")
        # the reason and the diff come from the record (the child wrote the reason): fenced as text
        details.append(f"### {inline(new.variant)}\n\n"
                       + fenced("\n".join([f"reason: {new.reason}"] + _resolved_lines(new) + diff_lines(diff))))
    return head + "\n".join(rows) + "\n\n" + "\n\n".join(details) + "\n"


def _resolved_lines(record: CellRecord) -> list[str]:
    resolved = record.resolved or {}
    releases = ", ".join(f"{n} {v}" for n, v in (resolved.get("releases") or {}).items())
    return [f"resolved: {releases} on Python {record.python}"] if releases else []


def plan_requests(payloads: list[dict], open_issues: list[dict], repo: str) -> list[dict]:
    """The GitHub REST calls that carry out the payloads, given the open tracking issues
    (`GET /repos/{repo}/issues?labels=repro-watch&state=open`): open a new issue, update an
    open one (its body, and a comment saying what changed), or close one that went back."""
    by_title = {issue["title"]: issue for issue in open_issues if "pull_request" not in issue}
    calls = []
    for payload in payloads:
        issue = by_title.get(payload["title"])
        if payload["state"] == "open" and issue is None:
            calls.append({"method": "POST", "url": f"{API}/repos/{repo}/issues",
                          "json": {"title": payload["title"], "body": payload["body"], "labels": payload["labels"]}})
        elif payload["state"] == "open":
            calls.append({"method": "PATCH", "url": f"{API}/repos/{repo}/issues/{issue['number']}",
                          "json": {"body": payload["body"]}})
            calls.append({"method": "POST", "url": f"{API}/repos/{repo}/issues/{issue['number']}/comments",
                          "json": {"body": "The verdicts changed again:\n\n" + payload["body"]}})
        elif issue is not None:  # back to what is expected
            calls.append({"method": "POST", "url": f"{API}/repos/{repo}/issues/{issue['number']}/comments",
                          "json": {"body": payload["body"]}})
            calls.append({"method": "PATCH", "url": f"{API}/repos/{repo}/issues/{issue['number']}",
                          "json": {"state": "closed", "state_reason": "completed"}})
    return calls


def newest_records(paths: list, sealed: bool = False, problems: list | None = None) -> list[CellRecord]:
    """The newest record of each cell under the given result files or directories (none for none);
    with `sealed`, only records whose seal verifies (harness/seal.py). What is left out is named
    in `problems`."""
    existing = [Path(p) for p in paths if Path(p).exists()]
    if not existing:
        return []
    records, skipped = results.collect(existing, sealed)
    if problems is not None:
        problems.extend(skipped)
    return records
