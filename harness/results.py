"""Results are data: JSON lines with a schema version, each line appended atomically."""
from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

SCHEMA = 1


def append(path: Path, record: dict) -> None:
    """Append one record as one line with one write, under a lock, synced: never half a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps({"schema": SCHEMA, **record}, default=str, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path) -> list[dict]:
    """Every complete record of a results file (a torn last line from a killed writer is skipped)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("schema") == SCHEMA:
            records.append(record)
    return records
