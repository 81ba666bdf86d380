"""`repro audit [FILE]`: for each known bug, whether the versions of a lock file (or of the current
environment) fall in the releases its matrix file verifies, with the `repro run` command that
verifies it; exit 0 none affected, 1 some affected, 2 usage, 3 none affected but some unknown.
`--run` runs those commands' cells for real (a project's own probe bug on iniconfig, in its repros/
and matrix/: a real env per release, real children)."""
import json
import os
import re
import subprocess
import sys

import pytest

from harness.envs import uvbin
from harness.osv import standing
from test_cli import ROOT, repro
from test_lockfiles import COMPILED, PYLOCK, UV_LOCK

SHIPPED_ONLY = {"REPRO_PATH": ""}  # the shipped bugs: the fault repros are about no distribution (unknown)
FAKE_TIMELINE = {"1.0": "absent", "2.0": "present", "2.4": "present", "3.0": "absent", "3.5": "absent"}


def audit(*args):
    out = repro("audit", *args, env=SHIPPED_ONLY)
    return out, {line.split()[0]: line for line in out.stdout.splitlines() if not line.startswith((" ", "audit:"))}


@pytest.mark.parametrize("version, word, why", [
    ("2.0", "affected", "2.0 is verified present"),
    ("2.2", "affected", "between 2.0 and 2.4, both verified present"),
    ("3.2", "not affected", "between 3.0 and 3.5, both verified absent"),
    ("9.0", "not affected", "newer than 3.5, the newest release verified without it"),
    ("1.5", "unknown", "between 1.0 (absent) and 2.0 (present): not tested"),
    ("2.5", "unknown", "between 2.4 (present) and 3.0 (absent): not tested"),
    ("0.9", "unknown", "older than 1.0, the oldest release tested (absent)"),
])
def test_standing_reads_the_timeline_as_osv_ranges(version, word, why):
    assert standing(FAKE_TIMELINE, version) == (word, why)
    assert standing({"1.0": "present"}, "1.1") == ("unknown", "newer than 1.0, the newest release tested, "
                                                              "which has it")


def test_a_uv_lock_with_affected_releases_is_exit_1_with_the_verifying_commands():
    out, rows = audit(str(UV_LOCK))
    assert out.returncode == 1, out.stderr
    assert out.stdout.startswith(f"versions: {UV_LOCK} (uv.lock)\n")
    assert "AFFECTED      awswrangler 3.9.1: between 3.2.0 and 3.11.0, both verified present" in \
        rows["wrangler-athena-cache-race"]  # the matrix: 3.2.0 and 3.11.0 present
    assert "AFFECTED      deltalake 0.19.2: 0.19.2 is verified present" in rows["delta-s3-silent-data-loss"]
    assert "UNKNOWN       deltalake 0.19.2: older than 0.20.1" in rows["delta-already-borrowed"]
    assert "NOT AFFECTED  none of lancedb, pylance in these versions" in rows["lancedb-fork-hang"]
    assert f"verify: repro run wrangler-athena-cache-race --with-requirements {UV_LOCK}\n" in out.stdout
    assert "verify: repro run lancedb-fork-hang" not in out.stdout  # nothing of it installed: nothing to verify


def test_compiled_requirements_of_fixed_releases_are_exit_0():
    out, rows = audit(str(COMPILED))
    assert out.returncode == 0, out.stdout
    assert "NOT AFFECTED  awswrangler 3.12.0: 3.12.0 is verified absent" in rows["wrangler-athena-cache-race"]
    assert "NOT AFFECTED  deltalake 1.1.2: 1.1.2 is verified absent" in rows["delta-already-borrowed"]


def test_pylock_toml_and_with_overrides_and_json():
    out, rows = audit(str(PYLOCK))
    assert out.returncode == 1 and "AFFECTED      deltalake 0.20.1" in rows["delta-already-borrowed"]
    out = repro("audit", str(PYLOCK), "--with", "deltalake==1.6.6", "--attempts", "3", "--json", env=SHIPPED_ONLY)
    assert out.returncode == 0, out.stdout
    found = {row["bug"]: row for row in json.loads(out.stdout)}
    assert found["delta-already-borrowed"]["word"] == "not affected"
    assert found["delta-already-borrowed"]["command"] == \
        f"repro run delta-already-borrowed --with-requirements {PYLOCK} --with deltalake==1.6.6 --attempts 3"


def test_releases_tested_on_neither_side_are_exit_3_unknown(tmp_path):
    old = tmp_path / "requirements.txt"
    old.write_text("deltalake==0.15.0\n")  # older than every release either delta bug's matrix tests
    out, rows = audit(str(old))
    assert out.returncode == 3, out.stdout
    assert "UNKNOWN       deltalake 0.15.0: older than 0.15.3" in rows["delta-s3-silent-data-loss"]


def test_a_bug_about_no_distribution_is_unknown_with_its_command():
    out = repro("audit", str(COMPILED))  # with the fault repros: packages = []
    assert out.returncode == 3, out.stdout
    assert re.search(r"^synthetic-faults +UNKNOWN +it is about no distribution's releases", out.stdout, re.M)
    assert "verify: repro run synthetic-faults\n" in out.stdout


def test_a_missing_or_broken_file_is_exit_2(tmp_path):
    out, _ = audit(str(tmp_path / "uv.lock"))
    assert out.returncode == 2 and out.stderr == f"repro: {tmp_path / 'uv.lock'}: no such file\n"
    (tmp_path / "uv.lock").write_text("[[package]\n")
    out, _ = audit(str(tmp_path / "uv.lock"))
    assert out.returncode == 2 and "not valid TOML" in out.stderr and out.stderr.count("\n") == 1


PROBE = '''
BUG = {
    "id": "audit-probe",
    "title": "iniconfig 1.x has the probe's bug (a stand-in for a library bug, for tests/test_audit.py)",
    "packages": ["iniconfig"],
    "requirements": ["iniconfig"],
    "failure_kind": "exception",
    "signature": r"audit probe bug",
    "trigger_rate": {"reproduced": 20, "attempts": 20},
    "variants": {"trigger": {"role": "trigger", "run": "trigger", "timeout": 30},
                 "control": {"role": "control", "run": "control", "timeout": 30}},
}


def trigger(ctx):
    from importlib.metadata import version
    if version("iniconfig").startswith("1."):
        # reported as text (taken at its word): a raise here would be the repro's, not iniconfig's
        return {"errors": ["RuntimeError: audit probe bug in iniconfig " + version("iniconfig")]}
    return {}


def control(ctx):
    return {}
'''
PROBE_MATRIX = '''bug = "audit-probe"
[[cells]]
python = ["3.11"]
pins = ["iniconfig==1.1.1"]
expect = "present"
[[cells]]
python = ["3.11"]
pins = ["iniconfig==2.0.0"]
expect = "absent"
'''


@pytest.fixture
def project(tmp_path):
    """A maintainer's project with its own bug: repros/audit_probe.py and matrix/audit_probe.toml."""
    (tmp_path / "repros").mkdir()
    (tmp_path / "matrix").mkdir()
    (tmp_path / "repros" / "audit_probe.py").write_text(PROBE)
    (tmp_path / "matrix" / "audit_probe.toml").write_text(PROBE_MATRIX)
    return tmp_path


def in_project(project, *args, env=None):
    full_env = {**os.environ, **SHIPPED_ONLY, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", "audit", *args], capture_output=True, text=True,
                          cwd=project, env=full_env, timeout=900)


def probe_line(out) -> str:
    return next(line for line in out.stdout.splitlines() if line.startswith("audit-probe "))


@pytest.mark.slow
def test_the_current_environment_is_the_active_virtualenv(project):
    uv = uvbin.require("makes the test's venv")
    venv = project / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "iniconfig==1.1.1"],
                   check=True)
    out = in_project(project, env={"VIRTUAL_ENV": str(venv)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.startswith(f"versions: the virtualenv {venv}\n")
    assert "AFFECTED      iniconfig 1.1.1: 1.1.1 is verified present" in probe_line(out)
    python = "%d.%d" % sys.version_info[:2]  # the env's own Python
    assert f"verify: repro run audit-probe --with iniconfig==1.1.1 --python {python}\n" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("release, word, code, verdict", [("1.1.1", "AFFECTED", 1, "PRESENT"),
                                                          ("2.0.0", "NOT AFFECTED", 0, "ABSENT")])
def test_run_runs_the_verifying_cells_for_real(project, release, word, code, verdict):
    (project / "requirements.txt").write_text(f"iniconfig=={release}\n")
    out = in_project(project, "requirements.txt", "--run", "--attempts", "2", "--quiet")
    assert out.returncode == code, out.stdout + out.stderr
    assert probe_line(out).split()[1:1 + len(word.split())] == word.split()
    assert "audit: running repro run audit-probe --with-requirements requirements.txt --attempts 2 --quiet" \
        in out.stderr
    assert f"answer: {verdict}: audit-probe[trigger] in iniconfig {release}, Python 3.11" in out.stderr
    record = json.loads((project / "results" / "results.jsonl").read_text().splitlines()[0])
    assert record["installed"] == {"iniconfig": release}
