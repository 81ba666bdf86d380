"""The `moto` service, parent side: a local AWS (S3, DynamoDB, Athena, Glue) on 127.0.0.1.

`moto_service()` (in the service table of harness/services) starts `python -m
harness.services.moto_app` in its own session, learns the port the server bound (port 0: the
kernel picks a free one, so there is no race between choosing and binding), waits until it
answers HTTP, yields the environment a child needs and stops the whole session afterwards,
also on Ctrl-C. If the parent dies without cleaning up, the server sees its stdin close and
exits. The server itself is harness/services/moto_app.py.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import procs
from harness.errors import UsageError
from harness.kit import LOOPBACK as HOST
from harness.paths import ROOT

REGION = "us-east-1"
START_TIMEOUT = 60.0
# Fake credentials: scoped to the child's env, accepted by moto, useless anywhere else.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_SESSION_TOKEN": "testing"}  # awswrangler < 3.14 passes a missing token as None
ENDPOINT_SERVICES = ("S3", "DYNAMODB", "ATHENA", "GLUE", "STS")


def client_env(url: str) -> dict:
    """What a child needs to reach the server, and nothing that could reach real AWS."""
    env = {
        "AWS_ENDPOINT_URL": url,
        "AWS_ENDPOINT": url,               # object_store's older spelling (deltalake < 0.17)
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",  # never ask an instance-metadata endpoint
        "AWS_CONFIG_FILE": os.devnull,        # never read profiles of the machine
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "NO_PROXY": HOST, "no_proxy": HOST,   # a proxy from the parent must not see this traffic
        "REPRO_MOTO_URL": url,
        **FAKE_CREDENTIALS,
    }
    env.update({f"AWS_ENDPOINT_URL_{name}": url for name in ENDPOINT_SERVICES})
    return env


@dataclass
class MotoServer:
    proc: subprocess.Popen
    url: str
    logdir: Path
    start_seconds: float

    @property
    def env(self) -> dict:
        return client_env(self.url)

    def log_tail(self) -> str:
        try:
            return (self.logdir / "server.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, grace: float = 2.0) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()  # the server exits on EOF; the kill below is the backstop
        except OSError:
            pass
        procs.kill_session(self.proc.pid, grace)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.logdir, ignore_errors=True)


def start(timeout: float = START_TIMEOUT) -> MotoServer:
    """Start a server and wait until it answers; UsageError (after cleaning up) if it cannot."""
    started = time.monotonic()
    logdir = Path(tempfile.mkdtemp(prefix="repro-moto-"))
    # The server runs from the parent's environment, without any credentials of the machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(ROOT)
    with open(logdir / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.services.moto_app"], cwd=logdir, env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True)
    server = MotoServer(proc, "", logdir, 0.0)
    try:
        port = _read_port(proc, started + timeout)
        server.url = f"http://{HOST}:{port}"
        _wait_ready(server.url, proc, started + timeout)
    except BaseException as exc:
        tail = server.log_tail()
        server.stop()
        if isinstance(exc, Exception):
            raise UsageError(f"the moto server did not start: {exc}; log: {tail[-300:]!r}") from None
        raise
    server.start_seconds = time.monotonic() - started
    return server


def _read_port(proc: subprocess.Popen, deadline: float) -> int:
    """The first stdout line of the server is the port it bound."""
    remaining = deadline - time.monotonic()
    ready, _, _ = select.select([proc.stdout], [], [], max(0.0, remaining))
    if not ready:
        raise TimeoutError("no port reported within the start timeout")
    line = proc.stdout.readline().decode().strip()
    if not line.isdigit():
        raise RuntimeError(f"server exited with code {proc.poll()} before reporting a port ({line!r})")
    return int(line)


def _wait_ready(url: str, proc: subprocess.Popen, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last = exc
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer from {url}: {last}")
        time.sleep(0.05)


@contextmanager
def moto_service():
    server = start()
    try:
        yield {**server.env, "REPRO_MOTO_START_SECONDS": f"{server.start_seconds:.3f}"}
    finally:
        server.stop()
