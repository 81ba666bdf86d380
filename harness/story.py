"""A bug's story from its cell records: where it was present over the releases, per Python.

Releases are ordered as versions (packaging.version: 3.2.0 before 3.17.1), then by date. Each
row (one Python, one trigger variant) has the points its records tested, the spans where the
bug was present, and the transitions between judged points: `present` (the oldest judged point
already has it), `introduced`, `fixed`, `came back`. Matrix cells and the points of a bisect map
are records alike, so a map makes the timeline dense and its transitions exact.
"""
from __future__ import annotations

from packaging.utils import canonicalize_name

from harness.record import CellRecord, cells, pinned
from harness.verdict import ABSENT, PRESENT
from harness.verdict import judged as is_judged
from harness.versions import python_key, version_key


def releases(record: CellRecord, packages: list) -> tuple:
    """The record's releases of the bug's packages: what was installed, else what was pinned."""
    installed = {canonicalize_name(k): v for k, v in (record.installed or {}).items() if v}
    pins = pinned(record)
    found = []
    for package in packages:
        version = installed.get(canonicalize_name(package)) or pins.get(canonicalize_name(package))
        if version:
            found.append((package, version))
    return tuple(found)


def point_label(point: tuple, short: bool = False) -> str:
    if not point:
        return "no package"  # a stdlib-only variant: the interpreter is the axis
    if short and len(point) == 1:
        return point[0][1]
    return ", ".join(f"{package} {version}" for package, version in point)


def point_key(point: tuple, packages: list) -> tuple:
    versions = dict(point)
    return tuple(version_key(versions[p]) if p in versions else (-1,) for p in packages)


def _date(record: CellRecord) -> str | None:
    """When the point's release came out, as far as the record says: its dependency cutoff."""
    return (record.exclude_newer or "")[:10] or None


def python_of(record: CellRecord) -> str:
    """The interpreter that ran the cell: a matrix cell of "3.11" and a bisect point of "3.11.7" that
    ran on the same 3.11.7 tell one story; a free-threaded build (3.13.5t) tells its own."""
    gil = record.gil or {}
    return (record.python or record.python_requested) + ("t" if gil.get("free_threaded_build") else "")


def _row_key(record: CellRecord) -> tuple:
    return (python_of(record), record.variant)


def build(bug: str, records: list, packages: list) -> dict:
    """The story of one bug from its records (CellRecords, or dicts as a results file holds them):
    the ordered points, one row per (Python, trigger variant), the newest point's verdicts."""
    triggers = [r for r in cells(records) if r.bug == bug and r.role == "trigger"]
    dates: dict = {}
    for r in triggers:
        point = releases(r, packages)
        dates[point] = dates.get(point) or _date(r)
    order = sorted(dates, key=lambda p: (point_key(p, packages), dates[p] or ""))
    columns = [{"point": p, "label": point_label(p), "short": point_label(p, short=True), "date": dates[p]}
               for p in order]
    index = {p: i for i, p in enumerate(order)}
    groups: dict = {}
    for r in sorted(triggers, key=lambda r: r.started_at or ""):  # the newest of a point wins
        groups.setdefault(_row_key(r), {})[index[releases(r, packages)]] = r
    rows = [_row(python, variant, groups[(python, variant)], columns)
            for python, variant in sorted(groups, key=lambda k: (python_key(k[0]), k[1] != "trigger", k[1]))]
    return {"columns": columns, "rows": rows, "newest": _newest(triggers, packages, order)}


def _row(python: str, variant: str, cells: dict, columns: list) -> dict:
    judged = [(i, cells[i].verdict) for i in sorted(cells) if is_judged(cells[i].verdict)]
    return {"python": python, "variant": variant, "cells": cells, "spans": spans(judged),
            "transitions": transitions(judged, columns)}


def spans(judged: list[tuple]) -> list[tuple]:
    """(first, last) column of each run of present points, from judged (column, verdict) pairs."""
    found, start, previous = [], None, None
    for column, verdict in judged:
        if verdict == PRESENT and start is None:
            start = column
        if verdict != PRESENT and start is not None:
            found.append((start, previous))
            start = None
        previous = column
    if start is not None:
        found.append((start, previous))
    return found


def transitions(judged: list[tuple], columns: list) -> list[dict]:
    """Where the verdict changed between judged points, oldest first."""
    if not judged:
        return []
    found = []
    first_column, first_verdict = judged[0]
    if first_verdict == PRESENT:
        found.append(_event("present", None, first_column, columns))  # the event's word, not the verdict
    seen_present = first_verdict == PRESENT
    for (before, old), (after, new) in zip(judged, judged[1:]):
        if old == new:
            continue
        if new == PRESENT:
            found.append(_event("came back" if seen_present else "introduced", before, after, columns))
            seen_present = True
        else:
            found.append(_event("fixed", before, after, columns))
    return found


def _event(kind: str, before: int | None, after: int, columns: list) -> dict:
    at = columns[after]
    event = {"kind": kind, "column": after, "at": at["label"], "short": at["short"], "date": at["date"]}
    if before is None:
        event["text"] = f"present in {at['label']}, the oldest release judged (it may begin earlier)"
        return event
    event["last"] = columns[before]["label"]
    event["untested_between"] = after - before - 1
    old = ABSENT if kind in ("introduced", "came back") else PRESENT
    between = (f"; {event['untested_between']} release(s) of the timeline between them not judged on this Python"
               if event["untested_between"] else "")
    event["text"] = f"{kind} in {at['label']} ({old} in {columns[before]['short']}, the release judged before{between})"
    return event


def _newest(triggers: list[CellRecord], packages: list, order: list) -> dict | None:
    """The newest point's verdicts, by Python."""
    if not order:
        return None
    newest = order[-1]
    verdicts = {}
    for r in sorted(triggers, key=lambda r: python_key(python_of(r))):
        if releases(r, packages) == newest and python_of(r) not in verdicts.get(r.verdict, []):
            verdicts.setdefault(r.verdict, []).append(python_of(r))
    return {"label": point_label(newest), "verdicts": verdicts}


def summary(story: dict) -> str:
    """One line: the transitions of the row with the most judged points."""
    rows = [row for row in story["rows"] if row["transitions"] or row["cells"]]
    if not rows:
        return ""
    row = max(rows, key=lambda r: (sum(is_judged(c.verdict) for c in r["cells"].values()),
                                   r["variant"] == "trigger"))
    if not row["transitions"]:
        verdicts = sorted({c.verdict for c in row["cells"].values()})
        return f"{' / '.join(verdicts)} on every release tested (Python {row['python']})"
    steps = [f"{t['kind']} {t['short']}" for t in row["transitions"]]
    return " → ".join(steps) + f" (Python {row['python']}, {row['variant']})"
