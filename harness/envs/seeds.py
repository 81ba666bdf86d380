"""The packages a venv of a release's era came with, which uv's venvs do not have.

`python -m venv` (and virtualenv) seeded pip and setuptools into every venv on Python up to 3.11;
3.12 stopped bundling setuptools (CPython gh-95299). Old releases relied on that without declaring
it: Beam 2.50.0 imports `pkg_resources`, and in a bare uv venv fails with `No module named
'pkg_resources'`, a failure its users never saw. So an env resolved as of a past date (a release's
era, `exclude_newer`) on Python <= 3.11 gets pip and setuptools too, resolved as of that same date:
the versions a venv made that day would have got. An env of today's index (no date) is what a user
installing today gets, and stays bare; a requirement that names pip or setuptools itself wins.
"""
from __future__ import annotations

from harness.versions import requirement_name

ERA_SEEDS = ("pip", "setuptools")
LAST_SEEDING_MINOR = (3, 11)  # 3.12's venv seeds pip only


def era_seeds(python_version: str, exclude_newer: str | None, requirements: list) -> list:
    """What to install besides `requirements` into an env of this Python resolved as of `exclude_newer`."""
    if not exclude_newer:
        return []
    minor = tuple(int(part) for part in python_version.split(".")[:2] if part.isdigit())
    if minor > LAST_SEEDING_MINOR:
        return []
    named = {requirement_name(r) for r in requirements}
    return [seed for seed in ERA_SEEDS if seed not in named]
