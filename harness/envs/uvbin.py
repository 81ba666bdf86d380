"""Where the `uv` binary is: the one of the harness's own install first, then `PATH`.

`uv` is a dependency of the harness, so under pipx, `uvx --from`, or a venv that is not
activated its binary sits in that install's `bin/` and not on `PATH`: the `uv` package knows
where it put it (`uv.find_uv_bin()`). `PATH` is the fallback for an install without the
package (a clone run with `PYTHONPATH`). `find()` returns None when there is none; `require()`
raises the one-line UsageError every command shows.
"""
from __future__ import annotations

import shutil

from harness.errors import UsageError


def find() -> str | None:
    """The path of the uv binary this harness should run, or None."""
    try:
        import uv  # the package of our own install; absent in a bare clone
        return uv.find_uv_bin()
    except (ImportError, OSError):  # uv's UvNotFound is a FileNotFoundError
        pass  # not installed with the harness, or its binary is gone: look on PATH
    return shutil.which("uv")


def require(purpose: str) -> str:
    """The uv binary, or a UsageError that says what it is needed for and how to get it."""
    found = find()
    if not found:
        raise UsageError(f"uv is not installed: pip install uv (it {purpose})")
    return found
