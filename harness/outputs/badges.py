"""A bug's shields.io endpoint badge (https://shields.io/badges/endpoint-badge): its trigger
cells' verdicts, or where a package's releases decide it, the range harness.osv verified."""
from __future__ import annotations

from harness import osv, stats
from harness.record import cells, unexpected, weakest_exclusion
from harness.verdict import ABSENT, PRESENT

# the badge's colour names, as the pages paint them
COLOURS = {"red": "#d73a49", "orange": "#e36209", "brightgreen": "#2ea44f"}


def badge(bug: str, records: list) -> dict:
    records = cells(records)
    triggers = [r for r in records if r.bug == bug and r.role == "trigger"]
    present = sum(r.verdict == PRESENT for r in triggers)
    absent = sum(r.verdict == ABSENT for r in triggers)
    surprises = sum(unexpected(r) for r in records if r.bug == bug)
    colour = "red" if surprises else ("orange" if present else "brightgreen")
    weakest = weakest_exclusion(triggers)
    message = (f"present {present} / absent {absent}" + (f" ({stats.exclusion_words(weakest)})" if weakest else "")
               + (f" / {surprises} unexpected" if surprises else ""))
    ranged = osv.badge(bug, records)  # where a package's releases decide it: fixed since / newest release
    if ranged:
        message = ranged["message"] + (f" · {surprises} unexpected" if surprises else "")
        colour = "red" if surprises else ranged["color"]
    return {"schemaVersion": 1, "label": bug, "message": message, "color": colour}
