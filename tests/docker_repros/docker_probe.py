"""A synthetic bug for the docker executor's tests: reports what the child sees of its container.

Stdlib only. `inspect` notes (as one JSON line) the cgroup limits, the network interfaces,
whether an HTTP server at REPRO_MOTO_URL answers, whether the project is writable, and which
interpreter runs it;
`oom` allocates until the memory limit stops it.
"""
import json
import os
import platform
import sys
import urllib.request

BUG = {
    "id": "docker-probe",
    "title": "what a child sees inside the docker executor's container, for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"never raised",
    "trigger_rate": {"reproduced": 1, "attempts": 1},
    "variants": {
        "trigger": {"role": "trigger", "run": "inspect", "timeout": 30},
        "control": {"role": "control", "run": "inspect", "timeout": 30},
        "oom": {"role": "trigger", "run": "oom", "timeout": 60},
    },
}

# cgroup v1 files first, then v2 (the container sees its own cgroup at the root).
LIMIT_FILES = {
    "memory": ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"],
    "pids": ["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"],
    "cpu_quota": ["/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu.max"],
    "cpu_period": ["/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu.max"],
}


def _limit(name):
    for path in LIMIT_FILES[name]:
        try:
            with open(path) as handle:
                words = handle.read().split()
        except OSError:
            continue
        if path.endswith("cpu.max"):  # v2: "QUOTA PERIOD"
            return words[0] if name == "cpu_quota" else words[1]
        return words[0]
    return None


def _reach(url):
    if not url:
        return "no url"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return "HTTP %d" % response.status
    except urllib.error.HTTPError as exc:
        return "HTTP %d" % exc.code
    except OSError as exc:
        return "unreachable: %s" % exc


def _writable(directory):
    try:
        with open(os.path.join(directory, ".docker-probe-write"), "w"):
            pass
    except OSError as exc:
        return "no: %s" % exc.strerror
    os.unlink(os.path.join(directory, ".docker-probe-write"))
    return "yes"


def inspect(ctx):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    seen = {name: _limit(name) for name in LIMIT_FILES}
    seen.update({
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "service": _reach(os.environ.get("REPRO_MOTO_URL")),
        "project_writable": _writable(root),
        "workdir_writable": _writable(ctx.workdir),
        "uid": os.getuid(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "executable": sys.executable,
        "base_prefix": sys.base_prefix,
    })
    ctx.note(json.dumps(seen))
    return {}


def oom(ctx):
    hoard = []
    for _ in range(int(ctx.param("mib", 4096)) // 64):
        hoard.append(bytearray(64 * 1024 * 1024))  # bytearray zero-fills: the pages are touched
    return {"errors": ["RuntimeError: allocated everything, no memory limit stopped it"]}
