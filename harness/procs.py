"""Process-group plumbing: find every process of an attempt, dump stacks, kill and reap.

An attempt's child is started in a new session, so its process id is also the id of
its process group and session. Everything it starts (threads' helpers, forked
workers, forkserver, resource_tracker) stays in that session unless it calls setsid
itself, so the session is what we look for and kill.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return raw[raw.rindex(")") + 2:].split()


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session or process group is sid."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # fields: state ppid pgrp session ...
        if fields and fields[0] != "Z" and sid in (int(fields[2]), int(fields[3])):
            members.append(int(entry))
    return members


def thread_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def py_spy_dumps(pids: list[int], timeout: float = 10.0, argv_for=None) -> dict[int, str]:
    """Native + Python stacks of each pid via py-spy, where py-spy is installed.

    argv_for(pid) gives the command for one pid when the host's `py-spy dump` cannot do
    (a container's process: py-spy run inside its namespaces).
    """
    exe = shutil.which("py-spy")
    if not exe:
        return {}
    argv_for = argv_for or (lambda pid: [exe, "dump", "--native", "--pid", str(pid)])
    dumps = {}
    for pid in pids:
        try:
            proc = subprocess.run(argv_for(pid), capture_output=True, text=True, timeout=timeout)
            dumps[pid] = (proc.stdout + proc.stderr)[-20000:]
        except (subprocess.TimeoutExpired, OSError) as exc:
            dumps[pid] = f"py-spy failed: {exc}"
    return dumps


def kill_session(sid: int, grace: float) -> list[int]:
    """SIGTERM every member, then SIGKILL what is left after `grace` seconds.

    Returns the pids that needed SIGKILL. Safe to call when nothing is left.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        members = session_members(sid)
        if not members:
            return []
        _signal_all(sid, members, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and session_members(sid):
            time.sleep(0.02)
        if sig == signal.SIGKILL:
            return members
    return session_members(sid)


def _signal_all(sid: int, members: list[int], sig: int) -> None:
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in members:  # members that moved to another process group of the session
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
