"""Results are data: JSON lines with a schema version, each record whole on disk or absent.

A record is appended with one locked, synced write; a short write (a full disk) is rolled
back to the file's previous size, so a torn line never stays behind to swallow the next
record, and a failure is a ResultWriteError that carries the record (the caller prints it:
a result is never lost). A file whose last line was torn by a writer killed mid-write is
mended before the next record: that record starts on a line of its own.
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path

SCHEMA = 1


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
            except ValueError:
                record = None
            if not isinstance(record, dict) or record.get("schema") != SCHEMA:
                if problems is not None:
                    problems.append(f"{path}:{number}: not a whole result record of schema {SCHEMA} "
                                    f"(torn or foreign line, skipped): {line[:80]!r}")
                continue
            records.append((number, record))
    return records
