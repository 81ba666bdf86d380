"""`repro new`: a commented skeleton of a repro and its matrix entry, each pointing to its schema."""
from __future__ import annotations

import re
from pathlib import Path

from harness.errors import UsageError

BUG_ID_RE = r"[a-z0-9]+(-[a-z0-9]+)*"

REPRO_SKELETON = '''"""{bug_id}: one line on the bug (what fails, under which concurrency).

Runs inside the interpreter under test (Python 3.9+): import only the stdlib here and the
library under test lazily, inside the functions. Check with `repro list`, run with
`repro run {bug_id} --python 3.11 --with {package}==VERSION`.

Its cells and the verdict each should give: matrix/{stem}.toml (schema: matrix/README.md);
every field of BUG: repros/README.md.
"""

BUG = {{
    "id": "{bug_id}",  # the file name is the id with '_' for '-'
    "title": "TODO: one line",
    "upstream": [],  # e.g. ["owner/repo#123 (report)", "owner/repo#456 (fix)"]
    "packages": ["{package}"],  # the packages under test: the matrix and bisect axes
    "requirements": ["{package}"],  # what an attempt's env installs; --with replaces by name
    # exception | hang | data-loss | corruption. For a hang, call ctx.hang_evidence("...") when the stall
    # begins: a deadline that runs out before that is a hang, but not this bug.
    "failure_kind": "exception",
    "signature": r"TODO: a regular expression matching the bug's error text",
    # Measured, not guessed: `repro run {bug_id} --with {package}==BAD --attempts 20 --measure`.
    # An `absent` verdict needs as many clean attempts as this rate asks for.
    "trigger_rate": {{"reproduced": 1, "attempts": 1}},
    "variants": {{
        "trigger": {{"role": "trigger", "run": "trigger", "timeout": 60}},
        # The documented workaround: it must come out clean wherever the trigger fails.
        "control": {{"role": "control", "run": "control", "timeout": 60}},
    }},
}}


def trigger(ctx):
    import {module}  # noqa: F401 - lazily: the library under test

    errors = []
    # TODO: provoke the bug (threads, processes...) and collect every failure: the exception object
    # itself (the oracle reads where it was raised: only the library's own errors are the bug).
    # Until then this raises, so an untouched skeleton is a failure of the repro, never `absent`.
    raise NotImplementedError("{bug_id}: trigger() is a skeleton; provoke the bug there, then delete this line")
    return {{"errors": errors}}


def control(ctx):
    import {module}  # noqa: F401

    errors = []
    # TODO: the same workload with the workaround applied.
    raise NotImplementedError("{bug_id}: control() is a skeleton; apply the workaround there, then delete this line")
    return {{"errors": errors}}
'''

MATRIX_SKELETON = '''# The repro: repros/{stem}.py; the schema of this file: matrix/README.md
# The cells of {bug_id} and the verdict each should give (`pytest matrix/` and `nox` run them).
bug = "{bug_id}"

# `repro verify {bug_id}`: present on a known-bad release, absent on a known-good one.
# [verify]
# present = {{ python = "3.11", pins = ["{package}==BAD"] }}
# absent  = {{ python = "3.11", pins = ["{package}==GOOD"] }}

# One entry is the cross product of its lists; controls expect "absent".
# [[cells]]
# python = ["3.11"]
# pins = ["{package}==BAD"]
# exclude_newer = "release"     # the dependencies as of the pinned release's date
# expect = "present"
'''


def write_skeleton(bug_id: str, package: str, where: Path) -> list[Path]:
    """`repro new`: a commented repro and its matrix entry under `where` (repros/, matrix/).

    Refuses a malformed id or an existing file: a skeleton never overwrites work. Whether the id is
    already known elsewhere (shipped, REPRO_PATH) is the caller's check (`repro new --force`).
    Its trigger and control raise until filled in: an untouched skeleton never reports `absent`."""
    if not re.fullmatch(BUG_ID_RE, bug_id):
        raise UsageError(f"bug id {bug_id!r}: use lower-case letters, digits and '-', e.g. mylib-write-race")
    stem = bug_id.replace("-", "_")
    paths = [where / "repros" / f"{stem}.py", where / "matrix" / f"{stem}.toml"]
    existing = [str(p) for p in paths if p.exists()]
    if existing:
        raise UsageError(f"{' and '.join(existing)}: already there; a skeleton never overwrites a file")
    fields = {"bug_id": bug_id, "stem": stem, "package": package, "module": package.replace("-", "_").lower()}
    for path, text in zip(paths, (REPRO_SKELETON, MATRIX_SKELETON)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**fields))
    return paths
