"""One attempt: a fresh child in a new session, a deadline, and an outcome decided by the parent.

The parent alone classifies: the child's result file if it wrote one, otherwise the
way it ended (deadline -> hang, signal -> crash, anything else -> error). Every
blocking step has its own timeout, and a watchdog thread kills the child's session if
the attempt overruns its deadline by far, so the harness cannot hang with it.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import procs
from harness.child import ARMED_FILE
from harness.registry import ROOT, Bug, Variant

OUTCOMES = ("reproduced", "clean", "hang", "crash", "other-failure", "error")
OUTPUT_TAIL = 16384          # bytes of child output kept as evidence
WATCHDOG_SLACK = 30.0        # seconds past deadline + grace before the watchdog intervenes


@dataclass
class Attempt:
    outcome: str
    reason: str
    duration: float
    evidence: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)

    def matches_bug(self, bug: Bug) -> bool:
        """Did this attempt show the bug itself (not some other failure)?"""
        return self.outcome == "reproduced" or (self.outcome == "hang" and bug.failure_kind == "hang")

    def to_json(self) -> dict:
        return {"outcome": self.outcome, "reason": self.reason, "duration": round(self.duration, 3),
                "evidence": self.evidence, "versions": self.versions}


class _TailReader(threading.Thread):
    """Drains a pipe, keeping only the last bytes: a flooding child costs no memory or disk."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe = pipe
        self.tail = b""
        self.total = 0

    def run(self):
        while True:
            chunk = self.pipe.read1(65536) if hasattr(self.pipe, "read1") else self.pipe.read(65536)
            if not chunk:
                break
            self.total += len(chunk)
            self.tail = (self.tail + chunk)[-OUTPUT_TAIL:]

    def text(self) -> str:
        return self.tail.decode("utf-8", "replace")


@dataclass
class ChildCommand:
    """How to start the child: overridable by executors (e.g. a container)."""
    python: str
    env: dict

    def argv(self, bug: Bug, variant: Variant, attempt_dir: Path, timeout: float, params: dict) -> list[str]:
        return [self.python, "-m", "harness.child", "--repro", str(bug.path), "--variant", variant.name,
                "--result", str(attempt_dir / "result.json"), "--stacks", str(attempt_dir / "stacks.txt"),
                "--timeout", str(timeout), "--params", json.dumps(params)]

    def processes(self, pid: int) -> list[int]:
        """The live processes of the attempt started as `pid` (an executor adds its own)."""
        return procs.session_members(pid)

    def native_stacks(self, pids: list[int]) -> dict[int, str]:
        """py-spy's native + Python stacks of these processes (an executor may dump them its way)."""
        return procs.py_spy_dumps(pids)

    def cleanup(self, pid: int) -> None:
        """Release what the attempt left outside its session (an executor's container)."""


def child_env(extra: dict) -> dict:
    """The child's environment: ours minus credentials, plus the harness on the path and extras."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "PYTHONPATH"}
    env.update({"PYTHONPATH": str(ROOT), "PYTHONFAULTHANDLER": "1", "PYTHONDONTWRITEBYTECODE": "1",
                "RUST_LOG": "off", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_attempt(bug: Bug, variant: Variant, command: ChildCommand, *, timeout: float | None = None,
                params: dict | None = None, kill_grace: float = 2.0, keep_dir: Path | None = None) -> Attempt:
    timeout = timeout or variant.timeout
    attempt_dir = Path(tempfile.mkdtemp(prefix=f"repro-{bug.id}-"))
    started = time.monotonic()
    proc = None
    try:
        try:
            proc = subprocess.Popen(command.argv(bug, variant, attempt_dir, timeout, params or {}),
                                    cwd=attempt_dir, env=command.env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            return Attempt("error", f"cannot start the child: {exc}", time.monotonic() - started, {"pid": None})
        reader = _TailReader(proc.stdout)
        reader.start()
        watchdog = threading.Timer(variant.setup_timeout + timeout + kill_grace + WATCHDOG_SLACK,
                                   lambda: procs.kill_session(proc.pid, 0.0))
        watchdog.daemon = True
        watchdog.start()
        try:
            return _wait_and_classify(bug, command, proc, reader, attempt_dir, timeout, kill_grace, started,
                                      variant.setup_timeout)
        finally:
            watchdog.cancel()
    finally:
        # Whatever happened (including Ctrl-C in the parent): nothing of the attempt survives.
        if proc is not None:
            procs.kill_session(proc.pid, kill_grace)
            _reap(proc)
            command.cleanup(proc.pid)
        if keep_dir is not None:
            shutil.copytree(attempt_dir, keep_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("work"))
        shutil.rmtree(attempt_dir, ignore_errors=True)


def _reap(proc: subprocess.Popen) -> None:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    if proc.stdout:
        proc.stdout.close()


def _wait_and_classify(bug, command, proc, reader, attempt_dir, timeout, kill_grace, started,
                       setup=0.0) -> Attempt:
    phase = _wait(proc, attempt_dir / ARMED_FILE, timeout, setup)
    hung = phase is not None
    evidence = {"pid": proc.pid}
    if hung:
        members = command.processes(proc.pid)
        evidence["threads"] = {pid: procs.thread_count(pid) for pid in members}
        evidence["native_stacks"] = command.native_stacks(members)
    # Grandchildren that outlive the child die here, and so release the output pipe.
    lingering = procs.session_members(proc.pid)
    if lingering and not hung:
        evidence["lingering_processes"] = lingering
    procs.kill_session(proc.pid, kill_grace)
    _reap(proc)
    reader.join(timeout=5)
    duration = time.monotonic() - started
    evidence["output_tail"] = reader.text()
    evidence["output_bytes"] = reader.total
    evidence["stacks"] = _read(attempt_dir / "stacks.txt")
    result = _read_result(attempt_dir / "result.json")

    if result is not None:
        # The child knew its outcome; a death after that (abort at exit) does not change it.
        if proc.returncode and proc.returncode < 0:
            evidence["exit_signal_after_result"] = -proc.returncode
        evidence.update({k: result[k] for k in ("observation", "notes", "threads_alive") if k in result})
        evidence["child_duration"] = result.get("duration")
        return Attempt(result["outcome"], result["reason"], duration, evidence, result.get("versions", {}))
    if phase == "setup":
        return Attempt("error", f"the repro did not reach the part that may hang (arm its deadline) within "
                       f"{setup:g}s + {timeout:g}s: its setup hung or the machine is too slow", duration, evidence)
    if hung:
        kind = "the bug's hang" if bug.failure_kind == "hang" else "a hang, which is not this bug's signature"
        armed = " after the repro armed its deadline" if setup else ""
        return Attempt("hang", f"no result within {timeout:g}s{armed}: {kind}", duration, evidence)
    if proc.returncode < 0:
        sig = -proc.returncode
        evidence["signal"] = sig
        return Attempt("crash", f"child died by signal {sig} ({signal.Signals(sig).name})", duration, evidence)
    return Attempt("error", f"child exited with code {proc.returncode} and no result: "
                   f"{_last_line(reader.text())}", duration, evidence)


def _wait(proc: subprocess.Popen, armed: Path, timeout: float, setup: float) -> str | None:
    """Wait for the child to end: None if it did in time, else the phase it overran.

    Without a setup allowance the deadline is `timeout` from now. With one, it is `timeout` from
    the moment the child arms it ("armed"), and at most setup + timeout ("setup" if never armed).
    """
    if not setup:
        try:
            proc.wait(timeout=timeout)
            return None
        except subprocess.TimeoutExpired:
            return "armed"
    deadline = time.monotonic() + setup + timeout
    phase = "setup"
    while True:
        if phase == "setup" and armed.exists():
            phase, deadline = "armed", min(deadline, time.monotonic() + timeout)
        left = deadline - time.monotonic()
        if left <= 0:
            return phase
        try:
            proc.wait(timeout=min(left, 0.05) if phase == "setup" else left)
            return None
        except subprocess.TimeoutExpired:
            pass


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-40000:]
    except OSError:
        return ""


def _read_result(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"
