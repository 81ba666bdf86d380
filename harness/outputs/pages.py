"""The HTML pages: an index (every bug at a glance, and the whole grid) and a page per bug (its
story over the releases, from harness.story), rendered from the jinja2 templates in
harness/templates/ with autoescape on, so record text stays text. A grid cell opens a dialog with
everything its record holds; the views below are what the templates read.
"""
from __future__ import annotations

import platform
from collections import Counter
from datetime import datetime, timezone

from harness import __version__, stats, story
from harness.outputs import badges
from harness.paths import PACKAGE, source_commit
from harness.record import (
    AttemptEvidence,
    AttemptRecord,
    CellRecord,
    cells,
    excluded,
    expected_verdicts,
    mismatch,
    pin_label,
    pins_key,
    python_label,
    strength,
    unexpected,
)
from harness.registry import UPSTREAM_RE, issue_url
from harness.text import safe_name
from harness.verdict import ABSENT, CRASH, ERROR, HANG, OTHER_FAILURE, PRESENT, SKIPPED
from harness.versions import python_key

# Verdict colours by meaning, each at WCAG AA (4.5:1) under the white text of a chip or a grid cell
# (tests/test_page_contrast.py): present red, absent green, the trigger failing otherwise amber
# (other-failure) or its own hue (hang, crash), cannot tell (error, skipped) grey.
CANNOT_TELL = "#656d76"
COLOURS = {PRESENT: "#cf222e", ABSENT: "#1a7f37", HANG: "#8250df", CRASH: "#bf3989",
           OTHER_FAILURE: "#9a6700", ERROR: CANNOT_TELL, SKIPPED: CANNOT_TELL}


def bug_page_name(bug: str) -> str:
    return f"bugs/{safe_name(bug)}.html"


def _environment():
    import jinja2  # parent side only, and only where pages are written

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.globals.update(colours=COLOURS, badge_colours=badges.COLOURS, cannot_tell=CANNOT_TELL)
    return env


def run_info(records: list[CellRecord]) -> dict:
    """Date, commit and host of the runs behind the page, and when and where it was written."""
    started = sorted(r.started_at for r in records if r.started_at)
    commits = sorted({(r.harness or {}).get("commit") or "" for r in records} - {""})
    return {"first": started[0][:16].replace("T", " ") if started else "?",
            "last": started[-1][:16].replace("T", " ") if started else "?",
            "hosts": sorted({r.host or "?" for r in records}),
            "commits": [c[:12] for c in commits],
            "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "written_on": platform.node(), "harness": __version__, "harness_commit": (source_commit() or "")[:12]}


def _metadata(records: list[CellRecord]) -> dict:
    """The records' bugs by id (title, upstream, what it is); a bug of the results may be unknown here."""
    from harness.registry import bugs_of

    return bugs_of(r.bug for r in records)


def upstream_links(entry: str) -> list[dict]:
    """"owner/repo#12 (fix), reported as #13" -> text segments, the references linked to GitHub."""
    parts, repo, at = [], None, 0
    for match in UPSTREAM_RE.finditer(entry):
        repo = match.group(1) or repo
        if repo is None:
            continue
        parts.append({"text": entry[at:match.start()], "href": None})
        parts.append({"text": match.group(), "href": issue_url(repo, match.group(2))})
        at = match.end()
    parts.append({"text": entry[at:], "href": None})
    return [p for p in parts if p["text"]]


def about(bug) -> list[dict]:
    """What the bug is: the first paragraph of its page (repros/<bug>.md), `code` kept as code;
    else the first line of the repro's docstring."""
    text = ""
    page = bug.path.with_suffix(".md")
    if page.is_file():
        paragraphs = [p.strip() for p in page.read_text(errors="replace").split("\n\n")]
        text = next((p for p in paragraphs if p and not p.startswith(("#", "|", "<"))), "")
    if not text:
        doc = (bug.path.read_text(errors="replace").split('"""') + ["", ""])[1].strip()
        text = doc.splitlines()[0].split(": ", 1)[-1] if doc else ""
    return [{"text": piece, "code": i % 2 == 1} for i, piece in enumerate(" ".join(text.split()).split("`"))
            if piece]


def _grid(mine: list[CellRecord], counter: list, dialog_of: dict) -> dict:
    """A bug's grid: rows of (pins, variant) in version order, one column per Python; `dialog_of`
    gets the dialog id of each record shown."""
    pythons = sorted({r.python_requested for r in mine}, key=python_key)
    rows = []
    for pins, variant, _key in _rows(mine):
        cells = []
        for python in pythons:
            here = [r for r in mine if pin_label(r) == pins and r.python_requested == python]
            main = next((r for r in here if r.variant == variant), None)
            controls = [r for r in here if r.role == "control" and r is not main]
            cells.append(cell_view(main, controls, counter) if main else None)
            if main:
                dialog_of[id(main)] = cells[-1]["id"]
        rows.append({"pins": pins, "variant": variant, "cells": cells})
    return {"pythons": pythons, "rows": rows}


def _rows(mine: list[CellRecord]) -> list[tuple]:
    """Grid rows: (pins, variant) of each trigger; a control gets a row only where no trigger ran."""
    triggered = {(pin_label(r), r.python_requested) for r in mine if r.role == "trigger"}
    rows = {(pin_label(r), r.variant): pins_key(r) for r in mine
            if r.role == "trigger" or (pin_label(r), r.python_requested) not in triggered}
    return sorted(((pins, variant, key) for (pins, variant), key in rows.items()),
                  key=lambda row: (row[2], row[1] != "trigger", row[1]))


def cell_view(main: CellRecord, controls: list[CellRecord], counter: list) -> dict:
    """What a grid cell shows, and its dialog: every record of the cell in full."""
    counter.append(1)
    return {"id": f"cell-{len(counter)}", "verdict": main.verdict, "variant": main.variant,
            "strength": strength(main), "mismatch": mismatch(main), "unexpected": unexpected(main),
            "summary": " ".join(f"{r.variant}: {r.verdict}" for r in controls),
            "title": f"{main.bug} · {main.variant} · Python {python_label(main)}"
                     f" · {pin_label(main)}",
            "records": [record_view(r) for r in [main, *controls]]}


def record_view(r: CellRecord) -> dict:
    expected = expected_verdicts(r)
    return {"heading": f"{r.variant} ({r.role}): {r.verdict.upper()}{mismatch(r)}",
            "verdict": r.verdict, "strength": strength(r), "reason": r.reason,
            "expected": " or ".join(expected) if expected else "", "unexpected": unexpected(r),
            "attempts": r.attempts,
            "outcomes": ", ".join(f"{n} {o}" for o, n in (r.outcomes or {}).items()) or "none",
            "durations": ", ".join(f"{d:.2f}s" for d in r.durations or []) or "-",
            "seconds": r.seconds, "confidence": r.confidence,
            "excludes": stats.exclusion_words(excluded(r)) if excluded(r) is not None else "",
            "evidence": [evidence_view(ev) for ev in r.evidence or []],
            "controls": [control_view(c) for c in r.controls or []],
            "controls_note": _controls_note(r), "env": env_view(r)}


def _controls_note(r: CellRecord) -> str:
    if r.role != "trigger":
        return ""
    if r.controls is None:
        return "controls not recorded"
    return "" if r.controls else "controls not run (they validate a failing trigger only)"


def evidence_view(ev: AttemptRecord) -> dict:
    """One attempt's evidence: exception texts (counted), rows lost, what the repro saw, stacks."""
    detail = ev.evidence or AttemptEvidence()
    observation = dict(detail.observation or {})
    errors = Counter(observation.pop("errors", None) or [])
    lost = observation.pop("lost", None)
    return {"attempt": ev.attempt, "outcome": ev.outcome, "reason": "" if ev.reason is None else ev.reason,
            "duration": ev.duration, "errors": errors.most_common(), "lost": lost,
            "observed": [(k, v) for k, v in observation.items() if v not in (None, [], {}, "")],
            "notes": detail.notes or [], "hang_evidence": detail.hang_evidence,
            "signal": detail.signal, "stacks": stacks_view(detail),
            "output_tail": detail.output_tail or "", "output_bytes": detail.output_bytes}


def stacks_view(detail: AttemptEvidence) -> list[dict]:
    """The child's Python stacks (faulthandler), then the native stacks of every process of the
    attempt (py-spy): the child and the workers it forked."""
    pid = detail.child_pid if detail.child_pid is not None else detail.pid  # in a PID namespace, not its launcher
    child = "" if pid is None and "pid" not in detail.nulls else str(pid)
    threads = detail.threads or {}
    found = []
    if (detail.stacks or "").strip():
        found.append({"title": f"child (pid {child}): Python threads (faulthandler)", "text": detail.stacks})
    for pid, text in (detail.native_stacks or {}).items():
        who = "child" if str(pid) == child else "forked worker"
        count = threads.get(str(pid), threads.get(pid))
        found.append({"title": f"{who} (pid {pid}): native and Python frames (py-spy)"
                               + (f", {count} threads" if count else ""), "text": text or "(no stacks)"})
    return found


def control_view(c: AttemptRecord) -> dict:
    return {"variant": c.variant, "outcome": c.outcome, "reason": "" if c.reason is None else c.reason,
            "duration": c.duration, "reused_from": c.reused_from or ""}


def env_view(r: CellRecord) -> list[tuple]:
    """What the cell ran with: the interpreter, the installed versions, where each import came from."""
    interpreter = r.interpreter or {}
    env = r.env or {}
    imported = {name: ", ".join(f"{m} from {p}" for m, p in ((info or {}).get("modules") or {}).items())
                for name, info in (r.imported or {}).items()}
    rows = [("Python", f"{python_label(r) if r.python else '-'} (asked for {r.python_requested})"
             + (f", {interpreter.get('path')} ({interpreter.get('source')})" if interpreter else "")),
            ("installed", ", ".join(f"{k} {v}" for k, v in (r.installed or {}).items()) or "-"),
            ("requirements", " ".join(r.requirements or []) or "-"),
            ("dependencies as of", r.exclude_newer or "today (no cutoff)"),
            ("env", ("reused" if env.get("reused") else f"built in {env.get('build_seconds')}s") if env else "-"),
            ("executor", (r.executor or {}).get("kind", "local")),
            ("host", r.host or "-"), ("started", r.started_at or "-")]
    rows += [(f"imported {name}", text) for name, text in imported.items() if text]
    return rows


def _bug_context(bug: str, records: list[CellRecord], known: dict, counter: list) -> dict:
    mine = [r for r in records if r.bug == bug]
    meta = known.get(bug)
    packages = meta.packages if meta else sorted({p for r in mine for p in (r.installed or {})})
    told = story.build(bug, mine, packages)
    dialog_of: dict = {}
    grid = _grid(mine, counter, dialog_of)
    return {"id": bug, "page": bug_page_name(bug), "title": meta.title if meta else "",
            "about": about(meta) if meta else [], "failure_kind": meta.failure_kind if meta else "",
            "packages": packages, "upstream": [upstream_links(u) for u in (meta.upstream if meta else [])],
            "badge": badges.badge(bug, records), "story": told, "summary": story.summary(told),
            "grid": grid, "timeline": timeline_view(told, dialog_of), "cells": len(mine)}


def timeline_view(told: dict, dialog_of: dict) -> list[dict]:
    """Each story row as a track of slots, one per release: its verdict, the present band, the event."""
    rows = []
    for row in told["rows"]:
        events = {t["column"]: t["kind"] for t in row["transitions"]}
        track = []
        for i, column in enumerate(told["columns"]):
            record = row["cells"].get(i)
            track.append({"verdict": record.verdict if record else None, "label": column["label"],
                          "dialog": dialog_of.get(id(record)), "event": events.get(i),
                          "in_span": any(a <= i <= b for a, b in row["spans"]),
                          "span_start": any(a == i for a, _ in row["spans"]),
                          "span_end": any(b == i for _, b in row["spans"])})
        rows.append({"python": row["python"], "variant": row["variant"], "track": track,
                     "transitions": row["transitions"]})
    return rows


def html_pages(records: list) -> dict:
    """{relative path: HTML}: the index and one page per bug."""
    records = cells(records)
    env, known, info = _environment(), _metadata(records), run_info(records)
    bugs = sorted({r.bug for r in records})
    counter: list = []
    contexts = [_bug_context(bug, records, known, counter) for bug in bugs]
    pages = {"index.html": env.get_template("index.html").render(bugs=contexts, run=info, root="",
                                                                 cells=len(records))}
    for context in contexts:
        mine = [r for r in records if r.bug == context["id"]]
        pages[context["page"]] = env.get_template("bug.html").render(bug=context, run=run_info(mine), root="../")
    return pages


def html_page(records: list) -> str:
    """The index page (kept for callers of the single-page report)."""
    return html_pages(records)["index.html"]

