"""A guardian that kills the attempts' processes when the harness itself dies (SIGKILL, OOM).

Where an attempt has a PID namespace of its own (harness/pidns.py) the kernel already kills
all of it with the harness; the guardian is then the second line (and the only one without).

The harness cleans up after every attempt, but a process killed with SIGKILL runs no
cleanup. So each harness process starts one guardian, in a session of its own, with a
pipe as its stdin that the harness holds open and tells, one line each, which attempt
processes are running ("+PID" / "-PID": the attempt tells every process its ancestry walk
sees, as it appears). When the pipe reaches end of file the harness is gone: the guardian
then kills every process it was told of (and the process group each leads), and every
process that carries the harness's token in its environment (every process an attempt
starts inherits it, unless it replaced its environment), SIGTERM first, SIGKILL after.
The attempt watches the guardian: one that was killed is started again and told again.
An "@PATH" line names an attempt's temp dir, removed after the kill (a harness that gets
SIGKILL leaves none behind). A "%LABEL=VALUE" line names the docker containers of a run (the
docker executor's label), removed after the kill: a container the harness created but had not
started or removed when it died is not left on the engine either (atexit runs on no SIGKILL).

    python -m harness.guardian TOKEN      (started by `guard()`, never by hand)
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid

TOKEN_VARIABLE = "REPRO_RUN"
GRACE = 2.0

_lock = threading.Lock()
_guardian: subprocess.Popen | None = None
_token = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
# Told once, not per attempt: a guardian started again (the last one was killed) is told again.
_containers: set[str] = set()


def token() -> str:
    """The mark every attempt process of this harness process carries (in TOKEN_VARIABLE)."""
    return _token


def start() -> int:
    """The guardian's pid, started now if it is not running (before an attempt takes stock of
    the harness's own children, so that it is never taken for a process of the attempt)."""
    global _guardian
    with _lock:
        if _guardian is None or _guardian.poll() is not None:
            env = {k: v for k, v in os.environ.items() if k != TOKEN_VARIABLE}
            _guardian = subprocess.Popen([sys.executable, "-m", "harness.guardian", _token],
                                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True, env=env)
            for label in sorted(_containers):
                _write(f"%{label}")
        return _guardian.pid


def _write(line: str) -> None:
    try:
        _guardian.stdin.write(line.encode() + b"\n")
        _guardian.stdin.flush()
    except (AttributeError, OSError):
        pass


def _tell(line: str) -> None:
    """Tell the guardian a line; if it died, the next attempt's start() starts a new one."""
    with _lock:
        _write(line)


def watch(pid: int) -> None:
    _tell(f"+{pid}")


def unwatch(pid: int) -> None:
    _tell(f"-{pid}")


def remove_after(directory: str) -> None:
    """Have the guardian remove `directory` (an attempt's temp dir) should the harness die first."""
    _tell(f"@{directory}")


def remove_containers_after(label: str) -> None:
    """Have the guardian remove every docker container labelled `label` ("KEY=VALUE") should
    the harness die first; the guardian is started if it is not running."""
    with _lock:
        _containers.add(label)
    start()
    _tell(f"%{label}")


# ------------------------------------------------------------------ the guardian process

def _marked(mark: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if mark in handle.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _kill_all(mark: bytes, pids: set[int]) -> None:
    for sig, wait in ((signal.SIGTERM, GRACE), (signal.SIGKILL, 0.5)):
        for pid in pids:  # each told pid, and its process group (a session's leader)
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, sig)
                except OSError:
                    pass
        for pid in _marked(mark):
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _marked(mark):
            time.sleep(0.05)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the harness is not for us
    running: set[int] = set()
    directories: set[str] = set()
    containers: set[str] = set()
    for line in sys.stdin.buffer:  # ends when the harness is gone (its end of the pipe closed)
        text = line.decode(errors="replace").strip()
        if text[:1] in "+-" and text[1:].isdigit():
            (running.add if text[0] == "+" else running.discard)(int(text[1:]))
        elif text[:1] == "@" and os.path.isabs(text[1:]):
            directories.add(text[1:])
        elif text[:1] == "%" and "=" in text:
            containers.add(text[1:])
    _kill_all(f"{TOKEN_VARIABLE}={argv[0]}".encode(), running)
    for directory in directories:  # after the kill: nothing writes there any more
        shutil.rmtree(directory, ignore_errors=True)
    if containers:
        _remove_containers(containers)
    return 0


def _remove_containers(labels: set[str]) -> None:
    """Remove the containers with each label; an engine gone away has none to remove."""
    try:
        import docker  # the SDK itself: the guardian sits below the executors (tests/test_layers.py)

        engine = docker.from_env(timeout=60)
        for label in labels:
            for container in engine.containers.list(all=True, filters={"label": label}):
                try:
                    container.remove(force=True)
                except Exception:  # noqa: BLE001 - already being removed, or gone
                    pass
    except Exception:  # noqa: BLE001 - no engine, no SDK: nothing of ours can be there
        pass


if __name__ == "__main__":
    sys.exit(main())
