"""The docker executor on a real Docker engine: same verdicts as local attempts, limits, clean kills.

The tests start dockerd when none answers (and stop it after), and build the base image
locally (debootstrap of the host's release; no image hub is reachable). Where no engine
can start or no image can be built, they skip with the reason.
"""
import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FAULT_REPROS
from harness import procs, services
from harness.attempt import child_env, run_attempt
from harness.cell import Cell, Options, run_cell
from harness.envs import interpreters, venv
from harness.errors import UsageError
from harness.executors.docker import engine as docker_engine
from harness.executors.docker import executor as dx
from harness.executors.docker import image as docker_image
from harness.executors.docker import interpreters as image_interpreters
from harness.executors.local import LocalExecutor
from harness.files import locked
from harness.paths import ROOT, cache_dir
from harness.registry import get_bug

DOCKER_REPROS = Path(__file__).parent / "docker_repros"
ENGINE_PID = cache_dir() / "dockerd-test.pid"   # a dockerd the tests started, to stop at the end


@pytest.fixture(autouse=True)
def docker_repros(fault_repros, monkeypatch):
    monkeypatch.setenv("REPRO_PATH", os.pathsep.join([str(FAULT_REPROS), str(DOCKER_REPROS)]))


@pytest.fixture(scope="session")
def engine():
    """An engine for the session: started if none answers, stopped by the last session using it.

    pytest-xdist workers share it: each holds a shared lock while it runs; one that gets the
    lock exclusively at its end is the last, and stops a dockerd that tests started (never an
    engine that was running before).
    """
    cache_dir().mkdir(parents=True, exist_ok=True)
    users = open(cache_dir() / "dockerd-test-users.lock", "a")
    fcntl.flock(users, fcntl.LOCK_SH)
    try:
        with locked(cache_dir() / "dockerd-test-start.lock"):
            started = docker_engine.start_engine()
            if started is not None:
                ENGINE_PID.write_text(str(started.pid))
    except docker_engine.EngineUnavailable as exc:
        users.close()
        pytest.skip(str(exc))
    yield
    try:
        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with locked(cache_dir() / "dockerd-test-start.lock"):
            if ENGINE_PID.exists():
                docker_engine.stop_engine(int(ENGINE_PID.read_text()))
                ENGINE_PID.unlink()
    except BlockingIOError:
        pass  # another session still uses the engine; the last one stops it
    finally:
        users.close()
        if started is not None:
            started.poll()  # reap ours if it was stopped


@pytest.fixture(scope="session")
def executor(engine):
    try:
        return dx.DockerExecutor()
    except UsageError as exc:
        pytest.skip(f"no image for the docker executor: {exc}")


def leftovers(executor) -> list:
    return executor.engine.containers.list(all=True, filters={"label": f"{docker_engine.LABEL}.executor={executor.id}"})


def bare_env(python="3.11"):
    return venv.ensure_env(interpreters.find(python), [])


def attempt(executor, bug_id, variant, extra_env=None, bug_change=None, **kwargs):
    bug = get_bug(bug_id)
    if bug_change:
        bug = dataclasses.replace(bug, **bug_change)
    env = bare_env()
    command = executor.command(env, bug, child_env(extra_env or {}))
    return run_attempt(bug, bug.variant(variant), command, kill_grace=1.0, **kwargs)


def probe(result) -> dict:
    assert result.outcome == "clean", (result.reason, result.evidence.get("output_tail"))
    return json.loads(result.evidence["notes"][0])


@pytest.mark.slow
@pytest.mark.parametrize("pin, expected", [("deltalake==0.20.1", "present"), ("deltalake==1.6.6", "absent")])
def test_delta_already_borrowed_same_verdict_as_local(executor, pin, expected):
    cell = Cell("delta-already-borrowed", "trigger", "3.11", (pin,))
    local = run_cell(cell, Options(attempts=3))
    docker = run_cell(cell, Options(attempts=3, executor=executor))
    assert local["verdict"] == expected, local["reason"]
    assert docker["verdict"] == expected, (docker["reason"], docker.get("evidence"))
    assert docker["installed"]["deltalake"] == local["installed"]["deltalake"] == pin.split("==")[1]
    assert [c["outcome"] for c in docker["controls"]] == (["clean"] if expected == "present" else [])
    assert docker["executor"]["kind"] == "docker" and local["executor"]["kind"] == "local"
    assert leftovers(executor) == []


def test_hang_cell_same_verdict_as_local_with_stacks(executor):
    cell = Cell("synthetic-hang", "trigger", "3.11")
    local = run_cell(cell, Options())
    docker = run_cell(cell, Options(executor=executor))
    assert local["verdict"] == docker["verdict"] == "present"
    evidence = docker["evidence"][0]
    assert evidence["outcome"] == "hang"
    # faulthandler wrote into the mounted attempt dir before the deadline killed the container.
    assert "in deadlock" in evidence["evidence"]["stacks"]
    if dx._py_spy_binary():
        dumps = evidence["evidence"]["native_stacks"]
        assert any("harness.child" in text and "pause" in text for text in dumps.values()), dumps
    assert leftovers(executor) == []


def test_real_hang_cell_same_verdict_as_local(executor):
    """CPython 3.11.7's deadlock in sys._current_frames() (stdlib level, no env to build)."""
    from harness.registry import all_bugs

    if "beam-py311-gc-deadlock" not in all_bugs():
        pytest.skip("repros/beam_py311_gc_deadlock.py is not in this checkout")
    if not isinstance(interpreters.available(["3.11.7"])["3.11.7"], interpreters.Interpreter):
        pytest.skip("Python 3.11.7 is not installed")
    cell = Cell("beam-py311-gc-deadlock", "cpython-trigger", "3.11.7")
    local = run_cell(cell, Options(control_attempts=0))
    docker = run_cell(cell, Options(control_attempts=0, executor=executor))
    assert local["verdict"] == docker["verdict"] == "present", (local["reason"], docker["reason"])
    assert leftovers(executor) == []


@pytest.mark.parametrize("bug, variant, outcome, detail", [
    ("synthetic-faults", "trigger", "reproduced", "synthetic bug"),
    ("synthetic-faults", "segfault", "crash", "signal 11"),
    ("synthetic-faults", "exit-early", "error", "code 3"),
    ("synthetic-faults", "gil-deadlock", "hang", "no result"),
])
def test_outcomes_same_as_local(executor, bug, variant, outcome, detail):
    local, docker = attempt(LocalExecutor(), bug, variant), attempt(executor, bug, variant)
    assert local.outcome == docker.outcome == outcome
    assert detail in docker.reason
    assert leftovers(executor) == []


def test_limits_no_network_and_read_only_mounts(engine, executor):
    limited = dx.DockerExecutor(executor.image, memory="512m", cpus=1.0, pids=300)
    seen = probe(attempt(limited, "docker-probe", "trigger", extra_env={"REPRO_MOTO_URL": "http://127.0.0.1:9/"}))
    assert int(seen["memory"]) == 512 * 1024 * 1024
    assert int(seen["pids"]) == 300
    assert int(seen["cpu_quota"]) == int(seen["cpu_period"])  # one CPU
    assert seen["interfaces"] == ["lo"]
    assert seen["service"].startswith("unreachable")
    assert seen["project_writable"].startswith("no") and seen["workdir_writable"] == "yes"
    assert seen["uid"] == os.getuid()
    assert leftovers(limited) == []


def test_a_bug_with_a_service_reaches_the_moto_server_on_the_host_loopback(executor):
    with services.started(["moto"]) as service_env:
        seen = probe(attempt(executor, "docker-probe", "trigger", extra_env=service_env,
                             bug_change={"services": ["moto"]}))
        without = probe(attempt(executor, "docker-probe", "trigger", extra_env=service_env))
    assert seen["service"].startswith("HTTP"), seen
    assert without["service"].startswith("unreachable"), without


def test_memory_limit_kills_a_hoarding_repro_as_a_crash(engine, executor):
    small = dx.DockerExecutor(executor.image, memory="256m")
    result = attempt(small, "docker-probe", "oom", params={"mib": 2048})
    assert result.outcome == "crash" and result.evidence["signal"] == signal.SIGKILL
    assert "OOM-killed" in result.evidence["output_tail"]
    assert leftovers(small) == []


def test_a_runner_killed_with_sigkill_leaves_its_container_to_cleanup(executor, tmp_path):
    bug = get_bug("synthetic-faults")
    env = bare_env()
    command = executor.command(env, bug, child_env({}))
    argv = command.argv(bug, bug.variant("sleep"), tmp_path, 60.0, {})
    runner = subprocess.Popen(argv, cwd=tmp_path, env=command.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        tree = procs.AttemptProcesses(runner.pid, procs.own_children() - {runner.pid})
        # The container's processes are found by host pid; until it runs, only the runner is.
        while command.processes(tree) == [runner.pid]:
            assert time.monotonic() < deadline and runner.poll() is None, "the container never started"
            time.sleep(0.2)
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
    assert command._containers(runner.pid), "a SIGKILLed runner cannot remove its container"
    command.cleanup(runner.pid)
    assert command._containers(runner.pid) == [] and leftovers(executor) == []


def test_containers_a_run_left_behind_are_swept_at_its_exit(executor):
    """A removal cut short (a signal in the middle of it) leaves a container: the executor's
    sweep at the harness's exit removes every container carrying its id, also after Ctrl-C."""
    script = ("import sys\n"
              "from harness.executors.docker.executor import DockerExecutor\n"
              "ex = DockerExecutor()\n"
              "ex.engine.containers.create(ex.image_id, ['true'], labels=ex._labels('env-build'))\n"
              "print(ex.id, flush=True)\n"
              "raise KeyboardInterrupt\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "KeyboardInterrupt" in done.stderr, done.stderr
    left = executor.engine.containers.list(
        all=True, filters={"label": f"{docker_engine.LABEL}.executor={done.stdout.strip()}"})
    assert done.stdout.strip() and left == []


@pytest.mark.fault("containment after SIGKILL: the harness is killed")
def test_containers_of_a_harness_killed_with_sigkill_are_removed_by_its_guardian(executor):
    """SIGKILL runs no atexit: the guardian, which sees the harness's end of its pipe close,
    removes the containers carrying the executor's id (here one created, never started)."""
    script = ("import os, signal\n"
              "from harness.executors.docker.executor import DockerExecutor\n"
              "ex = DockerExecutor()\n"
              "ex.engine.containers.create(ex.image_id, ['true'], labels=ex._labels('env-build'))\n"
              "print(ex.id, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == -signal.SIGKILL and done.stdout.strip(), done.stderr
    label = {"label": f"{docker_engine.LABEL}.executor={done.stdout.strip()}"}
    deadline = time.monotonic() + 60  # the guardian's kill grace first, then the removal
    while executor.engine.containers.list(all=True, filters=label):
        assert time.monotonic() < deadline, "the guardian left the SIGKILLed harness's container"
        time.sleep(0.2)


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def test_cli_runs_a_cell_in_containers(executor, tmp_path):
    out = run_cli("run", "synthetic-hang", "--python", "3.11", "--executor", "docker", "--json", "--quiet",
                  "--results", str(tmp_path / "r.jsonl"))
    assert out.returncode == 1, out.stderr  # present
    record = json.loads(out.stdout)
    assert record["verdict"] == "present" and record["executor"] == executor.describe()
    missing = run_cli("run", "synthetic-hang", "--executor", "docker", "--image", "repro-harness/none:0",
                      "--results", str(tmp_path / "r.jsonl"))
    assert missing.returncode == 2 and "cannot be pulled" in missing.stderr


def test_cli_without_an_engine_is_one_line_and_exit_2(tmp_path):
    out = run_cli("run", "synthetic-hang", "--executor", "docker", "--results", str(tmp_path / "r.jsonl"),
                  env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert out.returncode == 2 and "cannot reach the Docker engine" in out.stderr
    assert not (tmp_path / "r.jsonl").exists()
    image_alone = run_cli("run", "synthetic-hang", "--image", "x", "--results", str(tmp_path / "r.jsonl"))
    assert image_alone.returncode == 2 and "--image needs --executor docker" in image_alone.stderr


def test_base_image_mirror_and_tag_from_the_host_apt_sources(tmp_path, monkeypatch):
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n")
    deb822 = tmp_path / "debian.sources"
    deb822.write_text("Types: deb\nURIs: http://other.example/debian\nSuites: bookworm bookworm-updates\n"
                      "Components: main\n\nTypes: deb\nURIs: http://sec.example/debian-security\n"
                      "Suites: bookworm-security\n")
    monkeypatch.setattr(docker_image, "SOURCES", [deb822, one_line])
    assert docker_image.apt_mirror("bookworm") == "http://other.example/debian"
    monkeypatch.setattr(docker_image, "SOURCES", [one_line])
    assert docker_image.apt_mirror("bookworm") == "http://mirror.example/debian"
    with pytest.raises(UsageError, match="no apt source for trixie"):
        docker_image.apt_mirror("trixie")
    assert docker_image.image_tag("bookworm") == docker_image.image_tag("bookworm") != docker_image.image_tag("trixie")


# ---------------------------------------------------------------- interpreters from the image

@pytest.fixture(scope="session")
def python_image(engine):
    """The base image plus Debian's own python3 (3.11.2 in bookworm): an interpreter build of the image."""
    try:
        return docker_image.ensure_base_image(docker_engine.client(), include=("python3",))
    except UsageError as exc:
        pytest.skip(f"cannot build an image with Debian's python3: {exc}")


@pytest.fixture(scope="session")
def image_python(python_image):
    """(executor that takes the interpreter from the image, the image's interpreter)."""
    executor = dx.DockerExecutor(python_image, python_from="image")
    pythons = image_interpreters.image_pythons(executor.engine, executor.image_id, executor._labels("probe"))
    assert pythons, f"{python_image} lists no CPython"
    return executor, executor.find_interpreter(pythons[0][1])


def host_mountable(version: str) -> bool:
    found = interpreters.available([version])[version]
    return not isinstance(found, str) and dx._mountable_prefix(found.path) is not None


def test_env_key_names_the_image():
    requirements = ["six==1.16.0"]
    host = interpreters.Interpreter("/usr/bin/python3.11", "3.11.2")
    in_image = image_interpreters.ImageInterpreter("/usr/bin/python3.11", "3.11.2", image="a", image_id="sha256:1")
    other_image = image_interpreters.ImageInterpreter("/usr/bin/python3.11", "3.11.2", image="a", image_id="sha256:2")
    keys = {venv.env_key(i, requirements, None) for i in (host, in_image, other_image)}
    assert len(keys) == 3
    assert in_image.describe()["source"] == "image" and host.describe()["source"] == "host"
    # The key of an image env is the one the cache has (envs built in images are reused), and the
    # marker's record reads back to the same interpreter; its path is not on the host.
    assert venv.env_key(in_image, requirements, None) == "cafcff2058d402eaf48f"
    assert image_interpreters.ImageInterpreter.from_record(in_image.describe()) == in_image
    assert not in_image.on_host and in_image.label == "Python 3.11.2 in image a"


def test_image_interpreters_are_listed_once_per_image_id(python_image, tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    executor = dx.DockerExecutor(python_image)
    pythons = image_interpreters.image_pythons(executor.engine, executor.image_id, executor._labels("probe"))
    assert [path for path, _ in pythons] == ["/usr/bin/python3.11"], pythons
    cached = json.loads((tmp_path / "docker-pythons" / f"{executor.image_id.replace(':', '-')}.json").read_text())
    assert cached["image_id"] == executor.image_id and [tuple(p) for p in cached["pythons"]] == pythons
    version = pythons[0][1]
    # auto: the host's interpreter if the container can mount it, else the image's.
    found = executor.find_interpreter(version)
    expected = "host" if host_mountable(version) else "image"
    assert found.describe()["source"] == expected and found.version == version
    assert leftovers(executor) == []


def test_a_version_neither_on_the_host_nor_in_the_image_is_one_line_and_exit_2(python_image, tmp_path):
    out = run_cli("run", "synthetic-hang", "--python", "3.11.99", "--executor", "docker", "--image", python_image,
                  "--results", str(tmp_path / "r.jsonl"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no Python 3.11.99 interpreter found" in out.stderr
    assert f"image {python_image} has no Python 3.11.99 (3.11" in out.stderr
    forced = run_cli("run", "synthetic-hang", "--python", "3.9", "--python-from", "image", "--executor", "docker",
                     "--image", python_image, "--results", str(tmp_path / "r.jsonl"))
    assert forced.returncode == 2 and f"image {python_image} has no Python 3.9 (" in forced.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_a_cell_runs_the_image_interpreter_in_its_container(image_python):
    executor, interpreter = image_python
    record = run_cell(Cell("docker-probe", "trigger", interpreter.version),
                      Options(attempts=1, control_attempts=0, executor=executor))
    assert record["verdict"] == "absent" and record["outcomes"] == {"clean": 1}, record["reason"]
    assert record["python"] == interpreter.version
    assert record["interpreter"] == {"path": interpreter.path, "version": interpreter.version, "source": "image",
                                     "image": executor.image, "image_id": executor.image_id}
    assert record["executor"]["python_from"] == "image" and record["executor"]["image_id"] == executor.image_id


def test_the_child_sees_the_image_interpreter(image_python):
    executor, interpreter = image_python
    bug = get_bug("docker-probe")
    env = executor.ensure_env(interpreter, [])
    command = executor.command(env, bug, child_env({}))
    seen = probe(run_attempt(bug, bug.variant("trigger"), command, kill_grace=1.0))
    assert seen["python"] == interpreter.version and seen["executable"] == interpreter.path
    assert seen["interfaces"] == ["lo"]   # in the container, not on the host
    # Only the project (and py-spy) is mounted: no host interpreter installation.
    assert all(not Path(host).is_relative_to("/usr") for host, _, _ in command.mounts)


def build_containers(executor, since: int, until: int) -> list:
    """The images of the env-build containers this executor created in [since, until), from the engine's events."""
    events = executor.engine.events(since=since, until=until, decode=True, filters={
        "type": "container", "event": "create", "label": [f"{docker_engine.LABEL}.executor={executor.id}",
                                                          f"{docker_engine.LABEL}.purpose=env-build"]})
    return [event["Actor"]["Attributes"]["image"] for event in events]


@pytest.mark.slow
def test_an_env_is_built_in_the_image_once(image_python, tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    executor, interpreter = image_python
    started = int(time.time()) - 1
    first = executor.ensure_env(interpreter, ["six==1.16.0"])
    built_at = int(time.time()) + 1
    again = executor.ensure_env(interpreter, ["six==1.16.0"])
    assert (first.reused, again.reused) == (False, True) and first.installed == {"six": "1.16.0"}
    # uv ran in containers of the image (venv, install, freeze), and not again for the reuse.
    assert build_containers(executor, started, built_at) == [executor.image_id] * 3
    assert build_containers(executor, built_at, int(time.time()) + 1) == []
    root = Path(first.python).parent.parent
    assert root.parent == tmp_path / "envs" and again.python == first.python
    config = (root / "pyvenv.cfg").read_text()
    assert f"home = {Path(interpreter.path).parent}" in config and f"version_info = {interpreter.version}" in config
    assert json.loads((root / "env.json").read_text())["interpreter"]["image_id"] == executor.image_id
    # The same version on the host (if any) gets an env of its own.
    host = interpreters.Interpreter(interpreter.path, interpreter.version)
    assert venv.env_key(host, ["six==1.16.0"], None) != root.name
    bug = get_bug("docker-probe")
    command = executor.command(first, bug, child_env({}))
    seen = probe(run_attempt(bug, bug.variant("trigger"), command, kill_grace=1.0))
    assert seen["python"] == interpreter.version and seen["executable"] == first.python
    assert seen["base_prefix"] == str(Path(interpreter.path).parent.parent)
    assert leftovers(executor) == []


@pytest.mark.slow
@pytest.mark.parametrize("pin, expected", [("deltalake==0.20.1", "present"), ("deltalake==1.6.6", "absent")])
def test_delta_already_borrowed_with_the_image_interpreter(image_python, pin, expected):
    executor, interpreter = image_python
    record = run_cell(Cell("delta-already-borrowed", "trigger", interpreter.version, (pin,)),
                      Options(attempts=3, executor=executor))
    assert record["verdict"] == expected, (record["reason"], record.get("evidence"))
    assert record["installed"]["deltalake"] == pin.split("==")[1]
    assert record["interpreter"]["source"] == "image" and record["python"] == interpreter.version
    assert [c["outcome"] for c in record["controls"]] == (["clean"] if expected == "present" else [])
    assert leftovers(executor) == []


def test_real_hang_cell_with_the_image_interpreter(image_python):
    """Debian's 3.11.2 predates the 3.11.12 fix of python/cpython#106883: the deadlock is there."""
    from harness.registry import all_bugs

    executor, interpreter = image_python
    if "beam-py311-gc-deadlock" not in all_bugs():
        pytest.skip("repros/beam_py311_gc_deadlock.py is not in this checkout")
    if not (3, 11) <= tuple(map(int, interpreter.version.split("."))) < (3, 11, 12):
        pytest.skip(f"the image's Python {interpreter.version} is not a 3.11 before the fix")
    record = run_cell(Cell("beam-py311-gc-deadlock", "cpython-trigger", interpreter.version),
                      Options(executor=executor))
    assert record["verdict"] == "present", record["reason"]
    assert record["controls"][0]["outcome"] == "clean"
    assert record["interpreter"]["source"] == "image"
    assert leftovers(executor) == []


@pytest.mark.slow
@pytest.mark.fault("containment: Ctrl-C of the harness")
def test_ctrl_c_during_an_env_build_in_the_image_leaves_nothing(python_image, tmp_path):
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "harness", "run", "delta-already-borrowed", "--python", "3.11", "--python-from",
            "image", "--with", "deltalake==0.19.2", "--executor", "docker", "--image", python_image,
            "--results", str(tmp_path / "r.jsonl"), "--quiet"]
    cli = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, "REPRO_CACHE_DIR": str(cache)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    engine = docker_engine.client()
    build_filter = {"label": f"{docker_engine.LABEL}.purpose=env-build"}
    # Another run's container (a parallel test, or one some killed harness left) is not this build's.
    before = {c.id for c in engine.containers.list(all=True, filters=build_filter)}
    try:
        deadline, building = time.monotonic() + 120, []
        while not building:  # the first of the build's containers (uv venv, uv pip install, ...)
            assert time.monotonic() < deadline and cli.poll() is None, "no env-build container was seen"
            building = [c for c in engine.containers.list(all=True, filters=build_filter) if c.id not in before]
            time.sleep(0.05)
        os.kill(cli.pid, signal.SIGINT)
        _, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            os.killpg(cli.pid, signal.SIGKILL)
            cli.wait()
    assert cli.returncode == 130, stderr
    executor_id = building[0].labels[f"{docker_engine.LABEL}.executor"]
    assert engine.containers.list(all=True, filters={"label": f"{docker_engine.LABEL}.executor={executor_id}"}) == []
    assert [p.name for p in (cache / "envs").iterdir() if not p.name.endswith(".lock")] == []
