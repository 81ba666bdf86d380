"""The bisect verdict cache: one file per tested point, verified on every read.

An entry is stored under the hash of its `inputs`: what the verdict was computed from (the bug,
variant, interpreter, pins, deps date, the sha256 of the repro file, the options that decide a
verdict, the harness version and this schema). It holds those inputs, the point's summary and
`mac`, an HMAC-SHA256 over the canonical JSON of inputs and summary, keyed with this cache's
secret (`<cache>/verdicts/.key`, 32 random bytes, mode 0600, made on the first store).

read() returns the summary only when the entry is whole and true to its inputs: an entry that is
not JSON, of another schema, computed from other inputs (a file renamed or copied under another
key), with a summary of the wrong shape or a state that does not follow from its verdict, or whose
mac does not verify (a verdict edited from present to absent) is ignored with a note, so the
point is tested again and its entry rewritten. A bad key file is replaced, which voids every entry.

What the mac holds against: edits by hand or by a tool, entries copied from another cache or
machine, torn files. What it does not: the key is a file of the same user, so code under test run
by the local executor could read it and forge an entry (the docker executor does not mount the
cache). `repro bisect --no-cache` tests every point again.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from harness import __version__
from harness.bisect.search import state_of
from harness.files import write_atomically
from harness.paths import cache_dir
from harness.verdict import VERDICTS

SCHEMA = 2
KEY_BYTES = 32
NUMBER = (int, float)


@dataclass(frozen=True)
class PointSummary:
    """What the bisect keeps of a tested point's cell record: its verdict and what it cost. A cache
    entry's summary and (with "point", "tested", "cached") a timeline row of the report are its
    JSON (to_json); from_json reads an untrusted one back, or says why it cannot."""
    verdict: str               #: the cell's verdict (harness.verdict.VERDICTS)
    state: str                 #: what the search makes of it: present, absent or skip (search.state_of)
    reason: str                #: the verdict's reason, in a line
    attempts: int              #: attempts of the cell (0: none ran)
    reproductions: int         #: attempts that showed the bug
    controls: int              #: control runs made for this point (not reused from another cell)
    seconds: float             #: the cell's wall seconds
    env_built: bool            #: an env was built for it (or its build failed), not reused
    env_failed: bool           #: uv could not build its env: not installable, for good
    env_seconds: float         #: seconds the env build took
    installed: dict            #: {package: version} the child saw
    python: str | None         #: the interpreter's full version (None: none ran)
    exclude_newer: str | None  #: the dependency cutoff the cell used (None: today)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data) -> PointSummary:
        """The summary of a JSON object; ValueError naming the first problem."""
        problem = _summary_problem(data)
        if problem:
            raise ValueError(problem)
        return cls(**{f.name: data[f.name] for f in fields(cls)})


# The types each field's annotation names (a bool is no number; None only where `| None` says).
_TYPES = {"str": (str,), "int": (int,), "float": NUMBER, "bool": (bool,), "dict": (dict,), "None": (type(None),)}


def _types(annotation: str) -> tuple:
    return tuple(t for name in annotation.split("|") for t in _TYPES[name.strip()])


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def inputs_of(bug, cell, options) -> dict:
    """What a point's verdict is computed from, as it reads back from JSON."""
    return json.loads(_canonical({
        "schema": SCHEMA, "harness": __version__, "bug": bug.id, "variant": cell.variant,
        "python": cell.python, "pins": sorted(cell.pins), "exclude_newer": cell.exclude_newer,
        "repro": file_digest(bug.path), "confidence": options.confidence, "attempts": options.attempts,
        "max_attempts": options.max_attempts, "timeout": options.timeout, "params": options.params,
        "controls": options.control_attempts,
        # only when asked for: the keys of the entries written before it stay the same
        **({"exclude_rate": options.exclude_rate} if options.exclude_rate else {})}))


def key_of(inputs: dict) -> str:
    return hashlib.sha256(_canonical(inputs).encode()).hexdigest()[:24]


def _directory() -> Path:
    return cache_dir() / "verdicts"


def entry_path(key: str) -> Path:
    return _directory() / f"{key}.json"


def _secret(create: bool) -> bytes | None:
    """This cache's MAC key; made (or remade, if damaged) when `create`, else None if there is none."""
    path = _directory() / ".key"
    damaged = False
    try:
        secret = path.read_bytes()
        if len(secret) == KEY_BYTES:
            return secret
        damaged = True
    except FileNotFoundError:
        pass
    if not create:
        return None
    if damaged:
        _note(f"key file {path} is damaged: replaced, so every cached verdict is tested again")
    path.parent.mkdir(parents=True, exist_ok=True)
    spare = path.with_name(f".key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(secrets.token_bytes(KEY_BYTES))
    try:
        if damaged:
            os.replace(spare, path)
        else:
            os.link(spare, path)  # the first maker's key wins; a concurrent one uses it
    except FileExistsError:
        pass
    finally:
        if spare.exists():
            spare.unlink()
    return path.read_bytes()


def _mac(secret: bytes, inputs: dict, summary: dict) -> str:
    return hmac.new(secret, _canonical({"inputs": inputs, "summary": summary}).encode(), hashlib.sha256).hexdigest()


def _note(text: str) -> None:
    print(f"repro: verdict cache: {text}", file=sys.stderr, flush=True)


def _summary_problem(summary) -> str | None:
    """Why a cached summary cannot be a PointSummary, or None."""
    if not isinstance(summary, dict):
        return "the summary is not a mapping"
    for each in fields(PointSummary):
        value, types = summary.get(each.name), _types(each.type)
        if not isinstance(value, types) or (types != (bool,) and isinstance(value, bool)):
            return f"field {each.name!r} is {type(value).__name__}"
    if summary["verdict"] not in VERDICTS:
        return f"unknown verdict {summary['verdict']!r}"
    if not all(isinstance(k, str) and isinstance(v, (str, type(None))) for k, v in summary["installed"].items()):
        return "field 'installed' is not names to versions"
    if summary["state"] != state_of(summary["verdict"]):
        return f"state {summary['state']!r} does not follow from verdict {summary['verdict']!r}"
    return None


def _entry_problem(entry, inputs: dict, secret: bytes | None) -> str | None:
    if not isinstance(entry, dict) or entry.get("schema") != SCHEMA:
        return "not an entry of this cache's schema"
    if entry.get("inputs") != inputs:
        return "computed from other inputs than its key's"
    problem = _summary_problem(entry.get("summary"))
    if problem:
        return problem
    mac = entry.get("mac")
    if (secret is None or not isinstance(mac, str)
            or not hmac.compare_digest(mac, _mac(secret, inputs, entry["summary"]))):
        return "its mac does not verify (edited, or made with another cache's key)"
    return None


def read(inputs: dict) -> PointSummary | None:
    """The verified summary cached for these inputs, or None (no entry, or one ignored with a note)."""
    path = entry_path(key_of(inputs))
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        _note(f"{path} cannot be read ({exc}): tested again")
        return None
    try:
        entry = json.loads(text)
    except (ValueError, RecursionError):
        entry = None
    problem = _entry_problem(entry, inputs, _secret(create=False))
    if problem:
        _note(f"{path.name} ignored, {problem}: tested again")
        return None
    return PointSummary.from_json(entry["summary"])


def store(inputs: dict, point: PointSummary) -> None:
    """Write the entry for these inputs (replacing any), with its mac."""
    summary = json.loads(_canonical(point.to_json()))
    entry = {"schema": SCHEMA, "inputs": inputs, "summary": summary,
             "mac": _mac(_secret(create=True), inputs, summary)}
    write_atomically(entry_path(key_of(inputs)), json.dumps(entry, indent=1), durable=False)
