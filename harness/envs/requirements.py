"""Requirements merged (a bug's defaults, overrides by name) and dates, as the command line, the matrix
and the env builder take them; what a requirement string is: harness.versions."""
from __future__ import annotations

import re

from harness.errors import UsageError
from harness.versions import check_requirement, requirement_name

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?Z?)?$")


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
