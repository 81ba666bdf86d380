"""The moto service: lifecycle and cleanup, atomic conditional writes, and a child env that only reaches 127.0.0.1."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import alive
from harness import services
from harness.attempt import child_env
from harness.cell import Cell, Options, run_cell
from harness.kit import local_endpoint
from harness.paths import ROOT
from harness.services import moto, moto_app

boto3 = pytest.importorskip("boto3")
botocore = pytest.importorskip("botocore")


@pytest.fixture(scope="module")
def server():
    started = moto.start()
    yield started
    started.stop()


def client(server, service):
    return boto3.client(service, endpoint_url=server.url, region_name=moto.REGION,
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def listening_addresses(port: int) -> set:
    """Local addresses with a listening TCP socket on `port` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.split(":")
            if int(hexport, 16) == port and state == "0A":  # 0A: LISTEN
                found.add(address)
    return found


# ---- lifecycle ----

def test_server_runs_in_its_own_session_on_loopback_only(server):
    url = urlsplit(server.url)
    assert url.hostname == "127.0.0.1" and url.port
    assert os.getsid(server.proc.pid) == server.proc.pid  # its own session and process group
    assert os.getpgid(server.proc.pid) == server.proc.pid
    assert listening_addresses(url.port) == {"0100007F"}  # 127.0.0.1, nothing else


def test_stop_kills_the_server_and_removes_its_files():
    server = moto.start()
    pid, port, logdir = server.proc.pid, urlsplit(server.url).port, server.logdir
    assert alive(pid) and logdir.exists()
    server.stop()
    assert not alive(pid)
    assert not logdir.exists()
    assert listening_addresses(port) == set()


def test_service_context_yields_env_and_stops_on_exit():
    with services.started(["moto"]) as env:
        assert env["REPRO_SERVICES"] == "moto"
        port = urlsplit(env["AWS_ENDPOINT_URL"]).port
        assert listening_addresses(port)
        assert float(env["REPRO_MOTO_START_SECONDS"]) > 0
    assert listening_addresses(port) == set()


HOLDER = textwrap.dedent("""
    import sys, time
    from harness import services
    with services.started(["moto"]) as env:
        print(env["AWS_ENDPOINT_URL"], flush=True)
        time.sleep(600)
""")


def _start_holder():
    """A parent process that starts the service and sleeps inside it; returns it and the server's port."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)
    port = urlsplit(proc.stdout.readline().decode().strip()).port
    assert port and listening_addresses(port)
    return proc, port


def _wait_closed(port: int, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not listening_addresses(port):
            return True
        time.sleep(0.1)
    return False


def test_ctrl_c_in_the_parent_stops_the_server():
    proc, port = _start_holder()
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    assert _wait_closed(port)


def test_a_killed_parent_leaves_no_server_behind():
    proc, port = _start_holder()
    proc.kill()  # no cleanup code runs: the server must notice its stdin closing
    proc.wait(timeout=10)
    assert _wait_closed(port)


def test_a_server_that_cannot_start_is_a_usage_error(monkeypatch):
    from harness.errors import UsageError

    monkeypatch.setattr(moto.sys, "executable", "/bin/false")
    with pytest.raises(UsageError, match="moto server did not start"):
        moto.start(timeout=10)


# ---- atomic conditional writes: real concurrent requests ----

def _race(workers: int, attempt) -> int:
    """Run `attempt(k)` from `workers` threads released together; how many returned True."""
    barrier = threading.Barrier(workers)
    wins = []

    def run(k):
        barrier.wait()
        if attempt(k):
            wins.append(k)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(wins)


def test_concurrent_put_if_none_match_has_exactly_one_winner(server):
    s3 = client(server, "s3")
    s3.create_bucket(Bucket="race-put")
    clients = [client(server, "s3") for _ in range(8)]  # one per thread: boto3 clients, own pools

    for round_ in range(150):
        key = f"_delta_log/{round_:020d}.json"

        def put(k):
            try:
                clients[k].put_object(Bucket="race-put", Key=key, Body=f"writer {k}".encode(), IfNoneMatch="*")
                return True
            except botocore.exceptions.ClientError as exc:
                assert exc.response["Error"]["Code"] == "PreconditionFailed"
                return False

        assert _race(len(clients), put) == 1, f"round {round_}: two conditional puts both won"


def test_concurrent_conditional_put_item_has_exactly_one_winner(server):
    dynamodb = client(server, "dynamodb")
    dynamodb.create_table(TableName="race-lock", BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "tablePath", "AttributeType": "S"},
                                                {"AttributeName": "fileName", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "tablePath", "KeyType": "HASH"},
                                     {"AttributeName": "fileName", "KeyType": "RANGE"}])
    clients = [client(server, "dynamodb") for _ in range(8)]

    for round_ in range(150):
        def put(k):
            try:
                clients[k].put_item(TableName="race-lock", ConditionExpression="attribute_not_exists(fileName)",
                                    Item={"tablePath": {"S": "s3://t"}, "fileName": {"S": f"{round_:020d}.json"},
                                          "writer": {"N": str(k)}})
                return True
            except botocore.exceptions.ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
                return False

        assert _race(len(clients), put) == 1, f"round {round_}: two conditional put_items both won"


def _racy_app():
    """A check-then-set WSGI app with a pause in between: racy unless requests are serialised."""
    store = {}

    def app(environ, start_response):
        key = environ["PATH_INFO"]
        if key in store:
            start_response("412 Precondition Failed", [("Content-Length", "0")])
            return [b""]
        time.sleep(0.01)
        store[key] = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    return app


@pytest.mark.parametrize("wrapped", [False, True])
def test_serialising_the_app_is_what_makes_check_then_set_atomic(wrapped):
    """The same threaded server and concurrent requests with and without the lock: the
    unserialised app has several winners, so the moto tests above can tell a broken server."""
    import urllib.error
    import urllib.request

    from werkzeug.serving import make_server

    app = moto_app.serialised(_racy_app()) if wrapped else _racy_app()
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        def put(k):
            request = urllib.request.Request(f"http://127.0.0.1:{httpd.server_port}/key", data=b"x",
                                             method="PUT")
            try:
                with urllib.request.urlopen(request, timeout=30):
                    return True
            except urllib.error.HTTPError as exc:
                assert exc.code == 412
                return False

        winners = _race(8, put)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
    assert winners == 1 if wrapped else winners > 1


def test_athena_batch_get_query_execution_is_answered(server):
    athena = client(server, "athena")
    ids = [athena.start_query_execution(QueryString=f"SELECT {n}", WorkGroup="primary",
                                        ResultConfiguration={"OutputLocation": "s3://race-put/q/"})["QueryExecutionId"]
           for n in range(2)]
    answer = athena.batch_get_query_execution(QueryExecutionIds=ids + ["no-such-id"])
    assert sorted(q["QueryExecutionId"] for q in answer["QueryExecutions"]) == sorted(ids)
    assert [q["StatementType"] for q in answer["QueryExecutions"]] == ["DML", "DML"]
    assert [u["QueryExecutionId"] for u in answer["UnprocessedQueryExecutionIds"]] == ["no-such-id"]


# ---- the child's environment reaches 127.0.0.1 only ----

REAL_LOOKING = {"AWS_ACCESS_KEY_ID": "AKIAREALLOOKINGKEY00", "AWS_SECRET_ACCESS_KEY": "real-secret",
                "AWS_SESSION_TOKEN": "real-token", "AWS_PROFILE": "production",
                "AWS_ENDPOINT_URL": "https://s3.eu-west-1.amazonaws.com", "AWS_DEFAULT_REGION": "eu-west-1"}


def assert_only_loopback(env: dict):
    local_endpoint(env)  # what every moto repro checks first
    endpoints = {k: v for k, v in env.items() if k.startswith("AWS_ENDPOINT")}
    assert endpoints and all(urlsplit(v).hostname == "127.0.0.1" for v in endpoints.values()), endpoints
    assert {k: env[k] for k in moto.FAKE_CREDENTIALS} == moto.FAKE_CREDENTIALS
    assert "AWS_PROFILE" not in env
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert not any(v in env.values() for v in REAL_LOOKING.values())


def test_local_endpoint_refuses_anything_but_loopback(server):
    assert local_endpoint(server.env) == server.url
    for bad in ({}, {**server.env, "AWS_ENDPOINT_URL_S3": "https://s3.amazonaws.com"},
                {**server.env, "AWS_ENDPOINT_URL": "http://localhost:1"}):
        with pytest.raises(RuntimeError, match="refusing to run"):
            local_endpoint(bad)


def test_child_env_points_only_at_loopback(server, monkeypatch):
    for key, value in REAL_LOOKING.items():
        monkeypatch.setenv(key, value)
    assert_only_loopback(child_env(server.env))


ENV_REPRO = textwrap.dedent('''
    """Synthetic: reports its AWS environment, or crashes, inside a real child."""
    BUG = {"id": "moto-env-probe", "title": "probe", "packages": [], "requirements": [],
           "failure_kind": "exception", "signature": "never", "services": ["moto"],
           "trigger_rate": {"reproduced": 1, "attempts": 1},
           "variants": {"trigger": {"role": "trigger", "run": "crash", "timeout": 30},
                        "control": {"role": "control", "run": "report", "timeout": 30}}}

    def report(ctx):
        import json, os
        ctx.note(json.dumps({k: v for k, v in os.environ.items() if k.startswith("AWS_")}))
        return {}

    def crash(ctx):
        import os, signal
        os.kill(os.getpid(), signal.SIGSEGV)
''')


def test_a_real_child_sees_only_loopback_and_a_crash_leaves_the_server_up(tmp_path, monkeypatch):
    (tmp_path / "moto_env_probe.py").write_text(ENV_REPRO)
    monkeypatch.setenv("REPRO_PATH", str(tmp_path))
    for key, value in REAL_LOOKING.items():
        monkeypatch.setenv(key, value)
    with services.started(["moto"]) as env:
        port = urlsplit(env["AWS_ENDPOINT_URL"]).port
        record = run_cell(Cell("moto-env-probe", "trigger", "current"), Options(attempts=1, service_env=env))
        # The trigger crashed, so the control ran after it, in a real child, and reported its environment.
        seen = json.loads(record["controls"][0]["evidence"]["notes"][0])
        assert_only_loopback(seen)
        assert record["outcomes"] == {"crash": 1}
        assert listening_addresses(port)  # the attempt's crash did not touch the server
    assert _wait_closed(port)
