"""The wheel is the front door: after installing it, a repository outside this clone that holds a
bug (repros/) and its cells (matrix/) gets `pytest` and the nox sessions from the harness alone.

Slow: it builds the wheel and installs it with its dependencies into a fresh venv (the index).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CURRENT = "%d.%d" % sys.version_info[:2]
DOOR_REPRO = '''"""present on its trigger, absent on its control (stdlib only)."""
BUG = {"id": "synthetic-door", "title": "a bug found through the front door", "failure_kind": "exception",
       "signature": "synthetic door bug", "trigger_rate": {"reproduced": 20, "attempts": 20},
       "variants": {"trigger": {"role": "trigger", "run": "buggy", "timeout": 20},
                    "control": {"role": "control", "run": "clean", "timeout": 20}}}


def buggy(ctx):
    raise RuntimeError("synthetic door bug")


def clean(ctx):
    return {}
'''
DOOR_MATRIX = f'bug = "synthetic-door"\n[[cells]]\npython = "{CURRENT}"\nexpect = "present"\n'

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    return next(out.glob("repro_harness-*.whl"))


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with nothing but the wheel and its dependencies."""
    if not shutil.which("uv"):
        pytest.skip("uv is not on PATH")
    location = tmp_path_factory.mktemp("venv") / "venv"
    for args in (["venv", "-q", str(location), "--python", sys.executable],
                 ["pip", "install", "-q", "--python", str(location / "bin" / "python"), str(wheel)]):
        done = subprocess.run(["uv", *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    return location


@pytest.fixture
def project(tmp_path, wheel) -> Path:
    """A maintainer's repository outside the clone: one bug, its matrix file, a two-line noxfile."""
    for directory, name, text in (("repros", "synthetic_door.py", DOOR_REPRO),
                                  ("matrix", "synthetic_door.toml", DOOR_MATRIX)):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / name).write_text(text)
    # harness=: a session venv gets this wheel (by default the harness's release, not on the index here)
    (tmp_path / "noxfile.py").write_text(f"from harness.nox_sessions import install\n"
                                         f"install(globals(), harness={str(wheel)!r})\n")
    assert ROOT not in tmp_path.parents
    return tmp_path


def run(venv: Path, *args: str, cwd: Path, **overrides: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("REPRO_PATH", "PYTHONPATH", "CI", "NO_COLOR",
           "FORCE_COLOR", "PYTEST_ADDOPTS", "VIRTUAL_ENV") and not k.startswith("PYTEST_XDIST")}
    env.update(overrides)
    return subprocess.run([str(venv / "bin" / "python"), "-m", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def test_the_wheel_has_the_pytest_plugin_entry_point_and_the_nox_helper(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "[pytest11]\nharness.pytest_plugin = harness.pytest_plugin" in entry_points
    assert {"harness/pytest_plugin.py", "harness/nox_sessions.py", "harness/_bundled/repros/README.md"} <= names


def test_plain_pytest_outside_the_clone_gives_the_cells_verdicts(venv, project):
    out = run(venv, "pytest", "-p", "no:cacheprovider", "-q", "--attempts", "1", cwd=project)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any("verdicts of 2 cells" in line for line in lines), out.stdout[-3000:]
    assert lines[-2] == "2 cells: 1 absent, 1 present; 2 of 2 as expected", out.stdout[-3000:]
    records = [json.loads(line) for line in (project / "results" / "main.jsonl").read_text().splitlines()]
    assert sorted((r["variant"], r["verdict"]) for r in records) == [("control", "absent"), ("trigger", "present")]


def test_repro_matrix_names_a_matrix_elsewhere_and_its_repros(venv, project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    out = run(venv, "pytest", "-p", "no:cacheprovider", "-q", "--collect-only", "--repro-matrix",
              str(project / "matrix"), cwd=elsewhere)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"synthetic_door.toml::py{CURRENT}-default::trigger" in out.stdout, out.stdout


def test_an_install_not_on_path_runs_a_cell_with_the_uv_of_its_own_install(venv, project, tmp_path):
    # pipx, `uvx --from` and an unactivated venv put uv in the install's bin/, not on PATH.
    bare = "/usr/bin:/bin"
    assert not shutil.which("uv", path=bare), "this test needs a PATH without uv"
    # A bug with a requirement (a bare interpreter needs no uv) and a cache of its own (a built env neither).
    (project / "repros" / "synthetic_six.py").write_text(
        DOOR_REPRO.replace('"synthetic-door"', '"synthetic-six", "requirements": ["six"]'))
    out = run(venv, "harness", "run", "synthetic-six", "--attempts", "1", "--with", "six==1.16.0", cwd=project,
              PATH=bare, REPRO_CACHE_DIR=str(tmp_path / "cache"))
    assert "uv is not installed" not in out.stderr, out.stderr[-3000:]
    assert out.returncode == 1, out.stdout[-3000:] + out.stderr[-3000:]  # present
    assert "PRESENT" in out.stdout + out.stderr, out.stdout[-3000:] + out.stderr[-3000:]
    records = [json.loads(line) for line in (project / "results" / "results.jsonl").read_text().splitlines()]
    assert [(r["variant"], r["verdict"], r["pins"]) for r in records] == [("trigger", "present", ["six==1.16.0"])]


def test_the_plugin_stays_out_of_a_project_without_a_matrix(venv, tmp_path):
    (tmp_path / "test_plain.py").write_text("def test_plain():\n    assert True\n")
    out = run(venv, "pytest", "-p", "no:cacheprovider", "-q", "--strict-markers", cwd=tmp_path)
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout[-3000:]
    assert "verdicts" not in out.stdout and not (tmp_path / "results").exists()


def test_a_two_line_noxfile_gets_the_sessions_and_runs_one(venv, project):
    listed = run(venv, "nox", "-l", cwd=project)
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert f"synthetic_door(python='{CURRENT}')" in listed.stdout and f"matrix(python='{CURRENT}')" in listed.stdout
    ran = run(venv, "nox", "-s", f"synthetic_door(python='{CURRENT}')", "--", "--attempts", "1", cwd=project)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stderr.splitlines()[-1] == "2 cells: 1 absent, 1 present; 2 of 2 as expected", ran.stderr[-3000:]


# moto[server] would install every AWS service's dependencies; the harness needs moto's WSGI app
# (flask, flask-cors) and the services its repros call. These come only with moto[server].
NOT_NEEDED = {"cfn-lint", "sympy", "networkx", "pydantic", "aws-xray-sdk", "graphql-core", "openapi-spec-validator"}
# Each service the AWS repros call, once, against the server the installed harness starts.
SERVES_THE_REPROS = '''
import boto3
from harness import services
with services.started(["moto"]) as env:
    url = env["REPRO_MOTO_URL"]
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
    client = lambda name: session.client(name, endpoint_url=url)
    print(client("sts").get_caller_identity()["Account"])
    client("s3").create_bucket(Bucket="door")
    client("s3").put_object(Bucket="door", Key="k", Body=b"v", IfNoneMatch="*")
    client("glue").create_database(DatabaseInput={"Name": "door"})
    client("athena").create_work_group(Name="door", Configuration={})
    client("dynamodb").create_table(TableName="door", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                                    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                                    BillingMode="PAY_PER_REQUEST")
    print("served")
'''


def test_the_install_serves_the_local_aws_without_moto_servers_other_dependencies(venv, tmp_path):
    listed = subprocess.run(["uv", "pip", "list", "--python", str(venv / "bin" / "python"), "--format", "json"],
                            capture_output=True, text=True, timeout=120)
    installed = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert {"moto", "flask", "flask-cors"} <= installed
    assert installed & NOT_NEEDED == set(), "moto[server]'s dependencies are installed"
    # The installed harness (not this clone's: no PYTHONPATH, outside the clone) starts the server.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REPRO_PATH") and not k.startswith("AWS_")}
    out = subprocess.run([str(venv / "bin" / "python"), "-c", SERVES_THE_REPROS], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.split()[-1] == "served", out.stderr[-3000:]


# ------------------------------------------------------------------ a maintainer's repository, end to end

TOY_PYPROJECT = ('[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n'
                 '[project]\nname = "tinyrace"\nversion = "{version}"\n[tool.setuptools]\npackages = ["tinyrace"]\n')
RACY = '''import threading
import time


class Counter:
    def __init__(self):
        self.value = 0

    def add(self):
        seen = self.value
        time.sleep(0.001)  # read, then write: another thread's add in between is lost
        self.value = seen + 1
'''
FIXED = '''import threading
import time


class Counter:
    def __init__(self):
        self.value = 0
        self._lock = threading.Lock()

    def add(self):
        with self._lock:  # read and write as one step
            seen = self.value
            time.sleep(0.001)
            self.value = seen + 1
'''
TOY_REPRO = '''"""tinyrace.Counter.add from threads loses updates (its own bug, in its own repository)."""

BUG = {
    "id": "tinyrace-lost-update", "title": "Counter.add from threads loses updates",
    "packages": ["tinyrace"], "requirements": ["tinyrace"], "failure_kind": "data-loss",
    "trigger_rate": {"reproduced": 10, "attempts": 10},
    "variants": {"trigger": {"role": "trigger", "run": "threads", "timeout": 60},
                 "control": {"role": "control", "run": "one_thread", "timeout": 60}},
}


def _add(counter, times):
    for _ in range(times):
        counter.add()


def _check(counter):
    # Lost updates are silent: a data-loss bug reports how many, it does not raise them (an error
    # the repro raised itself would be its own, not the library's: attribution says other-failure).
    return {"lost": 400 - counter.value, "value": counter.value}


def threads(ctx):
    import threading

    import tinyrace

    counter = tinyrace.Counter()
    workers = [threading.Thread(target=_add, args=(counter, 100)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return _check(counter)


def one_thread(ctx):
    import tinyrace

    counter = tinyrace.Counter()
    _add(counter, 400)  # the workaround: every add from one thread
    return _check(counter)
'''
TOY_MATRIX = f'''bug = "tinyrace-lost-update"

[[cells]]
note = "the release with the race"
python = "{CURRENT}"
pins = ["tinyrace @ git:v0.1.0"]
expect = "present"

[[cells]]
note = "the fix"
python = "{CURRENT}"
pins = ["tinyrace @ git:v0.2.0"]
variants = ["trigger"]
expect = "absent"
'''


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def _commit(repo: Path, message: str, files: dict, tag: str | None = None) -> str:
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "add", *files)
    _git(repo, "commit", "-q", "-m", message)
    if tag:
        _git(repo, "tag", tag)
    return _git(repo, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def toy_repo(tmp_path_factory, wheel) -> tuple[Path, list]:
    """tinyrace: racy at v0.1.0, fixed two commits later, v0.2.0 after that; its repro and matrix
    file (pinning the repository at both tags) committed with it, the noxfile of two lines beside."""
    repo = tmp_path_factory.mktemp("maintainer") / "tinyrace"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    commits = [
        _commit(repo, "tinyrace: a Counter", {".gitignore": "results/\n.nox/\nnoxfile.py\n",
                                              "pyproject.toml": TOY_PYPROJECT.format(version="0.1.0"),
                                              "tinyrace/__init__.py": RACY, "repros/tinyrace_lost_update.py": TOY_REPRO,
                                              "matrix/tinyrace_lost_update.toml": TOY_MATRIX}, tag="v0.1.0"),
        _commit(repo, "docs: a README", {"README.md": "tinyrace\n"}),
        _commit(repo, "Counter.add reads and writes under a lock (the fix)", {"tinyrace/__init__.py": FIXED}),
        _commit(repo, "version 0.2.0", {"pyproject.toml": TOY_PYPROJECT.format(version="0.2.0")}, tag="v0.2.0"),
    ]
    (repo / "tinyrace" / "__init__.py").write_text(RACY)  # uncommitted: no cell may build it
    (repo / "noxfile.py").write_text(f"from harness.nox_sessions import install\n"
                                     f"install(globals(), harness={str(wheel)!r})\n")
    return repo, commits


def _timed(label: str, call):
    started = time.monotonic()
    out = call()
    print(f"{label}: {time.monotonic() - started:.1f} s")
    return out


def test_plain_pytest_in_a_maintainers_repository_runs_its_refs(venv, toy_repo):
    repo, commits = toy_repo
    out = _timed("pytest in the toy repository", lambda: run(
        venv, "pytest", "-p", "no:cacheprovider", "-q", "--attempts", "3", cwd=repo))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.splitlines()[-2].endswith("3 of 3 as expected"), out.stdout[-3000:]
    records = [json.loads(line) for line in (repo / "results" / "main.jsonl").read_text().splitlines()]
    got = sorted((r["pins"][0], r["variant"], r["verdict"], r["source"]["commit"]) for r in records)
    assert got == [("tinyrace @ git:v0.1.0", "control", "absent", commits[0]),
                   ("tinyrace @ git:v0.1.0", "trigger", "present", commits[0]),
                   ("tinyrace @ git:v0.2.0", "trigger", "absent", commits[3])], got
    assert "lost" in json.dumps([r["evidence"] for r in records if r["verdict"] == "present"])


def test_a_two_line_noxfile_runs_the_session_of_a_ref(venv, toy_repo):
    repo, _ = toy_repo
    listed = run(venv, "nox", "-l", cwd=repo)
    session = f"tinyrace_lost_update(python='{CURRENT}', tinyrace='git:v0.2.0')"
    assert listed.returncode == 0 and session in listed.stdout, listed.stdout + listed.stderr[-3000:]
    ran = _timed("nox session of v0.2.0", lambda: run(venv, "nox", "-s", session, "--", "--attempts", "3", cwd=repo))
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stderr.splitlines()[-1] == "1 cell: 1 absent; 1 of 1 as expected", ran.stderr[-3000:]


def test_check_bisect_between_the_tags_finds_the_fix(venv, toy_repo):
    repo, commits = toy_repo
    _git(repo, "stash", "-q")  # a bisection refuses uncommitted changes of tracked files
    try:
        out = _timed("repro check --bisect v0.1.0..v0.2.0 --find-fix", lambda: run(
            venv, "harness", "check", "tinyrace-lost-update", "--source", ".", "--bisect", "v0.1.0..v0.2.0",
            "--find-fix", "--python", CURRENT, "--attempts", "3", cwd=repo))
    finally:
        _git(repo, "stash", "pop", "-q")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"first fixed commit {commits[2]} Counter.add reads and writes under a lock" in out.stdout, out.stdout
    assert "back at main" in out.stdout and _git(repo, "rev-parse", "HEAD") == commits[3]
