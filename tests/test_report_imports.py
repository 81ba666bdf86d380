"""`repro report` reads records: it imports the repro files of the records' bugs, no other.

A ./repros/*.py of the current directory is the maintainer's code; a report of the results must not
run it. The stand-in writes a marker file when imported.
"""

import json
import os
import subprocess
import sys

import pytest
from markupsafe import escape  # as jinja2 escapes the page

from conftest import FAULT_REPROS
from harness.registry import get_bug
from report_records import delta_history

EVIL = '''"""Writes a marker when imported."""
from pathlib import Path

Path({marker!r}).write_text("imported")
'''


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_report_imports_no_other_repro_of_the_current_directory(tmp_path):
    marker = tmp_path / "imported"
    (tmp_path / "repros").mkdir()
    (tmp_path / "repros" / "evil.py").write_text(EVIL.format(marker=str(marker)))
    results = tmp_path / "results.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in delta_history()))
    out = subprocess.run([sys.executable, "-m", "harness", "report", str(results), "--out", str(tmp_path / "out"),
                          "--no-readme"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                         env={**os.environ, "REPRO_PATH": str(FAULT_REPROS)})
    assert out.returncode == 0, out.stderr
    assert not marker.exists(), "repro report imported ./repros/evil.py"
    # the records' own bug still has its metadata, from its repro file
    title = get_bug("delta-already-borrowed").title
    assert str(escape(title)) in (tmp_path / "out" / "index.html").read_text()
