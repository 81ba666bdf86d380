"""Process plumbing: find every process of an attempt, dump stacks, kill and reap.

Where the machine allows it, an attempt runs in a PID namespace of its own (harness/pidns.py):
the kernel then kills all of it when its init dies, and the child sees no ancestor in /proc.
`containment()` names what holds an attempt's processes, for the record. Either way the
harness finds and kills them as follows (inside a namespace too: its processes have pids
of ours as well), and the guardian (harness/guardian.py) is the second line.

An attempt's child is started in a new session, so most of what it starts (forked workers,
forkserver, resource_tracker) shares its session. A process can leave the session (setsid,
a double fork), so the session alone is not enough: the harness makes itself a child
subreaper, so every orphaned descendant re-parents to the harness instead of init and
stays findable by ancestry. An attempt's processes are then: the child's session, every
descendant of the child, and every orphan that re-parented to us since the attempt began.
"""
from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from harness import pidns

PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4
# The containments an attempt's processes can have, as the record names them.
PID_NAMESPACE = pidns.NAME
# Fallback: the session, the ancestry walk and the guardian. The child can read the environment
# of the harness and its ancestors in /proc (where the secrets stripped from its own still are)...
PROCESS_GROUPS = "process-groups+guardian"
# ...or of its ancestors only: the harness made itself non-dumpable, so a child of the same uid
# without CAP_SYS_PTRACE cannot read the harness's (root can: measured, so never claimed for root).
PROCESS_GROUPS_UNDUMPABLE = "process-groups+guardian+undumpable"
CONTAINMENT_VARIABLE = "REPRO_CONTAINMENT"   # "process-groups": never a PID namespace
_subreaper: bool | None = None
_undumpable: bool | None = None


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process (Linux >= 3.4). Idempotent."""
    global _subreaper
    if _subreaper is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _subreaper = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        except (OSError, AttributeError):
            _subreaper = False
    return _subreaper


def containment() -> str:
    """What holds an attempt's processes here: a PID namespace where the machine allows it (and
    REPRO_CONTAINMENT does not say "process-groups"), else process groups and the guardian."""
    if os.environ.get(CONTAINMENT_VARIABLE) != "process-groups" and pidns.available():
        return PID_NAMESPACE
    return PROCESS_GROUPS_UNDUMPABLE if _hide_own_environ() else PROCESS_GROUPS


def _hide_own_environ() -> bool:
    """Without a namespace: make the harness non-dumpable, which keeps its /proc/<pid>/environ
    from a child of the same uid, unless the child may ptrace (root). Idempotent."""
    global _undumpable
    if _undumpable is None:
        _undumpable = False
        if os.geteuid() != 0:
            try:
                _undumpable = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
            except (OSError, AttributeError):
                pass
    return _undumpable


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return raw[raw.rindex(")") + 2:].split()


def process_table() -> dict[int, tuple[str, int, int, int]]:
    """pid -> (state, ppid, process group, session) of every process now."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                table[int(entry)] = (fields[0], int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session or process group is sid."""
    return [pid for pid, (state, _, pgrp, session) in process_table().items()
            if state != "Z" and sid in (pgrp, session)]


def descendants(roots, table=None) -> list[int]:
    """Every process (zombies too) whose chain of parents reaches one of `roots`, roots excluded."""
    table = process_table() if table is None else table
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def own_children() -> set[int]:
    """The pids whose parent is this process."""
    me = os.getpid()
    return {pid for pid, (_, ppid, _, _) in process_table().items() if ppid == me}


class AttemptProcesses:
    """Every process of one attempt, found by session and by ancestry, and killed with it.

    `before` is the set of our own children when the attempt started (services, a guardian):
    any other child of ours that appears later is the attempt's child or one of its orphans.
    With `namespace`, `pid` is the launcher of the attempt's PID namespace (harness/pidns.py):
    it and the namespace's init are the containment's, not the code under test's (`workload`).
    """

    def __init__(self, pid: int, before: set[int], namespace: bool = False):
        self.pid = pid
        self.before = set(before)
        self.namespace = namespace
        self.child_pid = None if namespace else pid   # the child's pid (ours), once seen
        self.inner: dict[int, int] = {}               # our pid -> its pid in the namespace

    def all(self) -> list[int]:
        """Every process of the attempt, zombies included."""
        table = process_table()
        me = os.getpid()
        ours = [pid for pid, (_, ppid, _, _) in table.items() if ppid == me and pid not in self.before]
        roots = set(ours) | {self.pid}
        in_session = [pid for pid, (_, _, pgrp, sid) in table.items() if self.pid in (pgrp, sid)]
        found = set(descendants(roots, table)) | set(in_session) | {p for p in roots if p in table}
        if self.namespace:
            self._learn(found)
        return sorted(found)

    def _learn(self, pids) -> None:
        """Note each process's pid in the namespace (the child is its pid 2), while it is alive."""
        for pid in set(pids) - set(self.inner):
            inner = pidns.namespace_pid(pid)
            if inner is not None:
                self.inner[pid] = inner
                if inner == pidns.CHILD_PID and self.child_pid is None:
                    self.child_pid = pid

    def workload(self) -> list[int]:
        """The live processes of the code under test: the child and what it started."""
        if not self.namespace:
            return self.live()
        return [pid for pid in self.live() if pid != self.pid and self.inner.get(pid) != pidns.INIT_PID]

    def live(self) -> list[int]:
        """The attempt's processes that still run (not zombies)."""
        table = process_table()
        return [pid for pid in self.all() if pid in table and table[pid][0] != "Z"]

    def kill(self, grace: float) -> list[int]:
        """SIGTERM everything, SIGKILL what is left after `grace` seconds, then reap our orphans.

        Returns the pids that needed SIGKILL. Safe to call when nothing is left.
        """
        killed: list[int] = []
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            deadline = time.monotonic() + wait
            members = self.live()
            while members:
                _signal_all(self.pid, members, sig)  # again each round: a process may fork meanwhile
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
                members = self.live()
            if sig == signal.SIGKILL:
                killed = members
            elif not members:
                break
        self.reap()
        return killed

    def reap(self) -> None:
        """Collect the exit status of orphans that re-parented to us (else they stay zombies)."""
        me = os.getpid()
        table = process_table()
        for pid in self.all():
            if pid != self.pid and table.get(pid, ("", 0))[1] == me:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass


def thread_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return None


def py_spy_dumps(pids: list[int], timeout: float = 10.0, argv_for=None) -> dict[int, str]:
    """Native + Python stacks of each pid via py-spy, where py-spy is installed.

    argv_for(pid) gives the command for one pid when the host's `py-spy dump` cannot do
    (a container's process: py-spy run inside its namespaces).
    """
    exe = shutil.which("py-spy")
    if not exe:
        return {}
    argv_for = argv_for or (lambda pid: _py_spy_argv(exe, pid))
    dumps = {}
    for pid in pids:
        try:
            proc = subprocess.run(argv_for(pid), capture_output=True, text=True, timeout=timeout)
            dumps[pid] = (proc.stdout + proc.stderr)[-20000:]
        except (subprocess.TimeoutExpired, OSError) as exc:
            dumps[pid] = f"py-spy failed: {exc}"
    return dumps


def _py_spy_argv(exe: str, pid: int) -> list[str]:
    """`py-spy dump` of one of our pids; for one in a PID namespace, run inside its namespaces on
    its pid there (from outside, py-spy cannot map the namespace's thread ids to unwind native stacks)."""
    inner = pidns.namespace_pid(pid, innermost=True)
    nsenter = shutil.which("nsenter")
    if inner is None or not nsenter:
        return [exe, "dump", "--native", "--pid", str(pid)]
    return [nsenter, "--target", str(pid), "--pid", "--mount", "--", exe, "dump", "--native", "--pid", str(inner)]


def kill_session(sid: int, grace: float) -> list[int]:
    """SIGTERM every member of a session, then SIGKILL what is left after `grace` seconds.

    For processes the harness starts itself (a server, an engine): an attempt's processes
    are killed through AttemptProcesses, which also finds those that left the session.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        members = session_members(sid)
        if not members:
            return []
        _signal_all(sid, members, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and session_members(sid):
            time.sleep(0.02)
        if sig == signal.SIGKILL:
            return members
    return session_members(sid)


def _signal_all(sid: int, members: list[int], sig: int) -> None:
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in members:  # members in other process groups or sessions
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def signals_deferred():
    """Hold SIGINT and SIGTERM until the block is done, so a second Ctrl-C cannot cut a cleanup
    short before its SIGKILL step; a signal that came meanwhile is acted on right after.

    Python-level handlers, not a signal mask: the kernel may hand the signal to any thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in held}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received and callable(previous[received[0]]):
            previous[received[0]](received[0], None)  # e.g. raises KeyboardInterrupt now
