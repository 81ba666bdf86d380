"""The Docker engine: a client for it, and a dockerd started (and stopped) by the harness.

Only network modes `none` and `host` are used: dockerd runs with no bridge, and the host
firewall is left alone. `python -m harness.executors.docker start-engine | build-image`
prepares a machine (CI does it before the tests).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import procs
from harness.errors import UsageError
from harness.paths import cache_dir
from harness.text import last_lines, one_line

LABEL = "repro-harness"
# multiprocessing and pyarrow use /dev/shm; counted in the memory limit
ENGINE_START_TIMEOUT = 60.0
# Only network modes `none` and `host` are used: no bridge, and the host firewall is left alone.
DOCKERD_ARGS = ["--bridge=none", "--iptables=false", "--ip6tables=false"]


class EngineUnavailable(UsageError):
    """No Docker engine can be reached or started here (tests skip with this reason)."""


def client(timeout: float = 120):
    """A client for the engine of DOCKER_HOST (default: the local socket), checked with a ping."""
    try:
        import docker
    except ImportError as exc:
        raise EngineUnavailable(f"the Docker SDK for Python is not installed ({exc}): pip install docker") from exc
    try:
        engine = docker.from_env(timeout=timeout)
        engine.ping()
    except Exception as exc:  # any failure means: no engine to talk to
        raise EngineUnavailable(f"cannot reach the Docker engine ({one_line(exc)}); start dockerd, "
                                f"e.g. `python -m harness.executors.docker start-engine`") from exc
    return engine


def start_engine(log_path: Path | None = None) -> subprocess.Popen | None:
    """Start dockerd in its own session unless an engine answers; None if one already did.

    Raises EngineUnavailable with the reason when none can start (not root, no dockerd,
    dockerd exits or does not answer in time).
    """
    try:
        client(timeout=10)
        return None
    except EngineUnavailable as exc:
        unreachable = str(exc)
    if os.environ.get("DOCKER_HOST"):
        raise EngineUnavailable(f"{unreachable} (DOCKER_HOST is set: not starting a local dockerd)")
    dockerd = shutil.which("dockerd")
    if not dockerd:
        raise EngineUnavailable("no Docker engine: dockerd is not installed (apt-get install docker.io)")
    if os.geteuid() != 0:
        raise EngineUnavailable("no Docker engine running, and starting dockerd needs root")
    log_path = log_path or cache_dir() / "dockerd.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([dockerd, *DOCKERD_ARGS], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineUnavailable(f"dockerd exited with code {proc.returncode}: {_log_tail(log_path)}")
        try:
            client(timeout=5)
            return proc
        except EngineUnavailable:
            time.sleep(0.5)
    stop_engine(proc.pid)
    proc.wait(timeout=10)
    raise EngineUnavailable(f"dockerd did not answer within {ENGINE_START_TIMEOUT:g}s: {_log_tail(log_path)}")


def stop_engine(pid: int) -> None:
    """Stop a dockerd started by start_engine (its session, with containerd), if it still runs."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return
    if name == "dockerd":  # not a process that took over a recycled pid
        procs.kill_session(pid, grace=20.0)


def host_binary(name: str, *preferred: str | None) -> str | None:
    """The executable `name` itself (an ELF binary to mount), not a wrapper script such as a pyenv shim;
    `preferred` paths (e.g. the uv of the harness's own install) are tried first."""
    for candidate in (*preferred, Path(sys.executable).with_name(name), shutil.which(name)):
        try:
            with open(candidate, "rb") as handle:
                if handle.read(4) == b"\x7fELF":
                    return str(Path(candidate).resolve())
        except (OSError, TypeError):
            continue
    return None



def _log_tail(path: Path) -> str:
    try:
        return last_lines(path.read_text(errors="replace"), limit=600)
    except OSError:
        return "(no log)"
