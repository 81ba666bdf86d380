"""A pin of the maintainer's own repository at a git ref: `NAME @ git:REF` (or `NAME @ git:REF:DIR`).

    pins = ["tinylib @ git:v0.1.0"]          # the repository holding this matrix file, at tag v0.1.0
    pins = ["tinylib @ git:main:python"]     # its branch main, the package in ./python of it

Committable: no absolute path, no URL. REF is anything `git rev-parse` takes (a tag, a branch, a
commit); DIR, the package's directory relative to the repository's root (default: the root). The
repository is the one holding the matrix file that declares the pin (for `--with`, the current
directory's). When the cell runs, REF is resolved to its commit and the package is built from a
private `git worktree` of exactly that commit (harness/envs/checkout.py `exported_commit`), never
from the user's working tree, uncommitted changes and all; the wheel is kept per tree content, so
a branch that moved builds anew and a tag builds once. The env installs `NAME @ file:///<wheel>`;
the cell's pins (its identity, its row in the report) stay as declared, and the record's
`source` says the ref, the commit and the tree that ran.

An unknown ref, a directory outside git, or a package of another name at that ref is one line.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from harness.envs import checkout
from harness.envs.interpreters import Interpreter
from harness.errors import EnvBuildError, UsageError
from harness.versions import GIT_REF_RE, requirement_name


def is_git_ref(requirement: str) -> bool:
    return bool(GIT_REF_RE.match(requirement.strip()))


def _parts(requirement: str) -> tuple[str, str, str, str]:
    """(name, extras, ref, directory) of `NAME[extras] @ git:REF[:DIR]`."""
    match = GIT_REF_RE.match(requirement.strip())
    return match.group(1), match.group(2) or "", match.group(3), match.group(4) or ""


def locate(requirement: str, base: Path) -> tuple[Path, str]:
    """The root of the repository holding `base` and the commit the pin's ref names; UsageError
    (one line) when `base` is not in a git repository or the ref names no commit there."""
    ref = _parts(requirement)[2]
    try:
        top = checkout.toplevel(base)
    except UsageError:
        raise UsageError(f"{requirement!r}: {base} is not in a git repository (a git: pin names a ref of the "
                         "repository holding the matrix file, or of the current directory's for --with)") from None
    try:
        commit = checkout.commit_of(top, ref)
    except UsageError:
        raise UsageError(f"{requirement!r}: no commit {ref!r} in the repository {top} (a shallow clone has "
                         "no tags: fetch them, e.g. actions/checkout with fetch-depth: 0)") from None
    return top, commit


def check(requirement: str, base: Path) -> None:
    """UsageError now, when the file loads, rather than when the cell runs."""
    locate(requirement, base)


def build(requirement: str, base: Path, interpreter: Interpreter) -> tuple[str, dict]:
    """The requirement the env installs (`NAME @ file:///<wheel>` of the ref's commit) and what the
    record keeps of the source; EnvBuildError if the commit does not build or builds another name."""
    name, extras, ref, directory = _parts(requirement)
    top, commit = locate(requirement, base)
    try:
        tree = checkout.git(top, "rev-parse", f"{commit}:{directory}" if directory else f"{commit}^{{tree}}")
    except UsageError:
        raise EnvBuildError(f"{requirement!r}: no directory {directory!r} at {ref} ({commit[:12]})",
                            lasting=True) from None

    @contextmanager
    def at_commit(_source):
        with checkout.exported_commit(top, commit) as copy:
            yield copy / directory

    wheel = checkout.build_wheel(top / directory, interpreter, tree, export=at_commit)
    if checkout.wheel_name(wheel) != requirement_name(name):
        raise EnvBuildError(f"{requirement!r}: the repository at {ref} builds {checkout.wheel_name(wheel)}, "
                            f"not {name}", lasting=True)
    return f"{name}{extras} @ {wheel.as_uri()}", {"ref": ref, "commit": commit, "tree": tree,
                                                  "directory": directory or ".", "package": name}


def built(requirements: list, base: Path, interpreter: Interpreter) -> tuple[list, dict | None]:
    """The install set with each git: pin replaced by its wheel, and the record's `source` (None
    without a git: pin; the first pin's source, with every pin's under "pins" when there are several)."""
    out, sources = [], []
    for requirement in requirements:
        if is_git_ref(requirement):
            requirement, source = build(requirement, base, interpreter)
            sources.append(source)
        out.append(requirement)
    if not sources:
        return out, None
    return sorted(out), {**sources[0], **({"pins": sources} if len(sources) > 1 else {})}

