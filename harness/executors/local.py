"""The local executor: the host's interpreters, envs built on the host, each attempt a local process."""
from __future__ import annotations

from harness.attempt import ChildCommand
from harness.envs import interpreters, venv
from harness.executors.base import Executor


class LocalExecutor(Executor):
    """The default: attempts run as child processes of the harness, in their own session."""

    def describe(self) -> dict:
        return {"kind": "local"}

    def find_interpreter(self, wanted: str) -> interpreters.Interpreter:
        return interpreters.find(wanted)

    def ensure_env(self, interpreter, requirements: list, exclude_newer: str | None = None,
                   on_build=None) -> venv.Env:
        return venv.ensure_env(interpreter, requirements, exclude_newer, on_build)

    def command(self, env: venv.Env, bug, child_env: dict) -> ChildCommand:
        return ChildCommand(env.python, child_env)
