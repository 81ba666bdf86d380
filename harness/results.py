"""Results are data: JSON lines with a schema version, each record whole on disk or absent.

A record is appended with one locked, synced write; a short write (a full disk) is rolled
back to the file's previous size, so a torn line never stays behind to swallow the next
record, and a failure is a ResultWriteError that carries the record (the caller prints it:
a result is never lost). A file whose last line was torn by a writer killed mid-write is
mended before the next record: that record starts on a line of its own.

Records are untrusted data on read: the code under test can reach a results file and anyone can
edit one. read_numbered() steps over a line that is not JSON (also one nested too deep to parse)
and over a record that problem() refuses (a field of a type the readers do not expect, a bug or
variant name that is not a plain name, an unknown verdict), naming file:line and the field, so
one bad line never stops a report and no record field becomes a path outside where one writes.
What a cell record's fields must be is harness.record.CellRecord's to say (from_json); collect()
gives the newest CellRecord of each cell, for every output.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path

from harness import seal
from harness.record import SCHEMA, CellRecord, RecordError, cell_key, plain_name, record_order

NAMED = ("bug", "variant")  # the record fields that become file names, anchors and table cells
REQUIRED = ("bug", "variant", "python_requested", "role", "verdict", "attempts", "reason")  # read by every output


def problem(record: dict) -> str | None:
    """Why a parsed record must not be read (the field and what is wrong with it), or None: a bug or
    variant that is not a plain name, and for a cell record what CellRecord.from_json refuses."""
    for key in NAMED:
        if record.get(key) is not None and not plain_name(record[key]):
            return f"{key!r} is not a plain name"
    if record.get("kind") != "cell":
        return None  # the readers use cell records only; a bisect report is printed, not read back
    try:
        CellRecord.from_json(record)
    except RecordError as exc:
        return str(exc)
    return None


class ResultWriteError(Exception):
    """A record could not be written; `line` is the record as it would have been written."""

    def __init__(self, path: Path, line: str, cause: OSError):
        super().__init__(f"cannot write the result to {path}: {cause.strerror or cause}")
        self.line = line


def encode(record) -> str:
    """One line of JSON: a CellRecord's to_json(), or a dict (a bisect report) with the schema version."""
    return json.dumps(_json(record), default=str, sort_keys=True)


def _json(record) -> dict:
    return record.to_json() if isinstance(record, CellRecord) else {"schema": SCHEMA, **record}


def check_writable(path: Path) -> None:
    """Raise OSError now, before any cell runs, if records could not be appended to `path`.

    Writes nothing that stays: a file that does not exist yet is not created."""
    path = Path(path)
    if path.exists():
        if path.is_dir():
            raise IsADirectoryError(21, "is a directory", str(path))
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        return
    parent = path.parent
    while not parent.exists():  # the directories append() would create: their first existing parent
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(20, "not a directory", str(parent))
    fd, probe = tempfile.mkstemp(dir=parent, prefix=".repro-write-check-")
    os.close(fd)
    os.unlink(probe)


def append(path: Path, record: dict) -> None:
    """Append one record as one line, under a lock, synced: whole or not at all; sealed with this
    process's key (harness/seal.py), which is disclosed for `path` when the process ends."""
    line = json.dumps(seal.seal(_json(record), path), default=str, sort_keys=True)
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ResultWriteError(Path(path), line, exc) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        data = ("\n" if size and _last_byte(fd, size) != b"\n" else "") + line + "\n"
        _write_all(fd, data.encode(), size)
    except OSError as exc:
        raise ResultWriteError(Path(path), line, exc) from None
    finally:
        os.close(fd)


def _last_byte(fd: int, size: int) -> bytes:
    return os.pread(fd, 1, size - 1)


def _write_all(fd: int, data: bytes, size: int) -> None:
    """Write every byte and sync; on any failure cut the file back to `size` and re-raise."""
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(28, "no space left on device (nothing written)")
            view = view[written:]
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        except OSError:
            pass
        raise


def read(path: Path, problems: list | None = None, sealed: bool = False) -> list[dict]:
    """Every complete record of a results file. A line that is not a record (torn by a killed
    writer or a full disk) is stepped over and, if `problems` is given, named there."""
    return [record for _, record in read_numbered(path, problems, sealed)]


def read_numbered(path: Path, problems: list | None = None, sealed: bool = False) -> list[tuple[int, dict]]:
    """Like read(), with the line number of each record (for messages that point at it). With
    `sealed`, a record whose seal does not verify under the keys disclosed for `path` is left out."""
    records = []
    verifier = seal.Verifier(path) if sealed else None
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):  # a 100,000-deep list is not a record either
                record = None
            if not isinstance(record, dict) or record.get("schema") != SCHEMA:
                _name(problems, f"{path}:{number}: not a whole result record of schema {SCHEMA} "
                                f"(torn or foreign line, skipped): {line[:80]!r}")
                continue
            wrong = problem(record) or (verifier and verifier.problem(record))
            if wrong:
                _name(problems, f"{path}:{number}: record whose {wrong}: left out")
                continue
            record.pop(seal.FIELD, None)  # the seal is the line's, checked above when asked: not a field
            records.append((number, record))
    return records


def _name(problems: list | None, message: str) -> None:
    if problems is not None:
        problems.append(message)


def collect(paths: list, sealed: bool = False) -> tuple[list[CellRecord], list[str]]:
    """The newest cell record per cell from every *.jsonl under the given files or directories,
    and one line per line left out ("file:line: ..."): torn, refused by problem(), without a valid
    seal (with `sealed`), or a cell record without a field the outputs need (REQUIRED)."""
    files = []
    for path in paths:
        files.extend(sorted(Path(path).rglob("*.jsonl")) if Path(path).is_dir() else [Path(path)])
    found = []
    skipped = []
    for file in files:
        for line, data in read_numbered(file, skipped, sealed):
            if data.get("kind") != "cell":
                continue
            record = CellRecord.from_json(data)  # read_numbered left out what it refuses
            missing = [key for key in REQUIRED if getattr(record, key) is None]
            if missing:
                skipped.append(f"{file}:{line}: cell record without {', '.join(map(repr, missing))}: left out")
                continue
            found.append(record)
    return newest_per_cell(found), skipped


def newest_per_cell(records) -> list[CellRecord]:
    """The newest record (by started_at; a later one of the same time wins) of each cell, in table order."""
    newest: dict[tuple, CellRecord] = {}
    for record in records:
        key = cell_key(record)
        if key not in newest or (record.started_at or "") >= (newest[key].started_at or ""):
            newest[key] = record
    return sorted(newest.values(), key=record_order)
