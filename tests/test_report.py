"""Reports from real result records: README table, badges, JUnit XML, and the HTML grid in Chromium."""
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness import report, results
from harness.cells import Cell, Options, run_cell


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Cells of the synthetic bugs run through the real engine, with expectations (one mismatched)."""
    import os

    from conftest import FAULT_REPROS

    os.environ["REPRO_PATH"] = str(FAULT_REPROS)
    path = tmp_path_factory.mktemp("results") / "main.jsonl"
    plan = [("synthetic-faults", "trigger", "present"), ("synthetic-faults", "control", "absent"),
            ("synthetic-hang", "trigger", "present"), ("synthetic-hang", "segfault", "present")]
    for bug, variant, expected in plan:
        record = run_cell(Cell(bug, variant, "current"), Options(attempts=2, control_attempts=0))
        record["expected"] = expected
        results.append(path, record)
    return path


def test_newest_record_of_a_cell_wins(records, tmp_path):
    older = [json.loads(line) for line in records.read_text().splitlines()][0]
    older["started_at"], older["verdict"] = "2000-01-01T00:00:00+00:00", "error"
    results.append(tmp_path / "old.jsonl", older)
    merged = report.collect([records, tmp_path / "old.jsonl"])
    assert len(merged) == 4
    assert next(r for r in merged if r["variant"] == "trigger" and r["bug"] == "synthetic-faults")["verdict"] == "present"


def test_readme_section_is_replaced(records, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold table\n{report.README_END}\noutro\n")
    report.update_readme(readme, report.markdown(report.collect([records])))
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| synthetic-hang | segfault |" in text and "**crash** (expected present)" in text


def test_badges_and_junit(records, tmp_path):
    written = report.write_all(report.collect([records]), tmp_path, None)
    badge = json.loads(Path(written["badge:synthetic-hang"]).read_text())
    assert badge["schemaVersion"] == 1 and badge["color"] == "red" and "1 unexpected" in badge["message"]
    assert json.loads(Path(written["badge:synthetic-faults"]).read_text())["color"] == "orange"
    suites = ET.parse(written["junit"]).getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in suites.iter("testcase")}
    assert len(cases) == 4, "every cell is its own testcase"
    assert cases[("synthetic-hang.pycurrent-default", "segfault")].find("failure") is not None
    assert cases[("synthetic-faults.pycurrent-default", "trigger")].find("failure") is None


class CellReader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.cells = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "td" and "data-verdict" in attrs:
            self.cells.append((attrs["data-variant"], attrs["data-verdict"]))


def test_html_grid_in_headless_chromium(records, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    written = report.write_all(report.collect([records]), tmp_path / "site", None)
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    url = written["html"].as_uri()
    shot = tmp_path / "grid.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1200,900", url], check=True,
                   capture_output=True, timeout=120)
    assert shot.stat().st_size > 5000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    dom = subprocess.run([*flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120).stdout
    reader = CellReader()
    reader.feed(dom)
    # One grid cell per (bug, pins, trigger variant, python); controls go into the trigger's details.
    assert sorted(reader.cells) == [("segfault", "crash"), ("trigger", "present"), ("trigger", "present")]
    assert "segfault (trigger): CRASH (expected present)" in dom
    assert "control (control): ABSENT" in dom
