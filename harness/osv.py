"""Verified ranges per bug and package, from cell records (matrix runs and bisect points): in the
OSV format, so a dependency scanner can warn on a pinned release, and as the text of a badge.

A release's verdict is that of the trigger cells that installed it: `present` if any of them
reproduced the bug (on any Python), `absent` if all that judged it were clean; cells without a
judgement (error, skipped, a hang that is not the bug) are left out. A package whose release alone
does not decide the verdict (awswrangler 3.11.0 is present with deltalake 0.22.3 and absent with
0.23.0) gets no ranges: the bug is not in it.

Events say only what was verified: `introduced` is the first release seen with the bug after one
seen without it (or the oldest tested); the end of a range is `fixed` when the first clean release
directly follows the last affected one on the index, else `last_affected` (releases in between were
not tested); a range still open at the newest release on the index has no end.

Whether one release falls in a timeline's verified ranges (`repro audit`): standing().

Record fields are untrusted (results.py): only an installed package whose name is a distribution
name (PEP 508) and whose version is a version (PEP 440) is published, as a file name, an OSV
package or a badge; any other is left out of ranges and badges, with a warning.
"""
from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path

from harness import stats
from harness.files import write_atomically
from harness.record import CellRecord, cells, weakest_exclusion
from harness.registry import upstream_reference
from harness.versions import version_key

SCHEMA_VERSION = "1.7.5"  # of the OSV schema tests/osv/schema.json was taken from
BADGES_START, BADGES_END = "<!-- badges:start -->", "<!-- badges:end -->"
DISTRIBUTION_NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]{0,98}[A-Z0-9]", re.IGNORECASE)  # PEP 508
VERSION_TEXT = re.compile(r"[A-Za-z0-9.!+_-]{1,100}")  # what a version may be written with: no space, no markup


def publishable(name, version) -> bool:
    """A release that may become an OSV package, a file name and a badge: a distribution name and a version."""
    from packaging.version import InvalidVersion, Version

    if not (isinstance(name, str) and DISTRIBUTION_NAME.fullmatch(name)):
        return False
    if not (isinstance(version, str) and VERSION_TEXT.fullmatch(version)):
        return False
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def releases_of(record: CellRecord) -> dict[str, str]:
    """The record's installed {package: version} that can be published (see publishable)."""
    installed = record.installed if isinstance(record.installed, dict) else {}
    return {name: version for name, version in installed.items() if version and publishable(name, version)}


def unpublishable(records: list, limit: int = 20) -> list[str]:
    """One line per installed (package, version) left out of the OSV output and the badges."""
    found = sorted({(repr(name), repr(version)) for r in cells(records)
                    for name, version in (r.installed or {}).items()
                    if version and not publishable(name, version)})
    lines = [f"installed {name} {version} is not a distribution name and version: left out of OSV ranges "
             f"and badges" for name, version in found[:limit]]
    return lines + ([f"... and {len(found) - limit} more"] if len(found) > limit else [])


def verdicts_by_release(bug: str, package: str, records: list) -> dict[str, str] | None:
    """{release: "present" | "absent"} of the package from the bug's trigger cells, oldest first;
    None when the package's release does not decide the verdict (see the module's text)."""
    seen: dict[str, dict[str, set]] = {}  # release -> verdict -> the other packages' releases
    for record in cells(records):
        installed = releases_of(record)
        version = installed.get(package)
        if record.bug != bug or record.role != "trigger" or not version \
                or record.verdict not in ("present", "absent"):
            continue
        others = tuple(sorted((k, v) for k, v in installed.items() if k != package))
        seen.setdefault(version, {}).setdefault(record.verdict, set()).add(others)
    for verdicts in seen.values():
        if len(verdicts) == 2 and not verdicts["present"] & verdicts["absent"]:
            return None  # the same release, both verdicts, with other releases of the other packages
    return {v: ("present" if "present" in seen[v] else "absent") for v in sorted(seen, key=version_key)}


def absent_exclusions(bug: str, package: str, records: list) -> dict[str, float]:
    """{release: rate}: for each release of the package with absent trigger cells, the weakest rate
    they exclude (record.weakest_exclusion; an absent is a statistical claim: the OSV text and the
    badges say it in stats.exclusion_words)."""
    by_release: dict[str, list] = {}
    for record in cells(records):
        version = releases_of(record).get(package)
        if record.bug == bug and record.role == "trigger" and version:
            by_release.setdefault(version, []).append(record)
    return {v: rate for v, members in by_release.items() if (rate := weakest_exclusion(members)) is not None}


def ranges(timeline: dict[str, str], index: list[str] | None = None) -> list[list[dict]]:
    """OSV ECOSYSTEM events, one list per affected stretch of the timeline. `index`: the package's
    final releases, oldest first, to tell a `fixed` from a `last_affected` (None: unknown)."""
    out, start, last_bad = [], None, None
    for version, verdict in timeline.items():
        if verdict == "present":
            start = start or version
            last_bad = version
        elif start is not None:
            end = {"fixed": version} if _adjacent(last_bad, version, index) else {"last_affected": last_bad}
            out.append([{"introduced": start}, end])
            start = None
    if start is not None:
        newest = index[-1] if index else None
        out.append([{"introduced": start}] + ([] if newest == last_bad else [{"last_affected": last_bad}]))
    return out


AFFECTED, NOT_AFFECTED, UNKNOWN = "affected", "not affected", "unknown"


def standing(timeline: dict[str, str], version: str) -> tuple[str, str]:
    """Whether `version` falls in the verified ranges of a timeline ({release: verdict}, oldest first):
    (AFFECTED | NOT_AFFECTED | UNKNOWN, why). A tested release has its verdict; one between two tested
    releases of the same verdict shares it (as an OSV range covers the releases between its events);
    one between releases of two verdicts, older than the oldest tested, or newer than a newest tested
    that has the bug, is not verified either way."""
    releases = sorted(timeline, key=version_key)
    if version in timeline:
        return _word(timeline[version]), f"{version} is verified {timeline[version]}"
    key = version_key(version)
    older = [v for v in releases if version_key(v) < key]
    newer = [v for v in releases if version_key(v) > key]
    if not older:
        return UNKNOWN, f"older than {releases[0]}, the oldest release tested ({timeline[releases[0]]})"
    below = older[-1]
    if not newer:
        if timeline[below] == "absent":
            return NOT_AFFECTED, f"newer than {below}, the newest release verified without it"
        return UNKNOWN, f"newer than {below}, the newest release tested, which has it"
    above = newer[0]
    if timeline[below] == timeline[above]:
        return _word(timeline[below]), f"between {below} and {above}, both verified {timeline[below]}"
    return UNKNOWN, f"between {below} ({timeline[below]}) and {above} ({timeline[above]}): not tested"


def _word(verdict: str) -> str:
    return AFFECTED if verdict == "present" else NOT_AFFECTED


def _adjacent(older: str, newer: str, index: list[str] | None) -> bool:
    """True when no final release lies between the two on the index."""
    if not index or older not in index or newer not in index:
        return False
    return index.index(newer) == index.index(older) + 1


def _references(upstream: list[str]) -> list[dict]:
    found = filter(None, map(upstream_reference, upstream))
    return [{"type": kind, "url": url} for kind, url in found]


def entries(records: list, bugs: dict, index_of=None, now: str | None = None) -> list[dict]:
    """One OSV record per bug and package with at least one verified affected release.
    `bugs`: id -> registry.Bug (title, upstream); `index_of(package)`: its final releases or None."""
    now = now or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = cells(records)
    out = []
    for bug_id in sorted({r.bug for r in records}):
        bug = bugs.get(bug_id)
        packages = _packages(bug_id, records)
        for package in packages:
            timeline = verdicts_by_release(bug_id, package, records)
            found = ranges(timeline, index_of(package) if index_of else None) if timeline else []
            if not found:
                continue
            said = absent_exclusions(bug_id, package, records)
            tested = ", ".join(f"{v} {verdict}" + (f" ({stats.exclusion_words(said[v])})"
                                                   if verdict == "absent" and v in said else "")
                               for v, verdict in timeline.items())
            out.append({
                "schema_version": SCHEMA_VERSION, "id": f"x_repro-{bug_id}-{package}", "modified": now,
                "summary": bug.title if bug else bug_id,
                "details": f"Verified by repro-harness: the bug's trigger run in fresh processes on each release. "
                           f"Releases tested: {tested}. An absent release's clean attempts exclude a "
                           f"per-attempt rate at or above the one given, at 95%.",
                "affected": [{"package": {"ecosystem": "PyPI", "name": package, "purl": f"pkg:pypi/{package}"},
                              "ranges": [{"type": "ECOSYSTEM", "events": events} for events in found],
                              "database_specific": {"verdicts": timeline}}],
                "references": _references(bug.upstream if bug else []),
                "database_specific": {"bug": bug_id, "failure_kind": bug.failure_kind if bug else None}})
    return out


def _packages(bug: str, records: list[CellRecord]) -> list[str]:
    """The packages with a publishable release installed in some cell of the bug."""
    return sorted({p for r in records if r.bug == bug for p in releases_of(r)})


def badge(bug: str, records: list, index_of=None) -> dict | None:
    """{message, color} from the package whose releases decide the bug, in the short words of
    shields badges: "present in 1.6.6 (newest)" (red: the newest release tested has it), "fixed in
    1.1.2" (the release after the last one seen present), "fixed between 0.20.1 and 1.6.6" (releases
    between them untested), then the newest release if it is another ("· 1.6.6 absent") and the rate
    its clean attempts exclude. None when no package's releases decide the verdict.
    `index_of(package)`: its final releases (default: the index's; None: unknown)."""
    records = cells(records)
    packages = _packages(bug, records)
    for package in packages:
        timeline = verdicts_by_release(bug, package, records)
        if not timeline or "present" not in timeline.values():
            continue
        versions = list(timeline)
        newest = versions[-1]
        named = f"{package} " if len(packages) > 1 else ""  # which library, where the cells pin several
        if timeline[newest] == "present":
            return {"message": f"{named}present in {newest} (newest)", "color": "red"}
        last_bad = versions[max(i for i, v in enumerate(versions) if timeline[v] == "present")]
        fixed = versions[versions.index(last_bad) + 1]
        index = (index_of or _index)(package)
        when = f"fixed in {fixed}" if _adjacent(last_bad, fixed, index) else f"fixed between {last_bad} and {fixed}"
        then = f" · {newest} absent" if newest != fixed else ""
        claims = absent_exclusions(bug, package, records)
        weakest = max((claims[v] for v in (fixed, newest) if v in claims), default=None)
        said = f" ({stats.exclusion_words(weakest)})" if weakest is not None else ""
        return {"message": f"{named}{when}{then}{said}", "color": "brightgreen"}
    return None


def badge_lines(bugs: list[str], pages_url: str | None, messages: dict) -> str:
    """The README's badges: shields.io endpoint badges on the published JSON when the results are
    published (`pages_url`), else static badges with the same text."""
    from urllib.parse import quote

    lines = []
    for bug in bugs:
        if pages_url:
            url = quote(f"{pages_url.rstrip('/')}/badges/{bug}.json", safe="")
            lines.append(f"![{bug}](https://img.shields.io/endpoint?url={url})")
        elif bug in messages:
            text = "-".join(quote(part.replace("-", "--").replace("_", "__"), safe="")
                            for part in (bug, messages[bug]["message"], messages[bug]["color"]))
            lines.append(f"![{bug}](https://img.shields.io/badge/{text})")
    return "\n".join(lines)


def write_all(records: list, out_dir: Path, readme: Path | None, bugs: dict | None = None,
              index_of=None) -> dict:
    """`repro report`'s share: osv/<bug>-<package>.json under out_dir, and the README's badges
    (between its badges markers, if it has them; REPRO_PAGES_URL: the published page)."""
    records = cells(records)
    if bugs is None:
        from harness.registry import bugs_of

        bugs = bugs_of(r.bug for r in records)
    written = {}
    for problem in unpublishable(records):
        print(f"repro: warning: {problem}", file=sys.stderr)
    for entry in entries(records, bugs, index_of if index_of is not None else _index):
        path = out_dir / "osv" / f"{entry['database_specific']['bug']}-{entry['affected'][0]['package']['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(entry, indent=1) + "\n", mode=0o644)  # published: world-readable
        written[f"osv:{path.stem}"] = path
    if readme is not None and BADGES_START in readme.read_text():
        names = sorted({r.bug for r in records})
        messages = {b: m for b in names if (m := badge(b, records))}
        text = readme.read_text()
        head, rest = text.split(BADGES_START, 1)
        _, tail = rest.split(BADGES_END, 1)
        block = badge_lines(names, os.environ.get("REPRO_PAGES_URL"), messages)
        write_atomically(readme, f"{head}{BADGES_START}\n{block}\n{BADGES_END}{tail}")
    return written


def _index(package: str) -> list[str] | None:
    """The package's final releases on the index; None when the index cannot say (a report still writes)."""
    from harness.envs import package_index
    from harness.errors import UsageError

    try:
        return package_index.final_releases(package)
    except UsageError:
        return None
