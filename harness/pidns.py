"""One PID namespace per attempt: the child sees no process but its own, and none outlives the attempt.

The attempt runs this module's main(ARGV_FILE, HARNESS_PID) in `python -I -S` (stdlib only)
instead of the child itself. That launcher, a process of the harness's namespace, unshares
a new PID namespace and forks its init (pid 1 there), which mounts a /proc of its own (in a
mount namespace of its own, a slave of ours) and forks and execs the child (pid 2 there):

- The child and everything it starts see only the namespace's processes in /proc: no
  ancestor's /proc/<pid>/environ (where the secrets stripped from the child's env still
  are), no harness, guardian or service to stop or kill.
- When the init dies the kernel kills every process of the namespace, whatever it did
  (setsid, a double fork, a clean environment). The launcher dies with the harness
  (PR_SET_PDEATHSIG), the init with the launcher while the child runs, and with the harness
  after it (re-armed once the launcher is gone): a SIGKILL of the harness leaves nothing.
- The launcher ends as the child ended: the same exit code, or the same signal (raised on
  itself), so the harness classifies it as if it were the child. It ignores SIGINT,
  SIGTERM and SIGHUP (the child, in its process group, gets them itself; SIGKILL still
  ends the launcher and with it the namespace). The init stays while processes the child
  left behind live, so the harness sees them (lingering evidence), then kills them.
- The child's signal dispositions are those the launcher inherited (SIGPIPE and SIGXFSZ
  default, as subprocess sets them), its stdio, cwd and environment the launcher's.

`available()` probes once whether this machine allows it (root, or CAP_SYS_ADMIN); else
the attempt falls back to process groups and the guardian (harness/procs.py).
"""
from __future__ import annotations

import _signal as signal  # signal without its enums: the launcher starts with every attempt
import ctypes
import os
import select
import sys

NAME = "pid-namespace"   # the containment, as the record names it
CLONE_NEWNS = 0x00020000
CLONE_NEWPID = 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_SLAVE = 2, 4, 8, 16384, 1 << 19
PR_SET_PDEATHSIG = 1
CANNOT_CONTAIN = 125     # the launcher's exit code when the namespace cannot be made
PASSED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
LAUNCH_FILE = "launch.argv"   # the child's argv, NUL-separated
INIT_PID, CHILD_PID = 1, 2   # in the namespace
_available: bool | None = None


def available() -> bool:
    """Can this machine give an attempt a PID namespace with its own /proc? (probed once)"""
    global _available
    if _available is None:
        import subprocess  # not in the launcher, which starts with every attempt

        try:
            probe = subprocess.run([sys.executable, "-I", "-S", __file__, "--probe"], capture_output=True,
                                   timeout=30, stdin=subprocess.DEVNULL)
            _available = probe.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            _available = False
    return _available


def launcher_argv(argv: list[str], attempt_dir: str) -> list[str]:
    """The argv that runs `argv` as pid 2 of a new namespace. The child's argv goes in a file, so
    only the child's own command line names the child (process listings, tests); the launcher is
    imported, not run as a script, so that its bytecode is cached (it starts with every attempt)."""
    path = os.path.join(attempt_dir, LAUNCH_FILE)
    with open(path, "wb") as handle:
        handle.write(b"\0".join(os.fsencode(arg) for arg in argv))
    here = os.path.dirname(os.path.abspath(__file__))
    return [sys.executable, "-I", "-S", "-c", f"import sys; sys.path[:0] = [{here!r}]; import pidns; pidns.main()",
            path, str(os.getpid())]


def namespace_pid(pid: int, innermost: bool = False) -> int | None:
    """A pid's number in the PID namespace just below ours (an attempt's; a root child can make
    more below it), or in its innermost one; None if it is in ours."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("NSpid:"):
                    numbers = line.split()[1:]
                    return int(numbers[-1 if innermost else 1]) if len(numbers) > 1 else None
    except (OSError, ValueError):
        pass
    return None


# ------------------------------------------------------------------ the launcher and the init

_libc = None
_ARGTYPES = {"unshare": [ctypes.c_int], "prctl": [ctypes.c_int] + [ctypes.c_ulong] * 4,
             "mount": [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]}


def _call(name: str, *args) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        for function, types in _ARGTYPES.items():
            getattr(_libc, function).argtypes = types
    if getattr(_libc, name)(*args) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{name}: {os.strerror(error)}")


def _own_proc() -> None:
    """In the new namespace: a mount namespace whose /proc shows this PID namespace only."""
    _call("unshare", CLONE_NEWNS)
    _call("mount", None, b"/", None, MS_REC | MS_SLAVE, None)   # our mounts do not leak out
    _call("mount", b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)


def _exec_child(argv: list[str], inherited: dict) -> None:
    for sig, handler in inherited.items():
        signal.signal(sig, signal.SIG_IGN if handler == signal.SIG_IGN else signal.SIG_DFL)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):   # Python ignores them; the child starts as subprocess starts it
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        os.write(2, f"cannot start the child {argv[0]}: {exc}\n".encode())
    os._exit(127)


def _init(argv: list[str], inherited: dict, status_w: int) -> None:
    """Pid 1: start the child, reap every orphan, tell the launcher how the child ended."""
    _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)   # the launcher (the harness) died: all die
    if _reader_gone(status_w):  # it died before that
        os._exit(CANNOT_CONTAIN)
    _own_proc()
    child = os.fork()
    if child == 0:
        os.close(status_w)
        _exec_child(argv, inherited)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            os._exit(0)      # nothing left: the namespace ends with us
        if pid == child:
            _outlive_the_launcher(status, status_w)


def _outlive_the_launcher(status: int, status_w: int) -> None:
    """Pass the child's end on to the launcher, which then ends; stay, with what the child left
    running, until the harness has seen and killed it, and die with the harness from then on."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    # The launcher's end re-parents us to the harness (its subreaper) and, as the kernel does
    # that first, SIGUSR1 then says that a new death signal is the harness's, not the launcher's.
    _call("prctl", PR_SET_PDEATHSIG, signal.SIGUSR1, 0, 0, 0)
    os.write(status_w, b"%d\n" % status)
    os.close(status_w)
    signal.sigwait({signal.SIGUSR1})
    _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if _reader_gone(1):  # the harness died before that: end the namespace
        os._exit(0)


def _reader_gone(fd: int) -> bool:
    """Has the read end of the pipe `fd` writes to closed (its reader, the launcher or the harness, died)?"""
    poller = select.poll()
    poller.register(fd, 0)
    return any(events & select.POLLERR for _, events in poller.poll(0))


def _end_as(status: int) -> None:
    """End this process the way the wait status `status` says a process ended."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))   # the child's core, if any, is the one
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # a signal whose default is not to end the process
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else CANNOT_CONTAIN)


def _read_status(status_r: int) -> int | None:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(status_r, 64)
        if not chunk:
            return None
        data += chunk
    return int(data)


def launch(argv: list[str], harness_pid: int) -> None:
    inherited = {sig: signal.getsignal(sig) for sig in PASSED_SIGNALS}
    for sig in PASSED_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    _call("prctl", PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != harness_pid:   # it died before we armed that
        os._exit(CANNOT_CONTAIN)
    try:
        _call("unshare", CLONE_NEWPID)
    except OSError as exc:
        os.write(2, f"repro: cannot make a PID namespace for the attempt: {exc}\n".encode())
        os._exit(CANNOT_CONTAIN)
    status_r, status_w = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(status_r)
        try:
            _init(argv, inherited, status_w)
        except OSError as exc:
            os.write(2, f"repro: cannot start the attempt's PID namespace: {exc}\n".encode())
        os._exit(CANNOT_CONTAIN)
    os.close(status_w)
    status = _read_status(status_r)
    if status is None:        # the init died before the child ended
        _, status = os.waitpid(init, 0)
    _end_as(status)


def probe() -> None:
    """Exit 0 if a PID namespace with its own /proc can be made here."""
    _call("unshare", CLONE_NEWPID)
    init = os.fork()
    if init == 0:
        try:
            _own_proc()
            os._exit(0 if [entry for entry in os.listdir("/proc") if entry.isdigit()] == ["1"] else 1)
        except OSError:
            os._exit(1)
    _, status = os.waitpid(init, 0)
    os._exit(0 if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 else 1)


def main(args: list[str] | None = None) -> None:
    args = sys.argv[1:] if args is None else args
    if args == ["--probe"]:
        try:
            probe()
        except OSError:
            os._exit(1)
    with open(args[0], "rb") as handle:
        argv = [os.fsdecode(arg) for arg in handle.read().split(b"\0")]
    launch(argv, int(args[1]))


if __name__ == "__main__":
    main()
