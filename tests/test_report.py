"""Reports from real result records: README table, badges, JUnit XML, and the HTML grid in Chromium."""
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness import report, results
from harness.cell import Cell, Options, run_cell
from harness.outputs.readme import README_END, README_START, markdown, update_readme


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
    merged, skipped = results.collect([records, tmp_path / "old.jsonl"])
    assert len(merged) == 4 and skipped == []
    trigger = next(r for r in merged if r["variant"] == "trigger" and r["bug"] == "synthetic-faults")
    assert trigger["verdict"] == "present"


def test_readme_section_is_replaced(records, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_START}\nold table\n{README_END}\noutro\n")
    update_readme(readme, markdown(results.collect([records])[0]))
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| synthetic-hang | segfault |" in text and "**crash** (expected present)" in text


def test_badges_and_junit(records, tmp_path):
    written = report.write_all(results.collect([records])[0], tmp_path, None)
    badge = json.loads(Path(written["badge:synthetic-hang"]).read_text())
    assert badge["schemaVersion"] == 1 and badge["color"] == "red" and "1 unexpected" in badge["message"]
    # red says the bug is there; the unexpected cell is said in words, never by the colour alone
    assert badge["message"] == "present in 1 of 2 cells · 1 unexpected", badge
    faults = json.loads(Path(written["badge:synthetic-faults"]).read_text())
    assert (faults["message"], faults["color"]) == ("present in 1 of 1 cells", "red")
    suites = ET.parse(written["junit"]).getroot()
    cases = {(c.get("classname"), c.get("name")): c for c in suites.iter("testcase")}
    assert len(cases) == 4, "every cell is its own testcase"
    assert cases[("synthetic-hang.pycurrent-default", "segfault")].find("failure") is not None
    assert cases[("synthetic-faults.pycurrent-default", "trigger")].find("failure") is None


def repro_report(*args):
    import sys

    from harness.paths import ROOT

    return subprocess.run([sys.executable, "-m", "harness", "report", *map(str, args)], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def with_bad_records(records, tmp_path):
    """The good records, then a cell record without "verdict" (line 5) and one without "variant" (line 6)."""
    lines = records.read_text().splitlines()
    bad = [json.loads(lines[0]), json.loads(lines[1])]
    del bad[0]["verdict"], bad[1]["variant"]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([*lines, *map(json.dumps, bad)]) + "\n")
    return path


@pytest.mark.fault("one line: a bad results file or report")
def test_a_record_without_a_key_is_left_out_naming_file_and_line(records, tmp_path):
    path = with_bad_records(records, tmp_path)
    merged, skipped = results.collect([path])
    assert len(merged) == 4
    assert skipped == [f"{path}:5: cell record without 'verdict': left out",
                       f"{path}:6: cell record without 'variant': left out"]


@pytest.mark.fault("one line: a bad results file or report")
def test_a_torn_line_is_named_too(records, tmp_path):
    path = tmp_path / "torn.jsonl"
    path.write_text(records.read_text() + '{"schema": 1, "kind": "cell", "bug": "synth\n')
    merged, skipped = results.collect([path])
    assert len(merged) == 4 and len(skipped) == 1 and skipped[0].startswith(f"{path}:5: not a whole result record")


@pytest.mark.fault("one line: a bad results file or report")
def test_report_warns_of_bad_records_and_writes_the_rest(records, tmp_path):
    out = repro_report(with_bad_records(records, tmp_path), "--out", tmp_path / "site", "--no-readme")
    assert out.returncode == 0, out.stderr
    path = tmp_path / "mixed.jsonl"
    assert out.stderr.splitlines() == [f"repro: warning: {path}:5: cell record without 'verdict': left out",
                                       f"repro: warning: {path}:6: cell record without 'variant': left out"]
    assert len(list(ET.parse(tmp_path / "site" / "junit.xml").getroot().iter("testcase"))) == 4


@pytest.mark.fault("one line: a bad results file or report")
def test_report_with_no_good_record_is_one_line_and_exit_2(records, tmp_path):
    only_bad = tmp_path / "bad.jsonl"
    only_bad.write_text("\n".join(with_bad_records(records, tmp_path).read_text().splitlines()[4:]) + "\n")
    out = repro_report(only_bad, "--out", tmp_path / "site", "--no-readme")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1, out.stderr
    assert "no cell results" in out.stderr and f"{only_bad}:1: cell record without 'verdict'" in out.stderr
    assert not (tmp_path / "site").exists()


@pytest.mark.fault("one line: a bad results file or report")
def test_a_missing_readme_is_one_line_and_exit_2_before_anything_is_written(records, tmp_path):
    out = repro_report(records, "--out", tmp_path / "site", "--readme", tmp_path / "no" / "README.md")
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [f"repro: cannot read the README {tmp_path / 'no' / 'README.md'}: "
                                       "No such file or directory"]
    assert not (tmp_path / "site").exists()


@pytest.mark.fault("one line: a bad results file or report")
def test_junit_is_valid_xml_whatever_the_reason_holds(records, tmp_path):
    controls = "".join(map(chr, range(0x20)))
    base = json.loads(records.read_text().splitlines()[0])
    odd = [{**base, "variant": f"odd{controls}", "reason": f"stderr: {controls}\ud800", "expected": ["absent"]},
           {**base, "variant": "skipped", "verdict": "skipped", "reason": controls}]
    written = report.write_all(odd, tmp_path, None)
    cases = list(ET.parse(written["junit"]).getroot().iter("testcase"))
    failure = cases[0].find("failure")
    assert failure is not None and "\\x00" in failure.text and "\\x1b" in failure.text and "\t" in failure.text
    assert cases[0].get("name").startswith("odd\\x00") and cases[1].find("skipped") is not None


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
    written = report.write_all(results.collect([records])[0], tmp_path / "site", None)
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
