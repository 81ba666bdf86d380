"""Out-of-range options and unusable --results paths are one line and exit 2, before anything runs.

Each case here passed validation on the old main: a deadline too large for the watchdog to wait for
(OverflowError in its thread, a traceback from `verify`), `--stride 0` quietly taken for the default,
and a FIFO as --results that blocked the command before its first cell.
"""
import os
import threading

import pytest

from harness.cli.options import MAX_SECONDS
from test_cli import repro

FAULTS = ["synthetic-faults", "--python", "current"]


def assert_refused(out, message: str) -> None:
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


SECONDS_CASES = [
    (["run", *FAULTS, "--timeout", "1e15"]),
    (["run", *FAULTS, "--timeout", "1e300"]),
    (["run", *FAULTS, "--timeout", str(MAX_SECONDS + 1)]),
    (["bisect", *FAULTS, "--python-versions", "current", "--timeout", "1e15"]),
]


@pytest.mark.fault("one line: bad input")
@pytest.mark.parametrize("args", SECONDS_CASES, ids=[" ".join(a[:1] + a[-1:]) for a in SECONDS_CASES])
def test_a_deadline_beyond_the_ceiling_is_refused(tmp_path, args):
    results = tmp_path / "r.jsonl"
    out = repro(*args, "--results", str(results), timeout=120)
    assert_refused(out, "--timeout must be a positive number of seconds, at most 604800")
    assert not results.exists(), "nothing may run on bad input"


def test_the_ceiling_is_within_what_threading_can_wait_for():
    assert 0 < MAX_SECONDS <= threading.TIMEOUT_MAX


@pytest.mark.fault("one line: bad input")
@pytest.mark.parametrize("stride", ["0"])  # below 0 was refused, but only after setup
def test_a_stride_below_one_is_refused_not_taken_for_the_default(tmp_path, stride):
    results = tmp_path / "r.jsonl"
    out = repro("bisect", *FAULTS, "--python-versions", "current", "--stride", stride,
                "--results", str(results), timeout=120)
    assert_refused(out, "--stride must be at least 1")
    assert not results.exists()


@pytest.mark.fault("one line: bad input")
@pytest.mark.parametrize("kind", ["fifo", "directory", "stdin-pipe"])
def test_a_results_path_that_is_not_a_regular_file_is_refused_promptly(tmp_path, kind):
    path = tmp_path / "results.jsonl"
    stdin = None  # input="": stdin a pipe (else the caller's stdin, inherited)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path, stdin = "/dev/stdin", ""  # a pipe behind /dev/stdin is a FIFO too
    # The subprocess timeout is the hang detector: on the old main opening the FIFO never returned.
    out = repro("run", *FAULTS, "--variant", "sleep", "--results", str(path), input=stdin, timeout=60)
    assert_refused(out, f"cannot write results to {path}: not a regular file")
