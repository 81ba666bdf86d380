"""One attempt: a fresh child in a new session, a deadline, and an outcome decided by the parent.

Where the machine allows it the child runs in a PID namespace of its own (harness/pidns.py;
ChildCommand.containment() says which containment holds it, and the executor's record names it).

The parent alone classifies: the child's result file if it wrote one, otherwise the
way it ended (deadline -> hang, signal -> crash, anything else -> error). Every
blocking step has its own timeout, the child's output is read without ever blocking on
the pipe (a process that escaped may hold it open for ever), and a watchdog thread kills
the attempt if it overruns its deadline by far, so the harness cannot hang with it. Every
process of the attempt, in its session or escaped from it, is killed and reaped with it
(procs.AttemptProcesses), and a guardian kills them should the harness itself be killed.
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import guardian, pidns, procs, verdict
from harness.files import write_atomically
from harness.protocol import (
    ARMED_FILE,
    HANG_EVIDENCE_FILE,
    REQUEST_FILE,
    RESULT_FILE,
    STACKS_FILE,
    Request,
    Result,
)
from harness.record import AttemptEvidence
from harness.registry import Bug, Variant
from harness.text import last_lines
from harness.verdict import CRASH, ERROR, HANG

# The child side: all the harness puts on the child's path (a copy per attempt), so nothing of the
# harness's own environment can shadow the cell's packages. It runs inside every interpreter under
# test, so these modules import only the stdlib and each other, and run on Python 3.9+ (checked by
# tests/test_child_code.py); the other modules say they belong here with a pointer to this list.
CHILD_CODE = ("child.py", "kit.py", "files.py", "protocol.py", "verdict.py", "stats.py")
HARNESS_DIR = Path(__file__).resolve().parent
OUTPUT_TAIL = 16384          # bytes of child output kept as evidence
WATCHDOG_SLACK = 30.0        # seconds past deadline + grace before the watchdog intervenes


@dataclass
class Attempt:
    outcome: str
    reason: str
    duration: float
    evidence: AttemptEvidence = field(default_factory=AttemptEvidence)  # a dict is read as its JSON
    versions: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.evidence, dict):
            self.evidence = AttemptEvidence.from_json(self.evidence)

    def matches_bug(self, bug: Bug) -> bool:
        """Did this attempt show the bug itself (not some other failure)? See verdict.shows_bug."""
        return verdict.shows_bug(self.outcome, bug.failure_kind, self.evidence.hang_evidence is not None)

    def for_verdict(self, bug: Bug) -> verdict.AttemptOutcome:
        """What the cell's verdict needs of this attempt."""
        return verdict.AttemptOutcome(self.outcome, self.reason, self.matches_bug(bug))



class _TailReader(threading.Thread):
    """Drains a pipe, keeping only the last bytes: a flooding child costs no memory or disk.

    It never blocks in a read (select with a timeout on a non-blocking fd), so stop() always
    returns, even while a process that escaped the attempt still holds the pipe open."""

    DRAIN_AFTER_STOP = 1.0  # seconds of further output read after stop(), at most

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.fd = pipe.fileno()
        os.set_blocking(self.fd, False)
        self.tail = b""
        self.total = 0
        self.stopped_at = None

    def run(self):
        while True:
            stopping = self.stopped_at is not None
            if stopping and time.monotonic() - self.stopped_at > self.DRAIN_AFTER_STOP:
                return
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                if stopping:
                    return
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            if not chunk:
                return
            self.total += len(chunk)
            self.tail = (self.tail + chunk)[-OUTPUT_TAIL:]

    def stop(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = time.monotonic()
        self.join(timeout=self.DRAIN_AFTER_STOP + 1.0)

    def text(self) -> str:
        return self.tail.decode("utf-8", "replace")


@dataclass
class ChildCommand:
    """How to start the child: overridable by executors (e.g. a container)."""
    python: str
    env: dict

    def argv(self, bug: Bug, variant: Variant, attempt_dir: Path, timeout: float, params: dict) -> list[str]:
        """Write the child's request into the attempt dir; the child's argv names it (and the
        variant, as a label for process listings)."""
        path = attempt_dir / REQUEST_FILE
        write_atomically(path, request_for(bug, variant, timeout, params).to_json(), durable=False)
        return [self.python, "-m", "harness.child", "--request", str(path), "--variant", variant.name]

    def environment(self, attempt_dir: Path) -> dict:
        """The child's environment for one attempt: its path holds only the child code copied there."""
        return {**self.env, "PYTHONPATH": str(install_child_code(attempt_dir))}

    def containment(self) -> str:
        """What holds the attempt's processes (procs.containment(); an executor may have its own,
        e.g. a container): a PID namespace wraps the argv in pidns's launcher."""
        return procs.containment()

    def processes(self, tree: procs.AttemptProcesses) -> list[int]:
        """The live processes of the code under test (an executor may find them its own way)."""
        return tree.workload()

    def native_stacks(self, pids: list[int]) -> dict[int, str]:
        """py-spy's native + Python stacks of these processes (an executor may dump them its way)."""
        return procs.py_spy_dumps(pids)

    def cleanup(self, pid: int) -> None:
        """Release what the attempt left outside its session (an executor's container)."""


def request_for(bug: Bug, variant: Variant, timeout: float, params: dict) -> Request:
    """The child's request, from the validated bug; the deadline is the parent's from now."""
    return Request(repro=str(bug.path), variant=variant.name, run=variant.run, role=variant.role,
                   failure_kind=bug.failure_kind, signature=bug.signature, packages=list(bug.packages),
                   library=None if bug.library is None else list(bug.library),
                   params={**variant.params, **params}, timeout=timeout, setup_timeout=variant.setup_timeout,
                   deadline=time.time() + variant.setup_timeout + timeout)


# What a Python process needs to run, taken from our environment; nothing else of it reaches
# the child (tokens, index credentials, passwords), and no PYTHON* variable but those set below.
PASSED_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TEMP", "TMP", "TERM",
                    "SYSTEMROOT")
PASSED_PREFIXES = ("LC_",)
# What the harness itself sets for every child (recorded with the attempt's environment).
HARNESS_VARIABLES = {"PYTHONFAULTHANDLER": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
                     "RUST_LOG": "off", "PYTHONUNBUFFERED": "1"}


def passed_environment() -> dict:
    """What a Python process needs of our environment (the allow-list above), and nothing else of it."""
    return {k: v for k, v in os.environ.items() if k in PASSED_VARIABLES or k.startswith(PASSED_PREFIXES)}


def child_env(extra: dict) -> dict:
    """The child's environment, built from an allow-list: what a Python process needs from ours,
    the harness's own variables, the run's mark, then `extra` (service addresses, fake credentials,
    what a test sets).

    PYTHONPATH is set per attempt (ChildCommand.environment); the user's site directory is off,
    and REPRO_RUN marks every process of the attempt for the guardian."""
    env = passed_environment()
    env.update(HARNESS_VARIABLES)
    env[guardian.TOKEN_VARIABLE] = guardian.token()
    env.update(extra)
    return env


def install_child_code(attempt_dir: Path) -> Path:
    """Copy the child side into `attempt_dir/lib/harness` and return the directory for the path."""
    lib = attempt_dir / "lib"
    package = lib / "harness"
    if not package.is_dir():
        package.mkdir(parents=True)
        (package / "__init__.py").write_text('"""The child side of the harness (copied for one attempt)."""\n')
        for name in CHILD_CODE:
            shutil.copyfile(HARNESS_DIR / name, package / name)
    return lib


def run_attempt(bug: Bug, variant: Variant, command: ChildCommand, *, timeout: float | None = None,
                params: dict | None = None, kill_grace: float = 2.0) -> Attempt:
    timeout = timeout or variant.timeout
    attempt_dir = Path(tempfile.mkdtemp(prefix=f"repro-{bug.id}-"))
    started = time.monotonic()
    procs.become_subreaper()  # orphans of the attempt re-parent to us: findable by ancestry
    guardian.start()          # before taking stock of our children: it is not the attempt's
    before = procs.own_children()
    proc = tree = reader = handoff = None  # a Ctrl-C may come between any two of the steps below
    try:
        namespace = command.containment() == pidns.NAME
        try:
            argv = command.argv(bug, variant, attempt_dir, timeout, params or {})
            if namespace:
                argv = pidns.launcher_argv(argv, str(attempt_dir))
            proc = subprocess.Popen(argv, cwd=attempt_dir, env=command.environment(attempt_dir),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as exc:
            return Attempt(ERROR, f"cannot start the child: {exc}", time.monotonic() - started,
                           AttemptEvidence.not_started())
        tree = procs.AttemptProcesses(proc.pid, before, namespace)
        handoff = _GuardianHandoff(tree, attempt_dir)
        handoff.start()
        reader = _TailReader(proc.stdout)
        reader.start()
        watchdog = threading.Timer(variant.setup_timeout + timeout + kill_grace + WATCHDOG_SLACK,
                                   lambda: tree.kill(0.0))
        watchdog.daemon = True
        watchdog.start()
        try:
            return _wait_and_classify(bug, command, proc, tree, reader, attempt_dir, timeout, kill_grace,
                                      started, variant.setup_timeout)
        finally:
            watchdog.cancel()
    finally:
        # Whatever happened (including Ctrl-C in the parent): nothing of the attempt survives, and
        # a second Ctrl-C cannot cut this short before the SIGKILL step.
        with procs.signals_deferred():
            if proc is not None:
                if handoff is not None:
                    handoff.stop()
                if tree is not None:
                    tree.kill(kill_grace)
                else:
                    proc.kill()
                _reap(proc, reader)
                command.cleanup(proc.pid)
                if handoff is not None:
                    handoff.release()
            shutil.rmtree(attempt_dir, ignore_errors=True)


class _GuardianHandoff(threading.Thread):
    """Tells the guardian every process of the attempt the ancestry walk sees, as it appears, so a
    SIGKILL of the harness kills also what left the session with a clean environment (no mark),
    and removes the attempt's temp dir;
    and watches the guardian: one the attempt killed is started again and told everything again."""

    PERIOD = 0.2  # seconds between two walks

    def __init__(self, tree: procs.AttemptProcesses, directory: Path):
        super().__init__(daemon=True)
        self.tree, self.directory = tree, str(directory)
        self.told: set[int] = set()
        self.guardian_pid = guardian.start()
        self.done = threading.Event()
        self._tell_new()

    def _tell_new(self) -> None:
        current = guardian.start()
        if current != self.guardian_pid:     # it died: the new one knows nothing yet
            self.tree.before.add(current)    # and it is ours, not the attempt's
            self.guardian_pid, self.told = current, set()
        if not self.told:
            guardian.remove_after(self.directory)
        for pid in set(self.tree.all()) - self.told:
            guardian.watch(pid)
            self.told.add(pid)

    def run(self) -> None:
        while not self.done.wait(self.PERIOD):
            self._tell_new()

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)

    def release(self) -> None:
        """The attempt's processes are gone: their pids may be reused."""
        for pid in self.told:
            guardian.unwatch(pid)


def _reap(proc: subprocess.Popen, reader: _TailReader | None) -> None:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)
    if reader is not None:  # None when Ctrl-C came before the reader started
        reader.stop()  # never blocks: it does not wait for the pipe's end of file
    if proc.stdout:
        proc.stdout.close()


def _wait_and_classify(bug, command, proc, tree, reader, attempt_dir, timeout, kill_grace, started,
                       setup=0.0) -> Attempt:
    phase = _wait(proc, attempt_dir / ARMED_FILE, timeout, setup)
    hung = phase is not None
    evidence = AttemptEvidence(pid=proc.pid)  # the session the harness signals (in a namespace, its launcher's)
    if hung:
        members = command.processes(tree)
        evidence.threads = {pid: procs.thread_count(pid) for pid in members}
        evidence.native_stacks = command.native_stacks(members)
    # Processes that outlive the child (in its session or escaped from it) die here.
    lingering = tree.workload()
    if lingering and not hung:
        evidence.lingering_processes = lingering
    _namespace_evidence(tree, evidence, {*lingering, *(evidence.threads or ())})
    tree.kill(kill_grace)
    _reap(proc, reader)
    duration = time.monotonic() - started
    evidence.output_tail = reader.text()
    evidence.output_bytes = reader.total
    evidence.stacks = _read(attempt_dir / STACKS_FILE)
    result = _read_result(attempt_dir / RESULT_FILE)

    if result is not None:
        return _from_result(result, proc, evidence, duration)
    if phase == "setup":
        return Attempt(ERROR, f"the repro did not reach the part that may hang (arm its deadline) within "
                       f"{setup:g}s + {timeout:g}s: its setup hung or the machine is too slow", duration, evidence)
    if hung:
        return _hang(bug, attempt_dir, timeout, setup, duration, evidence)
    if proc.returncode < 0:
        sig = -proc.returncode
        evidence.signal = sig
        return Attempt(CRASH, f"child died by signal {sig} ({signal.Signals(sig).name})", duration, evidence)
    return Attempt(ERROR, f"child exited with code {proc.returncode} and no result: "
                   f"{last_lines(reader.text(), lines=1, limit=300)}", duration, evidence)


def _namespace_evidence(tree: procs.AttemptProcesses, evidence: AttemptEvidence, named: set) -> None:
    """In a PID namespace: the child's pid (ours; `pid` is the launcher's session), and the pids
    the evidence names as the repro saw them (in its notes, its pid files)."""
    if tree.child_pid not in (None, tree.pid):
        evidence.child_pid = tree.child_pid
        named.add(tree.child_pid)
    if tree.inner:
        evidence.namespace_pids = {pid: tree.inner[pid] for pid in sorted(named) if pid in tree.inner}


def _from_result(result: Result, proc, evidence: AttemptEvidence, duration: float) -> Attempt:
    """The child knew its outcome; a death after that (abort at exit) does not change it."""
    if proc.returncode and proc.returncode < 0:
        evidence.exit_signal_after_result = -proc.returncode
    evidence.observation, evidence.notes = result.observation, result.notes
    evidence.threads_alive, evidence.imported = result.threads_alive, result.imported
    evidence.gil, evidence.child_duration = result.gil, result.duration
    if result.foreign_modules:
        return Attempt(ERROR, f"the child imported modules from outside the cell's env, so the env under "
                       f"test is not the one resolved: {'; '.join(result.foreign_modules[:3])}", duration, evidence,
                       result.versions)
    return Attempt(result.outcome, result.reason, duration, evidence, result.versions)


def _hang(bug, attempt_dir, timeout, setup, duration, evidence) -> Attempt:
    armed = " after the repro armed its deadline" if setup else ""
    seen = attempt_dir / HANG_EVIDENCE_FILE
    if bug.failure_kind == "hang" and seen.exists():
        evidence.hang_evidence = _read(seen)
        return Attempt(HANG, f"no result within {timeout:g}s{armed}, after the repro saw its bug's stall "
                       f"begin: {evidence.hang_evidence[:200]}", duration, evidence)
    why = ("the repro had not seen its bug's stall begin" if bug.failure_kind == "hang"
           else "this bug's failure is not a hang")
    return Attempt(HANG, f"no result within {timeout:g}s{armed}: a hang, which is not this bug's signature "
                   f"({why})", duration, evidence)


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


def _read_result(path: Path) -> Result | None:
    """The child's result; None if it wrote none, or none whole (it cannot write half of one)."""
    try:
        return Result.from_json(path.read_text())
    except (OSError, ValueError, TypeError):
        return None
