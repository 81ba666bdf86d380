"""One way to run cells: every command (run, verify, bisect, check, bench) and pytest call it.

`run_cells` looks up each cell's bug, gives it the services it needs (started once, on
demand, from a pool the caller may share across calls), runs it to a verdict, shows its
progress and verdict, and hands each record to `keep` as soon as it is final: a finished
cell is kept even if a later one is interrupted.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field, replace

from harness.cell import Cell, Options, run_cell
from harness.record import CellRecord
from harness.registry import get_bug
from harness.services import ServicePool


@dataclass(frozen=True)
class Planned:
    """A cell to run, and what its record should carry besides the verdict."""
    cell: Cell
    expect: tuple = ()            # the verdicts that meet the expectation; () = none declared
    label: str | None = None      # the progress line's text (default: the cell's label)
    extra: dict = field(default_factory=dict, hash=False)  # fields of the record set after the run (CellRecord's names)
    position: tuple | None = None  # (k, n) for the progress line, when the caller counts


def run_cells(cells, options: Options, *, progress=None, keep=None,
              services: ServicePool | None = None) -> list[CellRecord]:
    """Run each cell (a Cell or a Planned) in order; return the records.

    `keep(record)` is called with each final record before the next cell starts.
    `services`: a pool shared with other calls (pytest: one per process); else one for this call."""
    planned = [item if isinstance(item, Planned) else Planned(item) for item in cells]
    records = []
    with ExitStack() as stack:
        pool = services or stack.enter_context(ServicePool())
        for number, item in enumerate(planned, 1):
            record = _run_one(item, options, pool, progress, item.position or (number, len(planned)))
            if keep is not None:
                keep(record)
            records.append(record)
    return records


def _run_one(item: Planned, options: Options, pool: ServicePool, progress, position: tuple) -> CellRecord:
    bug = get_bug(item.cell.bug)
    if progress:
        progress.cell(*position, item.label or item.cell.label)
    record = run_cell(item.cell, replace(options, service_env=pool.env_for(bug.services)), progress)
    record = replace(record, **item.extra)  # an unknown name is a TypeError, not a field lost
    if item.expect:
        record.expected = list(item.expect)
    if progress:
        progress.verdict(record)
    return record
