"""Environments for cells: `uv venv` + `uv pip install`, cached by content hash.

The key is (what identifies the interpreter, `Interpreter.key_fields`: its version and path
at least; sorted requirements; exclude-newer date),
so a second run of a cell installs nothing. A file lock per key lets concurrent runs
(xdist workers, parallel nox sessions) share the cache: one builds, the others wait
and reuse. An env counts only once its `env.json` marker is written, last, and only while
it still is what the marker records (checked on each reuse, with stat calls only): a
hand-upgraded, half-deleted or truncated env is rebuilt, never trusted.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from harness.envs import uvbin
from harness.envs.interpreters import Interpreter
from harness.envs.requirements import requirement_name
from harness.errors import EnvBuildError, UsageError
from harness.files import locked, write_atomically
from harness.paths import cache_dir


@dataclass
class Env:
    python: str               # the env's interpreter
    interpreter: Interpreter  # the base interpreter
    requirements: list
    exclude_newer: str | None
    installed: dict           # name -> version, as uv resolved them
    build_seconds: float      # 0.0 when reused from the cache
    reused: bool


def env_key(interpreter: Interpreter, requirements: list, exclude_newer: str | None) -> str:
    fields = {**interpreter.key_fields(), "requirements": sorted(requirements), "exclude_newer": exclude_newer}
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def ensure_env(interpreter: Interpreter, requirements: list, exclude_newer: str | None = None,
               on_build=None, uv_for=None) -> Env:
    """A ready env for these requirements; EnvBuildError if the index cannot satisfy them.

    `on_build(text)` is told when an env has to be built (it can take minutes).
    `uv_for(root)` gives a stand-in for `_uv` that builds the env at `root` elsewhere (in a container)."""
    if not requirements:  # nothing to install: the interpreter itself is the env
        return Env(interpreter.path, interpreter, [], exclude_newer, {}, 0.0, True)
    key = env_key(interpreter, requirements, exclude_newer)
    root = cache_dir() / "envs" / key
    with locked(cache_dir() / "envs" / f"{key}.lock"):
        if (root / "env.json").exists():
            try:
                meta = _check_marker(root, interpreter)
                _check_env(root, interpreter, meta["installed"], requirements)
                return Env(str(root / "bin" / "python"), interpreter, requirements, exclude_newer,
                           meta["installed"], 0.0, True)
            except StaleEnv as why:
                if on_build:
                    on_build(f"env cache {key} is stale ({why}): rebuilding")
        shutil.rmtree(root, ignore_errors=True)  # a stale env, or a build that was interrupted
        if on_build:
            on_build(f"building env: {interpreter.label}, {' '.join(requirements)}"
                     f"{', deps as of ' + exclude_newer if exclude_newer else ''}")
        started = time.monotonic()
        try:
            installed = _build(root, interpreter, requirements, exclude_newer, uv_for(root) if uv_for else _uv)
            _check_new_env(root, interpreter, installed, requirements)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        seconds = time.monotonic() - started
        meta = {"python": interpreter.version, "interpreter": interpreter.describe(), "requirements": requirements,
                "exclude_newer": exclude_newer, "installed": installed, "build_seconds": round(seconds, 2)}
        write_atomically(root / "env.json", json.dumps(meta, indent=1))
        return Env(str(root / "bin" / "python"), interpreter, requirements, exclude_newer, installed, seconds, False)


class StaleEnv(Exception):
    """A cached env is not what its env.json records (the message says how)."""


def _check_env(root: Path, interpreter: Interpreter, installed: dict, requirements: list) -> None:
    """The env at `root` is what was installed there, else StaleEnv.

    Milliseconds: directory listings and stat calls, no subprocess, no hashing."""
    from packaging.utils import canonicalize_name

    _check_interpreter(root / "bin" / "python", interpreter)
    site = _site_packages(root)
    dists = _check_distributions(site, installed, requirements)
    for name in sorted({canonicalize_name(requirement_name(r)) for r in requirements}):
        if name not in dists:
            raise StaleEnv(f"{name} is required, not installed")
        _check_record_files(site, name, dists)


def _check_new_env(root: Path, interpreter: Interpreter, installed: dict, requirements: list) -> None:
    # A new env that fails the check would be rebuilt on every run: uv links files from its cache, so a
    # file edited in place in an env damages the cache too. Say so once, instead.
    try:
        _check_env(root, interpreter, installed, requirements)
    except StaleEnv as why:
        raise EnvBuildError(f"the env just built for {' '.join(requirements)} is not what uv installed ({why}): "
                            f"is uv's cache damaged? (`uv cache clean <package>` fixes it)") from None


def _check_marker(root: Path, interpreter: Interpreter) -> dict:
    """env.json parses, has an installed map and describes the env of this key (root's name).

    The recorded interpreter is read back by the class of `interpreter` (its own record format)."""
    try:
        meta = json.loads((root / "env.json").read_text())
        recorded = type(interpreter).from_record(meta["interpreter"])
        key = env_key(recorded, meta["requirements"], meta["exclude_newer"])
        installed = meta["installed"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StaleEnv(f"env.json is unreadable or incomplete: {type(exc).__name__}") from None
    if key != root.name:
        raise StaleEnv("env.json describes another env")
    if not (isinstance(installed, dict) and all(isinstance(v, str) for v in installed.values())):
        raise StaleEnv("env.json has no installed map")
    return meta


def _check_interpreter(python: Path, interpreter: Interpreter) -> None:
    # The env of an interpreter that is not on the host links to a path absent here: the link is all we see.
    present = python.exists() if interpreter.on_host else os.path.lexists(python)
    if not present:
        raise StaleEnv(f"its interpreter {python} is missing")


def _site_packages(root: Path) -> str:
    found = glob.glob(os.path.join(glob.escape(str(root)), "lib", "python*", "site-packages"))
    if len(found) != 1:
        raise StaleEnv(f"{len(found)} site-packages directories, 1 expected")
    return found[0]


def _check_distributions(site: str, installed: dict, requirements: list) -> dict:
    """The dist-info directories are exactly the recorded releases; returns name -> (version, dist-info path)."""
    from packaging.utils import canonicalize_name

    try:
        with os.scandir(site) as entries:
            found = [(entry.name[:-len(".dist-info")], entry.path) for entry in entries
                     if entry.name.endswith(".dist-info") and entry.is_dir()]
    except OSError as exc:
        raise StaleEnv(f"cannot list {site}: {exc.strerror}") from None
    dists = {}
    for stem, path in found:
        name, _, version = stem.partition("-")
        name = canonicalize_name(name)
        if name in dists:
            raise StaleEnv(f"{name} installed twice ({dists[name][0]} and {version})")
        dists[name] = (version, path)
    expected = {canonicalize_name(name): version for name, version in installed.items()}
    expected.update(_reference_versions(requirements))
    for name in sorted(set(dists) | set(expected)):
        if name not in expected:
            raise StaleEnv(f"{name} {dists[name][0]} installed, not recorded")
        if name not in dists:
            raise StaleEnv(f"{name} {expected[name] or '(a local build)'} recorded, not installed")
        if expected[name] is not None and not _same_version(dists[name][0], expected[name]):
            raise StaleEnv(f"{name} {dists[name][0]} installed, {expected[name]} recorded")
    return dists


def _reference_versions(requirements: list) -> dict:
    """name -> version of each `name @ file:///...` requirement: `uv pip freeze` lists these without
    a version, so `installed` lacks them; a wheel's file name has it (a source directory's: None, any)."""
    from packaging.utils import (
        InvalidWheelFilename,
        canonicalize_name,
        parse_wheel_filename,
    )

    versions = {}
    for requirement in requirements:
        if "@" in requirement:
            filename = unquote(requirement.split("@", 1)[1].strip().rsplit("/", 1)[-1])
            try:
                version = str(parse_wheel_filename(filename)[1])
            except InvalidWheelFilename:
                version = None
            versions[canonicalize_name(requirement_name(requirement))] = version
    return versions


def _same_version(left: str, right: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(left) == Version(right)
    except InvalidVersion:
        return left == right


def _check_record_files(site: str, name: str, dists: dict) -> None:
    """Each file the distribution's RECORD lists exists with its recorded size (stat only: no hashing)."""
    for path, size in _record_sizes(dists[name][1], name).items():
        try:
            actual = str(os.stat(os.path.join(site, path)).st_size)
        except OSError:
            raise StaleEnv(f"{name}: {path} is missing") from None
        if actual != size and not _installed_by_another(path, actual, name, dists):
            raise StaleEnv(f"{name}: {path} has {actual} bytes, {size} recorded")


def _record_sizes(dist_info: str, name: str) -> dict:
    """path -> recorded size of each file in the distribution's RECORD (RECORD itself has no size)."""
    try:
        with open(os.path.join(dist_info, "RECORD"), newline="") as handle:
            return {row[0]: row[2].strip() for row in csv.reader(handle) if len(row) >= 3 and row[2].strip()}
    except (OSError, ValueError, csv.Error):
        raise StaleEnv(f"{name} has no readable RECORD") from None


def _installed_by_another(path: str, size: str, name: str, dists: dict) -> bool:
    # Two wheels may put the same file at the top of site-packages (a README.md): the last one installed wins.
    return any(other != name and _record_sizes(info, other).get(path) == size for other, (_, info) in dists.items())


def _uv(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    uv = uvbin.require("builds the environments")
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    return subprocess.run([uv, *args], capture_output=True, text=True, timeout=timeout, env=env)


def _build(root: Path, interpreter: Interpreter, requirements: list, exclude_newer: str | None, uv=_uv) -> dict:
    made = uv("venv", "--quiet", "--python", interpreter.path, str(root))
    if made.returncode != 0:
        raise EnvBuildError(f"uv venv failed: {_uv_error(made.stderr)}", lasting=True)
    python = str(root / "bin" / "python")
    args = ["pip", "install", "--python", python, *requirements]
    if exclude_newer:
        args += ["--exclude-newer", exclude_newer]
    if interpreter.wheels_only:
        args.append("--no-build")
    done = uv(*args)
    if done.returncode != 0:
        message = _uv_error(done.stderr)
        if re.search(r"tcp connect|dns error|Could not connect|client error \(Connect\)|timed out", done.stderr):
            raise UsageError(f"cannot reach the package index: {message}")
        if interpreter.wheels_only:  # e.g. an abi3-only library on a free-threaded build
            raise EnvBuildError(f"no wheel for {interpreter.label} of {' '.join(requirements)}"
                                f"{' as of ' + exclude_newer if exclude_newer else ''} (wheels only: a source "
                                f"build cannot succeed offline): {message}")
        raise EnvBuildError(f"cannot install {' '.join(requirements)} on Python {interpreter.version}"
                            f"{' as of ' + exclude_newer if exclude_newer else ''}: {message}", lasting=True)
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
    pick = pick.removeprefix("cause:").removeprefix("error:").strip()[:400]
    if "(os error 28)" in stderr:  # ENOSPC, maybe on a wrapped line past `pick`: the cell's verdict needs it
        pick = "No space left on device: " + pick
    return pick
