"""Where the harness's own files are: its source tree, what it ships, its cache."""
from __future__ import annotations

import functools
import os
import subprocess
from functools import lru_cache
from pathlib import Path

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
    base = os.environ.get("REPRO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "repro-harness")
    return Path(base)


@lru_cache(maxsize=1)
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
