"""The story of a bug over its releases, the HTML pages, the verdict table and the live progress line,
from small record sets (tests/report_records.py) and, for the end of `pytest matrix/`, a real run."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness import report, results, story, table
from harness.outputs.readme import README_END, README_START
from harness.progress import Progress
from harness.record import record_order
from report_records import delta_history, hang_with_workers, record, wrangler_history

ROOT = Path(__file__).resolve().parent.parent


def told(records, bug, packages):
    return story.build(bug, records, packages)


# ------------------------------------------------------------------ the story

def test_releases_are_ordered_as_versions_not_as_text():
    built = told(wrangler_history(), "wrangler-athena-cache-race", ["awswrangler"])
    assert [c["short"] for c in built["columns"]] == ["2.14.0", "3.2.0", "3.11.0", "3.12.0", "3.17.1"]
    assert story.version_key("3.2.0") < story.version_key("3.17.1") and "3.2.0" > "3.17.1"


def test_the_four_transitions_of_the_borrow_bug_on_3_11():
    built = told(delta_history(), "delta-already-borrowed", ["deltalake"])
    row = next(r for r in built["rows"] if r["python"] == "3.11.7")
    assert [(t["kind"], t["short"]) for t in row["transitions"]] == [
        ("present", "0.20.1"), ("fixed", "0.23.2"), ("came back", "0.25.2"), ("fixed", "1.1.2")]
    columns = [c["short"] for c in built["columns"]]
    assert [(columns[a], columns[b]) for a, b in row["spans"]] == [("0.20.1", "0.20.1"), ("0.25.2", "1.1.0")]
    assert row["transitions"][1]["last"] == "deltalake 0.20.1"
    assert built["newest"] == {"label": "deltalake 1.6.6",
                               "verdicts": {"absent": ["3.10.13", "3.11.7", "3.12.1", "3.13.0"]}}


def test_a_gap_between_judged_releases_is_said_and_controls_are_no_story():
    built = told(delta_history(), "delta-already-borrowed", ["deltalake"])
    row = next(r for r in built["rows"] if r["python"] == "3.10.13")
    fixed = row["transitions"][-1]
    assert (fixed["kind"], fixed["short"], fixed["untested_between"]) == ("fixed", "1.6.6", 4)
    assert fixed["text"] == ("fixed in deltalake 1.6.6 (present in 0.20.1, the release judged before; 4 release(s) "
                             "of the timeline between them not judged on this Python)")
    assert {r["variant"] for r in built["rows"]} == {"trigger"}


def test_unjudged_verdicts_neither_start_nor_end_a_span():
    cells = [record("delta-already-borrowed", "trigger", "3.11", "deltalake", v, verdict)
             for v, verdict in (("0.20.1", "present"), ("0.23.2", "error"), ("0.25.2", "present"), ("1.1.2", "absent"))]
    row = told(cells, "delta-already-borrowed", ["deltalake"])["rows"][0]
    assert [t["kind"] for t in row["transitions"]] == ["present", "fixed"]
    assert row["spans"] == [(0, 2)]


def test_grid_rows_and_collect_follow_versions(tmp_path):
    path = tmp_path / "results.jsonl"
    for cell in wrangler_history():
        results.append(path, cell)
    merged, skipped = results.collect([path])
    assert skipped == [] and [r["pins"][0] for r in merged] == [
        "awswrangler==2.14.0", "awswrangler==3.2.0", "awswrangler==3.11.0", "awswrangler==3.12.0",
        "awswrangler==3.17.1"]


# ------------------------------------------------------------------ the pages

class Page(HTMLParser):
    """Links, grid row headers, and the text of each dialog."""

    def __init__(self):
        super().__init__()
        self.links, self.row_heads, self.dialogs, self.stack = [], [], {}, []
        self.dialog = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.stack.append((tag, attrs))
        if tag == "a":
            self.links.append(attrs.get("href"))
        if tag == "dialog":
            self.dialog = attrs["id"]
            self.dialogs[self.dialog] = ""

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass
        if tag == "dialog":
            self.dialog = None

    def handle_data(self, data):
        if self.dialog:
            self.dialogs[self.dialog] += " " + data
        elif self.stack and self.stack[-1][0] == "th" and self.stack[-1][1].get("scope") == "row" \
                and any(t == "table" and "grid" in a.get("class", "") for t, a in self.stack):
            self.row_heads.append(data.strip())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text())
    return page


@pytest.fixture
def site(tmp_path):
    cells = delta_history() + wrangler_history() + [hang_with_workers()]
    old = os.umask(0o077)  # a strict umask must not make the pages unreadable to a web server
    try:
        written = report.write_all(sorted(cells, key=record_order), tmp_path / "site", None)
    finally:
        os.umask(old)
    return tmp_path / "site", written


def test_an_index_and_a_page_per_bug_all_world_readable(site):
    out, written = site
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
    assert pages == ["bugs/delta-already-borrowed.html", "bugs/lancedb-fork-hang.html",
                     "bugs/wrangler-athena-cache-race.html", "index.html"]
    for path in [*out.rglob("*.html"), *out.rglob("*.json"), out / "junit.xml"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    index = parse(out / "index.html")
    assert {"bugs/delta-already-borrowed.html", "bugs/wrangler-athena-cache-race.html"} <= set(index.links)


def test_the_bug_page_tells_the_story_with_links_date_commit_and_host(site):
    out, _ = site
    text = (out / "bugs" / "delta-already-borrowed.html").read_text()
    page = parse(out / "bugs" / "delta-already-borrowed.html")
    assert "https://github.com/delta-io/delta-rs/issues/2958" in page.links
    assert "https://github.com/delta-io/delta-rs/issues/3594" in page.links  # "reported as #3594": same repo
    assert "../index.html" in page.links
    assert "PyO3" in text  # what the bug is, from repros/delta_already_borrowed.md
    for said in ("2026-12-01 03:01", "ci-runner", "f447d47cb910"):
        assert said in text
    told_311 = re.search(r'<li data-python="3.11.7" data-variant="trigger">(.*?)</li>', text, re.S).group(1)
    assert re.findall(r'data-kind="([^"]+)"', told_311) == ["present", "fixed", "came back", "fixed"]
    assert "fixed in deltalake 0.23.2" in told_311 and "came back in deltalake 0.25.2" in told_311


def test_grid_rows_are_in_version_order(site):
    out, _ = site
    page = parse(out / "bugs" / "wrangler-athena-cache-race.html")
    pins = [h for h in page.row_heads if h.startswith("awswrangler")]
    assert pins == ["awswrangler==2.14.0", "awswrangler==3.2.0", "awswrangler==3.11.0", "awswrangler==3.12.0",
                    "awswrangler==3.17.1"]


def test_a_dialog_holds_reason_attempts_exceptions_controls_and_env(site):
    out, _ = site
    page = parse(out / "bugs" / "delta-already-borrowed.html")
    present = next(t for t in page.dialogs.values() if "Python 3.11.7 · deltalake==0.25.2" in t)
    text = " ".join(present.split())
    for said in ("trigger (trigger): PRESENT", "reproduced in 1 of 1 attempts", "1 (1 reproduced)", "0.48s",
                 "RuntimeError: Already borrowed × 15", "control-uri clean no sign of the bug 0.374s",
                 "installed deltalake 0.25.2", "/root/.pyenv/versions/3.11.7/bin/python"):
        assert said in text, said


def test_hang_stacks_of_the_child_and_its_forked_worker(site):
    out, _ = site
    page = parse(out / "bugs" / "lancedb-fork-hang.html")
    [hang] = [t for t in page.dialogs.values() if "hang evidence" in t]
    assert "child (pid 5301): Python threads (faulthandler)" in hang
    assert "child (pid 5301): native and Python frames (py-spy), 8 threads" in hang
    assert "forked worker (pid 5328): native and Python frames (py-spy), 1 threads" in hang
    assert "PyThread_acquire_lock_timed" in hang


def test_the_templates_are_package_data_of_the_wheel(tmp_path):
    if not shutil.which("uv"):
        pytest.skip("uv is not on PATH")
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".nox", "results", "screenshots", "*.egg-info",
                                                                "__pycache__", "build", "dist"))
    done = subprocess.run(["uv", "build", "--wheel", "-q", "--out-dir", str(tmp_path / "dist"), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"harness/templates/{n}" for n in ("index.html", "bug.html", "base.html", "_macros.html", "_run.html",
                                                "report.css", "report.js")} <= names


# ------------------------------------------------------------------ the verdict table

def test_the_table_has_a_line_per_cell_and_a_summary():
    cells = wrangler_history()
    cells[1]["expected"] = ["present"]  # 3.17.1 absent, but expected present
    text = table.render(cells)
    lines = text.splitlines()
    assert lines[0].split() == ["bug", "variant", "Python", "releases", "verdict", "strength", "expected"]
    body = [line for line in lines if line.startswith("wrangler-athena-cache-race")]
    assert [line.split()[3:5] for line in body] == [["awswrangler", "2.14.0"], ["awswrangler", "3.2.0"],
                                                     ["awswrangler", "3.11.0"], ["awswrangler", "3.12.0"],
                                                     ["awswrangler", "3.17.1"]]
    assert "NO (expected present)" in body[-1] and "absent" in body[-1]
    assert lines[-1].startswith("5 cells: 3 present, 2 absent; 4 of 5 as expected, 1 NOT: "
                                "wrangler-athena-cache-race[trigger] py3.11 awswrangler 3.17.1")
    assert "\x1b[" not in text


def test_colour_only_for_a_terminal_and_never_with_no_color(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert table.wants_colour(Terminal()) and not table.wants_colour(io.StringIO())
    shown = Terminal()
    table.print_table(delta_history(), shown)
    assert "\x1b[1;31mpresent" in shown.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = Terminal()
    table.print_table(delta_history(), plain)
    assert not table.wants_colour(Terminal()) and "\x1b[" not in plain.getvalue()
    assert "delta-already-borrowed" in plain.getvalue()


def test_without_expectations_there_is_no_expected_column():
    cells = [{**c, "expected": None} for c in delta_history()[:2]]
    assert table.render(cells).splitlines()[0].split() == ["bug", "variant", "Python", "releases", "verdict",
                                                            "strength"]


# ------------------------------------------------------------------ the live progress line

class FakeTerminal(io.StringIO):
    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def isatty(self):
        return True


def test_the_live_line_keeps_moving_during_an_attempt_and_stops_with_it(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    terminal = FakeTerminal()
    progress = Progress(terminal)
    progress.cell(1, 1, "synthetic[trigger] py3.11")
    progress.attempt("trigger", 1, 3)
    deadline = time.monotonic() + 10
    while terminal.getvalue().count("attempt 1 of 3") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    drawn = re.findall(r"attempt 1 of 3  (\d+\.\d)s", terminal.getvalue())
    assert len(drawn) >= 3 and float(drawn[-1]) > float(drawn[0]), drawn  # redrawn, with time going on

    class Outcome:
        outcome, duration, reason = "clean", 1.0, "no sign of the bug"

    progress.outcome(Outcome())
    after = terminal.getvalue()
    time.sleep(3 * 0.5 + 0.2)
    assert terminal.getvalue() == after and after.endswith("-> clean in 1.0s: no sign of the bug\n")


def test_not_a_terminal_is_one_line_per_event():
    stream = io.StringIO()
    progress = Progress(stream)
    progress.cell(1, 2, "synthetic[trigger] py3.11")
    progress.attempt("trigger", 1, 3)
    time.sleep(0.7)
    assert "\r" not in stream.getvalue() and stream.getvalue().count("attempt 1 of 3") == 1


# ------------------------------------------------------------------ the end of `pytest matrix/`

CURRENT = "%d.%d" % sys.version_info[:2]


@pytest.fixture
def layout(tmp_path):
    """A checkout of the harness whose matrix/ has one synthetic bug (test_matrix's): three cells, the
    `fixed` one expected wrongly."""
    from test_matrix import SYNTHETIC_FIXED

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "harness", repo / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conftest.py", "noxfile.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, repo / name)
    for directory, name, text in (("repros", "synthetic_fixed.py", SYNTHETIC_FIXED), ("matrix", "synthetic_fixed.toml",
                                  f'bug = "synthetic-fixed"\n[[cells]]\npython = "{CURRENT}"\nvariants = ["trigger", '
                                  f'"control", "fixed"]\nexpect = "present"\n')):
        (repo / directory).mkdir()
        (repo / directory / name).write_text(text)
    return repo


def test_pytest_matrix_ends_with_the_verdict_of_every_cell(layout, tmp_path):
    # Not an xdist worker's variables either: the inner pytest would write results/gwN.jsonl.
    env = {k: v for k, v in os.environ.items()
           if k not in ("REPRO_PATH", "PYTHONPATH", "NO_COLOR", "FORCE_COLOR") and not k.startswith("PYTEST_XDIST")}
    out = subprocess.run([sys.executable, "-m", "pytest", "matrix/", "-p", "no:cacheprovider", "-q", "-rs",
                          "--attempts", "1", "--results-dir", str(tmp_path / "results")], cwd=layout,
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 1, out.stdout[-3000:]
    lines = out.stdout.splitlines()
    assert re.fullmatch(r"1 failed, 2 passed in [0-9.]+s", lines[-1]), lines[-1]
    table_at = next(i for i, line in enumerate(lines) if "verdicts of 3 cells" in line)
    cells = [line.split() for line in lines[table_at:-1] if line.startswith("synthetic-fixed")]
    assert sorted((c[1], c[4]) for c in cells) == [("control", "absent"), ("fixed", "absent"), ("trigger", "present")]
    assert [" ".join(c[-3:]) for c in cells if c[1] == "fixed"] == ["NO (expected present)"]
    assert lines[-2] == f"3 cells: 2 absent, 1 present; 2 of 3 as expected, 1 NOT: synthetic-fixed[fixed] py{CURRENT}"
    assert "\x1b[" not in out.stdout  # not a terminal: plain
    lines = (tmp_path / "results" / "main.jsonl").read_text().splitlines()
    assert all(json.loads(line)["kind"] == "cell" for line in lines)


def test_nox_ends_with_the_verdict_of_every_cell_of_its_sessions(layout):
    if not shutil.which("uv"):
        pytest.skip("uv is not on PATH (nox's venv backend here)")
    left_out = ("REPRO_PATH", "PYTHONPATH", "NO_COLOR", "FORCE_COLOR", "CI")
    env = {k: v for k, v in os.environ.items() if k not in left_out}
    out = subprocess.run([sys.executable, "-m", "nox", "-s", f"matrix(python='{CURRENT}')", "--", "--attempts", "1"],
                         cwd=layout, capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 1, out.stderr[-3000:]  # the `fixed` cell is expected present
    lines = out.stderr.splitlines()
    assert lines[-1] == f"3 cells: 2 absent, 1 present; 2 of 3 as expected, 1 NOT: synthetic-fixed[fixed] py{CURRENT}"
    assert sorted(line.split()[1] for line in lines[-4:-1]) == ["control", "fixed", "trigger"]
    assert lines[-7] == "nox: the verdicts of the 3 cells of this run"
    # A second run of nox that runs no cell (a listing) adds no table.
    listed = subprocess.run([sys.executable, "-m", "nox", "-l"], cwd=layout, capture_output=True, text=True,
                            timeout=300, env=env)
    assert listed.returncode == 0 and "verdicts" not in listed.stderr + listed.stdout


def test_repro_run_with_several_variants_ends_with_the_table(tmp_path):
    from conftest import FAULT_REPROS

    out = subprocess.run([sys.executable, "-m", "harness", "run", "synthetic-hang", "--python", "current",
                          "--variant", "segfault", "--variant", "control", "--attempts", "1", "--control-attempts", "0",
                          "--results", str(tmp_path / "r.jsonl")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "REPRO_PATH": str(FAULT_REPROS), "PYTHONPATH": str(ROOT)})
    lines = out.stderr.splitlines()
    assert out.returncode == 3, out.stderr  # a crash is no verdict: cannot tell
    end = lines.index("2 cells: 1 absent, 1 crash")  # the table's last line, before the run's answer
    assert lines[end + 1].startswith("answer: CRASH: synthetic-hang[segfault]"), out.stderr
    assert [line.split()[:2] + line.split()[4:5] for line in lines[end - 2:end]] == [
        ["synthetic-hang", "segfault", "crash"], ["synthetic-hang", "control", "absent"]]


def test_a_bisect_lists_every_tested_point_cached_or_not():
    from harness.cli.bisect import _tested_points

    timeline = [{"point": "0.20.1", "tested": True, "verdict": "present", "attempts": 1, "reproductions": 1,
                 "reason": "reproduced in 1 of 1 attempts", "installed": {"deltalake": "0.20.1"}, "python": "3.11.7",
                 "cached": True},
                {"point": "0.21.0", "tested": False, "state": None},
                {"point": "0.23.2", "tested": True, "verdict": "absent", "attempts": 2, "reproductions": 0,
                 "reason": "2 clean attempts", "installed": {}, "python": "3.11.7", "cached": False}]
    rows = _tested_points([{"python": "3.11.7", "timeline": timeline}], "delta-already-borrowed", "trigger",
                          "deltalake")
    text = table.render(rows).splitlines()
    assert [line.split()[3:6] for line in text[2:4]] == [["deltalake", "0.20.1", "present"],
                                                         ["deltalake==0.23.2", "absent", "2"]]
    assert "1/1 reproduced (cached)" in text[2] and text[-1] == "2 cells: 1 absent, 1 present"


def test_a_free_threaded_build_is_its_own_story_row_and_says_so_in_the_table():
    normal = record("delta-already-borrowed", "trigger", "3.13", "deltalake", "1.6.6", "absent")
    threaded = {**record("delta-already-borrowed", "trigger", "3.13t", "deltalake", "1.6.6", "present"),
                "python": "3.13.0", "gil": {"free_threaded_build": True, "state": "off"}}
    rows = told([normal, threaded], "delta-already-borrowed", ["deltalake"])["rows"]
    assert [(r["python"], r["cells"][0]["verdict"]) for r in rows] == [("3.13.0", "absent"), ("3.13.0t", "present")]
    assert [line.split()[2] for line in table.render([normal, threaded]).splitlines()[2:4]] == ["3.13.0", "3.13.0t"]


def test_the_readme_keeps_its_mode_when_the_report_rewrites_it(tmp_path):
    from harness import osv

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{osv.BADGES_START}\n{osv.BADGES_END}\n{README_START}\n{README_END}\n")
    readme.chmod(0o664)
    report.write_all(delta_history(), tmp_path / "site", readme)
    text = readme.read_text()
    assert "| delta-already-borrowed |" in text and "delta-already-borrowed" in text.split(osv.BADGES_END)[0]
    assert stat.S_IMODE(readme.stat().st_mode) == 0o664
