"""The docker executor: each attempt of a cell runs in its own container.

For stronger isolation of crashing repros (memory, CPU and pids limits, no network unless
the bug needs a service) and for other userlands (`--image`: the image gives the system
libraries; the interpreter is still the host's, so it must be glibc-compatible). The
interpreter, the cell's env, the project and the repro's directory are mounted read-only
at their host paths (a venv's pyvenv.cfg `home` then still resolves), the attempt dir
read-write, so the child, its result file and faulthandler's stacks work as for a local
attempt.

A container is not in the attempt's process session, so the attempt's argv is a small
parent-side runner (harness/executors/docker/runner.py) that creates the container, streams its output,
forwards its exit status or signal, and kills and removes it when the attempt kills the
runner. For a runner killed with SIGKILL, `cleanup` removes what it left behind, by label.
Every container of a run carries the executor's id, and the executor sweeps them at the
harness's exit (atexit: a normal end, an error or Ctrl-C), so a container whose removal a
signal interrupted is not left behind either; should the harness get SIGKILL, its guardian
(harness/guardian.py) removes them by that label.
On a hang, `processes` gives the container's processes (host pids) for their thread
counts, and `native_stacks` dumps them with py-spy run inside the container's namespaces.

The interpreter can also come from the image (`find_interpreter`, `ensure_env`; see
harness/executors/docker/interpreters.py): when the wanted version is not on the host, or the host's is a
system one that cannot be mounted, or `python_from="image"` asks for it. The cell's env is
then built in a container of the image, and the child runs the image's own interpreter.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from harness import guardian, procs
from harness.attempt import ChildCommand
from harness.envs import interpreters, venv
from harness.errors import UsageError
from harness.executors.base import Executor
from harness.executors.docker.engine import LABEL, client, host_binary
from harness.paths import ROOT
from harness.text import one_line

DEFAULT_MEMORY = "4g"         # per attempt, no swap beyond it
DEFAULT_PIDS = 4096           # processes and threads (a pids cgroup counts both)
SHM_SIZE = "1g"               # Where the host's py-spy is mounted: from the host it cannot unwind a container's native
# stacks (it cannot map the container's thread ids), so it runs inside the namespaces.
PY_SPY_IN_CONTAINER = "/opt/repro-harness/py-spy"
# Where the executor takes the interpreter from: the host's if it can mount it, else the image's.
PYTHON_FROM = ("auto", "host", "image")


@dataclass
class DockerChildCommand(ChildCommand):
    """A ChildCommand whose argv runs the child in a container through harness.executors.docker.runner."""
    image: str = ""
    mounts: list = field(default_factory=list)   # [host path, container path, "ro" or "rw"]
    network: str = "none"
    memory: str = DEFAULT_MEMORY
    cpus: float = 1.0
    pids: int = DEFAULT_PIDS
    executor_id: str = ""
    engine: object = None

    def argv(self, bug, variant, attempt_dir: Path, timeout: float, params: dict) -> list[str]:
        inner = super().argv(bug, variant, attempt_dir, timeout, params)
        spec = {
            "image": self.image, "argv": inner, "workdir": str(attempt_dir),
            "env": {**super().environment(attempt_dir), "HOME": "/tmp", "TMPDIR": "/tmp"},  # no host home there
            "mounts": [*self.mounts, [str(attempt_dir), str(attempt_dir), "rw"]], "network": self.network,
            "memory": self.memory, "shm": SHM_SIZE, "cpus": self.cpus, "pids": self.pids,
            "user": f"{os.getuid()}:{os.getgid()}",
            "labels": {LABEL: "1", f"{LABEL}.executor": self.executor_id, f"{LABEL}.bug": bug.id},
        }
        spec_path = attempt_dir / "container.json"
        spec_path.write_text(json.dumps(spec))
        return [sys.executable, "-m", "harness.executors.docker.runner", str(spec_path)]

    def environment(self, attempt_dir: Path) -> dict:
        """The runner's own environment (it runs on the host, from the harness's installation);
        the child's, with the child code on its path, goes into the container's spec."""
        return dict(self.env)

    def _containers(self, runner_pid: int) -> list:
        labels = [f"{LABEL}.executor={self.executor_id}", f"{LABEL}.runner={runner_pid}"]
        try:
            return self.engine.containers.list(all=True, filters={"label": labels})
        except Exception:  # noqa: BLE001 - an engine gone away leaves nothing to list
            return []

    def containment(self) -> str:
        return "container"   # its own PID namespace: no launcher around the runner

    def processes(self, tree: procs.AttemptProcesses) -> list[int]:
        """The container's processes (host pids) but its init; the runner's processes if none."""
        found = []
        for container in self._containers(tree.pid):
            try:
                top = container.top()
                init = container.attrs.get("State", {}).get("Pid")
            except Exception:  # noqa: BLE001 - the container ended meanwhile
                continue
            column = top["Titles"].index("PID")
            found += [int(row[column]) for row in top.get("Processes") or [] if int(row[column]) != init]
        return found or tree.live()

    def native_stacks(self, pids: list[int]) -> dict[int, str]:
        """py-spy run inside each container process's pid and mount namespaces (nsenter)."""
        if not any(path == PY_SPY_IN_CONTAINER for _, path, _ in self.mounts):
            return {}
        return procs.py_spy_dumps(pids, argv_for=_py_spy_argv)

    def cleanup(self, pid: int) -> None:
        """Remove the container of a runner that could not remove it (killed with SIGKILL)."""
        for container in self._containers(pid):
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already being removed, or gone
                pass


class DockerExecutor(Executor):
    """The executor contract (harness/executors/base.py) with each attempt in a container of `image`."""

    def __init__(self, image: str | None = None, memory: str = DEFAULT_MEMORY, cpus: float | None = None,
                 pids: int = DEFAULT_PIDS, log=None, python_from: str = "auto"):
        from harness.executors.docker.image import ensure_base_image

        if python_from not in PYTHON_FROM:
            raise UsageError(f"bad python_from {python_from!r}: one of {', '.join(PYTHON_FROM)}")
        self.engine = client()
        self.image = image or ensure_base_image(self.engine, log)
        self.image_id = self._check_image()
        self.memory, self.pids = memory, pids
        self.cpus = cpus or float(os.cpu_count() or 1)
        self.python_from = python_from
        self.id = uuid.uuid4().hex[:12]   # labels this run's containers for cleanup
        atexit.register(self.sweep)
        # atexit runs on no SIGKILL: the guardian, which outlives the harness, sweeps them then.
        guardian.remove_containers_after(f"{LABEL}.executor={self.id}")

    def sweep(self) -> None:
        """Remove every container of this executor still there (none, unless a signal cut a removal short)."""
        try:
            left = self.engine.containers.list(all=True, filters={"label": f"{LABEL}.executor={self.id}"})
        except Exception:  # noqa: BLE001 - an engine gone away leaves nothing to remove
            return
        for container in left:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already being removed, or gone
                pass

    def _check_image(self) -> str:
        """The image's id, pulled first if the engine lacks it."""
        import docker.errors

        try:
            return self.engine.images.get(self.image).id
        except docker.errors.ImageNotFound:
            try:
                return self.engine.images.pull(self.image).id
            except Exception as exc:  # no hub is reachable here
                raise UsageError(f"image {self.image!r} is not on the engine and cannot be pulled: "
                                 f"{one_line(exc)}") from exc

    def describe(self) -> dict:
        """For the result record: where the attempts ran."""
        return {"kind": "docker", "containment": "container", "image": self.image, "image_id": self.image_id,
                "python_from": self.python_from, "memory": self.memory, "cpus": self.cpus, "pids": self.pids}

    def find_interpreter(self, wanted: str) -> interpreters.Interpreter:
        """The host's interpreter when the container can mount it (and python_from allows),
        else the image's; a UsageError naming both places when neither has `wanted`."""
        from harness.executors.docker.interpreters import find_in_image

        host_note = None
        if self.python_from != "image" or wanted == "current":
            try:
                found = interpreters.find(wanted)
            except UsageError as exc:
                if self.python_from == "host" or wanted == "current":
                    raise
                host_note = str(exc)
            else:
                if _mountable_prefix(found.path):
                    return found
                if self.python_from == "host" or wanted == "current":
                    raise UsageError(_system_python(found.path))
                host_note = (f"the host's Python {found.version} is {found.path}, a system install the container"
                             " cannot mount")
        try:
            return find_in_image(self.engine, self.image, self.image_id, wanted, self._labels("probe"))
        except UsageError as exc:
            raise UsageError(f"{host_note}; {exc}" if host_note else str(exc)) from None

    def ensure_env(self, interpreter, requirements: list, exclude_newer: str | None = None, on_build=None):
        """venv.ensure_env, with the env built in a container when the interpreter is the image's."""
        from harness.executors.docker.interpreters import ImageInterpreter, uv_runner

        if not isinstance(interpreter, ImageInterpreter):
            return venv.ensure_env(interpreter, requirements, exclude_newer, on_build)
        labels = self._labels("env-build")
        return venv.ensure_env(interpreter, requirements, exclude_newer, on_build,
                               uv_for=lambda root: uv_runner(self.engine, interpreter, root, labels))

    def _labels(self, purpose: str) -> dict:
        return {LABEL: "1", f"{LABEL}.executor": self.id, f"{LABEL}.purpose": purpose}

    def command(self, env, bug, child_env: dict) -> DockerChildCommand:
        """The child in a container: the runner on the host starts it (harness/executors/docker/runner.py)."""
        return DockerChildCommand(
            python=env.python, env=child_env, image=self.image, mounts=self._mounts(env, bug),
            # A service (the moto server) listens on the host's 127.0.0.1: share the host's network.
            network="host" if bug.services else "none",
            memory=self.memory, cpus=self.cpus, pids=self.pids, executor_id=self.id, engine=self.engine)

    def _mounts(self, env, bug) -> list[list[str]]:
        """Read-only, each at its host path; py-spy at a fixed path for hang stacks.

        The host's interpreter installation is mounted; an interpreter of the image is there already."""
        paths = [ROOT]
        if env.interpreter.on_host:
            prefix = _mountable_prefix(env.interpreter.path)
            if prefix is None:
                raise UsageError(_system_python(env.interpreter.path))
            paths.insert(0, prefix)
        if env.python != env.interpreter.path:    # a venv: its root, holding bin/ and site-packages
            paths.append(Path(env.python).parent.parent)
        if ROOT not in bug.path.resolve().parents:  # a repro from REPRO_PATH
            paths.append(bug.path.resolve().parent)
        mounts = [[str(p), str(p), "ro"] for p in paths]
        py_spy = _py_spy_binary()
        return mounts + [[py_spy, PY_SPY_IN_CONTAINER, "ro"]] if py_spy else mounts


def _mountable_prefix(python: str) -> Path | None:
    """The installation prefix of a host interpreter, None for a system one (/usr/bin/python3)."""
    prefix = Path(python).resolve().parent.parent
    return None if str(prefix) in ("/", "/usr", "/usr/local") else prefix


def _system_python(path: str) -> str:
    return (f"the docker executor mounts the interpreter's installation, but {path} is a system install: "
            f"use a pyenv or uv-managed Python, or one in the image (--python-from image)")


def _py_spy_binary() -> str | None:
    return host_binary("py-spy")


def _py_spy_argv(pid: int) -> list[str]:
    """`py-spy dump` of a host pid: inside its namespaces, on its pid there, if it is in a container."""
    inner = _namespace_pid(pid)
    if inner == pid:  # the host's own namespace (the runner, when the container is gone)
        return [shutil.which("py-spy") or "py-spy", "dump", "--native", "--pid", str(pid)]
    return ["nsenter", "--target", str(pid), "--pid", "--mount", "--",
            PY_SPY_IN_CONTAINER, "dump", "--native", "--pid", str(inner)]


def _namespace_pid(pid: int) -> int:
    """A host pid's number inside its own (innermost) pid namespace."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return int(line.split()[-1])
    except OSError:
        pass
    return pid
