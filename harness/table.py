"""The verdict table that ends a run: one line per cell, then one line that sums them up.

bug, variant, Python, releases, verdict, strength, and whether the verdict is the expected one
(the column is left out when no cell had an expectation). On a narrow screen the table fits,
never folds: "NO (expected ...)" becomes "NO", then the strength column goes, then bug, variant
and releases end in an ellipsis; one line per cell at any width. Colour goes only where it is wanted:
never with NO_COLOR, never when the stream is not a terminal (a CI log, a pipe), always with
FORCE_COLOR; rich decides, as it does for every program that uses it.
"""
from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import replace

from harness.record import CellRecord, python_label, record_order, strength, verdicts_of
from harness.verdict import ABSENT, CRASH, ERROR, HANG, NO_INTERPRETER, OTHER_FAILURE, PRESENT, SKIPPED

STYLES = {PRESENT: "bold red", ABSENT: "green", HANG: "bold magenta", CRASH: "bold magenta",
          OTHER_FAILURE: "yellow", ERROR: "bold red reverse", SKIPPED: "dim"}
# Skipped for what this machine lacks (an interpreter, an image's engine): not the cell's fault, so a
# local run does not count it against the expectation; under CI, which must run every cell, it counts.
MACHINE_SKIPS = (NO_INTERPRETER,)
PLAIN_WIDTH = 200  # not a terminal: wide enough that a CI log keeps one line per cell


def releases(record: CellRecord) -> str:
    """What the cell ran against: installed versions of its packages, else its pins."""
    installed = [f"{k} {v}" for k, v in (record.installed or {}).items() if v]
    return ", ".join(installed) or " ".join(record.pins or ()) or "-"


BULKY = ("evidence", "controls", "environment", "imported", "interpreter", "requirements", "durations", "watch")


def plain(record: CellRecord) -> dict:
    """A record as a line of the table needs it, as small plain data (it crosses from pytest-xdist
    workers): its JSON without the attempts' evidence and the env's inventory, the reason cut."""
    kept = replace(record, **dict.fromkeys(BULKY), reason=str(record.reason or "")[:300], nulls=frozenset())
    return kept.to_json()


def row(record: CellRecord, expected=None) -> dict:
    """The table's fields of one record."""
    wanted = verdicts_of(expected if expected is not None else record.expected)
    return {"bug": record.bug, "variant": record.variant,
            "python": python_label(record) if record.python or record.python_requested else "?",
            "python_requested": record.python_requested or "?", "role": record.role or "trigger",
            "pins": list(record.pins or ()), "releases": releases(record), "verdict": record.verdict,
            "strength": _strength(record),
            "expected": wanted, "reason": record.reason or "", "skip_kind": record.skip_kind}


def _strength(record: CellRecord) -> str:
    if record.attempts is None:
        return ""
    said = strength(record) if record.verdict in (PRESENT, ABSENT) else f"{record.attempts} attempts"
    return said + (" (cached)" if record.cached else "")


def rows(records: list, expected=None) -> list[dict]:
    """Rows in the report's order; a record is a CellRecord or its JSON (plain data from a
    pytest-xdist worker); `expected` (one per record, a verdict or a list) overrides the records' own."""
    records = [r if isinstance(r, CellRecord) else CellRecord.from_json(r) for r in records]
    pairs = list(zip(records, expected if expected is not None else [None] * len(records)))
    return [row(record, e) for record, e in sorted(pairs, key=lambda pair: _order(pair[0]))]


def _order(record: CellRecord) -> tuple:
    if None in (record.python_requested, record.role, record.variant):  # not a whole record: by its bug
        return (record.bug or "",)
    return record_order(record)


def skipped_here(r: dict) -> bool:
    """True for a cell this machine could not run (see MACHINE_SKIPS) outside CI: not judged."""
    return (r["verdict"] == SKIPPED and r.get("skip_kind") in MACHINE_SKIPS and SKIPPED not in r["expected"]
            and not os.environ.get("CI"))


def judged(r: dict) -> bool:
    """True if the row's verdict is held against an expectation."""
    return bool(r["expected"]) and not skipped_here(r)


def as_expected(r: dict) -> str | None:
    """"yes", "NO (expected ...)", "skipped here" or None when nothing was expected."""
    if not r["expected"]:
        return None
    if skipped_here(r):
        return "skipped here"
    return "yes" if r["verdict"] in r["expected"] else f"NO (expected {' or '.join(r['expected'])})"


def summary(table_rows: list[dict]) -> str:
    counts = Counter(r["verdict"] for r in table_rows)
    line = f"{len(table_rows)} cell{'s' if len(table_rows) != 1 else ''}: " + ", ".join(
        f"{n} {verdict}" for verdict, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    held = [r for r in table_rows if judged(r)]
    wrong = [r for r in held if r["verdict"] not in r["expected"]]
    if held:
        line += f"; {len(held) - len(wrong)} of {len(held)} as expected"
        if wrong:
            line += f", {len(wrong)} NOT: " + "; ".join(
                f"{r['bug']}[{r['variant']}] py{r['python_requested']}"
                + (f" {r['releases']}" if r["releases"] != "-" else "") for r in wrong[:5])
    here = sum(skipped_here(r) for r in table_rows)
    if here:
        line += f"; {here} not judged (cannot run on this machine)"
    return line


# Dropped in this order while the table is wider than the screen; what is left never folds (a long
# bug, variant or releases cell ends in an ellipsis): one line per cell at any width. "NO (expected
# ...)" is shortened to "NO" first, since the summary line names every cell not as expected.
NARROWING = ("long-expected", "strength")
WHOLE = ("Python", "verdict", "expected")  # never shortened: the others give way first


def verdict_table(records: list[dict], expected=None, width: int | None = None):
    """A rich renderable: the table and its summary line, fitted to `width` columns."""
    from rich.console import Group
    from rich.text import Text

    table_rows = rows(records, expected)
    dropped: list[str] = []
    headers, grid = _grid(table_rows, dropped)
    for step in NARROWING if width else ():
        if _fits(_natural(headers, grid), width):
            break
        dropped.append(step)
        headers, grid = _grid(table_rows, dropped)
    wrong = any(judged(r) and r["verdict"] not in r["expected"] for r in table_rows)
    return Group(_table(headers, grid, width), Text(summary(table_rows), style="bold red" if wrong else "bold"))


def _natural(headers: list[str], grid: list[list]) -> list[int]:
    """Each column's width when nothing is shortened: its longest cell or its header."""
    return [max([len(str(cells[column])) for cells in grid] + [len(name)]) for column, name in enumerate(headers)]


def _fits(natural: list[int], width: int) -> bool:
    gaps = 3 * (len(natural) - 1)  # SIMPLE_HEAD: one space of divider and one of padding each side
    return sum(natural) + gaps <= width


def _fit(headers: list[str], natural: list[int], width: int | None) -> list:
    """Column widths within `width`: WHOLE columns keep theirs, the others share what is left
    (none narrower than 6); None where everything fits as it is."""
    if not width or _fits(natural, width):
        return [None] * len(headers)
    left = width - 3 * (len(headers) - 1) - sum(n for h, n in zip(headers, natural) if h in WHOLE)
    fitted = {i: n for i, (h, n) in enumerate(zip(headers, natural)) if h in WHOLE}
    shrinking = sorted((n, i) for i, (h, n) in enumerate(zip(headers, natural)) if h not in WHOLE)
    for count, (want, column) in enumerate(shrinking):  # the narrowest first: what it leaves goes to the rest
        share = max(6, left // (len(shrinking) - count))
        fitted[column] = min(want, share)
        left -= fitted[column]
    return [fitted[i] for i in range(len(headers))]


def _grid(table_rows: list[dict], dropped: list[str]) -> tuple[list[str], list[list]]:
    """The headers and the cells of each row, without the `dropped` NARROWING steps' columns."""
    from rich.text import Text

    with_expectations = any(r["expected"] for r in table_rows)
    names = [n for n in ("bug", "variant", "Python", "releases", "verdict", "strength") if n not in dropped]
    grid = []
    for r in table_rows:
        fields = {"bug": r["bug"], "variant": r["variant"], "Python": r["python"], "releases": r["releases"],
                  "verdict": Text(r["verdict"], style=STYLES.get(r["verdict"], "")), "strength": r["strength"]}
        cells = [fields[n] for n in names]
        if with_expectations:
            said = as_expected(r)
            if said and said.startswith("NO") and "long-expected" in dropped:
                said = "NO"
            cells.append(Text(said or "-", style="green" if said == "yes" else ("bold red" if said else "dim")))
        grid.append(cells)
    return names + (["expected"] if with_expectations else []), grid


def _table(headers: list[str], grid: list[list], width: int | None):
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left")
    for name, fitted in zip(headers, _fit(headers, _natural(headers, grid), width)):
        table.add_column(name, no_wrap=True, overflow="ellipsis", width=fitted)
    for cells in grid:
        table.add_row(*cells)
    return table


def render(records: list[dict], expected=None, colour: bool = False, width: int = PLAIN_WIDTH) -> str:
    """The table as text: with ANSI colours or plain."""
    import io

    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=colour, no_color=not colour, width=width,
                      color_system="standard" if colour else None, highlight=False, emoji=False)
    console.print(verdict_table(records, expected, width))
    if colour:
        return buffer.getvalue()
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())  # rich pads cells


def wants_colour(stream) -> bool:
    """Colour for a terminal, unless NO_COLOR; FORCE_COLOR forces it (the usual conventions)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def print_table(records: list[dict], stream=None, expected=None, title: str | None = None) -> None:
    """Print the table to `stream` (default stderr), coloured where the stream takes colour."""
    if not records:
        return
    stream = stream or sys.stderr
    colour = wants_colour(stream)
    width = _terminal_width(stream) if colour else PLAIN_WIDTH
    text = render(records, expected, colour, width)
    stream.write((f"\n{title}\n" if title else "\n") + text)
    stream.flush()


def _terminal_width(stream) -> int:
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    return columns if columns >= 40 else PLAIN_WIDTH  # 0: a terminal that does not say its size
