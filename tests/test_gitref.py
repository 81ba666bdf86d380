"""`NAME @ git:REF`: a pin of the repository itself at a ref, committable in a matrix file.

Real git and a real `uv build`: the wheel holds the ref's commit, not the dirty working tree,
and the user's tree and worktree list are as they were. Bad refs and a directory outside git
are one line; a maintainer's own package is never taken from the index unasked.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harness import matrix
from harness.cell import Cell, Options, run_cell
from harness.envs import checkout, gitref, interpreters
from harness.errors import EnvBuildError, UsageError
from harness.registry import project_name

PYPROJECT = ('[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
             '[project]\nname = "tinylib"\nversion = "{version}"\n[tool.setuptools]\npackages = ["tinylib"]\n')
REPRO = '''BUG = {"id": "tinylib-ref", "title": "t", "packages": ["tinylib"], "requirements": ["tinylib"],
       "failure_kind": "exception", "signature": "tinylib bug", "trigger_rate": {"reproduced": 5, "attempts": 5},
       "variants": {"trigger": {"role": "trigger", "run": "trigger", "timeout": 30},
                    "control": {"role": "control", "run": "trigger", "timeout": 30}}}


def trigger(ctx):
    import tinylib
    return {"version": tinylib.VERSION}
'''
CURRENT = "%d.%d" % sys.version_info[:2]
ROOT = Path(__file__).resolve().parent.parent


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    """tinylib tagged v0.1.0 and v0.2.0, its repro and matrix dirs, and a dirty working tree."""
    root = tmp_path / "tinylib"
    (root / "tinylib").mkdir(parents=True)
    _git(root, "init", "-q")
    for version in ("0.1.0", "0.2.0"):
        (root / "pyproject.toml").write_text(PYPROJECT.format(version=version))
        (root / "tinylib" / "__init__.py").write_text(f'VERSION = "{version}"\n')
        _git(root, "add", ".")
        _git(root, "commit", "-q", "-m", f"version {version}")
        _git(root, "tag", f"v{version}")
    (root / "tinylib" / "__init__.py").write_text('VERSION = "dirty"\n')  # uncommitted: must not be built
    for directory in ("repros", "matrix"):
        (root / directory).mkdir()
    (root / "repros" / "tinylib_ref.py").write_text(REPRO)
    monkeypatch.chdir(root)
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    return root


def test_the_syntax_and_its_parts():
    assert gitref.is_git_ref("tinylib @ git:v0.1.0") and gitref.is_git_ref("tinylib[x]@git:main:python")
    assert not gitref.is_git_ref("tinylib @ file:///x") and not gitref.is_git_ref("tinylib==0.1.0")
    assert not gitref.is_git_ref("tinylib @ git:")


def test_a_matrix_pin_loads_and_a_bad_ref_is_one_line(repo):
    path = repo / "matrix" / "tinylib_ref.toml"
    path.write_text(f'bug = "tinylib-ref"\n[[cells]]\npython = "{CURRENT}"\npins = ["tinylib @ git:v0.1.0"]\n'
                    'expect = "absent"\n')
    cell = matrix.load_file(path)["cells"][0].cell
    assert cell.pins == ("tinylib @ git:v0.1.0",) and Path(cell.origin) == path.parent.resolve()
    path.write_text(path.read_text().replace("v0.1.0", "v9"))
    with pytest.raises(UsageError) as caught:
        matrix.load_file(path)
    assert "\n" not in str(caught.value) and "no commit 'v9' in the repository" in str(caught.value)


def test_outside_git_is_one_line(tmp_path):
    with pytest.raises(UsageError) as caught:
        gitref.check("tinylib @ git:v0.1.0", tmp_path)
    assert "\n" not in str(caught.value) and "is not in a git repository" in str(caught.value)


def test_the_wheel_holds_the_ref_not_the_dirty_tree(repo):
    if not shutil.which("uv"):
        pytest.skip("uv is not on PATH")
    status, worktrees = _git(repo, "status", "--porcelain"), _git(repo, "worktree", "list")
    interpreter = interpreters.find(CURRENT)
    for ref, version in (("v0.1.0", "0.1.0"), ("v0.2.0", "0.2.0")):
        requirement, source = gitref.build(f"tinylib @ git:{ref}", repo / "matrix", interpreter)
        wheel = Path(requirement.split(" @ ", 1)[1].removeprefix("file://"))
        with zipfile.ZipFile(wheel) as archive:
            assert archive.read("tinylib/__init__.py").decode() == f'VERSION = "{version}"\n'
        assert source["ref"] == ref and source["commit"] == _git(repo, "rev-parse", f"{ref}^{{commit}}")
    assert _git(repo, "status", "--porcelain") == status and _git(repo, "worktree", "list") == worktrees
    assert not list(repo.glob("**/*.egg-info")) and not (repo / "build").exists()
    with pytest.raises(EnvBuildError, match="builds tinylib, not otherlib"):
        gitref.build("otherlib @ git:v0.1.0", repo, interpreter)


def test_a_cell_of_a_ref_runs_that_commit_and_records_it(repo):
    if not shutil.which("uv"):
        pytest.skip("uv is not on PATH")
    record = run_cell(Cell("tinylib-ref", "trigger", CURRENT, ("tinylib @ git:v0.1.0",), origin=str(repo / "matrix")),
                      Options(attempts=1, control_attempts=0))
    assert record.verdict == "absent", record.reason
    assert record.pins == ["tinylib @ git:v0.1.0"] and record.installed == {"tinylib": "0.1.0"}
    assert record.source["ref"] == "v0.1.0" and record.source["commit"] == _git(repo, "rev-parse", "v0.1.0^{commit}")


def test_the_own_package_is_not_taken_from_the_index_unasked(repo):
    assert project_name(repo / "repros") == "tinylib"
    with pytest.raises(UsageError) as caught:  # the bug's default requirement, unpinned: the index's tinylib
        run_cell(Cell("tinylib-ref", "trigger", CURRENT), Options(attempts=1, control_attempts=0))
    assert "from the package index" in str(caught.value) and "'tinylib @ git:REF'" in str(caught.value)


def test_an_ignored_build_output_directory_is_hashed_and_exported_without_it(repo):
    # git add fails on an exclude pathspec naming an ignored path that exists (.nox/ after a nox run)
    (repo / ".gitignore").write_text(".nox/\nbuild/\n")
    for directory in (".nox", "build"):
        (repo / directory).mkdir()
        (repo / directory / "junk.txt").write_text("not source\n")
    clean = checkout.tree_hash(repo)
    (repo / ".nox" / "junk.txt").write_text("changed, still not source\n")
    assert checkout.tree_hash(repo) == clean
    with checkout.exported(repo) as copy:
        assert (copy / "tinylib" / "__init__.py").read_text() == 'VERSION = "dirty"\n'
        assert not (copy / ".nox").exists() and not (copy / "build").exists()


def test_a_cell_of_the_own_package_from_the_index_fails_in_pytest_with_one_line(repo):
    (repo / "matrix" / "tinylib_ref.toml").write_text(f'bug = "tinylib-ref"\n[[cells]]\npython = "{CURRENT}"\n'
                                                       'variants = ["trigger"]\nexpect = "absent"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "REPRO_PATH")}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "matrix/"], cwd=repo,
                         capture_output=True, text=True, timeout=300, env={**env, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1, out.stdout + out.stderr
    line = next(x for x in out.stdout.splitlines() if "would install" in x)
    assert line.startswith("tinylib-ref[trigger] py") and "'tinylib @ git:REF'" in line, out.stdout
    assert "Traceback" not in out.stdout
