"""Sealed records: every record line the harness writes carries a MAC under a key of its own run.

Threat model. The code under test (a release from the index and its dependencies) runs as the
user who runs the harness. With the local executor it can find the results file (it is under the
current directory, on the harness's command line) and append to it: a forged `absent` record of a
`latest` cell would turn a badge, an OSV range and a tracking issue. The defence:

- The key is made in the harness process (os.urandom, one per process, on its first record) and
  kept in its memory only: never in an environment, an argv or a file while any attempt can run.
  The child's environment is an allow-list (harness.attempt.child_env) and, in a PID namespace
  (harness/pidns.py), it cannot see the harness's /proc entries at all.
- Every record line gets `"seal": {"key": <key id>, "mac": <HMAC-SHA256 of the line without it>}`
  (seal()). The key id is a hash of the key: it names the key without revealing it.
- The key is disclosed only when the process ends (atexit; every attempt, and so every process
  of the code under test, has ended by then): one JSON line appended to `<results file>.keys`
  with the key and the MAC of every record this process sealed into that file. A process killed
  with SIGKILL discloses nothing: its records cannot be verified and are left out, never trusted.
- A reader that asks for it (`repro report --sealed`, `repro matrix watch --sealed`: the CI report
  job does) accepts a record only if its MAC verifies under a key disclosed for its own file and
  that key's disclosure lists the MAC (Verifier). A line the child appended during the run has no
  valid MAC (the key was not yet anywhere); a line sealed with a key disclosed earlier (an
  earlier run, another xdist worker that ended first) is not in that key's list. Each is stepped
  over with a warning.

What this does not stop: code under test that runs with the user's full power on the host (the
local executor) and knows this scheme can append a key line of its own to a `.keys` file, or
rewrite the harness that later runs; no check made by the same user on the same machine stops
that. So in CI the cells that install new, unreviewed releases (`latest`) run in the container
executor: the project, results and `.keys` files included, is mounted read-only there and no host
process is visible, so only the harness can write a record or disclose a key. The cells jobs hold
no write-scoped token, and the report job, which holds the write scopes, reads with --sealed.
"""
from __future__ import annotations

import atexit
import fcntl
import hashlib
import hmac
import json
import os
from pathlib import Path

FIELD = "seal"
KEYS_SUFFIX = ".keys"   # <results file>.keys: the keys disclosed for that file, one JSON line per process
_key: bytes | None = None
_sealed: dict[str, list[str]] = {}   # results file -> the MACs this process sealed into it


def keys_file(results_file) -> Path:
    return Path(str(results_file) + KEYS_SUFFIX)


def key_id(key: bytes) -> str:
    return hashlib.sha256(b"repro-record-key-id:" + key).hexdigest()[:32]


def canonical(data: dict) -> str:
    """The one text a record is sealed and verified as: its JSON without the seal, keys sorted."""
    return json.dumps({k: v for k, v in data.items() if k != FIELD}, default=str, sort_keys=True)


def mac(key: bytes, data: dict) -> str:
    return hmac.new(key, canonical(data).encode(), hashlib.sha256).hexdigest()


def seal(data: dict, results_file) -> dict:
    """`data` with the seal of this process's key, remembered for the disclosure to `results_file`'s keys."""
    global _key
    if _key is None:
        _key = os.urandom(32)
        atexit.register(disclose)
    data = json.loads(canonical(data))  # what the line will hold, so the MAC is over exactly that
    code = mac(_key, data)
    _sealed.setdefault(os.path.abspath(results_file), []).append(code)
    return {**data, FIELD: {"key": key_id(_key), "mac": code}}


def disclose() -> None:
    """Append this process's key and its MACs to the `.keys` file of each results file it wrote.
    Called at exit only: the code under test has ended by then. Best effort: a key that cannot
    be written leaves its records unverifiable (left out by a sealed read), never trusted."""
    if _key is None:
        return
    for results_file, codes in _sealed.items():
        line = json.dumps({"key": _key.hex(), "sealed": codes}, sort_keys=True) + "\n"
        try:
            fd = os.open(keys_file(results_file), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, line.encode())
        except OSError:
            pass
        finally:
            os.close(fd)
    _sealed.clear()


class Verifier:
    """Checks the seals of one results file against the keys disclosed for it."""

    def __init__(self, results_file):
        self.keys: dict[str, tuple[bytes, set]] = {}
        try:
            lines = keys_file(results_file).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
                key = bytes.fromhex(entry["key"])
                codes = {c for c in entry["sealed"] if isinstance(c, str)}
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
                continue  # a torn or foreign line names no key
            known = self.keys.setdefault(key_id(key), (key, set()))
            known[1].update(codes)

    def problem(self, data: dict) -> str | None:
        """Why the record's seal does not verify, or None."""
        found = data.get(FIELD)
        if not (isinstance(found, dict) and isinstance(found.get("key"), str) and isinstance(found.get("mac"), str)):
            return "seal is missing (not written by the harness)"
        if found["key"] not in self.keys:
            return "seal names a key never disclosed for this file (forged, or its harness was killed)"
        key, codes = self.keys[found["key"]]
        if not hmac.compare_digest(mac(key, data), found["mac"]):
            return "seal does not verify (edited or forged)"
        if found["mac"] not in codes:
            return "seal is not among those its key sealed (forged with a disclosed key)"
        return None
