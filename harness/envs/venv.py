"""Environments for cells: `uv venv` + `uv pip install`, cached by content hash.

The key is (what identifies the interpreter, `Interpreter.key_fields`: its version and path
at least; sorted requirements; exclude-newer date),
so a second run of a cell installs nothing. A file lock per key lets concurrent runs
(xdist workers, parallel nox sessions) share the cache: one builds, the others wait
and reuse. An env counts only once its `env.json` marker is written, last, and only while
it still is what the marker records and what the key asks for (checked on each reuse against
the env's own files, harness/envs/integrity.py): a hand-upgraded, shadowed, half-deleted or
truncated env is rebuilt, never trusted. After a run that used the env ended uncleanly the
check hashes every file; otherwise it takes stat calls only.

The Env ensure_env returns holds the env (harness/envs/holds.py) until `Env.release()`, at the
end of the cell: a stale env is deleted only once no run uses it any more. uv runs in a process
group of its own that the guardian kills should the harness die mid-build.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import guardian
from harness.envs import holds, uvbin
from harness.envs.integrity import StaleEnv, changed_since, check_env
from harness.envs.interpreters import Interpreter
from harness.envs.seeds import era_seeds
from harness.errors import EnvBuildError, UsageError
from harness.files import write_atomically
from harness.paths import cache_dir, cache_lock


@dataclass
class Env:
    python: str               # the env's interpreter
    interpreter: Interpreter  # the base interpreter
    requirements: list
    exclude_newer: str | None
    installed: dict           # name -> version, as uv resolved them
    build_seconds: float      # 0.0 when reused from the cache
    reused: bool
    hold: holds.Hold | None = field(default=None, repr=False, compare=False)  # None: the interpreter itself

    def release(self) -> None:
        """The run is done with the env (its cell ended cleanly): a run that finds it stale may delete it.
        If a file of the env changed while it was held (the code under test can write there), the hold
        ends as an unclean one: the next reuse checks the content hashes, not just the sizes."""
        if self.hold is None:
            return
        if changed_since(Path(self.python).parent.parent, self.hold.started_ns):
            self.hold.leave_unclean()
        else:
            self.hold.release()

    def __enter__(self) -> Env:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()


def env_key(interpreter: Interpreter, requirements: list, exclude_newer: str | None) -> str:
    fields = {**interpreter.key_fields(), "requirements": sorted(requirements), "exclude_newer": exclude_newer}
    seeds = era_seeds(interpreter.version, exclude_newer, requirements)
    if seeds:  # only then: the keys of envs without seeds stay those of the existing cache
        fields["seeds"] = seeds
    blob = json.dumps(fields, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def ensure_env(interpreter: Interpreter, requirements: list, exclude_newer: str | None = None,
               on_build=None, uv_for=None) -> Env:
    """A ready env for these requirements, held until its release(); EnvBuildError if the index cannot
    satisfy them.

    `on_build(text)` is told when an env has to be built (it can take minutes) or checked in full.
    `uv_for(root)` gives a stand-in for `run_uv` that builds the env at `root` elsewhere (in a container)."""
    if not requirements:  # nothing to install: the interpreter itself is the env
        return Env(interpreter.path, interpreter, [], exclude_newer, {}, 0.0, True)
    key = env_key(interpreter, requirements, exclude_newer)
    envs = cache_dir() / "envs"
    root = envs / key
    with cache_lock(f"envs/{key}.lock"):
        if (root / "env.json").exists():
            try:
                meta = _check_reuse(root, interpreter, requirements, on_build)
                return Env(str(root / "bin" / "python"), interpreter, requirements, exclude_newer,
                           meta["installed"], 0.0, True, holds.hold(envs, key))
            except StaleEnv as why:
                if on_build:
                    on_build(f"env cache {key} is stale ({why}): rebuilding")
        holds.wait_unused(envs, key, on_build)  # never delete it under another run's child
        shutil.rmtree(root, ignore_errors=True)  # a stale env, or a build that was interrupted
        if on_build:
            on_build(f"building env: {interpreter.label}, {' '.join(requirements)}"
                     f"{', deps as of ' + exclude_newer if exclude_newer else ''}")
        started = time.monotonic()
        try:
            installed = _build(root, interpreter, requirements, exclude_newer, uv_for(root) if uv_for else run_uv)
            _check_new_env(root, interpreter, installed, requirements)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        seconds = time.monotonic() - started
        meta = {"python": interpreter.version, "interpreter": interpreter.describe(), "requirements": requirements,
                "exclude_newer": exclude_newer, "installed": installed, "build_seconds": round(seconds, 2)}
        write_atomically(root / "env.json", json.dumps(meta, indent=1))
        return Env(str(root / "bin" / "python"), interpreter, requirements, exclude_newer, installed, seconds, False,
                   holds.hold(envs, key))


def _check_reuse(root: Path, interpreter: Interpreter, requirements: list, on_build) -> dict:
    """The env's marker, once the env passed the check: in full (content hashes) if a run that used it
    ended uncleanly (its child may have been writing there), else the cheap one. StaleEnv otherwise."""
    envs, key = root.parent, root.name
    meta = _check_marker(root, interpreter)
    unclean = holds.abandoned(envs, key)
    if unclean and on_build:
        on_build(f"env cache {key}: {len(unclean)} run(s) using it ended uncleanly: checking its files' hashes")
    check_env(root, interpreter, meta["installed"], requirements, full=bool(unclean))
    holds.forget(unclean)
    return meta


def _check_new_env(root: Path, interpreter: Interpreter, installed: dict, requirements: list) -> None:
    # A new env that fails the check would be rebuilt on every run: uv links files from its cache, so a
    # file edited in place in an env damages the cache too. Say so once, instead.
    try:
        check_env(root, interpreter, installed, requirements)
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


def run_uv(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """uv with these arguments, its output captured (no progress bars).

    It runs in a process group of its own, with a temp dir of its own, both handed to the guardian:
    should the harness die mid-build (SIGKILL), uv and the builds it started die too instead of
    writing on into the half-built env, and nothing of theirs is left in the temp dir."""
    uv = uvbin.require("builds the environments")
    guardian.start()
    scratch = tempfile.mkdtemp(prefix="repro-uv-")
    guardian.remove_after(scratch)
    env = {**os.environ, "UV_NO_PROGRESS": "1", "TMPDIR": scratch, guardian.TOKEN_VARIABLE: guardian.token()}
    try:
        proc = subprocess.Popen([uv, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)
        guardian.watch(proc.pid)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:  # its timeout, a Ctrl-C (which no longer reaches its group): uv goes with us
            _kill_group(proc.pid)
            proc.communicate()
            raise
        finally:
            guardian.unwatch(proc.pid)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass  # gone already


def _build(root: Path, interpreter: Interpreter, requirements: list, exclude_newer: str | None, uv=run_uv) -> dict:
    made = uv("venv", "--quiet", "--python", interpreter.path, str(root))
    if made.returncode != 0:
        raise EnvBuildError(f"uv venv failed: {uv_error(made.stderr)}", lasting=True)
    python = str(root / "bin" / "python")
    seeds = era_seeds(interpreter.version, exclude_newer, requirements)
    done = uv(*_install_args(python, requirements + seeds, exclude_newer, interpreter))
    if done.returncode != 0 and _seeds_missing(done.stderr, seeds):
        # An index that holds no pip or setuptools (a private or local one): the era's seeds
        # cannot be had, so the env is what a bare venv of that index gives, and says so.
        print(f"repro: the index has no {' or '.join(seeds)} as of {exclude_newer}: the env is built "
              "without the era's seed packages", file=sys.stderr, flush=True)
        done = uv(*_install_args(python, requirements, exclude_newer, interpreter))
    if done.returncode != 0:
        message = uv_error(done.stderr)
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


def _install_args(python: str, requirements: list, exclude_newer: str | None, interpreter: Interpreter) -> list:
    args = ["pip", "install", "--python", python, *requirements]
    if exclude_newer:
        args += ["--exclude-newer", exclude_newer]
    if interpreter.wheels_only:
        args.append("--no-build")
    return args


def _seeds_missing(stderr: str, seeds: list) -> bool:
    """Did uv fail because a seed package is not on the index (as of the date)?"""
    return any(re.search(rf"\b{seed}\b[^\n]*(was not found|has no versions|no versions of)", stderr)
               for seed in seeds)


def uv_error(stderr: str) -> str:
    """uv's most telling line: the innermost cause, or the error line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    causes = [line for line in lines if line.startswith(("cause:", "╰─▶", "error:"))]
    pick = causes[-1] if causes else (lines[-1] if lines else "(no output)")
    pick = pick.removeprefix("cause:").removeprefix("error:").strip()[:400]
    if "(os error 28)" in stderr:  # ENOSPC, maybe on a wrapped line past `pick`: the cell's verdict needs it
        pick = "No space left on device: " + pick
    return pick
