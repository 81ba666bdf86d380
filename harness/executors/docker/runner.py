"""Parent-side runner of one containerised attempt (started by the docker executor).

    python -m harness.executors.docker.runner SPEC.json

It stands in for the child in the attempt's process session: it creates the container,
streams the container's output to its own stdout, and ends the way the child ended (the
same exit code, or killed by the same signal, so the attempt classifies a crash as
usual). Killed by the attempt (SIGTERM on the deadline, Ctrl-C), it kills and removes the
container first. The container is removed in every case it can act on; a SIGKILL of the
runner is left to the executor's cleanup by label.
"""
from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time

EXIT_SETUP_FAILED = 125      # as `docker run`: the container could not be created or started
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(BaseException):
    """The attempt is killing the runner: the container must go first (not an error to catch)."""


def _stop(signum, frame):
    raise Stopped(signum)


def _create(engine, spec: dict):
    import docker.types

    from harness.executors.docker.engine import LABEL

    labels = {**spec["labels"], f"{LABEL}.runner": str(os.getpid())}  # found by this, if we die
    return engine.containers.create(
        # entrypoint=[]: the child's argv runs as given, whatever ENTRYPOINT the image declares.
        # The child times its stack dump by the absolute deadline in its request (harness.protocol),
        # so the time the container takes to start needs no correction here.
        spec["image"], spec["argv"], entrypoint=[], environment=spec["env"], working_dir=spec["workdir"],
        volumes={host: {"bind": inside, "mode": mode} for host, inside, mode in spec["mounts"]},
        network_mode=spec["network"], mem_limit=spec["memory"], memswap_limit=spec["memory"],
        nano_cpus=int(spec["cpus"] * 1e9), pids_limit=spec["pids"], shm_size=spec["shm"],
        # docker-init as pid 1: the child gets normal signal semantics, orphans are reaped,
        # and a child killed by signal N makes the container exit with 128 + N.
        init=True, user=spec["user"], labels=labels, cap_drop=["ALL"], security_opt=["no-new-privileges"],
        ulimits=[docker.types.Ulimit(name="core", soft=0, hard=0)],
        # The runner streams the output; the engine's own copy stays small whatever the child prints.
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}))


def _start_and_stream(container) -> None:
    """Attach first (as `docker run` does), so no output is lost, then start and relay."""
    output = container.attach(stdout=True, stderr=True, stream=True, logs=True)
    container.start()
    out = sys.stdout.buffer
    for chunk in output:
        out.write(chunk)
        out.flush()


def _report_oom(container, limit: str) -> None:
    try:
        container.reload()
        if container.attrs["State"].get("OOMKilled"):
            print(f"repro-harness: the container was OOM-killed (memory limit {limit})", file=sys.stderr, flush=True)
    except Exception:  # noqa: BLE001 - evidence only
        pass


def _end_like(status: int) -> int:
    """Exit as the child did: 128 + N from docker-init means killed by signal N."""
    if 128 < status < 128 + signal.NSIG and status - 128 not in (signal.SIGSTOP, signal.SIGTSTP):
        sig = status - 128
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the child's crash, not ours: no core file
        if sig != signal.SIGKILL:  # SIGKILL has no handler to reset
            signal.signal(sig, signal.SIG_DFL)
        sys.stdout.flush()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        time.sleep(1)  # a signal that does not kill by default falls through to the exit code
    return status


def run(spec: dict) -> int:
    from harness.executors.docker.engine import client

    # Until we hold the container, a stop request waits: otherwise it could be created unseen.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    container = None
    try:
        try:
            container = _create(client(), spec)
        except Exception as exc:  # noqa: BLE001 - no engine, no image, bad spec: the attempt's error
            print(f"repro-harness: cannot create the container: {' '.join(str(exc).split())[:500]}",
                  file=sys.stderr, flush=True)
            return EXIT_SETUP_FAILED
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        _start_and_stream(container)
        status = container.wait()["StatusCode"]
        _report_oom(container, spec["memory"])
    except Stopped as stop:
        status = 128 + stop.args[0]
    finally:
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # removal is not interrupted
        if container is not None:
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - the executor's cleanup by label retries
                pass
    return status


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as handle:
        spec = json.load(handle)
    return _end_like(run(spec))


if __name__ == "__main__":
    sys.exit(main())
