"""The local executor: the host's interpreters, envs built on the host, each attempt a local process."""
from __future__ import annotations

from harness import procs
from harness.attempt import ChildCommand
from harness.envs import interpreters, venv
from harness.executors.base import Executor


class LocalExecutor(Executor):
    """The default: attempts run as child processes of the harness, in their own session, and in a
    PID namespace of their own where the machine allows it."""

    def describe(self) -> dict:
        """For the record: also what holds the attempts' processes (procs.containment())."""
        return {"kind": "local", "containment": procs.containment()}

    def find_interpreter(self, wanted: str) -> interpreters.Interpreter:
        return interpreters.find(wanted)

    def ensure_env(self, interpreter, requirements: list, exclude_newer: str | None = None,
                   on_build=None) -> venv.Env:
        return venv.ensure_env(interpreter, requirements, exclude_newer, on_build)

    def command(self, env: venv.Env, bug, child_env: dict) -> ChildCommand:
        return ChildCommand(env.python, child_env)
