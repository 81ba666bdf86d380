"""The package index, read through its JSON simple API (PEP 691/700): releases and upload dates."""
from __future__ import annotations

import functools
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.errors import UsageError
from harness.versions import exact_pin, version_key

ACCEPT = "application/vnd.pypi.simple.v1+json"


def index_url() -> str:
    return (os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL")
            or "https://pypi.org/simple").rstrip("/")


@dataclass
class Release:
    version: str
    uploaded: str            # ISO date-time of the release's first file
    yanked: bool
    wheel_tags: list = field(default_factory=list)  # e.g. ["cp39-abi3-manylinux_2_17_x86_64"]
    requires_python: str | None = None
    last_uploaded: str = ""  # ISO date-time of the release's last file (wheels can come days late)


@functools.lru_cache(maxsize=None)
def releases(package: str) -> dict[str, Release]:
    """Every release on the index, keyed by version string; UsageError if the index is unreachable."""
    from packaging.utils import canonicalize_name

    url = f"{index_url()}/{canonicalize_name(package)}/"
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise UsageError(f"package {package!r} is not on the index {index_url()}") from None
        raise UsageError(f"the package index {index_url()} answered {exc.code} for {package}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UsageError(f"cannot reach the package index {index_url()}: {exc}") from None
    found: dict[str, Release] = {}
    for file in data.get("files", []):
        version = _version_of(file["filename"], data["name"])
        if version is None:
            continue
        rel = found.setdefault(version, Release(version, file.get("upload-time") or "", True))
        rel.uploaded = min(rel.uploaded, file.get("upload-time") or rel.uploaded) or rel.uploaded
        rel.last_uploaded = max(rel.last_uploaded, file.get("upload-time") or "")
        rel.yanked = rel.yanked and bool(file.get("yanked"))  # yanked only if every file is
        rel.requires_python = rel.requires_python or file.get("requires-python")
        if file["filename"].endswith(".whl"):
            rel.wheel_tags.append("-".join(file["filename"][:-4].split("-")[-3:]))
    return found


def _version_of(filename: str, project: str) -> str | None:
    """The version of a release file of `project` (a wheel or an sdist), from its name; None for
    anything else (eggs, installers, another project's file) and for names that do not parse."""
    from packaging.utils import (
        canonicalize_name,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            # Only name and version matter here: tags that do not parse (awswrangler 0.0.1's
            # `py36,py37`) do not make the release less real; bisect finds such a wheel fits nothing.
            name_and_version = filename[:-4].rsplit("-", 3)[0]
            name, version, _, _ = parse_wheel_filename(name_and_version + "-py3-none-any.whl")
        else:
            name, version = parse_sdist_filename(re.sub(r"\.(tar\.bz2|tgz)$", ".tar.gz", filename))
    except ValueError:  # InvalidWheelFilename, InvalidSdistFilename, InvalidVersion
        return None
    return str(version) if name == canonicalize_name(project) else None


def check_pin(package: str, version: str) -> Release:
    """The release, or a UsageError naming the problem (not on the index, yanked)."""
    known = releases(package)
    release = known.get(version) or known.get(_normalized(version))  # the index's names are normalized
    if release is None:
        newest = sorted(known, key=version_key)[-3:]
        raise UsageError(f"{package} {version} is not on the index (newest: {', '.join(newest)})")
    return release


def _normalized(version: str) -> str:
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def release_date_cutoff(package: str, version: str) -> str:
    """An exclude-newer cutoff for 'the dependency set of this release's date'.

    One day after the release's first upload, so late wheels of the same release count
    but dependencies released after it do not; later still if a file came later than that
    (deltalake 0.19.2's linux wheels were uploaded 30 hours after its first file).
    """
    from datetime import datetime, timedelta

    release = check_pin(package, version)
    first = datetime.fromisoformat(release.uploaded.replace("Z", "+00:00"))
    last = datetime.fromisoformat((release.last_uploaded or release.uploaded).replace("Z", "+00:00"))
    return max(first + timedelta(days=1), last + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_cutoff(pins: Iterable[str]) -> str | None:
    """The exclude-newer cutoff of a set of pins: the newest of their releases' cutoffs.

    The newest, so every pinned release is installable whatever the pins' order; None when
    no pin is an exact `name==version` (ranges and local file references have no date).
    """
    exact = list(filter(None, map(exact_pin, pins)))
    return max((release_date_cutoff(name, version) for name, version in exact), default=None)


def final_releases(package: str, python: str | None = None) -> list[str]:
    """The package's releases a user gets from a plain install, oldest first: no pre-release, no
    yanked release, and (given an interpreter version) only releases whose Requires-Python admits it."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    kept = []
    for version, release in releases(package).items():
        try:
            parsed = Version(version)
        except InvalidVersion:
            continue
        if parsed.is_prerelease or release.yanked:
            continue
        try:
            if python and release.requires_python and not SpecifierSet(release.requires_python).contains(python):
                continue
        except InvalidSpecifier:
            pass  # an unreadable Requires-Python does not hide the release: the install will say
        kept.append(version)
    return sorted(kept, key=version_key)


def newest(package: str, python: str | None = None) -> str:
    """The newest final release of the package (for this interpreter version, if given)."""
    found = final_releases(package, python)
    if not found:
        raise UsageError(f"{package} has no final release on the index {index_url()}"
                         + (f" for Python {python}" if python else ""))
    return found[-1]


def releases_after(package: str, version: str, python: str | None = None) -> list[str]:
    """The final releases newer than `version`, oldest first (what `repro matrix refresh` adds)."""
    from packaging.version import Version

    return [v for v in final_releases(package, python) if Version(v) > Version(version)]
