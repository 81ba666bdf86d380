"""The `moto` service: a local AWS (S3, DynamoDB, Athena, Glue) on 127.0.0.1, one request at a time.

Parent side: `moto_service()` (registered as "moto") starts `python -m harness.moto_server`
in its own session, learns the port the server bound (port 0: the kernel picks a free
one, so there is no race between choosing and binding), waits until it answers HTTP,
yields the environment a child needs and stops the whole session afterwards, also on
Ctrl-C. If the parent dies without cleaning up, the server sees its stdin close and exits.

Server side (`serve`): moto's WSGI app behind one lock. moto's conditional checks
(If-None-Match on PutObject, ConditionExpression on PutItem) are not atomic under its
threaded server, so two racing conditional writes could both win and make a safe
configuration look broken. Serialising the app makes every request atomic; the body is
read before the lock and the response is sent after it, so a slow client stalls no one.
The server also answers Athena's BatchGetQueryExecution, which moto lacks.
"""
from __future__ import annotations

import io
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.kit import LOOPBACK as HOST
from harness.kit import local_endpoint  # noqa: F401 - the child side's check, re-exported

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
        from harness import procs

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
    from harness.errors import UsageError
    from harness.registry import ROOT

    started = time.monotonic()
    logdir = Path(tempfile.mkdtemp(prefix="repro-moto-"))
    # The server runs from the parent's environment, without any credentials of the machine.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(ROOT)
    with open(logdir / "server.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "harness.moto_server"], cwd=logdir, env=env,
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


def _register() -> None:
    from harness import services

    services.register("moto")(moto_service)


_register()


# ---- server side: runs as `python -m harness.moto_server` in its own session ----

def serialised(app):
    """moto's WSGI app behind one lock: every request, conditional checks included, is atomic."""
    lock = threading.Lock()

    def handle(environ, start_response):
        _buffer_body(environ)
        with lock:
            response = app(environ, start_response)
            try:
                body = b"".join(response)
            finally:
                if hasattr(response, "close"):
                    response.close()
        return [body]

    return handle


def _buffer_body(environ) -> None:
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream for us
        data = stream.read()
    else:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(data)


def _add_batch_get_query_execution() -> None:
    """Athena's BatchGetQueryExecution, which moto (up to 5.2.x at least) lacks.

    awswrangler's local query cache fills itself with it, so without it every cached
    read_sql_query retries an HTTP 500. The items have the shape moto gives
    GetQueryExecution; unlike that call, this one does not advance an execution's state.
    """
    import json

    from moto.athena.responses import AthenaResponse

    if hasattr(AthenaResponse, "batch_get_query_execution"):
        return

    def item(exec_id, execution):
        ddl = execution.query.upper().startswith(("ALTER", "CREATE", "DESCRIBE", "DROP", "MSCK", "SHOW"))
        return {"QueryExecutionId": exec_id, "Query": execution.query, "StatementType": "DDL" if ddl else "DML",
                "ResultConfiguration": execution.config, "QueryExecutionContext": execution.context,
                "Status": {"State": execution.status, "SubmissionDateTime": execution.start_time,
                           "CompletionDateTime": execution.end_time},
                "WorkGroup": execution.workgroup.name if execution.workgroup else None}

    def batch_get_query_execution(self):
        executions = self.athena_backend.executions
        ids = self._get_param("QueryExecutionIds") or []
        return json.dumps({
            "QueryExecutions": [item(i, executions[i]) for i in ids if i in executions],
            "UnprocessedQueryExecutionIds": [{"QueryExecutionId": i, "ErrorCode": "InvalidRequestException",
                                              "ErrorMessage": "not found"} for i in ids if i not in executions]})

    AthenaResponse.batch_get_query_execution = batch_get_query_execution


def _exit_when_parent_goes() -> None:
    """Our stdin is a pipe from the parent: EOF means it is gone (even if it was SIGKILLed)."""
    def watch():
        while sys.stdin.buffer.read(4096):
            pass
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def serve() -> None:
    import logging
    import signal

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    _add_batch_get_query_execution()
    app = serialised(DomainDispatcherApplication(create_backend_app))
    server = make_server(HOST, 0, app, threaded=True)
    os.environ["MOTO_PORT"] = str(server.server_port)
    sys.stdout.write(f"{server.server_port}\n")
    sys.stdout.flush()
    sys.stdout = sys.stderr  # nobody reads our stdout any more: a full pipe must not block us
    _exit_when_parent_goes()
    server.serve_forever()


if __name__ == "__main__":
    serve()
