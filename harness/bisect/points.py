"""The axis of a bisect: a package's releases (oldest first, each installed as of its own date)
or interpreters, as cells; releases that cannot be tested here are left out with the reason."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.cell import Cell
from harness.envs import package_index
from harness.envs.interpreters import Interpreter
from harness.registry import Bug
from harness.versions import version_key

NOT_A_RELEASE = "not a wheel or sdist of a version (eggs, odd file names)"


@dataclass
class Point:
    label: str               # "0.20.1" or "3.11.7"
    date: str | None         # the release's upload time
    cell: Cell
    result: dict = field(default_factory=dict)   # filled when tested


def _tags_of(text: str) -> frozenset:
    """The tags of a wheel's tag triple (compressed sets expanded); none for a triple that does not
    parse (awswrangler 0.0.1's `py36,py37-none-any`): such a wheel fits no interpreter."""
    from packaging import tags as pt

    try:
        return pt.parse_tag(text)
    except ValueError:  # packaging's InvalidTag
        return frozenset()


def _wheel_fits(tags: list[str], interpreter: Interpreter) -> bool:
    from packaging import tags as pt

    version = tuple(int(x) for x in interpreter.version.split(".")[:2])
    platforms = list(pt.platform_tags())
    # A free-threaded build takes cp3XXt wheels only (not abi3); the ABI must be named, since
    # packaging would otherwise take it from the interpreter running the harness.
    abis = [f"cp{version[0]}{version[1]}t"] if getattr(interpreter, "free_threaded", False) else None
    supported = set(pt.cpython_tags(version, abis=abis, platforms=platforms)) \
        | set(pt.compatible_tags(version, platforms=platforms))
    return any(_tags_of(tag) & supported for tag in tags)


def _leave_out_reason(release, parsed, interpreter: Interpreter) -> str | None:
    if parsed.is_prerelease:
        return "pre-release"
    if release.yanked:
        return "yanked"
    if not _python_fits(release.requires_python, interpreter):
        return f"requires Python {release.requires_python}"
    if not _wheel_fits(release.wheel_tags, interpreter):
        return f"no wheel for CPython {interpreter.minor} on this platform"
    return None


def _python_fits(requires: str | None, interpreter: Interpreter) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return not requires or SpecifierSet(requires).contains(interpreter.version)
    except InvalidSpecifier:
        return True


def release_points(bug: Bug, variant: str, package: str, interpreter: Interpreter, pins: tuple,
                   first: str | None = None, last: str | None = None) -> tuple[list[Point], list[tuple]]:
    """The releases of `package` in [first, last], oldest first, as cells installed as of their own date.

    Left out, with the reason: pre-releases, yanked releases, releases without a wheel for this
    interpreter and platform (building old native releases from source is not what users had).
    Index entries that are not a version (an egg read as one) are counted in one line.
    """
    from packaging.version import Version

    known = package_index.releases(package)
    for bound in (first, last):
        if bound is not None:
            package_index.check_pin(package, bound)
    points, left_out, not_releases = [], [], 0
    for version in sorted(known, key=version_key):
        release = known[version]
        try:
            parsed = Version(version)
        except ValueError:  # an egg or an odd file name the index read as a version: not a release
            not_releases += 1
            continue
        if (first and parsed < Version(first)) or (last and parsed > Version(last)):
            continue
        reason = _leave_out_reason(release, parsed, interpreter)
        if reason:
            left_out.append((version, reason))
            continue
        cell = Cell(bug.id, variant, interpreter.cell_python, (f"{package}=={version}", *pins),
                    package_index.release_date_cutoff(package, version))
        points.append(Point(version, release.uploaded, cell))
    if not_releases:
        left_out.append((f"{not_releases} files", NOT_A_RELEASE))
    return points, left_out


def interpreter_points(bug: Bug, variant: str, found: list[Interpreter], pins: tuple,
                       exclude_newer: str | None) -> list[Point]:
    ordered = sorted(found, key=lambda i: (tuple(int(x) for x in i.version.split(".")), i.cell_python))
    return [Point(i.cell_python, None, Cell(bug.id, variant, i.cell_python, pins, exclude_newer)) for i in ordered]
