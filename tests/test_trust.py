"""The harness attacked: it can be neither stuck, fooled, nor made to lose a result or leak a process.

Each test is one class of attack (synthetic repros in tests/fault_repros, stdlib only). Every
test also checks that no process it started survives, found by ancestry (every descendant
of this test process), not only by session.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import FAULT_REPROS, _cmdline, alive, small_tmpfs
from harness import pidns, procs, results
from harness.attempt import ChildCommand, child_env, run_attempt
from harness.cell import Cell, Options, run_cell
from harness.registry import get_bug
from harness.verdict import decide
from test_cli import ROOT, repro

SITE_PACKAGES = next(p for p in sys.path if p.endswith("site-packages"))


pytestmark = pytest.mark.usefixtures("no_process_survives")


def _pids(path: Path) -> list:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def _ours(pids: list, evidence: dict) -> list:
    """Pids a repro wrote, as it saw them (in its PID namespace, if it had one), as ours."""
    seen = {inner: pid for pid, inner in evidence.get("namespace_pids", {}).items()}
    return [seen.get(pid, pid) for pid in pids]


def _ours_below(root: int, pids: list) -> list:
    """The same, for a harness `root` that still runs: found by ancestry and /proc's NSpid."""
    seen = {pidns.namespace_pid(pid): pid for pid in procs.descendants([root])}
    seen.pop(None, None)
    return [seen[pid] for pid in pids] if seen else pids


in_a_namespace = pytest.mark.skipif(procs.containment() != procs.PID_NAMESPACE,
                                    reason="this machine gives an attempt no PID namespace")


def attempt_in_thread(bug: str, variant: str, limit: float = 60.0, **kwargs):
    """run_attempt, but a harness that hangs fails the test instead of hanging it."""
    spec = get_bug(bug)
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=run_attempt(
        spec, spec.variant(variant), ChildCommand(sys.executable, child_env({})), kill_grace=1.0, **kwargs)))
    thread.daemon = True
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"the harness is stuck in the attempt ({variant}) after {limit:g}s"
    return box["result"]


# ------------------------------------------------------------ 1. the harness cannot be stuck

@pytest.mark.fault("stuck: a daemon escaped the session")
def test_escaped_daemon_holding_stdout_neither_blocks_the_harness_nor_survives(tmp_path):
    pid_file = tmp_path / "pids"
    result = attempt_in_thread("synthetic-trust", "escaped-daemon", params={"pid_file": str(pid_file)})
    assert result.outcome == "clean", result.reason
    (daemon,) = _ours(_pids(pid_file), result.evidence)
    assert daemon in result.evidence["lingering_processes"], "found by ancestry, outside the session"
    assert not alive(daemon)


# ------------------------------------------------------------ 2. and 3. no verdict from nothing

BAD_NUMBERS = [
    (["--max-attempts", "0"], "--max-attempts must be at least 1"),
    (["--max-attempts", "-1"], "--max-attempts must be at least 1"),
    (["--attempts", "-1"], "--attempts must be at least 1"),
    (["--timeout", "-5"], "--timeout must be a positive number"),
    (["--timeout", "0"], "--timeout must be a positive number"),
    (["--timeout", "nan"], "--timeout must be a positive number"),
    (["--timeout", "inf"], "--timeout must be a positive number"),
    (["--confidence", "1"], "--confidence must be between 0 and 1"),
    (["--confidence", "nan"], "--confidence must be between 0 and 1"),
    (["--control-attempts", "-1"], "--control-attempts must be at least 0"),
]


@pytest.mark.fault("fooled: a bad number")
@pytest.mark.parametrize("args,message", BAD_NUMBERS, ids=[" ".join(a) for a, _ in BAD_NUMBERS])
def test_bad_numbers_are_usage_errors(tmp_path, args, message):
    out = repro("run", "synthetic-faults", "--python", "current", *args, "--results", str(tmp_path / "r.jsonl"))
    assert out.returncode == 2 and out.stderr.strip() == f"repro: {message}" or message in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.fault("fooled: a bad number")
def test_no_attempt_is_never_absent():
    spec = get_bug("synthetic-faults")
    decision = decide(spec.variant("trigger").role, [], spec.trigger_rate_lower_bound(), Options().confidence)
    verdict, reason = decision.verdict, decision.reason
    assert verdict == "error" and "no attempt ran" in reason
    record = run_cell(Cell("synthetic-faults", "control", "current"), Options(max_attempts=0))
    assert record["verdict"] == "error" and record["attempts"] == 0


@pytest.mark.fault("fooled: a bad number")
def test_pytest_matrix_refuses_a_negative_attempt_budget(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pytest", "matrix/", "-p", "no:cacheprovider", "--attempts", "-1",
                          "--results-dir", str(tmp_path)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 4, out.stdout + out.stderr  # pytest's usage error
    assert "--attempts must be at least 1" in out.stderr
    assert not list(tmp_path.iterdir()), "no cell ran"


@pytest.mark.fault("fooled: a deadline without evidence")
def test_a_short_deadline_is_not_the_bug_without_the_repros_hang_evidence(tmp_path):
    # The repro watches its workload itself for 4 s; a 1 s deadline expires before it could
    # conclude anything. That is a hang, never `present` (Beam's monitor on a fixed 3.12.1).
    out = repro("run", "synthetic-hang", "--python", "current", "--variant", "own-monitor", "--timeout", "1",
                "--attempts", "3", "--measure", "--control-attempts", "0", "--json",
                "--results", str(tmp_path / "r.jsonl"))
    record = json.loads(out.stdout)
    assert record["verdict"] == "hang", record["reason"]
    assert record["reproductions"] == 0 and record["outcomes"] == {"hang": 3}
    assert "had not seen its bug's stall begin" in record["evidence"][0]["reason"]


@pytest.mark.fault("fooled: a deadline without evidence")
def test_a_deadline_after_the_repros_hang_evidence_is_the_bug():
    result = attempt_in_thread("synthetic-hang", "trigger")
    assert result.outcome == "hang" and result.matches_bug(get_bug("synthetic-hang"))
    assert "pause()" in result.evidence["hang_evidence"]


# ------------------------------------------------------------ 4. the env under test is the resolved env

@pytest.fixture(scope="module")
def iniconfig_env():
    """A real uv env holding iniconfig only (built once, then from the cache)."""
    from harness.envs import interpreters, venv

    return venv.ensure_env(interpreters.find("current"), ["iniconfig==2.0.0"])


@pytest.mark.fault("fooled: the env under test")
def test_the_childs_path_holds_only_the_child_code_and_the_env(iniconfig_env):
    spec = get_bug("synthetic-trust")
    probe = run_attempt(spec, spec.variant("path-probe"), ChildCommand(iniconfig_env.python, child_env({})),
                        params={"modules": ["iniconfig", "pytest", "harness.cli.main", "harness.kit"]})
    notes = probe.evidence["notes"]
    env_root = str(Path(iniconfig_env.python).parent.parent)
    assert any(n.startswith("import iniconfig: " + env_root) for n in notes), notes
    # pytest and the harness's parent side live in the harness's own site-packages: not here.
    assert "import pytest: not importable" in notes and "import harness.cli.main: not importable" in notes, notes
    assert any(n.startswith("import harness.kit: ") and n.endswith("/lib/harness/kit.py") for n in notes), notes
    paths = [n[len("path: "):] for n in notes if n.startswith("path: ")]
    assert not [p for p in paths if "site-packages" in p and not p.startswith(env_root)], paths


@pytest.mark.fault("fooled: the env under test")
def test_the_record_says_what_the_child_imported_and_from_where(iniconfig_env):
    record = run_cell(Cell("synthetic-trust", "path-probe", "current"), Options(attempts=1))
    assert record["verdict"] == "absent", record["reason"]
    imported = record["imported"]["iniconfig"]
    assert imported["version"] == "2.0.0"
    assert imported["modules"]["iniconfig"].startswith(str(Path(iniconfig_env.python).parent.parent))


@pytest.mark.fault("fooled: the env under test")
def test_a_shadowing_path_entry_makes_the_attempt_an_error(iniconfig_env):
    # pytest lives in the harness's own site-packages, never in the cell's env.
    record = run_cell(Cell("synthetic-trust", "shadowed", "current"),
                      Options(attempts=1, control_attempts=0, params={"directory": SITE_PACKAGES, "module": "pytest"}))
    assert record["verdict"] == "error", record["reason"]
    assert "outside the cell's env" in record["reason"] and "pytest" in record["reason"]


# ------------------------------------------------------------ 7. results are never lost

@pytest.mark.fault("lost: a result write fails", loses="results")
def test_a_full_disk_is_exit_4_with_the_record_on_stdout():
    out = repro("run", "synthetic-faults", "--python", "current", "--results", "/dev/full")
    assert out.returncode == 4, out.stderr  # the verdict is known, its record is not kept
    record = json.loads(out.stdout)
    assert record["verdict"] == "present" and record["schema"] == results.SCHEMA
    assert "cannot write the result to /dev/full: No space left on device" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.fault("lost: a result write fails", loses="results")
@pytest.mark.parametrize("where", ["/etc/hostname/results.jsonl", "/proc/no/results.jsonl", "{tmp}"])
def test_an_unwritable_results_path_is_refused_before_anything_runs(tmp_path, where):
    path = where.format(tmp=tmp_path)  # a directory is no results file either
    out = repro("run", "synthetic-faults", "--python", "current", "--variant", "sleep", "--results", path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith(f"repro: cannot write results to {path}") and len(out.stderr.splitlines()) == 1


@pytest.mark.fault("lost: a result write fails", loses="results")
def test_a_short_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    results.append(path, {"kind": "cell", "n": 1})
    before = path.read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        if len(data) > 10:
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(results.ResultWriteError) as caught:
        results.append(path, {"kind": "cell", "n": 2})
    assert json.loads(caught.value.line)["n"] == 2  # the caller still has the record
    assert path.read_bytes() == before


@pytest.mark.fault("lost: a result write fails", loses="results")
def test_a_torn_line_is_reported_and_never_swallows_the_next_record(tmp_path):
    path = tmp_path / "r.jsonl"
    results.append(path, {"kind": "cell", "n": 1})
    with open(path, "a") as handle:
        handle.write('{"schema": 1, "kind": "ce')  # a writer killed mid-line
    results.append(path, {"kind": "cell", "n": 2})
    problems = []
    assert [r["n"] for r in results.read(path, problems)] == [1, 2]
    assert len(problems) == 1 and f"{path}:2" in problems[0]


@pytest.mark.fault("lost: a result write fails", loses="results")
def test_a_real_full_filesystem_leaves_whole_records_only(tmp_path):
    with small_tmpfs(tmp_path / "small", "16k") as mount:
        path = mount / "r.jsonl"
        written = lost = 0
        for n in range(200):
            try:
                results.append(path, {"kind": "cell", "n": n, "pad": "x" * 300})
                written += 1
            except results.ResultWriteError:
                lost += 1
        problems = []
        kept = results.read(path, problems)
        assert lost and problems == [] and [r["n"] for r in kept] == list(range(written))


# ------------------------------------------------------------ 8. no leak, even when the harness is killed

def _wait_for(predicate, limit=60.0):
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


@pytest.mark.fault("containment after SIGKILL: the harness is killed")
def test_sigkill_of_the_harness_during_a_hang_leaves_nothing_running(tmp_path):
    pid_file = tmp_path / "pids"
    harness = subprocess.Popen([sys.executable, "-m", "harness", "run", "synthetic-trust", "--variant", "forked-hang",
                                "--python", "current", "--param", f"pid_file={pid_file}", "--quiet",
                                "--results", str(tmp_path / "r.jsonl")],
                               env={**os.environ, "REPRO_PATH": str(FAULT_REPROS)}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for(lambda: len(_pids(pid_file)) == 3)  # the child, its forked worker, an escaped daemon
    pids = _ours_below(harness.pid, _pids(pid_file))
    harness.kill()
    harness.wait()
    _wait_for(lambda: not any(alive(p) for p in pids), limit=15)


@pytest.mark.fault("containment after SIGKILL: the harness is killed")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_does_not_cut_the_cleanup_short(tmp_path, sig):
    harness = subprocess.Popen([sys.executable, "-m", "harness", "run", "synthetic-faults", "--variant",
                                "ignore-sigterm", "--python", "current", "--quiet",
                                "--results", str(tmp_path / "r.jsonl")],
                               env={**os.environ, "REPRO_PATH": str(FAULT_REPROS)}, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)

    def child():
        return [p for p in procs.descendants([harness.pid]) if "harness.child" in _cmdline(p)]

    _wait_for(lambda: child() and "ignore_sigterm" in Path(f"/proc/{child()[0]}/cmdline").read_text()
              or bool(child()), limit=30)
    time.sleep(0.5)  # the child has set SIG_IGN for SIGTERM
    (pid,) = child()
    harness.send_signal(sig)
    time.sleep(0.5)
    harness.send_signal(sig)  # during the cleanup's grace period, before its SIGKILL step
    _, err = harness.communicate(timeout=60)
    assert harness.returncode == 130, err
    assert not alive(pid), "the child that ignores SIGTERM survived a cleanup cut short"


SECRETS = {"GITHUB_TOKEN": "ghp_x", "UV_INDEX_PASSWORD": "pw", "DATABASE_PASSWORD": "pw",
           "PYTHONOPTIMIZE": "1", "PYTHONWARNINGS": "error", "PYTHONSTARTUP": "/x", "AWS_SECRET_ACCESS_KEY": "k"}


@pytest.mark.fault("secrets: the environment")
def test_the_child_gets_no_secret_and_no_python_variable_it_did_not_set(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    result = attempt_in_thread("synthetic-trust", "env-probe")
    seen = set(result.evidence["notes"][0].split())
    assert not seen & set(SECRETS), seen & set(SECRETS)
    assert {"PATH", "HOME", "REPRO_RUN", "PYTHONPATH", "PYTHONNOUSERSITE"} <= seen


def _harness_running(tmp_path, variant, params=(), env=None):
    argv = [sys.executable, "-m", "harness", "run", "synthetic-trust", "--variant", variant, "--python", "current",
            "--quiet", "--results", str(tmp_path / "r.jsonl"), "--max-attempts", "1"]
    for param in params:
        argv += ["--param", param]
    return subprocess.Popen(argv, env={**os.environ, "REPRO_PATH": str(FAULT_REPROS), **(env or {})}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.fault("containment after SIGKILL: the harness is killed")
@pytest.mark.parametrize("kill_guardian", [False, True], ids=["helper", "helper-after-killing-the-guardian"])
def test_sigkill_of_the_harness_kills_a_helper_with_a_clean_environment(tmp_path, kill_guardian):
    pid_file, temp = tmp_path / "pids", tmp_path / "tmp"
    temp.mkdir()
    harness = _harness_running(tmp_path, "clean-helper", [f"pid_file={pid_file}",
                                                          f"kill_guardian={json.dumps(kill_guardian)}"],
                               env={"TMPDIR": str(temp)})
    _wait_for(lambda: _pids(pid_file))
    time.sleep(0.5)  # a new guardian (if killed) has been told
    (helper,) = _ours_below(harness.pid, _pids(pid_file))
    harness.kill()
    harness.wait()
    try:
        _wait_for(lambda: not alive(helper), limit=15)
        _wait_for(lambda: not list(temp.iterdir()), limit=10)  # nor the attempt's temp dir
    finally:
        if alive(helper):
            os.kill(helper, signal.SIGKILL)


@pytest.mark.fault("containment after SIGKILL: the harness is killed")
def test_sigkill_of_the_harness_leaves_nothing_of_a_repro_that_escapes_every_way(tmp_path):
    # It stops the guardian it can see, starts helpers with a clean environment in sessions of
    # their own and a double-forked daemon that execs with a clean environment: no mark, no
    # session, no guardian. Only a PID namespace (or a cgroup) holds them.
    pid_file = tmp_path / "pids"
    harness = _harness_running(tmp_path, "escape-all", [f"pid_file={pid_file}"])
    escaped, guardians = [], []
    try:
        _wait_for(lambda: len(_pids(pid_file)) == 3)
        escaped = _ours_below(harness.pid, _pids(pid_file))
        guardians = [p for p in procs.descendants([harness.pid]) if "harness.guardian" in _cmdline(p)]
        harness.kill()
        harness.wait()
        _wait_for(lambda: not [p for p in escaped if alive(p)], limit=30)
    finally:
        harness.kill()
        for pid in escaped + guardians:  # what old main leaves behind (a stopped guardian too)
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass


def _probe_environs(tmp_path, marker: str, env=None) -> tuple[dict, dict]:
    """Run the environ probe in a harness whose own environment holds secrets (`marker`): the
    record's executor and what the probe read and found."""
    secrets = {"GITHUB_TOKEN": marker, "AWS_SECRET_ACCESS_KEY": marker, "AWS_ACCESS_KEY_ID": marker,
               "DATABASE_PASSWORD": marker}
    out = repro("run", "synthetic-trust", "--variant", "environ-probe", "--python", "current", "--quiet", "--json",
                "--max-attempts", "1", "--param", f"marker={marker}", "--results", str(tmp_path / "r.jsonl"),
                env={**secrets, **(env or {})})
    record = json.loads(out.stdout)
    (error,) = record["evidence"][0]["evidence"]["observation"]["errors"]
    return record["executor"], json.loads(error.split("synthetic trust bug: ", 1)[1])


@pytest.mark.fault("secrets: the environment")
@in_a_namespace
def test_no_environment_the_child_can_read_holds_a_secret(tmp_path):
    # The harness strips the secrets from the child's env, but they are still in its own (and its
    # ancestors') /proc/<pid>/environ: in its namespace the child sees no process of ours.
    executor, seen = _probe_environs(tmp_path, "s3cr3t-in-the-harness")
    assert seen["secrets"] == {}, seen
    assert seen["ancestors"] and seen["read"], seen  # it could read environs: only none of ours
    assert executor["containment"] == "pid-namespace"


@pytest.mark.fault("secrets: the environment")
def test_without_a_namespace_the_record_says_what_the_child_could_read(tmp_path):
    executor, seen = _probe_environs(tmp_path, "s3cr3t-in-the-harness", env={"REPRO_CONTAINMENT": "process-groups"})
    harness = seen["ancestors"][0]
    if os.geteuid() == 0:   # root may read every environ: the record does not claim otherwise
        assert executor["containment"] == procs.PROCESS_GROUPS
        assert "GITHUB_TOKEN" in seen["secrets"][str(harness)], seen
    else:
        assert executor["containment"] == procs.PROCESS_GROUPS_UNDUMPABLE
        assert str(harness) not in seen["secrets"], seen


@in_a_namespace
@pytest.mark.parametrize("variant,verdict", [("trigger", "present"), ("control", "absent"), ("segfault", "crash"),
                                             ("native-hang", "hang")])
def test_an_attempt_in_its_namespace_gets_the_same_verdicts(variant, verdict):
    record = run_cell(Cell("synthetic-faults", variant, "current"), Options(max_attempts=1, control_attempts=0))
    assert (record["verdict"], record["executor"]["containment"]) == (verdict, "pid-namespace"), record["reason"]
    for attempt in record["evidence"]:  # the child was pid 2 of a namespace of its own
        evidence = attempt["evidence"]
        if "child_pid" not in evidence:  # a child that ended before the first walk saw it is named by no one
            assert variant != "native-hang", evidence  # a hung one is always seen: its stacks need its pid
            continue
        seen = {str(pid): inner for pid, inner in evidence["namespace_pids"].items()}
        assert seen[str(evidence["child_pid"])] == pidns.CHILD_PID


def test_the_docker_executor_keeps_its_own_container():
    from harness.executors.docker.executor import DockerChildCommand

    assert DockerChildCommand(sys.executable, {}).containment() == "container"  # no launcher around its runner


@pytest.mark.fault("stuck: the repro stops the harness")
def test_a_repro_that_stops_its_parent_does_not_hang_the_harness(tmp_path):
    harness = _harness_running(tmp_path, "stop-parent",
                               env={"REPRO_CHILD_HARD_SLACK": "3"})
    try:
        harness.wait(timeout=90)
    finally:
        if harness.poll() is None:
            os.kill(harness.pid, signal.SIGCONT)
            harness.kill()
            harness.wait()
    assert (tmp_path / "r.jsonl").read_text().count("\n") == 1


@pytest.mark.fault("containment after SIGKILL: the harness is killed")
def test_the_ctrl_c_tests_pass_when_the_suite_starts_with_sigint_ignored():
    inner = subprocess.run(["sh", "-c", 'trap "" INT; exec "$0" -m pytest -q -p no:xdist -p no:cacheprovider '
                            '"tests/test_trust.py::test_a_second_signal_does_not_cut_the_cleanup_short"',
                            sys.executable], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert inner.returncode == 0, inner.stdout[-2000:]


# ------------------------------------------------------------ 10. one line, never a traceback

ONE_LINERS = [
    (["run", "delta-already-borrowed", "--param", "threads=notjson"], "--param threads=notjson: expected an integer"),
    (["run", "delta-already-borrowed", "--param", "thread=8"], "has no parameter 'thread'; it has: threads, writes"),
    (["run", "delta-already-borrowed", "--python", "3.6"], "Python 3.6 is not supported"),
    (["run", "delta-already-borrowed", "--python", "3.7"], "must be Python 3.9 or newer"),
    (["run", "delta-already-borrowed", "--with", "deltalake==0.20.1", "--with", "deltalake==1.6.6"],
     "--with pins deltalake more than once"),
]


@pytest.mark.fault("one line: bad input")
@pytest.mark.parametrize("args,message", ONE_LINERS, ids=[" ".join(a[2:]) for a, _ in ONE_LINERS])
def test_bad_input_is_one_line(tmp_path, args, message):
    out = repro(*args, "--results", str(tmp_path / "r.jsonl"))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.fault("one line: bad input")
def test_a_closed_stdout_stops_the_printing_not_the_run(tmp_path):
    results_path = tmp_path / "r.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "synthetic-faults", "--python", "current",
                             "--variant", "trigger", "--variant", "control", "--json", "--quiet",
                             "--results", str(results_path)], env={**os.environ, "REPRO_PATH": str(FAULT_REPROS)},
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(1) == b"{"  # `| head -c1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and proc.returncode == 1, err  # present
    # both cells ran and were kept (the control's first: harness/runner.py runs controls first)
    assert [r["variant"] for r in results.read(results_path)] == ["control", "trigger"]


# ------------------------------------------------------------ 6. the date of a set of pins

@pytest.mark.fault("fooled: pin order")
def test_exclude_newer_release_is_the_newest_pins_date_whatever_the_order():
    from harness.cli import options as cli_options
    from harness.envs import package_index

    bug = get_bug("delta-s3-silent-data-loss")
    pins = ["awswrangler==3.9.1", "deltalake==0.19.2"]
    dates = {cli_options.resolve_exclude_newer(bug, "release", order) for order in (pins, pins[::-1])}
    assert dates == {package_index.release_date_cutoff("deltalake", "0.19.2")}
