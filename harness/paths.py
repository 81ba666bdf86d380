"""Where the harness's own files are: its source tree, what it ships, its cache.

The cache (REPRO_CACHE_DIR, else $XDG_CACHE_HOME/repro-harness) is reached through `cache_dir()`
and its locks through `cache_lock()`: a cache that cannot be used (its directory cannot be made or
is not writable, a lock path is a directory) is one UsageError naming the path, the one place where
those OSErrors become the command's exit 2, before anything is built or run.
"""
from __future__ import annotations

import functools
import os
import subprocess
from contextlib import ExitStack, contextmanager
from pathlib import Path

from harness.errors import UsageError
from harness.files import locked

ROOT = Path(__file__).resolve().parent.parent      # the source tree (or site-packages)
PACKAGE = Path(__file__).resolve().parent          # harness/


def shipped(name: str) -> Path:
    """A directory shipped with the harness ("repros" or "matrix"): package data in an
    installed wheel (harness/_bundled/, see pyproject.toml), the repository's own top-level
    directory in a source tree or an editable install."""
    bundled = PACKAGE / "_bundled" / name
    return bundled if bundled.is_dir() else ROOT / name


def unique_paths(directories: list) -> list[Path]:
    """Each directory once (./repros is the shipped one when run from the harness's checkout)."""
    seen, out = set(), []
    for directory in directories:
        key = directory.resolve()
        if key not in seen:
            seen.add(key)
            out.append(directory)
    return out


def cache_dir() -> Path:
    """The cache directory, made if missing; UsageError if it cannot be made or written."""
    path = Path(os.environ.get("REPRO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "repro-harness"))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(_unusable(path, exc)) from None
    if not os.access(path, os.W_OK | os.X_OK):  # root too: a read-only mount says no
        raise UsageError(_unusable(path, PermissionError("not writable")))
    return path


@contextmanager
def cache_lock(name: str):
    """Hold the cache's lock file `name` (e.g. "envs/KEY.lock") for the block; only taking the lock is
    mapped to UsageError, an OSError of the block itself passes unchanged."""
    path = cache_dir() / name
    with ExitStack() as stack:
        try:
            stack.enter_context(locked(path))
        except OSError as exc:
            raise UsageError(f"cannot lock {path}: {exc.strerror or exc}; remove it, or set REPRO_CACHE_DIR "
                             "to another directory") from None
        yield


def _unusable(path: Path, exc: OSError) -> str:
    return (f"the cache dir {path} cannot be used: {exc.strerror or exc}; set REPRO_CACHE_DIR to a writable "
            "directory")


@functools.lru_cache(maxsize=None)
def source_commit() -> str | None:
    """The commit of the harness's own git checkout, or None (an installed wheel has none); asked
    once per process (the code that runs is the code loaded at its start), not once per cell."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and (ROOT / ".git").exists() else None
