"""Release versions, package names and requirement strings, as `packaging` reads them: the one home
of each (tests/test_one_home.py keeps it so). Parent side only: the child side (CHILD_CODE) does not
import it.

- version_key: sorts versions as versions (PEP 440); a text that is no version sorts before them,
  as text, so any record's text sorts and none raises (record fields are untrusted).
- requirement_name: the name a requirement string starts with, canonical (PEP 503:
  packaging.utils.canonicalize_name), so `Foo_Bar`, `foo.bar` and `foo-bar` are one package.
- check_requirement: what the harness accepts as a requirement: `name[extras]` with version
  specifiers, a local file reference (`name @ file:///...`) or this repository at a git ref
  (`name @ git:REF[:DIR]`, GIT_REF_RE); no marker, no network URL.
- exact_pin: (name, version) of an exact pin, `name[extras]==version` read by
  packaging.requirements.Requirement: one `==` of one version, no wildcard, marker or URL.
- latest_pin: a matrix pin `NAME==latest` (LATEST), the newest release, resolved when a cell runs.
- python_key: sorts Python specs ("3.9", "3.13t", "debian-trixie:3.13"; IMAGE_PYTHON_RE) by minor
  version, a free-threaded build after the default ones, then full version and recipe; any text sorts.
"""
from __future__ import annotations

import functools
import re

from harness.errors import UsageError

# A Python spec: a host version, or `RECIPE:VERSION` of an image recipe, `t` for a free-threaded build.
IMAGE_PYTHON_RE = re.compile(r"^(?:(?P<recipe>[a-z][a-z0-9-]*):)?(?P<version>3\.\d+(?:\.\d+)?)(?P<t>t?)$")
LATEST = "latest"  # a matrix pin `NAME==latest`: the newest release, resolved when the cell runs
REQUIREMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*"
                            r"((==|>=|<=|~=|!=|<|>)[^\s;]+(,\s*(==|>=|<=|~=|!=|<|>)[^\s,;]+)*)?$")
# A direct reference to a local file or directory (a package built from a checkout); never a network URL.
LOCAL_REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*@\s*file:///\S+$")
# The maintainer's own repository at a git ref: NAME @ git:REF[:DIR] (harness/envs/gitref.py). A ref
# name cannot hold ':' (git check-ref-format), so the first ':' after the ref starts the directory.
GIT_REF_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?\s*@\s*git:([^\s:]+)(?::([^\s:]+))?$")


def version_key(text) -> tuple:
    """Sorts versions as versions; a text that is no version sorts before them, as text."""
    from packaging.version import InvalidVersion, Version

    try:
        return (1, Version(str(text)))
    except InvalidVersion:
        return (0, str(text))


def requirement_name(requirement: str) -> str:
    """`Foo_Bar[s3]>=1` -> `foo-bar`: the canonical name of the package a requirement names."""
    from packaging.utils import canonicalize_name

    return canonicalize_name(re.split(r"[\[=<>!~ ;@]", requirement.strip(), maxsplit=1)[0])


def check_requirement(requirement: str) -> str:
    if not any(r.match(requirement.strip()) for r in (REQUIREMENT_RE, LOCAL_REFERENCE_RE, GIT_REF_RE)):
        raise UsageError(f"malformed requirement {requirement!r}: expected e.g. deltalake==0.20.1, "
                         "'mylib @ file:///path/to/mylib' or 'mylib @ git:v1.2.0' (this repository at a ref)")
    return requirement.strip()


def exact_pin(pin) -> tuple[str, str] | None:
    """(canonical name, version as written) of `name[extras]==version`, else None (a range, a
    wildcard, `===`, a marker, a file reference, `==latest`, a text that is no requirement)."""
    return _exact_pin(pin) if isinstance(pin, str) else None


@functools.lru_cache(maxsize=4096)  # records are sorted by their pins: each is read many times
def _exact_pin(pin: str) -> tuple[str, str] | None:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        requirement = Requirement(pin)
    except InvalidRequirement:
        return None
    specifiers = list(requirement.specifier)
    if requirement.url or requirement.marker or len(specifiers) != 1:
        return None
    if specifiers[0].operator != "==" or "*" in specifiers[0].version:
        return None
    return canonicalize_name(requirement.name), specifiers[0].version


def latest_pin(pin: str) -> str | None:
    """`moto[s3]` of `moto[s3]==latest` (the name and extras as written), else None."""
    head, equals, version = pin.strip().rpartition("==")
    named = REQUIREMENT_RE.match(head.rstrip())
    if not equals or version.strip() != LATEST or not named or named.group(2):  # group 2: a version specifier
        return None
    return head.rstrip()


def pinned_versions(pins) -> dict:
    """{canonical name: version} of the exact pins among `pins`."""
    return dict(filter(None, map(exact_pin, pins or ())))


def python_key(spec) -> tuple:
    """Orders Python specs: by minor version, a free-threaded build after the default ones, then by
    the full version and the recipe ("3.13" < "debian-trixie:3.13" < "3.13.0" < "3.13t" < "3.14").
    A text that is no spec ("current", an untrusted record's) sorts by the digits it holds."""
    text = str(spec)
    match = IMAGE_PYTHON_RE.match(text)
    version = match.group("version") if match else text
    numbers = tuple(int(x) for x in re.findall(r"\d+", version))
    return numbers[:2], bool(match and match.group("t")), numbers, (match and match.group("recipe")) or "", text
