"""The releases a requirements file, a `uv.lock` or a `pylock.toml` (PEP 751) pins: what
`repro run --with-requirements FILE` and `repro audit FILE` read as "my versions".

The format is told by the file's name (`uv.lock`; `pylock.toml`, `pylock.NAME.toml`), else by its
content (a TOML lock of either kind, else requirements lines). Only releases from an index count
as pins: an exact `NAME==VERSION` line of a requirements file, a lock's package with a version from
a registry. A project's own editable or directory source, a VCS checkout, a URL, and a requirement
with a range are not a release of the index and are left out. A requirements file's `-r FILE` and
`-c FILE` are read too (relative to the file); its other options (`-e`, `--index-url`,
`--hash=...`) are not pins.

A missing, unreadable or unparsable file is a UsageError naming the file (and the line); a
package locked at two versions (a lock's forks per platform or Python) is one too when a caller
asks for it, as the pin would be a guess.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name

from harness.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

UV_LOCK, PYLOCK, REQUIREMENTS = "uv.lock", "pylock.toml", "requirements"
PYLOCK_NAME_RE = re.compile(r"^pylock\.([^.]+\.)?toml$")
OPTION_RE = re.compile(r"\s+-")          # where a requirement line's options (--hash=...) begin
COMMENT_RE = re.compile(r"(^|\s)#.*$")   # pip: a comment starts at a '#' after whitespace
INCLUDE_RE = re.compile(r"^(-r|--requirement|-c|--constraint)(\s*=\s*|\s+)(\S+)$")


@dataclass
class Locked:
    """The releases one file pins: {normalised name: {versions}}, and what kind of file it is."""
    path: Path
    kind: str
    versions: dict = field(default_factory=dict)

    def add(self, name: str, version: str) -> None:
        self.versions.setdefault(canonicalize_name(name), set()).add(version)

    def version_of(self, name: str) -> str | None:
        """The one release of `name` the file pins; None when it pins none; UsageError for several."""
        found = self.versions.get(canonicalize_name(name), set())
        if len(found) > 1:
            raise UsageError(f"{self.path} locks {name} at {len(found)} versions ({', '.join(sorted(found))}), "
                             f"one per platform or Python: say which with --with {name}==VERSION")
        return next(iter(found), None)

    def pins(self, names) -> list[str]:
        """`NAME==VERSION` of each of `names` that the file pins, in the order given."""
        found = []
        for name in dict.fromkeys(canonicalize_name(n) for n in names):
            version = self.version_of(name)
            if version is not None:
                found.append(f"{name}=={version}")
        return found


def read(path: Path) -> Locked:
    """The releases the file pins (see the module's text for what counts)."""
    text = _text(path)
    kind = kind_of(path, text)
    if kind == REQUIREMENTS:
        locked = Locked(path, kind)
        _read_requirements(path, text, locked, seen={path.resolve()})
        return locked
    return _read_lock(path, text, kind)


def kind_of(path: Path, text: str) -> str:
    """uv.lock, pylock.toml or requirements: by the name, else by what the text is."""
    if path.name == UV_LOCK:
        return UV_LOCK
    if PYLOCK_NAME_RE.match(path.name):
        return PYLOCK
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return REQUIREMENTS
    if "lock-version" in data:
        return PYLOCK
    return UV_LOCK if isinstance(data.get("package"), list) else REQUIREMENTS


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot be read: {getattr(exc, 'strerror', None) or exc}") from None


def _read_lock(path: Path, text: str, kind: str) -> Locked:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not a {kind} file: not valid TOML: {exc}") from None
    key = "packages" if kind == PYLOCK else "package"
    packages = data.get(key)
    if not (isinstance(packages, list) and all(isinstance(p, dict) for p in packages)):
        raise UsageError(f"{path}: not a {kind} file: no [[{key}]] tables")
    locked = Locked(path, kind)
    for number, package in enumerate(packages, 1):
        name, version = package.get("name"), package.get("version")
        if not isinstance(name, str):
            raise UsageError(f"{path}: [[{key}]] number {number} has no name")
        if isinstance(version, str) and _from_index(package, kind):
            locked.add(name, version)
    return locked


def _from_index(package: dict, kind: str) -> bool:
    """Whether a lock's package is a release of an index (not the project, a checkout or a URL)."""
    if kind == PYLOCK:  # PEP 751: an index release has sdist or wheels; vcs, directory, archive are not
        return not any(key in package for key in ("vcs", "directory", "archive"))
    source = package.get("source")
    return isinstance(source, dict) and "registry" in source


def _read_requirements(path: Path, text: str, locked: Locked, seen: set) -> None:
    from packaging.requirements import InvalidRequirement, Requirement

    for number, line in _logical_lines(text):
        include = INCLUDE_RE.match(line)
        if include:
            _include(path, number, Path(include.group(3)), locked, seen)
            continue
        if line.startswith("-"):
            continue  # -e, --index-url, ...: not a release pin
        requirement_text = OPTION_RE.split(line, maxsplit=1)[0]
        try:
            requirement = Requirement(requirement_text)
        except InvalidRequirement as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # one line, not its caret
            raise UsageError(f"{path}:{number}: not a requirement: {requirement_text!r} ({why})") from None
        version = _exact(requirement)
        if version is not None:
            locked.add(requirement.name, version)


def _include(path: Path, number: int, target: Path, locked: Locked, seen: set) -> None:
    target = target if target.is_absolute() else path.parent / target
    if target.resolve() in seen:
        return  # included twice (or by itself): read once
    seen.add(target.resolve())
    try:
        text = _text(target)
    except UsageError as exc:
        raise UsageError(f"{path}:{number}: {exc}") from None
    _read_requirements(target, text, locked, seen)


def _logical_lines(text: str):
    """(first line number, line) with comments dropped and `\\` continuations joined."""
    pending, start = "", None
    for number, raw in enumerate(text.splitlines(), 1):
        line = COMMENT_RE.sub("", raw).rstrip()
        start = start or number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined, pending = (pending + line).strip(), ""
        if joined:
            yield start, joined
        start = None
    if pending.strip():
        yield start, pending.strip()


def _exact(requirement) -> str | None:
    """The version an exact requirement (`==1.2.3`, `===1.2.3`) names; None for a range or a URL."""
    specifiers = list(requirement.specifier)
    if requirement.url or len(specifiers) != 1:
        return None
    only = specifiers[0]
    if only.operator in ("==", "===") and "*" not in only.version:
        return only.version
    return None
