"""Reports from result files: a README table, HTML pages, shields.io badges, a JUnit summary.

The newest record of each cell wins (results.collect), so re-running a cell updates its row. Every
output is written atomically (temp file + rename) and world-readable. A cell record without
a key the outputs need, or one results.read_numbered() refuses (a wrong-typed field, a bug or
variant that is not a plain name), is left out with one line naming file:line, so one bad record
cannot stop a report nor name a path outside --out. The HTML is an index (every bug at a glance,
and the whole grid) and a page per bug (its story over the releases, from harness.story); the pages come from the jinja2
templates in harness/templates/, and a cell opens a dialog with everything its record holds.
"""
from __future__ import annotations

import json
import platform
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from harness import __version__, osv, story
from harness.files import write_atomically
from harness.paths import PACKAGE, source_commit
from harness.record import (
    AttemptEvidence,
    AttemptRecord,
    CellRecord,
    cells,
    expected_verdicts,
    mismatch,
    pin_label,
    pins_key,
    python_key,
    python_label,
    record_order,  # noqa: F401 - report.record_order, as callers know it
    strength,
    unexpected,
)
from harness.results import collect  # noqa: F401 - report.collect, as callers know it
from harness.text import inline
from harness.verdict import ABSENT, CRASH, ERROR, HANG, OTHER_FAILURE, PRESENT, SKIPPED

COLOURS = {PRESENT: "#d73a49", ABSENT: "#2ea44f", HANG: "#8250df", CRASH: "#bf3989",
           OTHER_FAILURE: "#e36209", ERROR: "#6a737d", SKIPPED: "#d0d7de"}
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
# What XML 1.0 cannot hold: C0 controls but tab, newline and CR; lone surrogates; U+FFFE and U+FFFF.
NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    """Whole or not at all, UTF-8, with `mode` (a page must be readable by a web server)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, text, durable=False, mode=mode)


def markdown(records: list) -> str:
    """The README's table. Every field is record text (untrusted): each cell is text.inline, so no
    `|`, newline, backtick, HTML comment or link in a field can split a cell or end the section."""
    lines = ["| bug | variant | Python | pins | verdict | strength | installed |",
             "|---|---|---|---|---|---|---|"]
    for r in cells(records):
        installed = ", ".join(f"{k} {v}" for k, v in (r.installed or {}).items() if v) or "-"
        expected = " or ".join(inline(e, 40) for e in expected_verdicts(r))
        verdict = f"**{inline(r.verdict)}**" + (f" (expected {expected})" if unexpected(r) else "")
        row = [inline(r.bug), inline(r.variant), inline(python_label(r)), inline(pin_label(r), 1000),
               verdict, inline(strength(r)), inline(installed, 1000)]
        lines.append(f"| {' | '.join(row)} |")
    return "\n".join(lines) + "\n"


def check_readme(readme: Path) -> str:
    """The README's text; ValueError (one line) if it cannot be read or has not exactly one results
    section (a second marker, e.g. one a record once wrote into the table, would misplace the table)."""
    try:
        text = readme.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the README {readme}: {exc.strerror or exc}") from None
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} section")
    if (text.count(README_START) != 1 or text.count(README_END) != 1
            or text.index(README_START) > text.index(README_END)):
        raise ValueError(f"{readme} must have one {README_START} followed by one {README_END}")
    return text


def update_readme(readme: Path, table: str) -> None:
    text = check_readme(readme)
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    _write(readme, f"{head}{README_START}\n{table}{README_END}{tail}", readme.stat().st_mode & 0o777)


def badge(bug: str, records: list) -> dict:
    records = cells(records)
    triggers = [r for r in records if r.bug == bug and r.role == "trigger"]
    present = sum(r.verdict == PRESENT for r in triggers)
    absent = sum(r.verdict == ABSENT for r in triggers)
    surprises = sum(unexpected(r) for r in records if r.bug == bug)
    colour = "red" if surprises else ("orange" if present else "brightgreen")
    message = f"present {present} / absent {absent}" + (f" / {surprises} unexpected" if surprises else "")
    ranged = osv.badge(bug, records)  # where a package's releases decide it: fixed since / newest release
    if ranged:
        message = ranged["message"] + (f" · {surprises} unexpected" if surprises else "")
        colour = "red" if surprises else ranged["color"]
    return {"schemaVersion": 1, "label": bug, "message": message, "color": colour}


def _xml_text(value) -> str:
    """Text XML 1.0 can hold: a character it cannot (NUL, ESC, ...) is written as \\xNN."""
    return NOT_XML.sub(lambda m: m.group().encode("unicode_escape").decode(), str(value))


def _element(parent, tag: str, text: str | None = None, **attrs) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _xml_text(text)
    return element


def junit(records: list) -> str:
    suites: dict[str, list[CellRecord]] = {}
    for r in cells(records):
        suites.setdefault(r.bug, []).append(r)
    root = ET.Element("testsuites")
    for bug, members in suites.items():
        suite = _element(root, "testsuite", name=bug, tests=len(members), failures=sum(map(unexpected, members)),
                         skipped=sum(r.verdict == SKIPPED for r in members))
        for r in members:
            classname = f"{bug}.py{r.python_requested}-{pin_label(r).replace(' ', '-')}"
            seconds = r.seconds if r.seconds is not None or "seconds" in r.nulls else 0
            case = _element(suite, "testcase", classname=classname, name=r.variant, time=seconds)
            if r.verdict == SKIPPED:
                _element(case, "skipped", message=str(r.reason)[:500])
            elif unexpected(r):
                message = "expected %s, got %s" % (" or ".join(expected_verdicts(r)), r.verdict)
                _element(case, "failure", r.reason, message=message)
            _element(case, "system-out", "%s: %s" % (r.verdict, r.reason))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- HTML pages

BADGE_COLOURS = {"red": "#d73a49", "orange": "#e36209", "brightgreen": "#2ea44f"}


def bug_page_name(bug: str) -> str:
    return f"bugs/{safe_name(bug)}.html"


def _environment():
    import jinja2  # parent side only, and only where pages are written

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.globals.update(colours=COLOURS, badge_colours=BADGE_COLOURS)
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


UPSTREAM_RE = re.compile(r"(?:([\w.-]+/[\w.-]+))?#(\d+)")


def upstream_links(entry: str) -> list[dict]:
    """"owner/repo#12 (fix), reported as #13" -> text segments, the references linked to GitHub."""
    parts, repo, at = [], None, 0
    for match in UPSTREAM_RE.finditer(entry):
        repo = match.group(1) or repo
        if repo is None:
            continue
        parts.append({"text": entry[at:match.start()], "href": None})
        parts.append({"text": match.group(), "href": f"https://github.com/{repo}/issues/{match.group(2)}"})
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
            "duration": c.duration}


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
            "badge": badge(bug, records), "story": told, "summary": story.summary(told),
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


def write_all(records: list, out_dir: Path, readme: Path | None) -> dict:
    """Write every output of the records (CellRecords, or dicts as a results file holds them); returns their paths."""
    records = cells(records)
    written = {"html": out_dir / "index.html", "junit": out_dir / "junit.xml"}
    for name, text in html_pages(records).items():
        _write(out_dir / name, text)
        if name != "index.html":
            written[f"page:{name}"] = out_dir / name
    _write(written["junit"], junit(records))
    for bug in sorted({r.bug for r in records}):
        path = out_dir / "badges" / f"{bug}.json"
        _write(path, json.dumps(badge(bug, records), indent=1) + "\n")
        written[f"badge:{bug}"] = path
    written.update(osv.write_all(records, out_dir, readme))  # OSV ranges; the README's badges
    if readme is not None:
        update_readme(readme, markdown(records))
        written["readme"] = readme
    return written


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")
