"""Who uses a cached env, and whether each run that used it ended cleanly.

A run holds an env from ensure_env until its cell is done (`Hold.release()`): it creates a file of its
own in `envs/<key>.users/` and keeps an exclusive flock on it, which the kernel drops when the process
dies however it dies. A clean end unlinks the file. So, under the key's build lock (which every new
hold is taken under, so none can start meanwhile):
- a user file that no one holds any more is a run that ended uncleanly (SIGKILL, OOM, a crash while
  its child ran code in the env, or a clean end during which files of the env changed:
  `leave_unclean`): `abandoned()` lists such files, the env is checked in full (content
  hashes) before it is reused, and only then are they removed (`forget()`);
- a stale env is deleted only after `wait_unused()`: it takes each user file's lock in turn, so it
  returns once no other run's cell (and its attempts' children) uses the env any more.
One process runs one cell at a time: its own earlier holds of an env are over when it asks again
(a test that never released one), so they never make it wait for itself. A hold whose Env is
dropped (garbage) or whose process exits normally is released too: only a killed run leaves its
file behind.
"""
from __future__ import annotations

import atexit
import errno
import fcntl
import os
import time
import uuid
import weakref
from pathlib import Path

_held: weakref.WeakValueDictionary[str, Hold] = weakref.WeakValueDictionary()  # this process's, by path


class Hold:
    """One run's use of one env; `release()` at its clean end (idempotent)."""

    _handle = None

    def __init__(self, path: str, handle):
        self.path, self._handle = path, handle
        self.started_ns = time.time_ns()  # files of the env changed after this were changed during the run

    def leave_unclean(self) -> None:
        """End the hold as an unclean end would (the file stays, unlocked): the next run that reuses
        the env checks it in full. For a run during which the env's files changed."""
        if self._handle is None:
            return
        _held.pop(self.path, None)
        self._handle.close()
        self._handle = None

    def release(self) -> None:
        if self._handle is None:
            return
        _held.pop(self.path, None)
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._handle.close()  # the lock goes with the file
        self._handle = None

    __del__ = release  # its Env was dropped: its run is over


def users_dir(envs: Path, key: str) -> Path:
    return envs / f"{key}.users"


def hold(envs: Path, key: str) -> Hold:
    """Start using the env `key` (call under its build lock)."""
    users = users_dir(envs, key)
    users.mkdir(parents=True, exist_ok=True)
    path = str(users / f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
    handle = open(path, "w")
    fcntl.flock(handle, fcntl.LOCK_EX)
    _held[path] = held = Hold(path, handle)
    return held


def abandoned(envs: Path, key: str) -> list[str]:
    """The user files of runs that used the env and ended without releasing it (an unclean end)."""
    return [path for path in _user_files(envs, key) if path not in _held and _take(path, block=False, remove=False)]


def forget(paths: list[str]) -> None:
    """Remove user files of unclean ends, once the env has been checked in full."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def wait_unused(envs: Path, key: str, on_wait=None) -> None:
    """Return once no run holds the env: `on_wait(text)` is told when that means waiting."""
    for path in _user_files(envs, key):
        own = _held.get(path)
        if own is not None:  # this process's own, left unreleased: over (see the module's docstring)
            own.release()
        elif not _take(path, block=False):
            if on_wait:
                on_wait(f"waiting for the run that uses it to end ({os.path.basename(path)})")
            _take(path, block=True)


def _user_files(envs: Path, key: str) -> list[str]:
    try:
        return sorted(str(p) for p in users_dir(envs, key).iterdir())
    except FileNotFoundError:
        return []


def _take(path: str, block: bool, remove: bool = True) -> bool:
    """Lock a user file, then (with `remove`) remove it; False if another holds it (only without `block`).

    Also True when the file is gone meanwhile: its run released it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        if remove:
            forget([path])
        return True
    finally:
        os.close(fd)


@atexit.register
def _release_all() -> None:
    """A process that exits normally ended its runs cleanly, released or not (a test, a script)."""
    for held in list(_held.values()):
        held.release()
