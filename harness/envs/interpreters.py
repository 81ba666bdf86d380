"""Finding interpreters: PATH, pyenv, then `uv python find` (never downloads one)."""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.envs import uvbin
from harness.errors import UsageError
from harness.versions import IMAGE_PYTHON_RE

VERSION_RE = re.compile(r"^3\.\d+(\.\d+)?$")
# An interpreter of an image recipe (harness/executors/docker/recipes.py): `debian-trixie:3.13`,
# `debian-sid:3.14t` (t: a free-threaded build), or `3.13t` alone (the recipe of that minor).
FLOOR = (3, 9)  # the child side runs inside the interpreter under test: stdlib of 3.9 and newer


@dataclass(frozen=True)
class Interpreter:
    path: str
    version: str  # full, e.g. "3.11.7"

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    # Where `path` is: on the host (it must exist there), or elsewhere (in a container image).
    on_host = True

    @property
    def label(self) -> str:
        """For messages: e.g. "Python 3.11.7"."""
        return f"Python {self.version}"

    @property
    def cell_python(self) -> str:
        """What a Cell names to run on this interpreter again (the image's recipe spec, or the version)."""
        return self.version

    # Free-threaded builds install wheels only (ImageInterpreter): no source build can work offline.
    wheels_only = False

    def describe(self) -> dict:
        """For the result record and an env's marker: which interpreter ran, and where it came from."""
        return {"path": self.path, "version": self.version, "source": "host"}

    @classmethod
    def from_record(cls, record: dict) -> Interpreter:
        """The interpreter a describe() record names (read back from an env's marker)."""
        return cls(record["path"], record["version"])

    def key_fields(self) -> dict:
        """What identifies this interpreter in an env's cache key (these names and values make
        the keys of existing envs: change them and every cached env is built again)."""
        return {"python": self.version, "path": self.path}


def image_python(wanted: str) -> tuple[str | None, str, bool] | None:
    """(recipe or None, version, free-threaded) of a Python an image recipe gives, None for a host
    version ("3.11", "3.11.7", "current")."""
    match = IMAGE_PYTHON_RE.match(wanted)
    if not match or not (match.group("recipe") or match.group("t")):
        return None
    return match.group("recipe"), match.group("version"), bool(match.group("t"))


def _probe(path: str) -> str | None:
    try:
        out = subprocess.run([path, "-I", "-S", "-c", "import sys; print(sys.implementation.name,"
                              " '%d.%d.%d' % sys.version_info[:3])"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 2 or parts[0] != "cpython":
        return None
    return parts[1]


def version_matches(found: str, wanted: str) -> bool:
    """Whether an interpreter's version `found` (3.11.7) is the `wanted` one (3.11, or 3.11.7 itself)."""
    return found == wanted or found.startswith(wanted + ".")


@functools.lru_cache(maxsize=None)
def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    if not Path(root).is_dir() and shutil.which("pyenv"):
        try:
            root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, timeout=10).stdout.strip() or root
        except (OSError, subprocess.TimeoutExpired):
            pass
    return Path(root) if Path(root).is_dir() else None


def _on_path(minor: str) -> list[str]:
    """pythonX.Y on PATH, unless it is a pyenv shim (pyenv's versions are searched directly)."""
    found = shutil.which(f"python{minor}")
    root = _pyenv_root()
    if not found or (root and Path(found).parent == root / "shims"):
        return []
    return [found]


def _pyenv_candidates(wanted: str) -> list[str]:
    root = _pyenv_root()
    if root is None:
        return []
    versions = root / "versions"
    if not versions.is_dir():
        return []
    names = [p.name for p in versions.iterdir()
             if re.fullmatch(r"3\.\d+\.\d+", p.name) and version_matches(p.name, wanted)]
    names.sort(key=lambda v: tuple(int(x) for x in v.split(".")), reverse=True)  # newest patch first
    return [str(versions / n / "bin" / "python") for n in names]


def _uv_candidate(wanted: str) -> list[str]:
    uv = uvbin.find()
    if not uv:
        return []
    try:
        out = subprocess.run([uv, "python", "find", "--no-python-downloads", "--system", wanted],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [out.stdout.strip()] if out.returncode == 0 and out.stdout.strip() else []


@functools.lru_cache(maxsize=None)
def find(wanted: str) -> Interpreter:
    """The interpreter for `wanted` ("3.11", "3.11.7" or "current"), or a UsageError saying where we looked."""
    if wanted == "current":
        return Interpreter(sys.executable, "%d.%d.%d" % sys.version_info[:3])
    if not VERSION_RE.match(wanted):
        raise UsageError(f"bad Python version {wanted!r}: expected e.g. 3.11 or 3.11.7")
    check_floor(wanted)
    minor = ".".join(wanted.split(".")[:2])
    for candidates in (lambda: _on_path(minor), lambda: _pyenv_candidates(wanted), lambda: _uv_candidate(wanted)):
        for candidate in candidates():  # lazily: `uv python find` only when the others found nothing
            version = _probe(candidate)
            if version and version_matches(version, wanted):
                # The real file, not a link to it: containers mount it, and the env key stays stable.
                return Interpreter(os.path.realpath(candidate), version)
    raise UsageError(f"no Python {wanted} interpreter found (looked on PATH for python{minor}, "
                     f"in pyenv's versions, and with `uv python find`)")


def check_floor(version: str) -> None:
    """A UsageError for a Python older than the child side supports, before anything is looked up."""
    if tuple(int(x) for x in version.split(".")[:2]) < FLOOR:
        raise UsageError(f"Python {version} is not supported: the harness runs its child inside the "
                         f"interpreter under test, which must be Python {'.'.join(map(str, FLOOR))} or newer")


def available(versions: list[str]) -> dict[str, Interpreter | str]:
    """Each wanted version mapped to its interpreter, or to the reason it is missing."""
    found = {}
    for version in versions:
        try:
            found[version] = find(version)
        except UsageError as exc:
            found[version] = str(exc)
    return found
