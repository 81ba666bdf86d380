"""The README's results table: a Markdown table of the newest record of each cell, written
between the README's two results markers (and nowhere else)."""
from __future__ import annotations

from pathlib import Path

from harness.files import write_published
from harness.record import cells, expected_verdicts, pin_label, python_label, strength, unexpected
from harness.text import inline

README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"


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
    write_published(readme, f"{head}{README_START}\n{table}{README_END}{tail}", readme.stat().st_mode & 0o777)
