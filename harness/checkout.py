"""A library built from a source checkout (for `repro check` under `git bisect run`).

The wheel is built once per content of the working tree and kept under a directory named
by that content's hash, so the env's requirement (`name @ file:///.../<hash>/name.whl`), and
with it the env cache key, changes exactly when the tree changes. The hash of a git checkout
is the tree object of the working tree, uncommitted and untracked (not ignored) files
included, written through a throwaway index so the user's index is untouched.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import envs
from harness.errors import EnvBuildError, UsageError
from harness.interpreters import Interpreter

SKIP_DIRS = {".git", "__pycache__", ".venv", "build", "dist", "target", ".nox", ".tox"}


def _git(source: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=source, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed in {source}: {done.stderr.strip()[:300]}")
    return done.stdout.strip()


def tree_hash(source: Path) -> str:
    """The content hash of the working tree under `source` (git tree id, or a file digest outside git)."""
    try:
        _git(source, "rev-parse", "--show-toplevel")
    except (UsageError, OSError):
        return _files_digest(source)
    with tempfile.TemporaryDirectory(prefix="repro-index-") as tmp:
        index = Path(tmp) / "index"
        real = Path(_git(source, "rev-parse", "--path-format=absolute", "--git-path", "index"))
        if real.exists():
            shutil.copyfile(real, index)  # its stat cache makes `add` rehash only changed files
        env = {"GIT_INDEX_FILE": str(index)}
        _git(source, "add", "--all", "--", ".", env=env)
        prefix = _git(source, "rev-parse", "--show-prefix")
        tree = _git(source, "write-tree", env=env)
        return _git(source, "rev-parse", f"{tree}:{prefix}") if prefix else tree


def _files_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(root) / name
            digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:40]


def commit_date(source: Path) -> str:
    """The checked-out commit's date (UTC), for `--exclude-newer commit`."""
    return _git(source, "log", "-1", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "--format=%cd",
                env={"TZ": "UTC"})


def build_wheel(source: Path, interpreter: Interpreter) -> Path:
    """A wheel of the tree at `source`, built once per tree content; EnvBuildError if it does not build."""
    if not source.is_dir():
        raise UsageError(f"no source directory {source}")
    if not any((source / f).exists() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
        raise EnvBuildError(f"{source} has no pyproject.toml, setup.py or setup.cfg at this revision")
    out = envs.cache_dir() / "checkout-wheels" / f"{interpreter.version}-{tree_hash(source)}"
    found = sorted(out.glob("*.whl")) if out.is_dir() else []
    if found:
        return found[0]
    uv = shutil.which("uv")
    if not uv:
        raise UsageError("uv is not installed: pip install uv (it builds the package)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=out.parent))
    try:
        done = subprocess.run([uv, "build", "--wheel", "--python", interpreter.path, "--out-dir", str(tmp),
                               str(source)], capture_output=True, text=True, timeout=3600,
                              env={**os.environ, "UV_NO_PROGRESS": "1"})
        if done.returncode != 0 or not list(tmp.glob("*.whl")):
            raise EnvBuildError(f"cannot build {source} at this revision: {envs._uv_error(done.stderr)}")
        for leftover in tmp.iterdir():
            if not leftover.name.endswith(".whl"):
                shutil.rmtree(leftover, ignore_errors=True) if leftover.is_dir() else leftover.unlink()
        try:
            os.rename(tmp, out)  # atomic; if a concurrent build of the same tree won, use its wheel
        except OSError:
            pass
        return sorted(out.glob("*.whl"))[0]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def wheel_name(wheel: Path) -> str:
    """The distribution name of a wheel file, normalized (PEP 503)."""
    return wheel.name.split("-")[0].lower().replace("_", "-")
