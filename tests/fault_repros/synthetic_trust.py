"""Synthetic repros that try to fool, stick or escape the harness, for tests/test_trust.py (stdlib only)."""
import json
import os
import signal
import sys
import time

BUG = {
    "id": "synthetic-trust",
    "title": "synthetic repros that attack the harness, for its own tests",
    "packages": ["iniconfig"],
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"synthetic trust bug",
    # The repro plays the library here: its own raise is the bug (the child loads it as this module).
    "library": ["repro_under_test"],
    "trigger_rate": {"reproduced": 20, "attempts": 20},
    "variants": {
        "trigger": {"role": "trigger", "run": "raise_signature", "timeout": 20},
        "control": {"role": "control", "run": "clean", "timeout": 20},
        "escaped-daemon": {"role": "trigger", "run": "escaped_daemon", "timeout": 20,
                           "params": {"pid_file": ""}},
        "forked-hang": {"role": "trigger", "run": "forked_hang", "timeout": 60, "params": {"pid_file": ""}},
        "path-probe": {"role": "trigger", "run": "path_probe", "timeout": 30,
                       "requirements": ["iniconfig==2.0.0"], "params": {"modules": ["iniconfig"]}},
        "env-probe": {"role": "trigger", "run": "env_probe", "timeout": 20},
        "clean-helper": {"role": "trigger", "run": "clean_helper", "timeout": 60,
                         "params": {"pid_file": "", "kill_guardian": False}},
        "stop-parent": {"role": "trigger", "run": "stop_parent", "timeout": 2},
        "shadowed": {"role": "trigger", "run": "shadowed", "timeout": 30,
                     "requirements": ["iniconfig==2.0.0"], "params": {"directory": "", "module": ""}},
        "huge-text": {"role": "trigger", "run": "huge_text", "timeout": 30},
        "environ-probe": {"role": "trigger", "run": "environ_probe", "timeout": 20, "params": {"marker": ""}},
        "forge-record": {"role": "trigger", "run": "forge_record", "timeout": 20, "params": {"results": ""}},
        "read-all": {"role": "trigger", "run": "read_all", "timeout": 30, "params": {"directory": "", "dump": ""}},
        "fd-probe": {"role": "trigger", "run": "fd_probe", "timeout": 30, "requirements": ["iniconfig==2.0.0"]},
        "escape-all": {"role": "trigger", "run": "escape_all", "timeout": 60, "params": {"pid_file": ""}},
    },
}


def raise_signature(ctx):
    raise RuntimeError("synthetic trust bug")


def clean(ctx):
    return {}


def _daemon(pid_file):
    """Double fork and setsid: a process outside the attempt's session that ignores SIGTERM
    and keeps the child's stdout open."""
    if os.fork():
        return
    os.setsid()
    if os.fork():
        os._exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(pid_file, "a") as handle:
        handle.write("%d\n" % os.getpid())
    sys.stdout.write("daemon holds stdout\n")
    sys.stdout.flush()
    while True:
        time.sleep(3600)


def escaped_daemon(ctx):
    _daemon(ctx.param("pid_file", ""))
    os.wait()  # the first fork returns at once
    time.sleep(0.2)
    return {}


def forked_hang(ctx):
    """A forked worker that ignores SIGTERM, an escaped daemon, and the child hangs waiting."""
    pid_file = ctx.param("pid_file", "")
    worker = os.fork()
    if worker == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        while True:
            time.sleep(3600)
    with open(pid_file, "a") as handle:
        handle.write("%d\n%d\n" % (os.getpid(), worker))
    _daemon(pid_file)
    os.waitpid(-1, os.WNOHANG)
    time.sleep(3600)


def path_probe(ctx):
    """Which of the named modules this child can import, and from where; and its path."""
    import importlib

    for entry in sys.path:
        ctx.note("path: %s" % entry)
    for name in ctx.param("modules", []):
        try:
            module = importlib.import_module(name)
            ctx.note("import %s: %s" % (name, getattr(module, "__file__", None)))
        except ImportError:
            ctx.note("import %s: not importable" % name)
    return {}


def shadowed(ctx):
    """A stray path entry (as a leaked PYTHONPATH would add) that shadows the env's packages."""
    import importlib

    sys.path.insert(0, ctx.param("directory", ""))
    importlib.import_module(ctx.param("module", ""))
    return {}


def env_probe(ctx):
    """The child's environment, as a note the test reads."""
    ctx.note(" ".join(sorted(os.environ)))
    return {}


def _guardians():
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                if b"harness.guardian" in handle.read():
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def clean_helper(ctx):
    """A helper started the ordinary way of a server (a clean environment, a session of its own),
    after killing the guardian if asked; then the child hangs."""
    import subprocess

    if ctx.param("kill_guardian", False):
        for pid in _guardians():
            os.kill(pid, signal.SIGKILL)
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"], env={},
                              start_new_session=True)
    time.sleep(1.0)  # the harness has seen it (it walks every 0.2 s)
    with open(ctx.param("pid_file", ""), "a") as handle:
        handle.write("%d\n" % helper.pid)
    time.sleep(3600)


def stop_parent(ctx):
    """Stop the harness, then hang."""
    os.kill(os.getppid(), signal.SIGSTOP)
    time.sleep(3600)


def huge_text(ctx):
    """A note and an exception message of 16 MiB each: the record must not carry them."""
    ctx.note("n" * (16 << 20))
    raise RuntimeError("synthetic trust bug " + "r" * (16 << 20))


def _ancestors():
    """This process's parent, its parent, and so on, as far as this process's /proc shows them."""
    found, pid = [], os.getppid()
    while pid > 0 and pid not in found:
        found.append(pid)
        try:
            with open("/proc/%d/stat" % pid) as handle:
                pid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def environ_probe(ctx):
    """Read the environment of every ancestor and of every other process this child can see; fail
    with what it read and which of those held the marker (the value the test gave its secrets)."""
    marker = ctx.param("marker", "").encode()
    ancestors = _ancestors()
    others = [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != os.getpid()]
    readable, holding = [], {}
    for pid in ancestors + [p for p in others if p not in ancestors]:
        try:
            with open("/proc/%d/environ" % pid, "rb") as handle:
                environ = handle.read()
        except OSError:
            continue
        readable.append(pid)
        names = [entry.split(b"=", 1)[0].decode() for entry in environ.split(b"\0") if marker and marker in entry]
        if names:
            holding[pid] = names
    raise RuntimeError("synthetic trust bug: %s" % json.dumps(
        {"ancestors": ancestors, "read": readable, "secrets": {str(k): v for k, v in holding.items()}}))


def _stop_guardians():
    for pid in _guardians():
        try:
            os.kill(pid, signal.SIGSTOP)  # alive (not restarted), but it will do nothing
        except OSError:
            pass


def escape_all(ctx):
    """Everything a repro (or a library) can do to outlive the harness, short of a container: stop
    the guardian it can see, start helpers with a clean environment in sessions of their own, and
    a daemon (double fork, setsid) that execs with a clean environment; then hang."""
    import subprocess

    _stop_guardians()
    sleeper = [sys.executable, "-c", "import time; time.sleep(3600)"]
    helpers = [subprocess.Popen(sleeper, env={}, start_new_session=True).pid for _ in range(2)]
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        daemon = os.fork()
        if daemon:
            os.write(write, b"%d" % daemon)
            os._exit(0)
        os.execve(sys.executable, sleeper, {})
    os.wait()
    daemon = int(os.read(read, 32))
    _stop_guardians()  # one the harness started again meanwhile
    with open(ctx.param("pid_file", ""), "a") as handle:
        handle.write("".join("%d\n" % pid for pid in helpers + [daemon]))
    time.sleep(3600)


def forge_record(ctx):
    """Append forged `absent` records of the trigger to the results file the harness writes (as the
    code under test could find it): a copy of the newest genuine record turned `absent` and dated
    later, once with its old seal and once re-sealed under every key disclosed for the file so far.
    Then return a clean observation, as a fixed release would."""
    import hashlib
    import hmac

    path = ctx.param("results", "")
    with open(path) as handle:
        genuine = [json.loads(line) for line in handle if '"trigger"' in line]
    keys = []
    if os.path.exists(path + ".keys"):
        with open(path + ".keys") as handle:
            keys = [bytes.fromhex(json.loads(line)["key"]) for line in handle]
    forged = dict(genuine[-1], verdict="absent", started_at="9999-01-01T00:00:00+00:00",
                  reason="forged by the code under test", reproductions=0)
    lines = [forged]
    for key in keys:
        body = json.dumps({k: v for k, v in forged.items() if k != "seal"}, default=str, sort_keys=True)
        lines.append(dict(forged, seal={"key": hashlib.sha256(b"repro-record-key-id:" + key).hexdigest()[:32],
                                        "mac": hmac.new(key, body.encode(), hashlib.sha256).hexdigest()}))
    with open(path, "a") as handle:
        handle.writelines(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    return {}


def read_all(ctx):
    """Write into `dump` everything this child can read that could hold a key of its harness: its
    own environment, the environ and cmdline of every process it can see, and every file under
    `directory` (where the results go). Then return a clean observation."""
    parts = [repr(sorted(os.environ.items()))]
    for entry in os.listdir("/proc"):
        for name in ("environ", "cmdline"):
            try:
                with open("/proc/%s/%s" % (entry, name), "rb") as handle:
                    parts.append(handle.read().decode("latin-1"))
            except OSError:
                pass
    for root, _, files in os.walk(ctx.param("directory", "")):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                parts.append(handle.read().decode("latin-1"))
    with open(ctx.param("dump", ""), "w") as handle:
        handle.write("\n".join(parts))
    return {}


def fd_probe(ctx):
    """Note what each of this child's open file descriptors is, and the hold files of its env (the
    `<key>.users/` beside the env's root): a hold is the harness's, never the child's to keep."""
    for fd in sorted(os.listdir("/proc/self/fd"), key=int):
        try:
            ctx.note("fd %s: %s" % (fd, os.readlink("/proc/self/fd/" + fd)))
        except OSError:
            pass
    users = os.path.realpath(sys.prefix) + ".users"
    for name in sorted(os.listdir(users)) if os.path.isdir(users) else []:
        ctx.note("hold: %s" % os.path.join(users, name))
    return {}
