"""Environments for cells: `uv venv` + `uv pip install`, cached by content hash.

The key is (interpreter version and path, sorted requirements, exclude-newer date),
so a second run of a cell installs nothing. A file lock per key lets concurrent runs
(xdist workers, parallel nox sessions) share the cache: one builds, the others wait
and reuse. An env counts only once its `env.json` marker is written, last.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import EnvBuildError, UsageError
from harness.interpreters import Interpreter

REQUIREMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*((==|>=|<=|~=|!=|<|>)[^\s;]+(,\s*(==|>=|<=|~=|!=|<|>)[^\s,;]+)*)?$")
# A direct reference to a local file or directory (a package built from a checkout); never a network URL.
LOCAL_REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*@\s*file:///\S+$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?$")


@dataclass
class Env:
    python: str               # the env's interpreter
    interpreter: Interpreter  # the base interpreter
    requirements: list
    exclude_newer: str | None
    installed: dict           # name -> version, as uv resolved them
    build_seconds: float      # 0.0 when reused from the cache
    reused: bool


def cache_dir() -> Path:
    base = os.environ.get("REPRO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "repro-harness")
    return Path(base)


def requirement_name(requirement: str) -> str:
    return re.split(r"[\[=<>!~ ;@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def check_requirement(requirement: str) -> str:
    if not (REQUIREMENT_RE.match(requirement.strip()) or LOCAL_REFERENCE_RE.match(requirement.strip())):
        raise UsageError(f"malformed requirement {requirement!r}: expected e.g. deltalake==0.20.1")
    return requirement.strip()


def merge_requirements(defaults: list, overrides: list) -> list:
    """The bug's default requirements with each override replacing the entry of the same name."""
    merged = {requirement_name(r): r for r in defaults}
    for override in overrides:
        merged[requirement_name(override)] = check_requirement(override)
    return sorted(merged.values())


def check_date(date: str | None) -> str | None:
    if date is not None and not DATE_RE.match(date):
        raise UsageError(f"bad --exclude-newer {date!r}: expected a date like 2024-10-01 or an RFC 3339 time")
    return date


def env_key(interpreter: Interpreter, requirements: list, exclude_newer: str | None) -> str:
    fields = {"python": interpreter.version, "path": interpreter.path,
              "requirements": sorted(requirements), "exclude_newer": exclude_newer}
    image_id = getattr(interpreter, "image_id", None)
    if image_id:  # an interpreter inside a container image (harness/docker_python.py)
        fields["image_id"] = image_id
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_env(interpreter: Interpreter, requirements: list, exclude_newer: str | None = None,
               on_build=None, uv_for=None) -> Env:
    """A ready env for these requirements; EnvBuildError if the index cannot satisfy them.

    `on_build(text)` is told when an env has to be built (it can take minutes).
    `uv_for(root)` gives a stand-in for `_uv` that builds the env at `root` elsewhere (in a container)."""
    if not requirements:  # nothing to install: the interpreter itself is the env
        return Env(interpreter.path, interpreter, [], exclude_newer, {}, 0.0, True)
    key = env_key(interpreter, requirements, exclude_newer)
    root = cache_dir() / "envs" / key
    with _locked(cache_dir() / "envs" / f"{key}.lock"):
        marker = root / "env.json"
        if marker.exists():
            meta = json.loads(marker.read_text())
            return Env(str(root / "bin" / "python"), interpreter, requirements, exclude_newer,
                       meta["installed"], 0.0, True)
        shutil.rmtree(root, ignore_errors=True)  # a build that was interrupted
        if on_build:
            where = f" in image {interpreter.image}" if getattr(interpreter, "image", None) else ""
            on_build(f"building env: Python {interpreter.version}{where}, {' '.join(requirements)}"
                     f"{', deps as of ' + exclude_newer if exclude_newer else ''}")
        started = time.monotonic()
        try:
            installed = _build(root, interpreter, requirements, exclude_newer, uv_for(root) if uv_for else _uv)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        seconds = time.monotonic() - started
        meta = {"python": interpreter.version, "interpreter": interpreter.describe(), "requirements": requirements,
                "exclude_newer": exclude_newer, "installed": installed, "build_seconds": round(seconds, 2)}
        tmp = root / "env.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, marker)
        return Env(str(root / "bin" / "python"), interpreter, requirements, exclude_newer, installed, seconds, False)


def _uv(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    uv = shutil.which("uv")
    if not uv:
        raise UsageError("uv is not installed: pip install uv (it builds the environments)")
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    return subprocess.run([uv, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _build(root: Path, interpreter: Interpreter, requirements: list, exclude_newer: str | None, uv=_uv) -> dict:
    made = uv("venv", "--quiet", "--python", interpreter.path, str(root))
    if made.returncode != 0:
        raise EnvBuildError(f"uv venv failed: {_uv_error(made.stderr)}")
    python = str(root / "bin" / "python")
    args = ["pip", "install", "--python", python, *requirements]
    if exclude_newer:
        args += ["--exclude-newer", exclude_newer]
    done = uv(*args)
    if done.returncode != 0:
        message = _uv_error(done.stderr)
        if re.search(r"tcp connect|dns error|Could not connect|client error \(Connect\)|timed out", done.stderr):
            raise UsageError(f"cannot reach the package index: {message}")
        raise EnvBuildError(f"cannot install {' '.join(requirements)} on Python {interpreter.version}"
                            f"{' as of ' + exclude_newer if exclude_newer else ''}: {message}")
    frozen = uv("pip", "freeze", "--python", python)
    installed = {}
    for line in frozen.stdout.splitlines():
        if "==" in line:
            name, version = line.split("==", 1)
            installed[name.lower()] = version
    return installed


def _uv_error(stderr: str) -> str:
    """uv's most telling line: the innermost cause, or the error line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith(("cause:", "╰─▶", "error:"))]
    pick = causes[-1] if causes else (lines[-1] if lines else "(no output)")
    return pick.removeprefix("cause:").removeprefix("error:").strip()[:400]
