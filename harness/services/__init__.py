"""Services a repro needs (e.g. a moto server), started once per run on 127.0.0.1.

A starter is a context manager yielding the environment variables the child needs to
reach the service; `started` enters every needed starter and always stops them, also
on Ctrl-C. The child sees the services only through those variables.
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager

from harness.errors import UsageError
from harness.services import moto

# The services the harness knows: name -> zero-argument context manager yielding an env dict.
STARTERS = {
    "moto": moto.moto_service,
}


@contextmanager
def started(names):
    """Start each named service once; yields the merged env (with REPRO_SERVICES listing them)."""
    names = sorted(set(names))
    unknown = [n for n in names if n not in STARTERS]
    if unknown:
        raise UsageError(f"unknown service(s) {', '.join(unknown)}; known: {', '.join(sorted(STARTERS)) or '(none)'}")
    env = {}
    with ExitStack() as stack:
        for name in names:
            env.update(stack.enter_context(STARTERS[name]()))
        env["REPRO_SERVICES"] = ",".join(names)
        yield env



class ServicePool:
    """Services started on demand and kept until the pool closes: each once, however many cells
    (of however many bugs) need it. A context manager; `close()` stops every started service."""

    def __init__(self):
        self._stack = ExitStack()
        self._env: dict = {}
        self._started: set = set()

    def env_for(self, names) -> dict:
        """The environment a child needs to reach these services (started now if not yet)."""
        missing = sorted(set(names) - self._started)
        if missing:
            env = self._stack.enter_context(started(missing))
            running = self._started | set(missing)
            self._env.update(env)
            self._env["REPRO_SERVICES"] = ",".join(sorted(running))
            self._started = running
        return dict(self._env)

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "ServicePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
