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
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from pathlib import Path

from harness.verdict import VERDICTS

SCHEMA = 1
NAMED = ("bug", "variant")  # the record fields that become file names, anchors and table cells
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TEXT, NUMBER, MAPPING, LIST = (str,), (int, float), (dict,), (list,)
# The type of each cell-record field a reader uses (report, table, story, osv, watch); None is always allowed.
FIELD_TYPES = {"kind": TEXT, "role": TEXT, "python_requested": TEXT, "python": TEXT, "reason": TEXT,
               "started_at": TEXT, "host": TEXT, "exclude_newer": TEXT, "failure_kind": TEXT,
               "attempts": (int,), "reproductions": (int,), "confidence": NUMBER, "seconds": NUMBER,
               "pins": LIST, "requirements": LIST, "durations": LIST, "evidence": LIST + MAPPING,
               "controls": LIST, "expected": TEXT + LIST, "installed": MAPPING, "environment": MAPPING,
               "imported": MAPPING, "interpreter": MAPPING, "env": MAPPING, "executor": MAPPING,
               "harness": MAPPING, "gil": MAPPING, "outcomes": MAPPING, "env_diff": MAPPING}
ITEM_TYPES = {"pins": TEXT, "requirements": TEXT, "durations": NUMBER, "expected": TEXT,
              "evidence": MAPPING, "controls": MAPPING}


def plain_name(value) -> bool:
    """A name that is safe as a file name and as text: letters, digits, '.', '_', '-', no '..'."""
    return isinstance(value, str) and PLAIN_NAME.fullmatch(value) is not None and ".." not in value


def problem(record: dict) -> str | None:
    """Why a parsed record must not be read (the field and what is wrong with it), or None."""
    for key in NAMED:
        if record.get(key) is not None and not plain_name(record[key]):
            return f"{key!r} is not a plain name"
    if record.get("kind") != "cell":
        return None  # the readers use cell records only; a bisect report is printed, not read back
    for key, types in FIELD_TYPES.items():
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or isinstance(value, bool):
            return f"{key!r} is a {type(value).__name__}, not a {' or '.join(t.__name__ for t in types)}"
        items = value if isinstance(value, list) else ()
        if key in ITEM_TYPES and any(not isinstance(i, ITEM_TYPES[key]) or isinstance(i, bool) for i in items):
            return f"{key!r} holds an item that is not a {ITEM_TYPES[key][0].__name__}"
    if record.get("verdict") is not None and record["verdict"] not in VERDICTS:
        return "'verdict' is not a known verdict"
    return _nested_problem(record)


def _nested_problem(record: dict) -> str | None:
    """The mappings the outputs read inside a record: installed versions, an attempt's evidence."""
    if any(not isinstance(v, (str, type(None))) for v in (record.get("installed") or {}).values()):
        return "'installed' holds a version that is not a string"
    for attempt in record.get("evidence") if isinstance(record.get("evidence"), list) else ():
        detail = attempt.get("evidence")
        if detail is None:
            continue
        if not isinstance(detail, dict) or not isinstance(detail.get("observation") or {}, dict):
            return "'evidence' holds an attempt whose evidence or observation is not a mapping"
        if not isinstance(detail.get("notes") or [], list) or not isinstance(
                (detail.get("observation") or {}).get("errors") or [], list):
            return "'evidence' holds an attempt whose notes or errors are not a list"
    return None


class ResultWriteError(Exception):
    """A record could not be written; `line` is the record as it would have been written."""

    def __init__(self, path: Path, line: str, cause: OSError):
        super().__init__(f"cannot write the result to {path}: {cause.strerror or cause}")
        self.line = line


def encode(record: dict) -> str:
    return json.dumps({"schema": SCHEMA, **record}, default=str, sort_keys=True)


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
    """Append one record as one line, under a lock, synced: whole or not at all."""
    line = encode(record)
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


def read(path: Path, problems: list | None = None) -> list[dict]:
    """Every complete record of a results file. A line that is not a record (torn by a killed
    writer or a full disk) is stepped over and, if `problems` is given, named there."""
    return [record for _, record in read_numbered(path, problems)]


def read_numbered(path: Path, problems: list | None = None) -> list[tuple[int, dict]]:
    """Like read(), with the line number of each record (for messages that point at it)."""
    records = []
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
            wrong = problem(record)
            if wrong:
                _name(problems, f"{path}:{number}: record whose {wrong}: left out")
                continue
            records.append((number, record))
    return records


def _name(problems: list | None, message: str) -> None:
    if problems is not None:
        problems.append(message)
