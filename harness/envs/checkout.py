"""A library built from a source checkout (for `repro check` under `git bisect run`).

The wheel is built once per content of the working tree and kept under a directory named
by that content's hash, so the env's requirement (`name @ file:///.../<hash>/name.whl`), and
with it the env cache key, changes exactly when the tree changes. The hash of a git checkout
is the tree object of the working tree, uncommitted and untracked (not ignored) files
included, written through a throwaway index so the user's index is untouched. What a build
leaves in a tree (setuptools' build/ and *.egg-info, cargo's target/) is left out of the hash.

The build never runs in the user's tree: it runs in a private export of exactly the hashed
content (`exported`), so `repro check` and `repro check --bisect` leave no build/ or *.egg-info
behind. A git checkout is exported as a detached `git worktree` of HEAD whose files and index are
set to the hashed tree: a version taken from git metadata (setuptools-scm, hatch-vcs) is what it
would be in the user's tree. A directory outside git (or a repository without a commit) is copied
without its build outputs. The worktree is removed (and pruned) when the build ends.

`source_info` is what a result records of the source: path, commit, tree hash, dirty flag.
The git helpers below serve `repro check --bisect` (a whole `git bisect` run by the harness).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from harness.envs import uvbin, venv
from harness.envs.interpreters import Interpreter
from harness.errors import EnvBuildError, UsageError
from harness.paths import cache_dir

SKIP_DIRS = {".git", "__pycache__", ".venv", "build", "dist", "target", ".nox", ".tox"}
# The same build outputs, as git pathspecs relative to the source directory.
OUTPUT_DIRS = sorted(SKIP_DIRS - {".git", "__pycache__"})
OUTPUT_GLOBS = [":(exclude,glob)**/__pycache__/**", ":(exclude,glob)**/*.egg-info/**"]


def git(source: Path, *args: str, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=source, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise UsageError(f"git {' '.join(args)} failed in {source}: {done.stderr.strip()[:300]}")
    return done.stdout.strip()


def tree_hash(source: Path) -> str:
    """The content hash of the working tree under `source` (git tree id, or a file digest outside git)."""
    if not _in_git(source):
        return _files_digest(source)
    tree, prefix = _written_tree(source)
    return git(source, "rev-parse", f"{tree}:{prefix}") if prefix else tree


def _in_git(source: Path) -> bool:
    try:
        git(source, "rev-parse", "--show-toplevel")
    except (UsageError, OSError):
        return False
    return True


def _written_tree(source: Path) -> tuple[str, str]:
    """The whole repository's working tree as a git tree (the hashed content under `source`, the
    rest as it is), and the prefix of `source` in it."""
    with tempfile.TemporaryDirectory(prefix="repro-index-") as tmp:
        index = Path(tmp) / "index"
        real = Path(git(source, "rev-parse", "--path-format=absolute", "--git-path", "index"))
        if real.exists():
            shutil.copyfile(real, index)  # its stat cache makes `add` rehash only changed files
        env = {"GIT_INDEX_FILE": str(index)}
        git(source, "add", "--all", "--", ".", *_build_outputs(source), env=env)
        return git(source, "write-tree", env=env), git(source, "rev-parse", "--show-prefix")


def _build_outputs(source: Path) -> list[str]:
    """Exclude pathspecs of the build outputs under `source`. One that .gitignore ignores is left out:
    `git add` skips it anyway, and fails on a pathspec naming an ignored path that exists, even an
    exclude (a maintainer's ignored .nox/ after a nox run)."""
    done = subprocess.run(["git", "check-ignore", "--", *OUTPUT_DIRS], cwd=source, capture_output=True, text=True,
                          timeout=60)
    ignored = set(done.stdout.split())
    return [f":(exclude){d}" for d in OUTPUT_DIRS if d not in ignored] + OUTPUT_GLOBS


def _files_digest(source: Path) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            path = Path(root) / name
            digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:40]


def _head_tree(source: Path) -> str | None:
    """The tree of HEAD at `source` (a sub-directory's own tree), or None without a commit."""
    prefix = git(source, "rev-parse", "--show-prefix")
    try:
        return git(source, "rev-parse", f"HEAD:{prefix}" if prefix else "HEAD^{tree}")
    except UsageError:
        return None


def source_info(source: Path, tree: str) -> dict:
    """What a result records of the source: path, commit, tree hash, dirty (tree != the commit's)."""
    info = {"path": str(source), "commit": None, "tree": tree, "dirty": None}
    try:
        info["commit"] = git(source, "rev-parse", "--verify", "-q", "HEAD")
    except (UsageError, OSError):
        return info  # not a git checkout, or no commit yet: the tree hash is all there is
    info["dirty"] = tree != _head_tree(source)
    return info


def commit_date(source: Path) -> str:
    """The checked-out commit's date (UTC), for `--exclude-newer commit`."""
    return git(source, "log", "-1", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "--format=%cd",
               env={"TZ": "UTC"})


@contextmanager
def exported(source: Path):
    """A private copy of the tree at `source` to build in (see the module's text); yields the
    copy's counterpart of `source`, and removes the copy afterwards."""
    if _in_git(source) and _has_commit(source):
        tree, prefix = _written_tree(source)
        with exported_commit(Path(git(source, "rev-parse", "--show-toplevel")), "HEAD", tree) as copy:
            yield copy / prefix
        return
    parent = Path(tempfile.mkdtemp(prefix="repro-build-source-"))
    try:
        shutil.copytree(source, parent / "tree", symlinks=True,
                        ignore=lambda _, names: [n for n in names if n in SKIP_DIRS or n.endswith(".egg-info")])
        yield parent / "tree"
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@contextmanager
def exported_commit(top: Path, commit: str, tree: str | None = None):
    """A detached `git worktree` of `commit` of the repository at `top`, its files and index set to
    `tree` (default: the commit's own), in a private directory removed (and pruned) afterwards:
    never the user's working tree, and git metadata (a version from tags) as at that commit."""
    parent = Path(tempfile.mkdtemp(prefix="repro-build-source-"))
    copy = parent / "tree"
    try:
        git(top, "worktree", "add", "--detach", "--no-checkout", "-q", str(copy), commit)
        git(copy, "read-tree", "--reset", "-u", tree or f"{commit}^{{tree}}")
        yield copy
    finally:
        shutil.rmtree(parent, ignore_errors=True)
        # the worktree's entry in the repository's git dir; a failure here is no build's
        subprocess.run(["git", "worktree", "prune"], cwd=top, capture_output=True, timeout=60)


def _has_commit(source: Path) -> bool:
    try:
        git(source, "rev-parse", "--verify", "-q", "HEAD")
    except UsageError:
        return False
    return True


def build_wheel(source: Path, interpreter: Interpreter, tree: str | None = None, export=None) -> Path:
    """A wheel of the tree at `source` (content hash `tree`), built once per tree content;
    EnvBuildError if it does not build. `export(source)`: the private copy to build in (default
    `exported`: the working tree as it is; harness/envs/gitref.py passes a commit's)."""
    if not source.is_dir():
        raise UsageError(f"no source directory {source}")
    out = cache_dir() / "checkout-wheels" / f"{interpreter.version}-{tree or tree_hash(source)}"
    found = sorted(out.glob("*.whl")) if out.is_dir() else []
    if found:
        return found[0]
    uv = uvbin.require("builds the package")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=out.parent))
    try:
        with (export or exported)(source) as copy:  # build/ and *.egg-info stay out of the user's tree
            if not any((copy / f).exists() for f in ("pyproject.toml", "setup.py", "setup.cfg")):
                raise EnvBuildError(f"{source} has no pyproject.toml, setup.py or setup.cfg at this revision")
            done = subprocess.run([uv, "build", "--wheel", "--python", interpreter.path, "--out-dir", str(tmp),
                                   str(copy)], capture_output=True, text=True, timeout=3600,
                                  env={**os.environ, "UV_NO_PROGRESS": "1"})
        if done.returncode != 0 or not list(tmp.glob("*.whl")):
            raise EnvBuildError(f"cannot build {source} at this revision: {venv.uv_error(done.stderr)}")
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
    from packaging.utils import canonicalize_name

    return canonicalize_name(wheel.name.split("-")[0])


# ---------------------------------------------------------------- git bisect plumbing

def toplevel(source: Path) -> Path:
    """The root of the git work tree holding `source`; UsageError outside git."""
    try:
        return Path(git(source, "rev-parse", "--show-toplevel"))
    except OSError as exc:
        raise UsageError(f"git is not usable: {exc}") from None


def commit_of(repo: Path, rev: str) -> str:
    try:
        return git(repo, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}")
    except UsageError:
        raise UsageError(f"{rev!r} is not a commit in {repo}") from None


def is_ancestor(repo: Path, old: str, new: str) -> bool:
    done = subprocess.run(["git", "merge-base", "--is-ancestor", old, new], cwd=repo, capture_output=True,
                          timeout=300)
    return done.returncode == 0


def subject(repo: Path, commit: str) -> str:
    return git(repo, "show", "-s", "--format=%s", commit)


def bisecting(repo: Path) -> bool:
    """Is a `git bisect` already under way in this repository?"""
    return Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "BISECT_START")).exists()


def uncommitted_changes(repo: Path) -> list[str]:
    """Tracked files with changes (staged or not): a bisect's checkouts would carry or refuse them."""
    return git(repo, "status", "--porcelain", "--untracked-files=no").splitlines()


def where(repo: Path) -> str:
    """The branch checked out, else the commit (to say where the repository was left)."""
    try:
        return git(repo, "symbolic-ref", "-q", "--short", "HEAD")
    except UsageError:
        return git(repo, "rev-parse", "--short", "HEAD")
