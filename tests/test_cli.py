"""The command line: bad input is one clear line and exit 2 with nothing written; Ctrl-C keeps results."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FAULT_REPROS, alive

ROOT = Path(__file__).resolve().parent.parent


def repro(*args, env=None, timeout=300, **kwargs):
    full_env = {**os.environ, "REPRO_PATH": str(FAULT_REPROS), **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=timeout, **kwargs)


def test_list_names_every_bug():
    out = repro("list", "--json")
    assert out.returncode == 0
    ids = {b["id"] for b in json.loads(out.stdout)}
    assert {"delta-already-borrowed", "synthetic-faults"} <= ids


BAD_INPUTS = [
    (["run", "no-such-bug"], "unknown bug 'no-such-bug'; known bugs: "),
    (["run", "delta-already-borrowed", "--variant", "nope"], "has no variant 'nope'"),
    (["run", "delta-already-borrowed", "--with", "deltalake=0.20.1"], "malformed requirement"),
    (["run", "delta-already-borrowed", "--with", "delta lake==1"], "malformed requirement"),
    (["run", "delta-already-borrowed", "--with", "deltalake==9.9.9"], "deltalake 9.9.9 is not on the index"),
    (["run", "delta-already-borrowed", "--python", "3.99"], "no Python 3.99 interpreter found"),
    (["run", "delta-already-borrowed", "--python", "banana"], "bad Python version"),
    (["run", "delta-already-borrowed", "--exclude-newer", "yesterday"], "bad --exclude-newer"),
    (["run", "delta-already-borrowed", "--param", "threads"], "malformed --param"),
    (["run", "delta-already-borrowed", "--attempts", "0"], "--attempts must be at least 1"),
    # a typo gets the closest known name
    (["run", "delta-already-borowed"], "; did you mean 'delta-already-borrowed'?"),
    (["run", "delta-already-borrowed", "--variant", "trigge"], "it has: trigger, control-uri; did you mean 'trigger'?"),
    (["run", "delta-already-borrowed", "--param", "thread=8"], "; did you mean 'threads'?"),
    # a pin the variant would not install (a bare interpreter) is refused, not recorded as the cell's pins
    (["run", "synthetic-faults", "--with", "six==1.16.0"], "variant 'trigger' of synthetic-faults installs nothing"),
    (["run", "beam-py311-gc-deadlock", "--variant", "thread-dump", "--variant", "cpython-trigger",
      "--with", "apache-beam==2.63.0"], "apache-beam==2.63.0: variant 'cpython-trigger' of beam-py311-gc-deadlock"),
    (["bisect", "synthetic-faults", "--python-versions", "current", "--with", "six==1.16.0"],
     "--with six==1.16.0: variant 'trigger' of synthetic-faults installs nothing"),
    (["bisect", "beam-py311-gc-deadlock", "--variant", "cpython-trigger", "--package", "apache-beam"],
     "cannot change with apache-beam's releases"),
    (["check", "synthetic-faults", "--source", "/nonexistent/src", "--bisect", "v1..v2"],
     "the package built from /nonexistent/src would not be installed"),
]


@pytest.mark.parametrize("args,message", BAD_INPUTS, ids=[" ".join(a[2:]) or a[1] for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    results = tmp_path / "results.jsonl"
    out = repro(*args, "--results", str(results))
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert not results.exists(), "nothing may be written on bad input"


def test_unknown_bug_lists_the_known_ones(tmp_path):
    out = repro("run", "nope", "--results", str(tmp_path / "r"))
    assert "delta-already-borrowed" in out.stderr and "synthetic-faults" in out.stderr


@pytest.mark.parametrize("with_pin", [True, False], ids=["pinned", "unpinned"])
def test_unreachable_index_is_one_line_and_exit_2(tmp_path, with_pin):
    unreachable = {"UV_DEFAULT_INDEX": "http://127.0.0.1:9/simple", "REPRO_CACHE_DIR": str(tmp_path / "cache")}
    pins = ["--with", "deltalake==0.20.1"] if with_pin else []
    out = repro("run", "delta-already-borrowed", *pins, "--results", str(tmp_path / "r.jsonl"), env=unreachable)
    assert out.returncode == 2, out.stderr
    # Progress may have announced the cell; the problem itself is one line and no traceback.
    problems = [line for line in out.stderr.splitlines() if not line.startswith(("[", "  "))]
    assert len(problems) == 1 and "repro: cannot reach the package index" in problems[0], out.stderr
    assert not (tmp_path / "r.jsonl").exists()
    envs = tmp_path / "cache" / "envs"
    assert not envs.exists() or not [p for p in envs.iterdir() if p.is_dir()], "half-built env left behind"


def test_run_writes_json_lines_with_schema(tmp_path):
    results = tmp_path / "results.jsonl"
    out = repro("run", "synthetic-faults", "--python", "current", "--variant", "trigger", "--variant", "control",
                "--confidence", "0.9", "--results", str(results), "--json")
    assert out.returncode == 1, out.stderr  # present
    records = [json.loads(line) for line in results.read_text().splitlines()]
    # the control's cell runs first (harness/runner.py: controls paid once), the trigger reuses it
    assert [(r["variant"], r["verdict"]) for r in records] == [("control", "absent"), ("trigger", "present")]
    assert {c["reused_from"] for c in records[1]["controls"]} == {"synthetic-faults[control] pycurrent"}
    assert all(r["schema"] == 1 for r in records)
    assert "attempt 1 of" in out.stderr  # progress is shown
    assert [json.loads(line)["verdict"] for line in out.stdout.splitlines()] == ["absent", "present"]


def _find_child(parent: int, marker: str, timeout: float = 30):
    """The attempt child of `parent` (by ancestry: not some other run's child on this machine)."""
    from harness.procs import descendants

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in descendants([parent]):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "harness.child" in cmd and marker in cmd:
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no child with {marker!r} appeared")


def test_ctrl_c_kills_children_and_keeps_finished_results(tmp_path):
    results = tmp_path / "results.jsonl"
    env = {**os.environ, "REPRO_PATH": str(FAULT_REPROS)}
    parent = subprocess.Popen([sys.executable, "-m", "harness", "run", "synthetic-faults", "--python", "current",
                               "--variant", "trigger", "--variant", "sleep", "--control-attempts", "0",
                               "--results", str(results)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        child = _find_child(parent.pid, "--variant sleep")
        parent.send_signal(signal.SIGINT)
        _, err = parent.communicate(timeout=30)
    finally:
        parent.kill()
    assert parent.returncode == 130, err
    assert "interrupted" in err
    assert not alive(child), "the attempt's child survived the parent's Ctrl-C"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["variant"], r["verdict"]) for r in records] == [("trigger", "present")]
