"""The parent-child protocol: one typed request in, one typed result out, and a child that reads
nothing else (not the repro's BUG dict, not a timeout in its argv)."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness import verdict
from harness.attempt import install_child_code
from harness.envs import interpreters
from harness.protocol import REQUEST_FILE, RESULT_FILE, SCHEMA, STACKS_FILE, Request, Result

# No BUG dict at all: the child must get the oracle from its request.
REPRO = '''
import time

def trigger(ctx):
    return {"errors": ["RuntimeError: Already borrowed (%s)" % ctx.param("label", "?")]}

def sleeper(ctx):
    time.sleep(ctx.param("seconds", 60))
    return {}
'''


def request(tmp_path, **changes) -> Request:
    fields = {"repro": str(tmp_path / "probe.py"), "variant": "trigger", "run": "trigger", "role": "trigger",
              "failure_kind": "exception", "signature": "already borrowed", "packages": [], "library": None,
              "params": {"label": "from the request"}, "timeout": 30.0, "setup_timeout": 0.0,
              "deadline": time.time() + 30.0}
    return Request(**{**fields, **changes})


def start_child(tmp_path, req: Request, python=sys.executable) -> subprocess.Popen:
    (tmp_path / "probe.py").write_text(REPRO)
    (tmp_path / REQUEST_FILE).write_text(req.to_json())
    env = {**os.environ, "PYTHONPATH": str(install_child_code(tmp_path)), "PYTHONNOUSERSITE": "1"}
    return subprocess.Popen([python, "-m", "harness.child", "--request", str(tmp_path / REQUEST_FILE)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def test_request_and_result_round_trip_and_refuse_another_schema(tmp_path):
    req = request(tmp_path)
    assert Request.from_json(req.to_json()) == req
    result = Result(outcome=verdict.CLEAN, reason="no sign of the bug", observation={"odd": object()}, notes=[],
                    versions={}, imported={}, foreign_modules=[], python="3.11.7", duration=0.5, threads_alive=1,
                    gil={"enabled": True})
    back = Result.from_json(result.to_json())
    assert back.outcome == verdict.CLEAN and back.observation["odd"].startswith("<object")
    with pytest.raises(ValueError, match="schema"):
        Request.from_json(json.dumps({**json.loads(req.to_json()), "schema": SCHEMA - 1}))
    with pytest.raises(ValueError, match="without deadline"):
        Request.from_json(json.dumps({k: v for k, v in json.loads(req.to_json()).items() if k != "deadline"}))
    with pytest.raises(ValueError, match="not an outcome"):
        Result.from_json(result.to_json().replace('"clean"', '"fine"'))


def test_the_child_runs_from_its_request_alone_on_the_oldest_python(tmp_path):
    oldest = interpreters.available(["3.9"])["3.9"]
    python = oldest.path if isinstance(oldest, interpreters.Interpreter) else sys.executable
    child = start_child(tmp_path, request(tmp_path), python)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 0, output.decode()
    result = Result.from_json((tmp_path / RESULT_FILE).read_text())
    assert result.outcome == verdict.REPRODUCED, result.reason
    assert result.observation["errors"] == ["RuntimeError: Already borrowed (from the request)"]
    if python != sys.executable:
        assert result.python.startswith("3.9.")


def test_the_stacks_are_dumped_before_the_requests_deadline_not_its_timeout(tmp_path):
    # A deadline 3 s away with a 60 s timeout: the parent gives up at the deadline (e.g. a container
    # that took long to start), so the stacks must be there before it, whatever the timeout says.
    req = request(tmp_path, run="sleeper", params={"seconds": 60}, timeout=60.0, deadline=time.time() + 3.0)
    child = start_child(tmp_path, req)
    try:
        waited = time.monotonic()
        while not (tmp_path / STACKS_FILE).exists() or "sleeper" not in (tmp_path / STACKS_FILE).read_text():
            assert time.monotonic() - waited < 40, "no stacks long after the request's deadline"
            time.sleep(0.1)
        assert child.poll() is None, "the stacks come from the watchdog while the child still runs"
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
