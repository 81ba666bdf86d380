"""Synthetic child programs for the harness's fault-injection tests (stdlib only).

Each variant misbehaves in one way a real library can: a deadlock holding the GIL, a
native hang, a segfault, an abort at exit after the result, grandchildren that outlive
the child, an output flood, SIGTERM ignored, a foreign exception, a clean run.
"""
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time

BUG = {
    "id": "synthetic-faults",
    "title": "synthetic misbehaving children for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"synthetic bug",
    "trigger_rate": {"reproduced": 20, "attempts": 20},
    "variants": {
        "trigger": {"role": "trigger", "run": "raise_signature", "timeout": 20},
        "control": {"role": "control", "run": "clean", "timeout": 20},
        "thread-errors": {"role": "trigger", "run": "thread_errors", "timeout": 20},
        "other-exception": {"role": "trigger", "run": "other_exception", "timeout": 20},
        "gil-deadlock": {"role": "trigger", "run": "gil_deadlock", "timeout": 4},
        "native-hang": {"role": "trigger", "run": "native_hang", "timeout": 4},
        "segfault": {"role": "trigger", "run": "segfault", "timeout": 20},
        "abort-at-exit": {"role": "trigger", "run": "abort_at_exit", "timeout": 20},
        "grandchildren": {"role": "trigger", "run": "grandchildren", "timeout": 20},
        "flood": {"role": "trigger", "run": "flood", "timeout": 30},
        "ignore-sigterm": {"role": "trigger", "run": "ignore_sigterm", "timeout": 3},
        "sleep": {"role": "trigger", "run": "sleep", "timeout": 60},
        "exit-early": {"role": "trigger", "run": "exit_early", "timeout": 20},
    },
}

LIBC = "libc.so.6"


def raise_signature(ctx):
    raise RuntimeError("synthetic bug: Already borrowed")


def clean(ctx):
    return {}


def thread_errors(ctx):
    return {"errors": ["ValueError: unrelated", "RuntimeError: synthetic bug in a thread"]}


def other_exception(ctx):
    raise KeyError("something else went wrong")


def gil_deadlock(ctx):
    # PyDLL keeps the GIL during the call: every Python thread, and any Python-level
    # watchdog, is frozen. Only faulthandler's C thread and the parent can see it.
    threading.Thread(target=lambda: time.sleep(3600), name="bystander", daemon=True).start()
    ctypes.PyDLL(LIBC).pause()


def native_hang(ctx):
    # CDLL releases the GIL: the main thread blocks in C while Python threads still run.
    ctypes.CDLL(LIBC).pause()


def segfault(ctx):
    ctypes.string_at(0)


def abort_at_exit(ctx):
    # The result is written before the child leaves; this abort must not change it.
    import atexit

    atexit.register(os.abort)
    return {}


def grandchildren(ctx):
    pids = []
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pids.append(proc.pid)
    pid_file = ctx.param("pid_file", None)
    if pid_file:
        with open(pid_file, "w") as handle:
            handle.write(" ".join(map(str, pids)))
    ctx.note("grandchildren %s" % pids)
    return {}


def flood(ctx):
    chunk = ("x" * 1023 + "\n") * 1024  # 1 MiB
    for _ in range(int(ctx.param("mib", 200))):
        sys.stdout.write(chunk)
    sys.stdout.write("THE END\n")
    return {}


def ignore_sigterm(ctx):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(3600)


def sleep(ctx):
    time.sleep(float(ctx.param("seconds", 3600)))
    return {}


def exit_early(ctx):
    sys.stderr.write("child gave up before any result\n")
    os._exit(3)
