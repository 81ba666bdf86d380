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

from harness import docker_executor as dx
from harness import docker_image, envs, interpreters, services
from harness.attempt import ChildCommand, child_env, run_attempt
from harness.cells import Cell, Options, run_cell
from harness.errors import UsageError
from harness.registry import ROOT, get_bug

from conftest import FAULT_REPROS

DOCKER_REPROS = Path(__file__).parent / "docker_repros"
ENGINE_PID = envs.cache_dir() / "dockerd-test.pid"   # a dockerd the tests started, to stop at the end


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
    envs.cache_dir().mkdir(parents=True, exist_ok=True)
    users = open(envs.cache_dir() / "dockerd-test-users.lock", "a")
    fcntl.flock(users, fcntl.LOCK_SH)
    try:
        with envs._locked(envs.cache_dir() / "dockerd-test-start.lock"):
            started = dx.start_engine()
            if started is not None:
                ENGINE_PID.write_text(str(started.pid))
    except dx.EngineUnavailable as exc:
        users.close()
        pytest.skip(str(exc))
    yield
    try:
        fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with envs._locked(envs.cache_dir() / "dockerd-test-start.lock"):
            if ENGINE_PID.exists():
                dx.stop_engine(int(ENGINE_PID.read_text()))
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
    return executor.engine.containers.list(all=True, filters={"label": f"{dx.LABEL}.executor={executor.id}"})


def bare_env(python="3.11"):
    return envs.ensure_env(interpreters.find(python), [])


def attempt(executor, bug_id, variant, extra_env=None, bug_change=None, **kwargs):
    bug = get_bug(bug_id)
    if bug_change:
        bug = dataclasses.replace(bug, **bug_change)
    env = bare_env()
    command = ChildCommand(env.python, child_env(extra_env or {}))
    if executor is not None:
        command = executor.wrap(command, env, bug)
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
    assert docker["controls"][0]["outcome"] == "clean"
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
    local, docker = attempt(None, bug, variant), attempt(executor, bug, variant)
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
    command = executor.wrap(ChildCommand(env.python, child_env({})), env, bug)
    argv = command.argv(bug, bug.variant("sleep"), tmp_path, 60.0, {})
    runner = subprocess.Popen(argv, cwd=tmp_path, env=command.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        # The container's processes are found by host pid; until it runs, only the runner is.
        while command.processes(runner.pid) == [runner.pid]:
            assert time.monotonic() < deadline and runner.poll() is None, "the container never started"
            time.sleep(0.2)
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
    assert command._containers(runner.pid), "a SIGKILLed runner cannot remove its container"
    command.cleanup(runner.pid)
    assert command._containers(runner.pid) == [] and leftovers(executor) == []


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, env={**os.environ, **(env or {})})


def test_cli_runs_a_cell_in_containers(executor, tmp_path):
    out = run_cli("run", "synthetic-hang", "--python", "3.11", "--executor", "docker", "--json", "--quiet",
                  "--results", str(tmp_path / "r.jsonl"))
    assert out.returncode == 0, out.stderr
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
