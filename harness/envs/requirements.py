"""Requirement strings and dates as the command line, the matrix and the env builder take them."""
from __future__ import annotations

import re

from harness.errors import UsageError

REQUIREMENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*"
                            r"((==|>=|<=|~=|!=|<|>)[^\s;]+(,\s*(==|>=|<=|~=|!=|<|>)[^\s,;]+)*)?$")
# A direct reference to a local file or directory (a package built from a checkout); never a network URL.
LOCAL_REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*@\s*file:///\S+$")
# The maintainer's own repository at a git ref: NAME @ git:REF[:DIR] (harness/envs/gitref.py). A ref
# name cannot hold ':' (git check-ref-format), so the first ':' after the ref starts the directory.
GIT_REF_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?\s*@\s*git:([^\s:]+)(?::([^\s:]+))?$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?$")


def requirement_name(requirement: str) -> str:
    return re.split(r"[\[=<>!~ ;@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def check_requirement(requirement: str) -> str:
    if not any(r.match(requirement.strip()) for r in (REQUIREMENT_RE, LOCAL_REFERENCE_RE, GIT_REF_RE)):
        raise UsageError(f"malformed requirement {requirement!r}: expected e.g. deltalake==0.20.1, "
                         "'mylib @ file:///path/to/mylib' or 'mylib @ git:v1.2.0' (this repository at a ref)")
    return requirement.strip()


def merge_requirements(defaults: list, overrides: list) -> list:
    """The bug's default requirements with each override replacing the entry of the same name."""
    merged = {requirement_name(r): r for r in defaults}
    for override in overrides:
        merged[requirement_name(override)] = check_requirement(override)
    return sorted(merged.values())


def check_date(date: str | None) -> str | None:
    if date is not None and not DATE_RE.match(date):
        raise UsageError(f"bad --exclude-newer {date!r}: expected a date like 2024-10-01 or an RFC 3339 time")
    return date
