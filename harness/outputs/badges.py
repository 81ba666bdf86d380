"""A bug's shields.io endpoint badge (https://shields.io/badges/endpoint-badge): its trigger
cells' verdicts, or where a package's releases decide it, the range harness.osv verified."""
from __future__ import annotations

from harness import osv, stats
from harness.record import cells, unexpected, weakest_exclusion
from harness.verdict import ABSENT, PRESENT

# The badge's colour names, as the pages paint them: by meaning, each at WCAG AA (4.5:1) with white
# text (tests/test_page_contrast.py): red says the bug is there, green that it is not, grey that
# nothing could tell. Red only for the bug itself: an unexpected or skipped cell is said in words.
COLOURS = {"red": "#cf222e", "brightgreen": "#1a7f37", "lightgrey": "#656d76"}


def badge(bug: str, records: list) -> dict:
    records = cells(records)
    triggers = [r for r in records if r.bug == bug and r.role == "trigger"]
    surprises = sum(unexpected(r) for r in records if r.bug == bug)
    ranged = osv.badge(bug, records)  # where a package's releases decide it
    message, colour = (ranged["message"], ranged["color"]) if ranged else _by_cells(triggers)
    if surprises:
        message += f" · {surprises} unexpected"
    return {"schemaVersion": 1, "label": bug, "message": message, "color": colour}


def _by_cells(triggers: list) -> tuple[str, str]:
    """Where no package's releases decide it: what the trigger cells say, in their words."""
    present = sum(r.verdict == PRESENT for r in triggers)
    absent = [r for r in triggers if r.verdict == ABSENT]
    if present:
        return f"present in {present} of {len(triggers)} cells", "red"
    if not absent:
        return "untested", "lightgrey"
    weakest = weakest_exclusion(triggers)
    said = f" ({stats.exclusion_words(weakest)})" if weakest else ""
    if len(absent) == len(triggers):
        return f"absent in {len(absent)} cells{said}", "brightgreen"
    return f"absent in {len(absent)} of {len(triggers)} cells{said}, the rest cannot tell", "lightgrey"
