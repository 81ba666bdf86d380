"""`@pytest.mark.repro(...)` on a project's own tests: real pytest, real child processes.

A racy function fails with its evidence, a clean one passes with its strength, a hang fails with
the child's stacks, and the function never runs in pytest's own process.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = '''import os
import threading
import time

import pytest

from counterlib import bump_twice


def _pid_is_not_pytests():
    with open(os.path.join(os.path.dirname(__file__), "calls.txt"), "a") as calls:  # vs pytest's pid
        calls.write(f"{os.getpid()}\\n")


@pytest.mark.repro(attempts=5, timeout=20, signature=r"lost \\d+ updates", rate=(19, 20))
def test_racy():
    _pid_is_not_pytests()
    counter = [0]
    bump_twice(counter, lock=None)
    if counter[0] != 100:
        raise AssertionError(f"lost {100 - counter[0]} updates")


@pytest.mark.repro(attempts=4, timeout=20, signature=r"lost \\d+ updates", rate=(19, 20))
def test_locked():
    _pid_is_not_pytests()
    counter = [0]
    bump_twice(counter, lock=threading.Lock())
    assert counter[0] == 100, f"lost {100 - counter[0]} updates"


@pytest.mark.repro(attempts=3, timeout=3)
def test_stuck():
    threading.Event().wait()  # a deadlock: never returns


@pytest.mark.repro(attempts="many")
def test_bad_marker():
    pass
'''
LIBRARY = '''import threading
import time


def _bump(counter, lock, times):
    for _ in range(times):
        if lock is None:
            seen = counter[0]
            time.sleep(0.0005)  # read, then write: the other thread's bump in between is lost
            counter[0] = seen + 1
        else:
            with lock:
                counter[0] += 1


def bump_twice(counter, lock):
    threads = [threading.Thread(target=_bump, args=(counter, lock, 50)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
'''


def test_the_marker_gives_each_tests_verdict(tmp_path):
    (tmp_path / "counterlib.py").write_text(LIBRARY)  # the project's code, importable as pytest sees it
    (tmp_path / "test_counter.py").write_text(TESTS)
    (tmp_path / "conftest.py").write_text("import os\nopen('pytest.pid', 'w').write(str(os.getpid()))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "--strict-markers",
                          "-o", "pythonpath=."], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**env, "PYTHONPATH": str(ROOT)})
    text = out.stdout
    assert out.returncode == 1, text + out.stderr
    assert "FAILED test_counter.py::test_racy" in text and "present: 1/1 reproduced" in text, text
    assert "lost" in text and "updates" in text
    assert "PASSED test_counter.py::test_locked" in text, text
    assert "absent: 4 clean, conf " in text and "(rate 19/20); excludes a per-attempt rate >= " in text, text
    assert "FAILED test_counter.py::test_stuck" in text and "hang after 3 attempts" in text, text
    assert "stacks of the child" in text and "in test_stuck" in text, text
    assert "FAILED test_counter.py::test_bad_marker" in text and "attempts must be a whole number" in text, text
    pids = (tmp_path / "calls.txt").read_text().split()
    assert len(pids) == 1 + 4 and (tmp_path / "pytest.pid").read_text() not in pids  # fresh children, not pytest
