"""A cached env is checked against its own files, not its record (harness/envs/integrity.py), is never
deleted under another run's child (harness/envs/holds.py), and its build dies with the harness.

Real uv envs with six from the index; the tampering is what a careless user or the code under test
can do to an env: another release over a pin, a shadowing .pth or editable install, a same-size edit,
a relinked interpreter."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import alive
from harness import procs
from harness.envs import interpreters
from test_envs import ROOT, build, edit, imported_version, make_wheel, site_packages

SIX = ["six==1.16.0"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def env_root(env) -> Path:
    return Path(env.python).parent.parent


def uv_pip(env, *args: str) -> None:
    done = subprocess.run(["uv", "pip", "install", "--quiet", "--python", env.python, *args],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def wait_for(predicate, what: str, limit: float = 60.0):
    """Poll until `predicate()` is true (a bound on a hang, not a measure of time)."""
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.fault("env integrity")
@pytest.mark.slow
def test_another_release_over_a_pin_is_rebuilt_also_when_env_json_says_so(cache):
    first, _ = build(SIX)
    first.release()
    uv_pip(first, "six==1.17.0")
    marker = env_root(first) / "env.json"
    meta = json.loads(marker.read_text())
    meta["installed"]["six"] = "1.17.0"  # the record now agrees with the env: only the pin does not
    marker.write_text(json.dumps(meta))
    again, notes = build(SIX)
    assert not again.reused, notes
    assert notes[0] == f"env cache {env_root(first).name} is stale (six 1.17.0 installed, six==1.16.0 required): " \
                       f"rebuilding", notes
    assert imported_version(again, "six") == "1.16.0" and again.installed == {"six": "1.16.0"}


def shadow_with_pth(env, tmp_path) -> str:
    """A .pth no wheel installed that puts a directory with another six first on sys.path."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "six.py").write_text("__version__ = '0.0-shadow'\n")
    (site_packages(env) / "zz_shadow.pth").write_text(f"import sys; sys.path.insert(0, {str(shadow)!r})\n")
    return "zz_shadow.pth in site-packages is not installed by any distribution"


def shadow_with_editable(env, tmp_path) -> str:
    """An editable install of a project that calls itself six 1.16.0: the same name and version as recorded."""
    project = tmp_path / "six-project"
    project.mkdir()
    (project / "six.py").write_text("__version__ = '0.0-shadow'\n")
    (project / "pyproject.toml").write_text('[project]\nname = "six"\nversion = "1.16.0"\n'
                                            '[build-system]\nrequires = ["setuptools"]\n'
                                            'build-backend = "setuptools.build_meta"\n')
    uv_pip(env, "-e", str(project))
    return "six is an editable install"


@pytest.mark.fault("env integrity")
@pytest.mark.slow
@pytest.mark.parametrize("shadow", [shadow_with_pth, shadow_with_editable], ids=["pth", "editable"])
def test_a_shadow_of_a_package_under_test_makes_the_env_stale(cache, tmp_path, shadow):
    first, _ = build(SIX)
    first.release()
    why = shadow(first, tmp_path)
    assert imported_version(first, "six") == "0.0-shadow", "the shadow is what the env imports"
    again, notes = build(SIX)
    assert not again.reused and f"is stale ({why}): rebuilding" in notes[0], notes
    assert imported_version(again, "six") == "1.16.0"


USE_AND_END = """
import os, signal, sys
from harness.envs import interpreters, venv
env = venv.ensure_env(interpreters.find("current"), ["six==1.16.0"])
if sys.argv[1] == "dropped":
    del env  # the run is done with it: a clean end, whatever happens to the process next
if sys.argv[1] != "cleanly":
    os.kill(os.getpid(), signal.SIGKILL)
env.release()
"""


def a_run_that_ends(how: str, cache: Path) -> None:
    done = subprocess.run([sys.executable, "-c", USE_AND_END, how], cwd=ROOT,
                          env={**os.environ, "REPRO_CACHE_DIR": str(cache)})
    assert done.returncode == (0 if how == "cleanly" else -signal.SIGKILL)


@pytest.mark.fault("env integrity")
@pytest.mark.slow
def test_a_same_size_edit_is_found_after_a_run_that_used_the_env_was_killed(cache):
    first, _ = build(SIX)
    first.release()
    key = env_root(first).name
    for how in ("cleanly", "dropped"):
        a_run_that_ends(how, cache)
        clean, notes = build(SIX)
        clean.release()
        assert clean.reused and notes == [], f"after a run that ended {how}, the cheap check (stat calls)"
    a_run_that_ends("killed", cache)
    six = site_packages(first) / "six.py"
    edit(six, "")  # a copy of its own: the edit below must not reach uv's cache through a hard link
    six.write_text(six.read_text().replace('__version__ = "1.16.0"', '__version__ = "1.16.9"'))
    assert six.stat().st_size == 34549 and imported_version(first, "six") == "1.16.9"
    again, notes = build(SIX)
    assert notes[:2] == [f"env cache {key}: 1 run(s) using it ended uncleanly: checking its files' hashes",
                         f"env cache {key} is stale (six: six.py differs from its RECORD hash): rebuilding"], notes
    assert not again.reused and imported_version(again, "six") == "1.16.0"
    again.release()
    assert build(SIX)[1] == [], "the unclean end is forgotten once the env passed the full check"


@pytest.mark.fault("env integrity")
@pytest.mark.slow
def test_a_same_size_edit_during_a_clean_run_is_found_by_the_next_run(cache):
    """The code under test edits a file of its env (same size, mtime put back) and the run ends cleanly:
    the next run still checks the hashes, finds the edit and rebuilds. An untouched env stays cheap."""
    first, _ = build(SIX)
    first.release()
    key = env_root(first).name
    during, _ = build(SIX)
    six = site_packages(during) / "six.py"
    before = six.stat()
    edit(six, "")  # a copy of its own: the edit below must not reach uv's cache through a hard link
    six.write_text(six.read_text().replace('__version__ = "1.16.0"', '__version__ = "1.16.9"'))
    os.utime(six, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert six.stat().st_size == before.st_size and six.stat().st_mtime_ns == before.st_mtime_ns
    during.release()  # a clean end
    again, notes = build(SIX)
    assert notes[:2] == [f"env cache {key}: 1 run(s) using it ended uncleanly: checking its files' hashes",
                         f"env cache {key} is stale (six: six.py differs from its RECORD hash): rebuilding"], notes
    assert not again.reused and imported_version(again, "six") == "1.16.0"
    again.release()
    assert build(SIX)[1] == [], "a run that changed nothing leaves the cheap check"


USER = """
import subprocess, sys
from harness.envs import interpreters, venv
env = venv.ensure_env(interpreters.find("current"), ["six==1.16.0"])
code = "import sys; print('started', flush=True); sys.stdin.readline(); import six; print(six.__version__)"
child = subprocess.Popen([env.python, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
print(child.stdout.readline().strip(), flush=True)
sys.stdin.readline()  # until the test says: now import six, lazily, as a repro does mid-run
out, _ = child.communicate("go\\n")
print(out.strip() or f"the child failed: exit {child.returncode}", flush=True)
env.release()
"""
REBUILDER = """
from harness.envs import interpreters, venv
env = venv.ensure_env(interpreters.find("current"), ["six==1.16.0"], on_build=lambda text: print(text, flush=True))
print("reused" if env.reused else "rebuilt", flush=True)
"""


@pytest.mark.fault("env integrity")
@pytest.mark.slow
def test_a_stale_env_is_not_deleted_under_another_runs_child(cache, tmp_path):
    first, _ = build(SIX)
    first.release()
    env = {**os.environ, "REPRO_CACHE_DIR": str(cache)}
    user = subprocess.Popen([sys.executable, "-c", USER], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    rebuilder = None
    try:
        assert user.stdout.readline().strip() == "started"
        marker = env_root(first) / "env.json"
        marker.write_text(marker.read_text()[:40])  # stale now, while the other run's child runs in it
        log = tmp_path / "rebuilder.log"
        with open(log, "w") as out:
            rebuilder = subprocess.Popen([sys.executable, "-c", REBUILDER], cwd=ROOT, env=env, stdout=out)
        wait_for(lambda: "waiting for the run that uses it to end" in log.read_text() or rebuilder.poll() is not None,
                 "the second run to wait or end")
        assert rebuilder.poll() is None and (env_root(first) / "bin" / "python").exists(), log.read_text()
        out, _ = user.communicate("go\n", timeout=60)
        assert out.strip() == "1.16.0", "the child imported six from the env it started in"
        assert rebuilder.wait(timeout=300) == 0
        assert log.read_text().splitlines()[-1] == "rebuilt", log.read_text()
    finally:
        for proc in (user, rebuilder):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.fault("env integrity")
@pytest.mark.slow
def test_an_env_whose_python_points_at_another_interpreter_is_rebuilt(cache):
    current = interpreters.find("current")
    others = [v for v in ("3.12", "3.13", "3.11", "3.10") if v != current.minor]
    other = next((found for found in map(_find, others) if found), None)
    if other is None:
        pytest.skip("needs a second Python minor version")
    first, _ = build(SIX, current)
    first.release()
    python = Path(first.python)
    python.unlink()
    python.symlink_to(other.path)  # pyvenv.cfg, env.json and the key still say current's version
    assert _runs(first.python) == other.version
    again, notes = build(SIX, current)
    assert not again.reused, notes
    assert f"is stale (its bin/python is Python {other.version}, the key {current.version}): rebuilding" in notes[0]
    assert _runs(again.python) == current.version


def _find(version: str):
    try:
        return interpreters.find(version)
    except Exception:  # noqa: BLE001 - not here
        return None


def _runs(python: str) -> str:
    return subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                          capture_output=True, text=True).stdout.strip()


# A build that lasts until the test lets it end: a source tree whose in-tree build backend waits for a flag.
SLOW_BACKEND = """
import os, shutil, time

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with open({pid_file!r}, "w") as handle:
        handle.write(str(os.getpid()))
    while os.path.exists({flag!r}):
        time.sleep(0.1)
    return os.path.basename(shutil.copy({wheel!r}, wheel_directory))
"""
SLOW_REPRO = """
BUG = {{"id": "synthetic-slow-build", "title": "an env whose build lasts until the test says", "packages": ["toyslow"],
       "requirements": ["toyslow @ {uri}"], "failure_kind": "exception", "signature": "never",
       "trigger_rate": {{"reproduced": 1, "attempts": 1}},
       "variants": {{"trigger": {{"role": "trigger", "run": "clean", "timeout": 10}},
                    "control": {{"role": "control", "run": "clean", "timeout": 10}}}}}}


def clean(ctx):
    return {{}}
"""


def slow_source_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the source tree, the flag that keeps its build waiting, the file the backend writes its pid to)."""
    tree, flag, pid_file = tmp_path / "toyslow", tmp_path / "hold-the-build", tmp_path / "backend.pid"
    tree.mkdir()
    wheel = make_wheel(tmp_path, "toyslow", "1.0")
    (tree / "slow_backend.py").write_text(SLOW_BACKEND.format(pid_file=str(pid_file), flag=str(flag),
                                                              wheel=str(wheel)))
    (tree / "pyproject.toml").write_text('[project]\nname = "toyslow"\nversion = "1.0"\n[build-system]\n'
                                         'requires = []\nbuild-backend = "slow_backend"\nbackend-path = ["."]\n')
    flag.touch()
    return tree, flag, pid_file


@pytest.mark.fault("containment after SIGKILL: the harness is killed")
@pytest.mark.slow
def test_sigkill_of_the_harness_during_an_env_build_stops_the_build(cache, tmp_path):
    tree, flag, pid_file = slow_source_tree(tmp_path)
    repros, scratch = tmp_path / "repros", tmp_path / "tmp"
    repros.mkdir()
    scratch.mkdir()
    (repros / "synthetic_slow_build.py").write_text(SLOW_REPRO.format(uri=tree.as_uri()))
    harness = subprocess.Popen([sys.executable, "-m", "harness", "run", "synthetic-slow-build", "--python", "current",
                                "--quiet", "--results", str(tmp_path / "r.jsonl")], cwd=ROOT,
                               env={**os.environ, "REPRO_PATH": str(repros), "REPRO_CACHE_DIR": str(cache),
                                    "TMPDIR": str(scratch)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), "uv to start the build backend", limit=120)
        started = procs.descendants([harness.pid])  # uv, the build backend, the guardian
        assert int(pid_file.read_text()) in started
    finally:
        harness.kill()
        harness.wait()
    try:
        wait_for(lambda: not any(alive(pid) for pid in started), "uv and its build to die with the harness", limit=15)
    finally:
        flag.unlink()  # a build now ends at once (also one that outlived the harness)
    assert list(scratch.iterdir()) == [], "nothing left in the temp dir"
    again, notes = build([f"toyslow @ {tree.as_uri()}"])
    again.release()
    assert not again.reused and any(note.startswith("building env") for note in notes), notes
    assert imported_version(again, "toyslow") == "1.0"


@pytest.mark.fault("env integrity")
def test_the_env_hold_is_the_harness_s_and_never_open_in_the_attempt_child(cache):
    """A hold is a locked file: a child that kept it open would keep the env `in use` after its
    harness died, and could drop the lock. The child sees the hold, but has no descriptor of it."""
    from harness.attempt import ChildCommand, child_env, run_attempt
    from harness.registry import get_bug

    env, _ = build(["iniconfig==2.0.0"])
    try:
        spec = get_bug("synthetic-trust")
        attempt = run_attempt(spec, spec.variant("fd-probe"), ChildCommand(env.python, child_env({})), kill_grace=1.0)
    finally:
        env.release()
    assert attempt.outcome == "clean", attempt.reason
    notes = attempt.evidence["notes"]
    holds = [n[len("hold: "):] for n in notes if n.startswith("hold: ")]
    fds = [n for n in notes if n.startswith("fd ")]
    assert holds and fds, notes  # the env was held while the child ran, and the child listed its fds
    assert not [fd for fd in fds if ".users/" in fd or any(fd.endswith(h) for h in holds)], fds
