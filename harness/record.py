"""The cell record: what one cell's run leaves behind, typed, with one way to and from JSON.

`CellRecord` is the record `cell.run_cell` builds and the runner, the watch and the bisect commands
complete; every output (the README table, the pages, the badges, OSV, the verdict table, the
tracking issues) reads its attributes. `AttemptRecord` is one attempt as a record keeps it (the
first attempt of each outcome that was not clean, or a control), and `AttemptEvidence` what the
parent saw of that attempt's child.

On disk a record is one JSON object (harness/results.py writes a line per record): `to_json()` gives
it, with the schema version, and `from_json()` reads it back. The reader is lenient with what an
older harness wrote (a field it did not know is None, a key this harness does not know is kept in
`extra` and written back as it came) and strict with types: records are untrusted data (the code
under test can reach a results file, anyone can edit one), so a field of a type the readers do not
expect is a RecordError that names it. A field that is None is not written, but for the few the
engine always writes (ALWAYS_WRITTEN: written as null).

For callers written against the dict the record used to be, a record is also a read-only Mapping of
its JSON (`record["verdict"]`); the harness itself reads attributes.

Also here: the record's identity (`cell_key`), the words every output uses for it (`python_label`,
`pin_label`, `strength`, `excluded`) and its expectation (`expected_verdicts`, `unexpected`, `mismatch`), and
`plain_name`, the rule for a field that becomes a file name.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from harness import stats
from harness.verdict import ABSENT, PRESENT, VERDICTS
from harness.versions import exact_pin, pinned_versions, python_key, requirement_name, version_key

SCHEMA = 1  # the version of the results format; a record of a newer one is refused, an older one read leniently
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TEXT, NUMBER, INTEGER, MAPPING, LIST, BOOL = (str,), (int, float), (int,), (dict,), (list,), (bool,)


class RecordError(ValueError):
    """A record that cannot be read: `field` names what is wrong, the message says how."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"{field_name!r} {problem}")
        self.field = field_name


def plain_name(value) -> bool:
    """A name that is safe as a file name and as text: letters, digits, '.', '_', '-', no '..'."""
    return isinstance(value, str) and PLAIN_NAME.fullmatch(value) is not None and ".." not in value


def _check(name: str, value, types: tuple, items: tuple | None = None) -> None:
    """RecordError unless `value` is None or of `types` (a bool is no number), its items of `items`."""
    if value is None:
        return
    if not isinstance(value, types) or (isinstance(value, bool) and types != BOOL):
        raise RecordError(name, f"is a {type(value).__name__}, not a {' or '.join(t.__name__ for t in types)}")
    if items and isinstance(value, list) and any(not isinstance(i, items) or isinstance(i, bool) for i in value):
        raise RecordError(name, f"holds an item that is not a {items[0].__name__}")


class _JsonView(Mapping):
    """`record["key"]` over to_json(), and `record["key"] = value` setting the field (or an unknown
    key), for code written against the dict record; the harness reads and sets attributes."""

    def __getitem__(self, key):
        return self.to_json()[key]

    def __setitem__(self, key, value):
        if key in _known(type(self)):
            setattr(self, key, value)
        else:
            self.extra[key] = value

    def __iter__(self):
        return iter(self.to_json())

    def __len__(self):
        return len(self.to_json())


def _known(cls) -> dict:
    return {f.name: f for f in fields(cls) if f.name not in ("extra", "nulls")}


def _written(obj, always: tuple) -> dict:
    """The JSON of a record type: its fields that are not None (but those in `always` and in
    `obj.nulls`, written as null), then `extra`."""
    data = {}
    for name in _known(type(obj)):
        value = getattr(obj, name)
        if value is not None or name in always or name in obj.nulls:
            data[name] = [_json(v) for v in value] if isinstance(value, list) else _json(value)
    data.update(obj.extra)
    return data


def _json(value):
    return value.to_json() if isinstance(value, _JsonView) else value


def _split(cls, data, where: str) -> tuple[dict, dict, frozenset]:
    """(known fields, unknown keys, known fields that are null) of a JSON object; RecordError if
    it is no object."""
    if not isinstance(data, dict):
        raise RecordError(where, f"is a {type(data).__name__}, not a dict")
    known = _known(cls)
    nulls = frozenset(k for k, v in data.items() if k in known and v is None)
    return {k: v for k, v in data.items() if k in known}, {k: v for k, v in data.items() if k not in known}, nulls


# ---------------------------------------------------------------- what the parent saw of one attempt

EVIDENCE_TYPES = {"pid": INTEGER, "child_pid": INTEGER, "namespace_pids": MAPPING, "threads": MAPPING,
                  "native_stacks": MAPPING, "lingering_processes": LIST,
                  "output_tail": TEXT, "output_bytes": INTEGER, "stacks": TEXT, "signal": INTEGER,
                  "exit_signal_after_result": INTEGER, "hang_evidence": TEXT, "observation": MAPPING,
                  "notes": LIST, "threads_alive": INTEGER, "imported": MAPPING, "gil": MAPPING,
                  "child_duration": NUMBER}


@dataclass
class AttemptEvidence(_JsonView):
    """What the parent saw of one attempt's child: its end, its output, its stacks, its report.

    A field is None when the attempt did not get that far (a child that never started has a pid
    of None and nothing else) or the harness that wrote the record did not record it."""
    pid: int | None = None                     #: the child's session (null: it never started, see not_started)
    child_pid: int | None = None               #: in a PID namespace: the child's own pid (`pid` is its launcher's)
    namespace_pids: dict | None = None         #: in a PID namespace: {pid: the pid the repro saw} of those named
    threads: dict | None = None                #: {pid: thread count} of the attempt's processes (a hang)
    native_stacks: dict | None = None          #: {pid: py-spy's native and Python stacks} (a hang)
    lingering_processes: list | None = None    #: processes that outlived a child that ended in time
    output_tail: str | None = None             #: the last OUTPUT_TAIL bytes of the child's stdout and stderr
    output_bytes: int | None = None            #: how many bytes of output the child wrote in all
    stacks: str | None = None                  #: the child's Python stacks by faulthandler ("" if none)
    signal: int | None = None                  #: the signal that killed the child (a crash)
    exit_signal_after_result: int | None = None  #: a signal that killed it after it wrote its result
    hang_evidence: str | None = None           #: what the repro saw as its stall began (a hang of a hang bug)
    observation: dict | None = None            #: what the variant returned: errors, lost rows, ...
    notes: list | None = None                  #: the repro's ctx.note() lines
    threads_alive: int | None = None           #: threads still running when the variant returned
    imported: dict | None = None               #: {package: its version and where its modules came from}
    gil: dict | None = None                    #: the child's build (free-threaded?, abiflags), GIL on at its end
    child_duration: float | None = None        #: the seconds the child measured itself
    extra: dict = field(default_factory=dict)  #: keys this harness does not know, kept as they came
    nulls: frozenset = field(default=frozenset(), repr=False, compare=False)  #: fields that came as null: written so

    def to_json(self) -> dict:
        return _written(self, ())

    @classmethod
    def not_started(cls) -> AttemptEvidence:
        """The evidence of a child that could not be started: a pid of null, nothing else."""
        return cls(nulls=frozenset({"pid"}))

    @classmethod
    def from_json(cls, data) -> AttemptEvidence:
        known, extra, nulls = _split(cls, data, "evidence")
        for name, types in EVIDENCE_TYPES.items():
            _check(name, known.get(name), types)
        errors = (known.get("observation") or {}).get("errors")
        if errors is not None and not isinstance(errors, list):
            raise RecordError("observation", "holds errors that are not a list")
        return cls(**known, extra=extra, nulls=nulls)


# ---------------------------------------------------------------- one attempt, as a record keeps it

@dataclass
class AttemptRecord(_JsonView):
    """One attempt kept in a cell record: in `evidence` (numbered) or in `controls` (named by variant).

    A control that did not apply to the installed releases has a variant, a "skipped" outcome and
    a reason only."""
    outcome: str | None = None                  #: the attempt's outcome: reproduced, clean, hang, crash, ...
    reason: str | None = None                   #: why, in a line (the child's words, or the parent's)
    duration: float | None = None               #: wall seconds of the attempt, rounded to ms
    evidence: AttemptEvidence | None = None     #: what the parent saw of the child
    versions: dict | None = None                #: {package: version} the child found installed
    attempt: int | None = None                  #: which attempt of the cell (1-based); None for a control
    variant: str | None = None                  #: the control's variant; None for an attempt of the cell
    reused_from: str | None = None              #: a control run once by another cell of the same env and
                                                #: run (its label), reused here, not run again
    extra: dict = field(default_factory=dict)   #: keys this harness does not know, kept as they came
    nulls: frozenset = field(default=frozenset(), repr=False, compare=False)  #: fields that came as null: written so

    def to_json(self) -> dict:
        return _written(self, ())

    @classmethod
    def from_json(cls, data, where: str = "evidence") -> AttemptRecord:
        known, extra, nulls = _split(cls, data, where)
        for name, types in (("outcome", TEXT), ("reason", TEXT), ("duration", NUMBER), ("versions", MAPPING),
                            ("attempt", INTEGER), ("variant", TEXT), ("reused_from", TEXT)):
            _check(name, known.get(name), types)
        if known.get("evidence") is not None:
            try:
                known["evidence"] = AttemptEvidence.from_json(known["evidence"])
            except RecordError as exc:
                raise RecordError(where, f"holds an attempt whose {exc}") from None
        return cls(**known, extra=extra, nulls=nulls)

    @classmethod
    def of(cls, run, **where) -> AttemptRecord:
        """The record of an attempt run (harness.attempt.Attempt); `where`: attempt=N or variant=NAME."""
        return cls(outcome=run.outcome, reason=run.reason, duration=round(run.duration, 3),
                   evidence=run.evidence, versions=run.versions, **where)


# ---------------------------------------------------------------- the cell record

# The type of each field a reader uses; a field not named here is checked by its own type (below).
FIELD_TYPES = {"kind": TEXT, "bug": TEXT, "variant": TEXT, "role": TEXT, "python_requested": TEXT,
               "python": TEXT, "reason": TEXT, "verdict": TEXT, "skip_kind": TEXT,
               "started_at": TEXT, "host": TEXT, "exclude_newer": TEXT, "failure_kind": TEXT,
               "attempts": INTEGER, "reproductions": INTEGER, "confidence": NUMBER, "excludes_rate": NUMBER,
               "seconds": NUMBER,
               "pins": LIST, "requirements": LIST, "durations": LIST, "expected": TEXT + LIST,
               "installed": MAPPING, "environment": MAPPING, "imported": MAPPING, "interpreter": MAPPING,
               "env": MAPPING, "executor": MAPPING, "harness": MAPPING, "gil": MAPPING, "outcomes": MAPPING,
               "trigger_rate_assumed": NUMBER, "trigger_rate_measured": MAPPING, "watch": MAPPING,
               "resolved": MAPPING, "source": MAPPING, "check": MAPPING, "bisect": TEXT, "cached": BOOL,
               "evidence": LIST, "controls": LIST}
ITEM_TYPES = {"pins": TEXT, "requirements": TEXT, "durations": NUMBER, "expected": TEXT,
              "evidence": MAPPING, "controls": MAPPING}
ALWAYS_WRITTEN = ("kind", "exclude_newer", "confidence")  # written as null when None, as run_cell always has


@dataclass
class CellRecord(_JsonView):
    """One cell (bug, variant, Python, pins) run to a verdict, or the reason it could not run.

    Every field but `kind` is None when the record does not say: an older harness wrote it, or the
    cell stopped before that step (a skipped cell has no interpreter, env or attempts)."""
    # the cell
    bug: str | None = None                    #: the bug's id (a plain name: it becomes file names)
    variant: str | None = None                #: the variant run: "trigger", a control, or another
    role: str | None = None                   #: the variant's role: "trigger" or "control"
    python_requested: str | None = None       #: the Python the cell names: "3.11", "3.13t", "debian-trixie:3.13"
    pins: list | None = None                  #: requirement overrides of the cell, e.g. ["deltalake==0.20.1"]
    exclude_newer: str | None = None          #: the dependency cutoff date (uv's exclude-newer); None: today
    failure_kind: str | None = None           #: the bug's kind of failure: exception, hang, crash, ...
    expected: str | list | None = None        #: the verdicts the matrix expected (one or a list; None: none)
    # where and how it ran
    host: str | None = None                   #: the machine's name
    harness: dict | None = None               #: {"version", "commit"} of the harness that ran it
    executor: dict | None = None              #: where the attempts ran: {"kind": "local"} or a container's
    started_at: str | None = None             #: when the cell started, ISO 8601 in UTC, whole seconds
    python: str | None = None                 #: the full version of the interpreter that ran, e.g. "3.11.7"
    interpreter: dict | None = None           #: the interpreter: its path, where it came from, its version
    requirements: list | None = None          #: what was installed: the requirements with the pins applied
    installed: dict | None = None             #: {package: version} of the bug's packages as the child saw them
    environment: dict | None = None           #: {package: version} of every release in the env
    env: dict | None = None                   #: the env: {"build_seconds", "reused"}
    imported: dict | None = None              #: what the child imported of each package, and from where
    gil: dict | None = None                   #: the GIL as the attempts saw it (cell.gil_summary)
    # the verdict
    verdict: str | None = None                #: one of harness.verdict.VERDICTS
    reason: str | None = None                 #: why, in a line
    skip_kind: str | None = None              #: why a skipped cell was skipped: no-interpreter, not-installable, ...
    attempts: int | None = None               #: attempts run (or counted) for the verdict
    reproductions: int | None = None          #: attempts that showed the bug
    confidence: float | None = None           #: for an absent verdict: the chance a present bug would have shown
    excludes_rate: float | None = None        #: for an absent verdict: the smallest per-attempt rate its clean
                                              #: attempts exclude at 95% (2 clean: 0.776); None in older records
    trigger_rate_assumed: float | None = None  #: the trigger-rate lower bound the budget and verdict used
    trigger_rate_measured: dict | None = None  #: the measurement behind it: {"reproduced", "attempts"}
    outcomes: dict | None = None              #: {outcome: count} over the attempts
    durations: list | None = None             #: each attempt's wall seconds
    seconds: float | None = None              #: the cell's wall seconds, env and controls included
    evidence: list | None = None              #: [AttemptRecord]: the first attempt of each outcome but clean
    controls: list | None = None              #: [AttemptRecord] of the trigger's controls ([]: not run)
    # added by those who ran it
    resolved: dict | None = None              #: a tracking cell: the Python and releases "latest" resolved to
    watch: dict | None = None                 #: a tracking cell: what changed since its last run (harness.watch)
    bisect: str | None = None                 #: the bug a bisect ran the cell for
    cached: bool | None = None                #: a bisect point's verdict read from the verdict cache
                                              #: (harness/bisect/cache.py), not run again
    source: dict | None = None                #: repro check: the source tree the package was built from
    check: dict | None = None                 #: repro check: {"find_fix", "exit_code"}
    kind: str = "cell"                        #: what the record is: always "cell"
    extra: dict = field(default_factory=dict)  #: keys this harness does not know, kept as they came
    nulls: frozenset = field(default=frozenset(), repr=False, compare=False)  #: fields that came as null: written so

    def to_json(self) -> dict:
        """The record as one JSON object, with the schema version."""
        return {"schema": SCHEMA, **_written(self, ALWAYS_WRITTEN)}

    @classmethod
    def from_json(cls, data) -> CellRecord:
        """The record of a JSON object; RecordError (naming the field) for a newer schema or a wrong type."""
        if isinstance(data, dict) and isinstance(data.get("schema"), int) and data["schema"] > SCHEMA:
            raise RecordError("schema", f"is {data['schema']}, newer than this harness reads ({SCHEMA})")
        known, extra, nulls = _split(cls, {k: v for k, v in data.items() if k != "schema"}
                              if isinstance(data, dict) else data, "record")
        for name, types in FIELD_TYPES.items():
            _check(name, known.get(name), types, ITEM_TYPES.get(name))
        if known.get("excludes_rate") is not None and not 0 < known["excludes_rate"] <= 1:
            raise RecordError("excludes_rate", "is not a rate between 0 and 1")
        if known.get("verdict") is not None and known["verdict"] not in VERDICTS:
            raise RecordError("verdict", "is not a known verdict")
        if any(not isinstance(v, (str, type(None))) for v in (known.get("installed") or {}).values()):
            raise RecordError("installed", "holds a version that is not a string")
        for name in ("evidence", "controls"):
            if known.get(name) is not None:
                known[name] = [AttemptRecord.from_json(item, name) for item in known[name]]
        return cls(**known, extra=extra, nulls=nulls)


def as_cell(record) -> CellRecord:
    """A record as a CellRecord: one already is, a dict (as a results file holds it) is read."""
    return record if isinstance(record, CellRecord) else CellRecord.from_json(record)


def cells(records) -> list[CellRecord]:
    """Records as CellRecords (see as_cell): what the outputs' entry points take."""
    return [as_cell(r) for r in records]


# ---------------------------------------------------------------- what every output says of a record

def cell_key(record: CellRecord) -> tuple:
    """The cell a record is of: a newer record of the same key replaces it."""
    return (record.bug, record.variant, record.python_requested, tuple(record.pins or ()))


def python_label(record: CellRecord) -> str:
    """The Python that ran: its version, `t` for a free-threaded build (with the GIL re-enabled: said)."""
    record = as_cell(record)
    label = str(record.python or record.python_requested)
    gil = record.gil or {}
    if gil.get("free_threaded_build"):
        label += "t" if gil.get("state") == "off" else "t (GIL re-enabled)"
    return label


def pin_label(record: CellRecord) -> str:
    return " ".join(record.pins or ()) or "default"


def excluded(record: CellRecord) -> float | None:
    """The smallest per-attempt rate an absent record's clean attempts exclude at 95% (None: not
    absent). A record of a harness before `excludes_rate` says it by its attempts: absent means
    every one was clean, so the bound is the same function of their count."""
    if record.verdict != ABSENT:
        return None
    return record.excludes_rate if record.excludes_rate is not None else stats.excluded_rate(record.attempts or 0)


def weakest_exclusion(records) -> float | None:
    """The weakest exclusion (the largest rate) among the absent records, or None: what an output
    that sums several absent cells up (a badge, an OSV release) must still say."""
    rates = [rate for rate in map(excluded, cells(records)) if rate is not None]
    return max(rates) if rates else None


def strength(record: CellRecord) -> str:
    """How strong the verdict is: reproductions of attempts, or what a clean run claims: the
    confidence against the known-bad rate and the smallest rate it excludes at 95%."""
    if record.verdict == PRESENT:
        return f"{record.reproductions or 0}/{record.attempts} reproduced"
    if record.verdict == ABSENT:
        confidence = f"conf {record.confidence:.3f}, " if record.confidence is not None else ""
        return f"{record.attempts} clean, {confidence}{stats.exclusion_words(excluded(record))}"
    return f"{record.attempts} attempts"


def verdicts_of(expected) -> list:
    """An expectation as a list of verdicts: it is one verdict, a list of them, or None (none)."""
    expected = expected or []
    return [expected] if isinstance(expected, str) else list(expected)


def expected_verdicts(record: CellRecord) -> list:
    """What the matrix expected of the cell (none when run outside the matrix)."""
    return verdicts_of(record.expected)


def unexpected(record: CellRecord) -> bool:
    expected = expected_verdicts(record)
    return bool(expected) and record.verdict not in expected


def mismatch(record: CellRecord) -> str:
    return f" (expected {' or '.join(expected_verdicts(record))})" if unexpected(record) else ""


# ---------------------------------------------------------------- the order of records: releases as versions

def pinned(record) -> dict:
    """{package: version} of the record's exact pins; `record`: a CellRecord or its JSON."""
    return pinned_versions(as_cell(record).pins)


def pins_key(record: CellRecord) -> tuple:
    """Orders cells by their pins as versions, package by package (name first)."""
    parts = []
    for pin in sorted(record.pins or (), key=requirement_name):
        exact = exact_pin(pin)
        parts.append((exact[0], version_key(exact[1])) if exact else (pin, (0, "")))
    return tuple(parts)


def record_order(record: CellRecord) -> tuple:
    """Bug, then releases as versions (3.2.0 before 3.17.1), Python, the trigger first (a sort key:
    of dicts as a results file holds them, too)."""
    record = as_cell(record)
    return (record.bug, pins_key(record), python_key(record.python_requested), record.role != "trigger",
            record.variant)
