"""`repro new`: it never shadows a known repro without --force, and an untouched skeleton never
reports `absent` (its trigger and control raise until they are filled in), run for real."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_REPRO = ROOT / "repros" / "delta_already_borrowed.py"


def repro(*args, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m harness` of this checkout from `cwd` (a maintainer's project of its own)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.fault("fooled: repro new over a known id or untouched")
def test_new_over_a_shipped_id_is_refused_and_writes_nothing(tmp_path):
    done = repro("new", "delta-already-borrowed", "--package", "deltalake", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("repro: ")
    assert "already exists" in done.stderr and str(SHIPPED_REPRO) in done.stderr and "--force" in done.stderr
    assert done.stdout == "" and not (tmp_path / "repros").exists() and not (tmp_path / "matrix").exists()


def test_new_with_force_writes_the_replacement(tmp_path):
    done = repro("new", "delta-already-borrowed", "--package", "deltalake", "--force", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    written = tmp_path / "repros" / "delta_already_borrowed.py"
    assert '"id": "delta-already-borrowed"' in written.read_text()
    assert (tmp_path / "matrix" / "delta_already_borrowed.toml").exists()
    again = repro("new", "delta-already-borrowed", "--package", "deltalake", cwd=tmp_path)
    assert again.returncode == 2 and str(written) in again.stderr  # now it is the maintainer's own


@pytest.mark.fault("fooled: repro new over a known id or untouched")
def test_an_untouched_skeleton_does_not_report_absent(tmp_path):
    """The skeleton of a stdlib module, so its env needs no install: only its requirements are
    emptied (pip cannot install `json`); trigger and control are exactly as `repro new` wrote them."""
    assert repro("new", "stdlib-skeleton", "--package", "json", cwd=tmp_path).returncode == 0
    path = tmp_path / "repros" / "stdlib_skeleton.py"
    text = path.read_text()
    assert '"requirements": ["json"]' in text
    path.write_text(text.replace('"requirements": ["json"]', '"requirements": []'))
    done = repro("run", "stdlib-skeleton", "--attempts", "1", "--json", cwd=tmp_path)
    cell = json.loads(done.stdout.splitlines()[-1])
    assert cell["verdict"] not in ("absent", "present"), cell["reason"]
    assert done.returncode != 0
    trigger = cell["evidence"][0]
    assert trigger["outcome"] == "other-failure"
    assert "NotImplementedError: stdlib-skeleton: trigger() is a skeleton" in trigger["reason"]
