"""One way to run cells: every command (run, verify, bisect, check, bench) and pytest call it.

`run_cells` looks up each cell's bug, gives it the services it needs (started once, on
demand, from a pool the caller may share across calls), runs it to a verdict, shows its
progress and verdict, and hands each record to `keep` as soon as it is final: a finished
cell is kept even if a later one is interrupted.

Controls are paid once: the cells share a ControlLedger (harness/cell.py; the caller's, to share
it across calls), and of the cells of one bug, Python, pins and date the controls' own cells run
first, so a present trigger of the same env reuses their attempts instead of running its controls
again. The records come back in the order the cells were given.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field, replace

from harness.cell import Cell, ControlLedger, Options, run_cell
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
              services: ServicePool | None = None, ledger: ControlLedger | None = None) -> list[CellRecord]:
    """Run each cell (a Cell or a Planned), controls first in their group (see the module's text);
    return the records in the order given.

    `keep(record)` is called with each final record before the next cell starts.
    `services`: a pool shared with other calls (pytest: one per process); else one for this call.
    `ledger`: the controls run so far, shared with other calls; else one for this call."""
    planned = [item if isinstance(item, Planned) else Planned(item) for item in cells]
    ledger = ledger if ledger is not None else ControlLedger()
    records: dict[int, CellRecord] = {}
    with ExitStack() as stack:
        pool = services or stack.enter_context(ServicePool())
        for number, index in enumerate(controls_first([item.cell for item in planned]), 1):
            item = planned[index]
            record = _run_one(item, options, pool, progress, item.position or (number, len(planned)), ledger)
            if keep is not None:
                keep(record)
            records[index] = record
    return [records[index] for index in sorted(records)]


def controls_first(cells: list[Cell]) -> list[int]:
    """The order to run cells in (their indices): groups of one bug, Python, pins and date in the order
    they first come, and in each group the controls' cells before the triggers' (stable otherwise)."""
    first: dict[tuple, int] = {}
    for index, cell in enumerate(cells):
        first.setdefault(_group(cell), index)
    return sorted(range(len(cells)), key=lambda i: (first[_group(cells[i])], not _is_control(cells[i]), i))


def _group(cell: Cell) -> tuple:
    return cell.bug, cell.python, tuple(cell.pins), cell.exclude_newer


def _is_control(cell: Cell) -> bool:
    variants = get_bug(cell.bug).variants
    return cell.variant in variants and variants[cell.variant].role == "control"


def _run_one(item: Planned, options: Options, pool: ServicePool, progress, position: tuple,
             ledger: ControlLedger) -> CellRecord:
    bug = get_bug(item.cell.bug)
    if progress:
        progress.cell(*position, item.label or item.cell.label)
    record = run_cell(item.cell, replace(options, service_env=pool.env_for(bug.services)), progress, ledger)
    record = replace(record, **item.extra)  # an unknown name is a TypeError, not a field lost
    if item.expect:
        record.expected = list(item.expect)
    if progress:
        progress.verdict(record)
    return record
