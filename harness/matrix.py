"""The matrix: `matrix/<bug_id>.toml` declares the cells of a bug and the verdict each should give.

    bug = "delta-already-borrowed"

    [verify]                       # the Defects4J check run by `repro verify`
    present = { python = "3.11", pins = ["deltalake==0.20.1"] }
    absent  = { python = "3.11", pins = ["deltalake==1.6.6"] }

    [[cells]]                      # one entry = the cross product of its lists
    python = ["3.10", "3.11"]
    pins = ["deltalake==0.20.1"]   # requirement overrides of the cell
    variants = ["trigger", "control-uri"]   # default: every variant of the bug
    exclude_newer = "release"      # optional: a date, or "release" = the pinned release's date
    expect = "present"             # the trigger's expected verdict (or a list: any of them);
                                   # controls expect "absent"
    tier = "history"               # optional: "default" (run by plain `nox` / `pytest matrix/`)
                                   # or "history" (the long tail of releases: `--tier all`)

Validated on load: a bad entry is one UsageError naming the file, the entry and the problem.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from harness import envs
from harness.cells import VERDICTS, Cell
from harness.errors import UsageError
from harness.registry import ROOT, all_bugs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MATRIX_DIR = ROOT / "matrix"
TIERS = ("default", "history")  # the default tier is what plain `nox` runs; history is opt-in


@dataclass(frozen=True)
class Expected:
    cell: Cell
    expect: tuple  # the verdicts that meet the expectation (usually one)
    exclude_newer_rule: str | None  # "release" is resolved to a date only when the cell runs
    tier: str = "default"


def _fail(path: Path, entry: str, problem: str) -> UsageError:
    return UsageError(f"{path.name}: {entry}: {problem}")


def _load_file(path: Path, bugs: dict) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path.name}: not valid TOML: {exc}") from None
    bug = bugs.get(data.get("bug"))
    if bug is None:
        raise _fail(path, "bug", f"unknown bug {data.get('bug')!r}; known: {', '.join(sorted(bugs))}")
    cells, first_entry = [], {}
    for index, entry in enumerate(data.get("cells", []), 1):
        for expected in _expand(path, f"cells[{index}]", entry, bug):
            key = (expected.cell, expected.exclude_newer_rule)
            if key in first_entry:  # it would run twice, perhaps with two expectations
                raise _fail(path, f"cells[{index}]", f"{expected.cell.label} is already declared by "
                                                     f"cells[{first_entry[key]}]")
            first_entry[key] = index
            cells.append(expected)
    verify = {}
    for role, entry in data.get("verify", {}).items():
        if role not in ("present", "absent"):
            raise _fail(path, f"verify.{role}", "only 'present' and 'absent' cells can be verified")
        variant = entry.get("variant", "trigger")
        if variant not in bug.variants or bug.variants[variant].role != "trigger":
            raise _fail(path, f"verify.{role}", f"variant must be a trigger variant of {bug.id}, not {variant!r}")
        fields = {k: v for k, v in entry.items() if k != "variant"}
        verify[role] = _expand(path, f"verify.{role}", {**fields, "variants": [variant], "expect": role}, bug)[0]
    return {"bug": bug.id, "cells": cells, "verify": verify}


def _expand(path: Path, name: str, entry: dict, bug) -> list[Expected]:
    unknown = set(entry) - {"python", "pins", "variants", "exclude_newer", "expect", "note", "tier"}
    if unknown:
        raise _fail(path, name, f"unknown key(s) {', '.join(sorted(unknown))}")
    pythons = entry.get("python")
    pythons = [pythons] if isinstance(pythons, str) else pythons
    if not isinstance(pythons, list) or not pythons or not all(isinstance(p, str) for p in pythons):
        raise _fail(path, name, "python must be a version or a list of versions, e.g. [\"3.11\"]")
    pins = entry.get("pins", [])
    if not isinstance(pins, list):
        raise _fail(path, name, "pins must be a list of requirements")
    try:
        pins = tuple(envs.check_requirement(p) for p in pins)
    except UsageError as exc:
        raise _fail(path, name, str(exc)) from None
    variants = entry.get("variants", list(bug.variants))
    for variant in variants:
        if variant not in bug.variants:
            raise _fail(path, name, f"bug {bug.id} has no variant {variant!r}; it has: {', '.join(bug.variants)}")
    expect = entry.get("expect")
    expect = tuple(expect) if isinstance(expect, list) else (expect,)
    if not expect or any(e not in VERDICTS for e in expect):
        raise _fail(path, name, f"expect must be one of {', '.join(VERDICTS)} (or a list of them), "
                                f"not {entry.get('expect')!r}")
    tier = entry.get("tier", "default")
    if tier not in TIERS:
        raise _fail(path, name, f"tier must be one of {', '.join(TIERS)}, not {tier!r}")
    rule = entry.get("exclude_newer")
    if rule not in (None, "release"):
        try:
            envs.check_date(rule)
        except UsageError as exc:
            raise _fail(path, name, str(exc)) from None
    out = []
    for python in pythons:
        for variant in variants:
            role_expect = expect if bug.variants[variant].role == "trigger" else ("absent",)
            cell = Cell(bug.id, variant, python, pins, None if rule == "release" else rule)
            out.append(Expected(cell, role_expect, rule, tier))
    return out


def in_tier(expected: Expected, tier: str) -> bool:
    """Whether a cell belongs to the selected tier ("all" selects every tier)."""
    return tier == "all" or expected.tier == tier


def load_file(path: Path) -> dict:
    """One matrix file: {"bug": id, "cells": [Expected], "verify": {"present"|"absent": Expected}}."""
    return _load_file(path, all_bugs())


def load(directory: Path = MATRIX_DIR) -> dict[str, dict]:
    """Every matrix file, keyed by bug id."""
    bugs = all_bugs()
    loaded = {}
    for path in sorted(directory.glob("*.toml")):
        entry = _load_file(path, bugs)
        if entry["bug"] in loaded:
            raise UsageError(f"{path.name}: bug {entry['bug']} already has a matrix file")
        loaded[entry["bug"]] = entry
    return loaded


def resolve(expected: Expected) -> Cell:
    """The cell to run, with an exclude_newer rule of "release" turned into a date."""
    if expected.exclude_newer_rule != "release":
        return expected.cell
    from harness import index
    from harness.registry import get_bug

    bug = get_bug(expected.cell.bug)
    for pin in expected.cell.pins:
        name = envs.requirement_name(pin)
        if name in bug.packages and "==" in pin:
            date = index.release_date_cutoff(name, pin.split("==", 1)[1])
            return Cell(**{**expected.cell.__dict__, "exclude_newer": date})
    raise UsageError(f"{expected.cell.label}: exclude_newer = \"release\" needs an == pin of {bug.packages}")
