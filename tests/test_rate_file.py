"""`repro run --measure --write`: the measured rate goes into a temp copy of a repro file, in place.

Real runs (bare interpreter, real child processes) of a synthetic racy trigger; every byte of the
file but the rate's literal stays, the file still loads, and the command that measured is kept.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.rate_file import write_measured
from harness.registry import load_bug

ROOT = Path(__file__).resolve().parent.parent
REPRO = '''"""A synthetic racy bug: two threads bump a counter without a lock."""

BUG = {
    "id": "synthetic-rate",  # a comment that must survive
    "title": "lost updates of a shared counter",
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"lost \\d+ updates",
    # The placeholder of `repro new`:
    "trigger_rate": {"reproduced": 1, "attempts": 1},
    "variants": {
        "trigger": {"role": "trigger", "run": "racy", "timeout": 30},
        "trigger-slow": {"role": "trigger", "run": "racy",
                         "timeout": 30},
        "control": {"role": "control", "run": "locked", "timeout": 30},
    },
}


def _bump(counter, lock, times):
    import time

    for _ in range(times):
        with lock:
            seen = counter[0]
        time.sleep(0.0005)  # read, then write: the other thread's bump in between is lost
        with lock:
            counter[0] = seen + 1


def racy(ctx):
    import threading

    counter, lock = [0], threading.Lock()
    threads = [threading.Thread(target=_bump, args=(counter, lock, 50)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if counter[0] != 100:
        raise AssertionError(f"lost {100 - counter[0]} updates")
    return {}


def locked(ctx):
    return {}
'''


SLOW = """        "trigger-slow": {"role": "trigger", "run": "racy",
                         "timeout": 30},
"""
ONE_TRIGGER = REPRO.replace(SLOW, "")  # the skeleton's case: the one trigger's rate is the bug's


@pytest.fixture
def repro(tmp_path, monkeypatch, request) -> Path:
    directory = tmp_path / "repros"
    directory.mkdir()
    path = directory / "synthetic_rate.py"
    path.write_text(ONE_TRIGGER if "one_trigger" in request.node.name else REPRO)
    monkeypatch.setenv("REPRO_PATH", str(directory))
    return path


def repro_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REPRO_PATH": str(cwd / "repros")}
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_measure_write_replaces_the_rate_and_keeps_every_other_byte_one_trigger(repro):
    before = repro.read_text()
    out = repro_cli("run", "synthetic-rate", "--python", "current", "--attempts", "6", "--measure", "--write",
                    "--control-attempts", "0", "--results", str(repro.parent / "r.jsonl"), cwd=repro.parent.parent)
    assert out.returncode in (0, 1), out.stderr
    rate = load_bug(repro).trigger_rate
    assert rate["attempts"] == 6 and rate["reproduced"] >= 1, (rate, out.stderr)
    assert rate["command"] == ("repro run synthetic-rate --python current --attempts 6 --measure --write "
                               f"--control-attempts 0 --results {repro.parent / 'r.jsonl'}")
    assert rate["cell"] == "bare py%d.%d.%d" % sys.version_info[:3]
    assert f"wrote trigger_rate {rate['reproduced']} of 6 into {repro} (the bug)" in out.stderr
    old_line = '    "trigger_rate": {"reproduced": 1, "attempts": 1},\n'
    head, tail = before.split(old_line)
    after = repro.read_text()
    assert after.startswith(head + '    "trigger_rate": {"reproduced": ') and after.endswith(tail)
    assert "# a comment that must survive" in after


def test_a_stronger_rate_of_a_trigger_is_its_own_when_others_inherit_the_bugs(repro):
    rate = {"reproduced": 20, "attempts": 20, "cell": "py3.11.7", "command": "repro run synthetic-rate ..."}
    lines = write_measured(load_bug(repro), "trigger-slow", rate)
    assert lines == [f"wrote trigger_rate 20 of 20 into {repro} (variant 'trigger-slow')"]
    bug = load_bug(repro)
    assert bug.variants["trigger-slow"].trigger_rate == rate and bug.trigger_rate == {"reproduced": 1, "attempts": 1}
    assert '        "trigger-slow": {"trigger_rate": {"reproduced": 20' in repro.read_text()
    weaker = {**rate, "reproduced": 1, "attempts": 10}  # weaker than the bug's 1 of 1: the bug's too
    assert len(write_measured(load_bug(repro), "trigger-slow", weaker)) == 2
    assert load_bug(repro).trigger_rate == load_bug(repro).variants["trigger-slow"].trigger_rate == weaker


@pytest.mark.parametrize("extra, says", [
    ([], "--write needs --measure"),
    (["--variant", "control", "--measure"], "is a control"),
])
def test_write_is_refused_before_anything_runs(repro, extra, says):
    before = repro.read_text()
    out = repro_cli("run", "synthetic-rate", "--python", "current", "--write", *extra,
                    "--results", str(repro.parent / "r.jsonl"), cwd=repro.parent.parent)
    assert out.returncode == 2 and says in out.stderr, out.stderr
    assert repro.read_text() == before and not (repro.parent / "r.jsonl").exists()


def test_no_reproduction_writes_nothing(repro):
    before = repro.read_text()
    with pytest.raises(Exception, match="at least one reproduction"):
        write_measured(load_bug(repro), "trigger", {"reproduced": 0, "attempts": 5, "cell": "x"})
    assert repro.read_text() == before
