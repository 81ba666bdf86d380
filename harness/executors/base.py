"""The executor contract: where a cell's attempts run, and what they run on.

A cell (harness/cell.py) asks its executor, in this order:
  1. describe()                  once, for the result record;
  2. find_interpreter(wanted)    the interpreter of the cell's Python version;
  3. ensure_env(interpreter, requirements, exclude_newer, on_build)
                                 the cell's env, built once and reused from the cache;
  4. command(env, bug, child_env)
                                 how to start the child of every attempt of the cell.
Every run path (`repro run / verify / bisect / check`, pytest's matrix cells, the benchmark)
goes through an executor object: harness.executors.local.LocalExecutor by default,
harness.executors.docker.executor.DockerExecutor for containers.

ChildCommand lives in harness/attempt.py, not here: it is what run_attempt consumes (argv,
environment, processes, native stacks, cleanup of one attempt), and attempt.py sits below
the executors, which may not be imported from there. An executor returns a ChildCommand,
or a subclass of it that starts the child its own way (DockerChildCommand: in a container).
"""
from __future__ import annotations

from abc import ABC, abstractmethod

from harness.attempt import ChildCommand
from harness.envs.interpreters import Interpreter
from harness.envs.venv import Env
from harness.registry import Bug


class Executor(ABC):
    """Where and how the attempts of a cell run (one object serves many cells of a run)."""

    @abstractmethod
    def describe(self) -> dict:
        """The executor for the result record: JSON data with at least `kind` ("local", "docker"),
        plus whatever else decides what the attempts saw (an image id, resource limits)."""

    @abstractmethod
    def find_interpreter(self, wanted: str) -> Interpreter:
        """The interpreter for `wanted` ("3.11", "3.11.7" or "current") that the attempts will run.

        Raises UsageError, with the reason (where it looked), when there is none: the cell is then
        `skipped` with that reason. The interpreter's describe() goes into the record; its
        key_fields() and on_host decide how its envs are cached and checked (harness/envs/venv.py)."""

    @abstractmethod
    def ensure_env(self, interpreter: Interpreter, requirements: list, exclude_newer: str | None = None,
                   on_build=None) -> Env:
        """A ready env of `interpreter` with `requirements` installed (resolved as of `exclude_newer`).

        Reused from the cache when it is intact, else built; `on_build(text)` is told before a build
        (it can take minutes). Raises EnvBuildError when these requirements cannot be installed (the
        cell is `skipped`), UsageError when no build can work here (no uv, no package index: the run
        stops). `interpreter` is one this executor's find_interpreter returned."""

    @abstractmethod
    def command(self, env: Env, bug: Bug, child_env: dict) -> ChildCommand:
        """How to start the child of each attempt of `bug` in `env` (an env ensure_env returned).

        `child_env` is the child's environment (harness.attempt.child_env: the run's mark for the
        guardian, service addresses, no credentials); the command must hand it to the child
        unchanged, but for what the child needs where it runs. Called once per cell: the command
        runs all its attempts and controls, and must release everything each attempt started
        (ChildCommand.cleanup) so nothing outlives it."""
