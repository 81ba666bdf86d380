"""Reports from result files: a README table, a static HTML grid, shields.io badges, a JUnit summary.

The newest record of each cell wins, so re-running a cell updates its row. Every
output is written atomically (temp file + rename). A cell record without a key the outputs
need is left out with one line naming file:line, so one bad record cannot stop a report.
"""
from __future__ import annotations

import html
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import osv, results
from harness.verdict import ABSENT, CRASH, ERROR, HANG, OTHER_FAILURE, PRESENT, SKIPPED

COLOURS = {PRESENT: "#d73a49", ABSENT: "#2ea44f", HANG: "#8250df", CRASH: "#bf3989",
           OTHER_FAILURE: "#e36209", ERROR: "#6a737d", SKIPPED: "#d0d7de"}
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
REQUIRED = ("bug", "variant", "python_requested", "role", "verdict", "attempts", "reason")  # read by every output
# What XML 1.0 cannot hold: C0 controls but tab, newline and CR; lone surrogates; U+FFFE and U+FFFF.
NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def cell_key(record: dict) -> tuple:
    return (record["bug"], record["variant"], record["python_requested"], tuple(record.get("pins") or ()))


def collect(paths: list[Path]) -> tuple[list[dict], list[str]]:
    """The newest cell record per cell from every *.jsonl under the given files or directories,
    and one line per line left out ("file:line: ..."): torn, or a cell record without a key the
    outputs need."""
    files = []
    for path in paths:
        files.extend(sorted(Path(path).rglob("*.jsonl")) if Path(path).is_dir() else [Path(path)])
    newest: dict[tuple, dict] = {}
    skipped = []
    for file in files:
        for line, record in results.read_numbered(file, skipped):
            if record.get("kind") != "cell":
                continue
            missing = [key for key in REQUIRED if record.get(key) is None]
            if missing:
                skipped.append(f"{file}:{line}: cell record without {', '.join(map(repr, missing))}: left out")
                continue
            key = cell_key(record)
            if key not in newest or record.get("started_at", "") >= newest[key].get("started_at", ""):
                newest[key] = record
    records = sorted(newest.values(), key=lambda r: (r["bug"], _pin_label(r), _py_key(r["python_requested"]),
                                                     r["role"] != "trigger", r["variant"]))
    return records, skipped


def _py_key(version: str):
    return tuple(int(x) for x in str(version).split(".") if x.isdigit()) or (0,)


def _python_label(record: dict) -> str:
    """The Python that ran: its version, `t` for a free-threaded build (with the GIL re-enabled: said)."""
    label = str(record.get("python") or record["python_requested"])
    gil = record.get("gil") if isinstance(record.get("gil"), dict) else {}
    if gil.get("free_threaded_build"):
        label += "t" if gil.get("state") == "off" else "t (GIL re-enabled)"
    return label


def _pin_label(record: dict) -> str:
    return " ".join(record.get("pins") or ()) or "default"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    # UTF-8 whatever the locale (the page and the JUnit say so); a lone surrogate becomes \udXXX.
    with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _strength(record: dict) -> str:
    if record["verdict"] == PRESENT:
        return f"{record.get('reproductions', 0)}/{record['attempts']} reproduced"
    if record["verdict"] == ABSENT:
        return f"{record['attempts']} clean, conf {record.get('confidence') or 0:.3f}"
    return f"{record['attempts']} attempts"


def expected_verdicts(record: dict) -> list:
    """What the matrix expected of the cell (none when run outside the matrix)."""
    expected = record.get("expected") or []
    return [expected] if isinstance(expected, str) else list(expected)


def unexpected(record: dict) -> bool:
    expected = expected_verdicts(record)
    return bool(expected) and record["verdict"] not in expected


def _mismatch(record: dict) -> str:
    return f" (expected {' or '.join(expected_verdicts(record))})" if unexpected(record) else ""


def markdown(records: list[dict]) -> str:
    lines = ["| bug | variant | Python | pins | verdict | strength | installed |",
             "|---|---|---|---|---|---|---|"]
    for r in records:
        installed = ", ".join(f"{k} {v}" for k, v in (r.get("installed") or {}).items() if v) or "-"
        lines.append(f"| {r['bug']} | {r['variant']} | {_python_label(r)} | "
                     f"{_pin_label(r)} | **{r['verdict']}**{_mismatch(r)} | {_strength(r)} | {installed} |")
    return "\n".join(lines) + "\n"


def check_readme(readme: Path) -> str:
    """The README's text; ValueError (one line) if it cannot be read or has no results section."""
    try:
        text = readme.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the README {readme}: {exc.strerror or exc}") from None
    if README_START not in text or README_END not in text:
        raise ValueError(f"{readme} has no {README_START} ... {README_END} section")
    return text


def update_readme(readme: Path, table: str) -> None:
    text = check_readme(readme)
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    _write(readme, f"{head}{README_START}\n{table}{README_END}{tail}")


def badge(bug: str, records: list[dict]) -> dict:
    triggers = [r for r in records if r["bug"] == bug and r["role"] == "trigger"]
    present = sum(r["verdict"] == PRESENT for r in triggers)
    absent = sum(r["verdict"] == ABSENT for r in triggers)
    surprises = sum(unexpected(r) for r in records if r["bug"] == bug)
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


def junit(records: list[dict]) -> str:
    suites: dict[str, list[dict]] = {}
    for r in records:
        suites.setdefault(r["bug"], []).append(r)
    root = ET.Element("testsuites")
    for bug, members in suites.items():
        suite = _element(root, "testsuite", name=bug, tests=len(members), failures=sum(map(unexpected, members)),
                         skipped=sum(r["verdict"] == SKIPPED for r in members))
        for r in members:
            classname = f"{bug}.py{r['python_requested']}-{_pin_label(r).replace(' ', '-')}"
            case = _element(suite, "testcase", classname=classname, name=r["variant"], time=r.get("seconds", 0))
            if r["verdict"] == SKIPPED:
                _element(case, "skipped", message=str(r["reason"])[:500])
            elif unexpected(r):
                message = "expected %s, got %s" % (" or ".join(expected_verdicts(r)), r["verdict"])
                _element(case, "failure", r["reason"], message=message)
            _element(case, "system-out", "%s: %s" % (r["verdict"], r["reason"]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _details(records: list[dict]) -> str:
    """Everything a person wants on click: per variant verdict, attempts, confidence, evidence, stacks."""
    parts = []
    for r in records:
        parts.append(f"{r['variant']} ({r['role']}): {r['verdict'].upper()}{_mismatch(r)}\n  {r['reason']}\n"
                     f"  attempts {r['attempts']}, outcomes {r.get('outcomes')}, confidence {r.get('confidence')}\n"
                     f"  installed {r.get('installed')}, python {r.get('python')}, deps as of "
                     f"{r.get('exclude_newer') or 'today'}, {r.get('seconds')} s")
        for ev in r.get("evidence") or []:
            detail = ev.get("evidence", {})
            errors = (detail.get("observation") or {}).get("errors") or []
            parts.append(f"  attempt {ev['attempt']}: {ev['outcome']}: {ev['reason']}")
            if errors:
                parts.append("    errors: " + "; ".join(sorted(set(errors)))[:600])
            if detail.get("stacks"):
                parts.append("    stacks:\n" + detail["stacks"][-3000:])
    return "\n".join(parts)


def _rows(mine: list[dict]) -> list[tuple]:
    """Grid rows: (pins, variant) of each trigger; a control gets a row only where no trigger ran."""
    triggered = {(_pin_label(r), r["python_requested"]) for r in mine if r["role"] == "trigger"}
    rows = {(_pin_label(r), r["variant"]) for r in mine
            if r["role"] == "trigger" or (_pin_label(r), r["python_requested"]) not in triggered}
    return sorted(rows)


def html_page(records: list[dict]) -> str:
    body = []
    for bug in sorted({r["bug"] for r in records}):
        mine = [r for r in records if r["bug"] == bug]
        pythons = sorted({r["python_requested"] for r in mine}, key=_py_key)
        body.append(f'<section class="bug" data-bug="{html.escape(bug)}"><h2>{html.escape(bug)}</h2>'
                    "<table><thead><tr><th>release</th><th>variant</th>" +
                    "".join(f"<th>Python {p}</th>" for p in pythons) + "</tr></thead><tbody>")
        for pins, variant in _rows(mine):
            body.append(f"<tr><th>{html.escape(pins)}</th><th>{html.escape(variant)}</th>")
            for python in pythons:
                here = [r for r in mine if _pin_label(r) == pins and r["python_requested"] == python]
                main = next((r for r in here if r["variant"] == variant), None)
                others = [r for r in here if r["role"] == "control" and r is not main]
                body.append(_grid_cell(main, others))
            body.append("</tr>")
        body.append("</tbody></table></section>")
    legend = "".join(f'<span class="chip" style="background:{c}">{v}</span>' for v, c in COLOURS.items())
    return PAGE.format(legend=legend, body="\n".join(body))


def _grid_cell(main: dict | None, controls: list[dict]) -> str:
    if main is None:
        return '<td class="cell empty"></td>'
    verdict = main["verdict"]
    summary = " ".join(f"{r['variant']}: {r['verdict']}" for r in controls)
    return (f'<td class="cell" tabindex="0" data-verdict="{verdict}" data-variant="{html.escape(main["variant"])}" '
            f'style="background:{COLOURS.get(verdict, "#fff")}" title="{html.escape(_strength(main))}">'
            f'<b>{verdict}</b>{html.escape(_mismatch(main))}<br><small>{html.escape(_strength(main))}'
            f'{"<br>" + html.escape(summary) if summary else ""}</small>'
            f'<pre class="details" hidden>{html.escape(_details([main, *controls]))}</pre></td>')


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Concurrency bug matrix</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 6px 10px; text-align: left; }}
td.cell {{ color: #fff; cursor: pointer; min-width: 9em; }}
td.cell small {{ color: #f6f8fa; }}
.chip {{ color: #fff; padding: 2px 8px; margin-right: 4px; border-radius: 3px; }}
#panel {{ white-space: pre-wrap; background: #f6f8fa; border: 1px solid #ccc; padding: 1em; font: 12px monospace; }}
</style></head><body>
<h1>Concurrency bug matrix</h1><p>{legend}</p>
{body}
<h2>Details</h2><pre id="panel">Click a cell for its attempts, confidence, evidence and stacks.</pre>
<script>
for (const td of document.querySelectorAll("td.cell[data-verdict]")) {{
  td.addEventListener("click", () => {{
    document.getElementById("panel").textContent = td.querySelector(".details").textContent;
  }});
}}
</script></body></html>
"""


def write_all(records: list[dict], out_dir: Path, readme: Path | None) -> dict:
    """Write every output; returns their paths."""
    written = {"html": out_dir / "index.html", "junit": out_dir / "junit.xml"}
    _write(written["html"], html_page(records))
    _write(written["junit"], junit(records))
    for bug in sorted({r["bug"] for r in records}):
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
