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

    [[cells]]                      # a cell that tracks the newest releases (the regression watch)
    python = ["newest"]            # the newest interpreter found here
    pins = ["deltalake==latest"]   # the newest final release on the index, when the cell runs
    expect = "absent"

Matrix files are looked for in `./matrix` of the current directory (a maintainer's own project),
then in the matrix shipped with the harness; a bug's file in an earlier directory wins.

Validated on load: a bad entry is one UsageError naming the file, the entry and the problem.
`discover()` keeps a broken file from hiding the others: it returns the good files and the
problems of the broken ones, as `registry.discover()` does for repro files.
"""
from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from harness.cell import Cell, pins_not_applied
from harness.envs import gitref, interpreters, package_index
from harness.envs.requirements import check_date
from harness.errors import UsageError
from harness.paths import shipped, unique_paths
from harness.registry import all_bugs
from harness.text import did_you_mean, unknown_keys
from harness.verdict import ABSENT, PRESENT, VERDICTS
from harness.versions import LATEST, check_requirement, exact_pin, latest_pin, requirement_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MATRIX_DIR = shipped("matrix")  # the shipped matrix (the repository's matrix/ in a checkout)
TIERS = ("default", "history")  # the default tier is what plain `nox` runs; history is opt-in
NEWEST_PYTHON = "newest"        # python = "newest": the newest interpreter found, when the cell runs
# A pin that tracks the newest release: NAME==latest (extras allowed), resolved from the index.


@dataclass(frozen=True)
class Expected:
    cell: Cell
    expect: tuple  # the verdicts that meet the expectation (usually one)
    exclude_newer_rule: str | None  # "release" is resolved to a date only when the cell runs
    tier: str = "default"


class CellGroup(NamedTuple):
    """The cells of one bug with one declared Python and one set of pins: one pytest collector,
    one nox session (by its concrete Python), one CI job, one tracking issue of the watch.
    A tuple: it sorts, and unpacks as (bug, python, pins)."""
    bug: str
    python: str   # as declared ("newest" stays "newest")
    pins: tuple

    @property
    def name(self) -> str:
        """The pytest node of the group: py3.11-deltalake==0.20.1 (py3.11-default without pins)."""
        return f"py{self.python}-{'-'.join(self.pins) or 'default'}"


def group_of(cell: Cell) -> CellGroup:
    return CellGroup(cell.bug, str(cell.python), tuple(cell.pins))


def cell_groups(cells: list[Expected]) -> dict[CellGroup, list[Expected]]:
    """The cells by group, groups and members in the order given."""
    groups: dict[CellGroup, list[Expected]] = {}
    for expected in cells:
        groups.setdefault(group_of(expected.cell), []).append(expected)
    return groups


def _fail(path: Path, entry: str, problem: str) -> UsageError:
    return UsageError(f"{path.name}: {entry}: {problem}")


def _load_file(path: Path, bugs: dict) -> dict:
    try:
        return _read_file(path, bugs)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a value of a type no check foresaw: still one line
        raise UsageError(f"{path.name}: cannot be loaded: {type(exc).__name__}: {exc}") from None


def _read_file(path: Path, bugs: dict) -> dict:
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path.name}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path.name}: cannot be read: {exc}") from None
    bug = bugs.get(data.get("bug"))
    if bug is None:
        raise _fail(path, "bug", f"unknown bug {data.get('bug')!r}; known: {', '.join(sorted(bugs))}"
                                 f"{did_you_mean(str(data.get('bug')), bugs)}")
    if not _tables(data.get("cells", [])):
        raise _fail(path, "cells", "must be an array of tables: [[cells]]")
    if not isinstance(data.get("verify", {}), dict) or not _tables(list(data.get("verify", {}).values())):
        raise _fail(path, "verify", "must be a table of tables: present = { python = ... }")
    cells, first_entry = [], {}
    for number, entry in enumerate(data.get("cells", []), 1):
        for expected in _expand(path, f"cells[{number}]", entry, bug):
            key = (expected.cell, expected.exclude_newer_rule)
            if key in first_entry:  # it would run twice, perhaps with two expectations
                raise _fail(path, f"cells[{number}]", f"{expected.cell.label} is already declared by "
                                                     f"cells[{first_entry[key]}]")
            first_entry[key] = number
            cells.append(expected)
    verify = {}
    for role, entry in data.get("verify", {}).items():
        if role not in (PRESENT, ABSENT):
            raise _fail(path, f"verify.{role}", "only 'present' and 'absent' cells can be verified")
        variant = entry.get("variant", "trigger")
        if variant not in bug.variants or bug.variants[variant].role != "trigger":
            raise _fail(path, f"verify.{role}", f"variant must be a trigger variant of {bug.id}, not {variant!r}")
        fields = {k: v for k, v in entry.items() if k != "variant"}
        verify[role] = _expand(path, f"verify.{role}", {**fields, "variants": [variant], "expect": role}, bug)[0]
    return {"bug": bug.id, "cells": cells, "verify": verify}


def _tables(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _expand(path: Path, name: str, entry: dict, bug) -> list[Expected]:
    unknown = unknown_keys(entry, ("python", "pins", "variants", "exclude_newer", "expect", "note", "tier"))
    if unknown:
        raise _fail(path, name, unknown)
    pythons = entry.get("python")
    pythons = [pythons] if isinstance(pythons, str) else pythons
    if not _strings(pythons) or not pythons:
        raise _fail(path, name, "python must be a version or a list of versions, e.g. [\"3.11\"]")
    pins = entry.get("pins", [])
    if not _strings(pins):
        raise _fail(path, name, "pins must be a list of requirements")
    try:
        pins = tuple(check_requirement(p) for p in pins)
    except UsageError as exc:
        raise _fail(path, name, str(exc)) from None
    for pin in pins:
        if gitref.is_git_ref(pin):  # an unknown ref breaks the file now, not the cell when it runs
            try:
                gitref.check(pin, path.parent)
            except UsageError as exc:
                raise _fail(path, name, str(exc)) from None
        if LATEST in pin and not latest_pin(pin):
            raise _fail(path, name, f"{pin!r}: the newest release is pinned as NAME=={LATEST}")
    variants = entry.get("variants", list(bug.variants))
    if not _strings(variants):
        raise _fail(path, name, "variants must be a list of variant names")
    for variant in variants:
        if variant not in bug.variants:
            raise _fail(path, name, f"bug {bug.id} has no variant {variant!r}; it has: {', '.join(bug.variants)}"
                                    f"{did_you_mean(str(variant), bug.variants)}")
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
            check_date(rule if isinstance(rule, str) else repr(rule))
        except UsageError as exc:
            raise _fail(path, name, str(exc)) from None
    if rule == "release" and not any(exact_pin(p) or latest_pin(p) for p in pins):  # latest: resolved to one
        raise _fail(path, name, 'exclude_newer = "release" needs a NAME==VERSION pin: the date is its release\'s')
    for variant in variants:  # a record must not name pins its cell did not install
        not_applied = pins_not_applied(bug, bug.variants[variant], pins)
        if not_applied:
            raise _fail(path, name, f"pins {not_applied}")
    out = []
    for python in pythons:
        for variant in variants:
            role_expect = expect if bug.variants[variant].role == "trigger" else (ABSENT,)
            cell = Cell(bug.id, variant, python, pins, None if rule == "release" else rule,
                        origin=str(path.parent.resolve()))  # where a git: pin's repository is
            out.append(Expected(cell, role_expect, rule, tier))
    return out


def in_tier(expected: Expected, tier: str) -> bool:
    """Whether a cell belongs to the selected tier ("all" selects every tier)."""
    return tier == "all" or expected.tier == tier


def load_file(path: Path) -> dict:
    """One matrix file: {"bug": id, "cells": [Expected], "verify": {"present"|"absent": Expected}}."""
    return _load_file(path, all_bugs())


def matrix_dirs() -> list[Path]:
    """Where matrix files are looked for, first wins: ./matrix, then the shipped matrix."""
    return unique_paths([Path.cwd() / "matrix", MATRIX_DIR])


def discover(directory: Path | None = None) -> tuple[dict[str, dict], dict[str, str]]:
    """Every valid matrix file keyed by bug id, and every broken one: {path: one-line problem}.
    `directory`: that directory only; default: every directory of matrix_dirs().

    One broken file (a TOML slip, a bug whose repro is being written) must not hide the others.
    """
    bugs = all_bugs()
    loaded, broken = {}, {}
    for each in [directory] if directory is not None else matrix_dirs():
        found, problems = _discover_in(each, bugs)
        for bug_id, entry in found.items():
            loaded.setdefault(bug_id, entry)  # an earlier directory's file of the bug wins
        broken.update(problems)
    return loaded, broken


def _discover_in(directory: Path, bugs: dict) -> tuple[dict[str, dict], dict[str, str]]:
    loaded, broken, first_file = {}, {}, {}
    for path in sorted(directory.glob("*.toml")):
        try:
            entry = _load_file(path, bugs)
        except UsageError as exc:
            broken[str(path)] = str(exc)
            continue
        if entry["bug"] in loaded:
            broken[str(path)] = f"{path.name}: bug {entry['bug']} already has a matrix file: {first_file[entry['bug']]}"
            continue
        loaded[entry["bug"]], first_file[entry["bug"]] = entry, path.name
    return loaded, broken


def load(directory: Path | None = None) -> dict[str, dict]:
    """Every matrix file, keyed by bug id; UsageError (the first problem) if any file is broken.

    For checks of the whole matrix (the CI job list); `discover` or `for_bug` for everything else.
    """
    loaded, broken = discover(directory)
    if broken:
        raise UsageError(next(iter(broken.values())))
    return loaded


def claimed_bug(path: Path) -> str:
    """The bug a matrix file is about, even a broken one: its `bug` value, else its name's."""
    try:
        bug = tomllib.loads(path.read_text()).get("bug")
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        bug = None
    return bug if isinstance(bug, str) else path.stem.replace("_", "-")


def for_bug(bug_id: str, directory: Path | None = None) -> dict | None:
    """The bug's matrix entry; None if it has no file; UsageError (one line) if its file is broken."""
    loaded, broken = discover(directory)
    for path, problem in broken.items():
        if claimed_bug(Path(path)) == bug_id:
            raise UsageError(f"the matrix file of {bug_id} is broken: {problem}")
    return loaded.get(bug_id)


def tracks_latest(expected: Expected) -> bool:
    """Whether the cell follows the index: a `NAME==latest` pin or python = "newest"."""
    return expected.cell.python == NEWEST_PYTHON or any(latest_pin(p) for p in expected.cell.pins)


@functools.lru_cache(maxsize=None)
def newest_python() -> str:
    """The newest interpreter (X.Y) the harness finds here; the running one's if it finds none newer."""
    for minor in range(20, interpreters.FLOOR[1] - 1, -1):
        try:
            return interpreters.find(f"3.{minor}").minor
        except UsageError:
            continue
    return "%d.%d" % sys.version_info[:2]


def concrete_python(python: str) -> str:
    """The version a cell runs on: "newest" resolved, any other version as declared."""
    return newest_python() if python == NEWEST_PYTHON else python


def _resolve_pin(pin: str, python: str) -> str:
    """NAME==latest -> NAME==<the newest final release for this Python>; any other pin unchanged."""
    latest = latest_pin(pin)
    if not latest:
        return pin
    try:
        version = interpreters.find(python).version  # Requires-Python is checked against the full version
    except UsageError:
        version = python  # the cell will be skipped for want of the interpreter; resolve for the record
    return f"{latest}=={package_index.newest(requirement_name(latest), version)}"


def resolve(expected: Expected) -> Cell:
    """The cell to run: "newest" and `==latest` resolved from this machine and the index, and an
    exclude_newer rule of "release" turned into a date."""
    python = concrete_python(expected.cell.python)
    pins = tuple(_resolve_pin(p, python) for p in expected.cell.pins)
    cell = Cell(**{**expected.cell.__dict__, "python": python, "pins": pins})
    if expected.exclude_newer_rule != "release":
        return cell
    date = package_index.release_cutoff(cell.pins)
    if date is None:
        raise UsageError(f"{expected.cell.label}: exclude_newer = \"release\" needs a NAME==VERSION pin")
    return Cell(**{**cell.__dict__, "exclude_newer": date})


def declared(expected: Expected, cell: Cell) -> dict:
    """What a tracking cell's record keeps of its declaration: the declared Python and pins stay the
    cell's identity (its row in the report, its history), and what they resolved to is recorded."""
    if not tracks_latest(expected):
        return {}
    releases = {}
    for declared_pin, pin in zip(expected.cell.pins, cell.pins):
        latest = latest_pin(declared_pin)
        if latest:
            releases[requirement_name(latest)] = pin.split("==", 1)[1]
    return {"python_requested": expected.cell.python, "pins": list(expected.cell.pins),
            "resolved": {"python": cell.python, "pins": list(cell.pins), "releases": releases}}


def select(entries: dict, *, bugs=(), pythons=None, tier: str = "default", pins=None) -> list[Expected]:
    """The cells a run takes from matrix entries (as `discover()` returns them), for pytest and nox alike.

    bugs: only these bugs (empty: all); pythons: only cells declared for one of these Pythons
    (python = "newest": the newest found here; None: all); tier: "default", "history" or "all";
    pins: only cells with exactly these pins (an empty list: cells without pins; None: any)."""
    wanted_pins = None if pins is None else sorted(pins)
    return [expected for bug_id, entry in entries.items() if not bugs or bug_id in bugs
            for expected in entry["cells"]
            if (pythons is None or concrete_python(expected.cell.python) in pythons) and in_tier(expected, tier)
            and (wanted_pins is None or sorted(expected.cell.pins) == wanted_pins)]
