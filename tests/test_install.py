"""The harness as a maintainer gets it: installed (not editable) into a fresh venv and used from
the maintainer's own repository, with nothing of this checkout on the path (no PYTHONPATH, no
REPRO_PATH, the current directory elsewhere). The shipped bugs are listed, results land in the
project's ./results, and `git bisect run repro check --find-fix` finds the commit that fixed a
synthetic bug of a tiny package whose git history the test writes.

Plus the fast checks of discovery from the current directory and of `repro new`, run in-tree.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Every bug of the checkout's repros/ (a bug is one file there): the wheel must ship them all.
SHIPPED = {p.stem.replace("_", "-") for p in (ROOT / "repros").glob("*.py") if not p.name.startswith("_")}
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# Local state of the checkout that is no part of a source distribution (and .nox is huge).
NOT_SOURCE = shutil.ignore_patterns(".git", ".nox", ".venv", "build", "dist", "results", "*.egg-info",
                                    "__pycache__", ".pytest_cache", ".repro-cache")


def _clean_env(**extra) -> dict:
    """No trace of this checkout: what the harness finds, it finds through its install or cwd."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REPRO_PATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def _in_tree(*args, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m harness` of this checkout, run from another directory."""
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          env=_clean_env(PYTHONPATH=str(ROOT)), timeout=120)


# ------------------------------------------------------------------ discovery from the current directory

OWN_REPRO = '''
BUG = {
    "id": "%(id)s",
    "title": "%(title)s",
    "packages": [],
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"own bug",
    "trigger_rate": {"reproduced": 20, "attempts": 20},
    "variants": {
        "trigger": {"role": "trigger", "run": "trigger", "timeout": 20},
        "control": {"role": "control", "run": "control", "timeout": 20},
    },
}


def trigger(ctx):
    raise RuntimeError("own bug")


def control(ctx):
    return {}
'''


def _listed(cwd: Path) -> dict:
    done = _in_tree("list", "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {bug["id"]: bug for bug in json.loads(done.stdout)}


def test_list_from_anywhere_shows_the_shipped_bugs(tmp_path):
    assert SHIPPED <= set(_listed(tmp_path))


def test_own_repros_are_found_and_win_over_shipped_ones(tmp_path):
    own = tmp_path / "repros"
    own.mkdir()
    (own / "my_bug.py").write_text(OWN_REPRO % {"id": "my-bug", "title": "mine"})
    (own / "delta_already_borrowed.py").write_text(OWN_REPRO % {"id": "delta-already-borrowed",
                                                                 "title": "the maintainer's own"})
    bugs = _listed(tmp_path)
    assert bugs["my-bug"]["title"] == "mine"
    assert bugs["delta-already-borrowed"]["title"] == "the maintainer's own"
    assert SHIPPED <= set(bugs)


def test_new_writes_a_skeleton_that_loads(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "tinylib"\nversion = "0.1"\n')
    done = _in_tree("new", "tinylib-write-race", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    repro, entry = tmp_path / "repros" / "tinylib_write_race.py", tmp_path / "matrix" / "tinylib_write_race.toml"
    assert "import tinylib" in repro.read_text() and 'bug = "tinylib-write-race"' in entry.read_text()
    bug = _listed(tmp_path)["tinylib-write-race"]
    assert bug["packages"] == ["tinylib"] and bug["variants"] == {"trigger": "trigger", "control": "control"}
    check = subprocess.run([sys.executable, "-c", "from harness import matrix; "
                            "print(matrix.for_bug('tinylib-write-race')['bug'], sorted(matrix.load()))"],
                           cwd=tmp_path, capture_output=True, text=True, env=_clean_env(PYTHONPATH=str(ROOT)))
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("tinylib-write-race")
    again = _in_tree("new", "tinylib-write-race", cwd=tmp_path)  # never overwrites
    assert again.returncode == 2 and "already exists" in again.stderr
    assert _in_tree("new", "Bad_Id", "--package", "x", cwd=tmp_path).returncode == 2


def test_new_without_a_project_name_asks_for_the_package(tmp_path):
    done = _in_tree("new", "some-bug", cwd=tmp_path)
    assert done.returncode == 2 and "--package" in done.stderr
    assert not (tmp_path / "repros").exists()


# ------------------------------------------------------------------ installed, end to end

TINY_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "tinylib"
version = "0.1.0"

[tool.setuptools]
packages = ["tinylib"]
"""

BUGGY = '''\
import threading


def shared_write(value):
    """Writes through a shared handle; from another thread the handle is still borrowed."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("tinylib: Already borrowed")
    return value
'''

FIXED = '''\
def shared_write(value):
    """Writes through a shared handle; each call borrows it for itself."""
    return value
'''

TINY_REPRO = '''\
"""A synthetic bug of tinylib: shared_write from threads raises 'Already borrowed'."""

BUG = {
    "id": "tinylib-borrowed",
    "title": "tinylib.shared_write from threads raises Already borrowed",
    "packages": ["tinylib"],
    "requirements": ["tinylib"],
    "failure_kind": "exception",
    "signature": r"Already borrowed",
    "trigger_rate": {"reproduced": 20, "attempts": 20},
    "variants": {
        "trigger": {"role": "trigger", "run": "trigger", "timeout": 30},
        "control": {"role": "control", "run": "control", "timeout": 30},
    },
}


def trigger(ctx):
    import threading

    import tinylib

    errors = []

    def write(n):
        try:
            tinylib.shared_write(n)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"errors": errors}


def control(ctx):
    import tinylib

    for n in range(4):  # the workaround: every write from one thread
        tinylib.shared_write(n)
    return {}
'''


def _git(repo: Path, *args) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def _commit(repo: Path, message: str, files: dict) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", *files)
    _git(repo, "commit", "-q", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def _tiny_project(repo: Path) -> list:
    """A package whose bug is present in the first two commits and fixed in the third. Its repro
    lives in ./repros, untracked (.gitignore), so every checkout of the bisection still has it."""
    repo.mkdir()
    _git(repo, "init", "-q")
    return [
        _commit(repo, "tinylib: shared_write", {".gitignore": "repros/\nresults/\n", "pyproject.toml": TINY_PYPROJECT,
                                                "tinylib/__init__.py": BUGGY}),
        _commit(repo, "docs: a README", {"README.md": "tinylib\n"}),
        _commit(repo, "shared_write borrows the handle per call (the fix)", {"tinylib/__init__.py": FIXED}),
        _commit(repo, "version 0.2.0", {"pyproject.toml": TINY_PYPROJECT.replace("0.1.0", "0.2.0")}),
    ]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh venv with the harness installed from a copy of this tree (not editable: the copy is
    removed once installed, so nothing can be read from it later)."""
    if not shutil.which("uv"):
        pytest.skip("uv is not on PATH")
    base = tmp_path_factory.mktemp("install")
    source, venv = base / "source", base / "venv"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)  # the working tree as it is, built outside it
    subprocess.run(["uv", "venv", "-q", "--python", sys.executable, str(venv)], check=True, timeout=120)
    done = subprocess.run(["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), str(source)],
                          capture_output=True, text=True, timeout=600, env=_clean_env())
    assert done.returncode == 0, done.stderr
    shutil.rmtree(source)
    return venv


def _site_packages(venv: Path) -> Path:
    return next(venv.glob("lib/python*/site-packages"))


def test_installed_wheel_ships_the_bugs(installed, tmp_path):
    harness_dir = _site_packages(installed) / "harness"
    shipped = {b.replace("-", "_") for b in SHIPPED}
    assert {p.stem for p in (harness_dir / "_bundled" / "repros").glob("*.py")} == shipped
    assert {p.stem for p in (harness_dir / "_bundled" / "matrix").glob("*.toml")} == shipped
    done = subprocess.run([str(installed / "bin" / "repro"), "list", "--json"], cwd=tmp_path, capture_output=True,
                          text=True, env=_clean_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert {bug["id"] for bug in json.loads(done.stdout)} == SHIPPED


def test_installed_harness_finds_the_fix_commit_by_git_bisect(installed, tmp_path):
    repo = tmp_path / "tinylib"
    commits = _tiny_project(repo)
    (repo / "repros").mkdir()
    (repo / "repros" / "tinylib_borrowed.py").write_text(TINY_REPRO)
    # A cache of its own: every commit's wheel and env really built (uv's own cache stays warm).
    env = _clean_env(PATH=os.environ["PATH"] + os.pathsep + str(installed / "bin"),
                     REPRO_CACHE_DIR=str(tmp_path / "cache"))
    repro = str(installed / "bin" / "repro")
    check = [repro, "check", "tinylib-borrowed", "--find-fix", "--python", PYTHON, "--quiet"]
    started = time.monotonic()
    branch, ends = _git(repo, "symbolic-ref", "--short", "HEAD"), []
    for commit in (commits[0], commits[-1]):  # the ends first, as the README says: OLD 0, NEW 1
        _git(repo, "checkout", "-q", "--detach", commit)
        ends.append(subprocess.run(check, cwd=repo, capture_output=True, text=True, env=env, timeout=300))
    _git(repo, "checkout", "-q", branch)
    assert [end.returncode for end in ends] == [0, 1], [end.stderr for end in ends]
    _git(repo, "bisect", "start", "--term-old=broken", "--term-new=fixed", commits[-1], commits[0])
    try:
        done = subprocess.run(["git", "bisect", "run", *check], cwd=repo, capture_output=True, text=True,
                              env=env, timeout=600)
    finally:
        _git(repo, "bisect", "reset")
    print(f"ends checked and git bisect run over {len(commits)} commits: {time.monotonic() - started:.1f} s")
    assert f"{commits[2]} is the first fixed commit" in done.stdout, done.stdout + done.stderr
    records = [json.loads(line) for line in (repo / "results" / "results.jsonl").read_text().splitlines()]
    assert {r["verdict"] for r in records} <= {"present", "absent"} and records
    assert all(r["source"]["commit"] in commits for r in records)
    assert not list(_site_packages(installed).glob("**/results.jsonl"))  # never inside the install
