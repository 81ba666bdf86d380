"""`repro report`: every output of a set of cell records, written under --out (and the README).

The newest record of each cell wins (results.collect), so re-running a cell updates its row. Every
output is written atomically (temp file + rename) and world-readable. A cell record without
a key the outputs need, or one results.read_numbered() refuses (a wrong-typed field, a bug or
variant that is not a plain name), is left out with one line naming file:line, so one bad record
cannot stop a report nor name a path outside --out. The outputs themselves are harness.outputs
(the README table, badges, JUnit, the HTML pages) and harness.osv (OSV ranges and the README's badges).
"""
from __future__ import annotations

import json
from pathlib import Path

from harness import osv
from harness.files import write_published
from harness.outputs import badges, junit, pages, readme
from harness.record import cells


def write_all(records: list, out_dir: Path, readme_path: Path | None) -> dict:
    """Write every output of the records (CellRecords, or dicts as a results file holds them); returns their paths."""
    records = cells(records)
    written = {"html": out_dir / "index.html", "junit": out_dir / "junit.xml"}
    for name, text in pages.html_pages(records).items():
        write_published(out_dir / name, text)
        if name != "index.html":
            written[f"page:{name}"] = out_dir / name
    write_published(written["junit"], junit.junit(records))
    for bug in sorted({r.bug for r in records}):
        path = out_dir / "badges" / f"{bug}.json"
        write_published(path, json.dumps(badges.badge(bug, records), indent=1) + "\n")
        written[f"badge:{bug}"] = path
    written.update(osv.write_all(records, out_dir, readme_path))  # OSV ranges; the README's badges
    if readme_path is not None:
        readme.update_readme(readme_path, readme.markdown(records))
        written["readme"] = readme_path
    return written
