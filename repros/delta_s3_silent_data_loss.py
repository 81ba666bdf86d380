"""delta-s3-silent-data-loss: concurrent appends to a Delta table on S3 with unsafe rename lose rows.

With `s3_allow_unsafe_rename=True` delta-rs commits by "rename if not exists" emulated as
check-then-copy on S3, so two writers can both think they created commit N: one commit
file overwrites the other and that writer's rows vanish, while both calls return normally.
Until deltalake 0.23.0 (delta-io/delta-rs#3091) made S3 conditional put (If-None-Match)
the default commit path, nothing but a DynamoDB lock (or opting into conditional put,
0.19.2+) prevented it.

The writers are processes (as in the report: parallel Lambdas), started warm and released
together; the table lives on the harness's moto server. Each writer runs this file as a
script. Runs inside the target interpreter: stdlib at import time, libraries lazily.

Its cells and the verdict each should give: matrix/delta_s3_silent_data_loss.toml (schema: matrix/README.md);
what is known of the bug upstream and what was measured: repros/delta_s3_silent_data_loss.md.
"""
import json
import os
import subprocess
import sys
import time

BUG = {
    "id": "delta-s3-silent-data-loss",
    "title": "awswrangler.s3.to_deltalake(..., s3_allow_unsafe_rename=True) from parallel writers "
             "returns normally but loses rows",
    "upstream": [
        "aws/aws-sdk-pandas#2771 (report: parallel Lambdas, rows missing, no error; awswrangler 3.6.0)",
        "aws/aws-sdk-pandas#2705 (lock_dynamodb_table, awswrangler 3.7.2: the documented way out)",
        "delta-io/delta-rs#2813 (S3 conditional put, opt-in from 0.19.2)",
        "delta-io/delta-rs#3091 (conditional put is the S3 default from 0.23.0: fixed)",
        "delta-io/delta-rs#4464 (1.6.1: DynamoDB log store removed, conditional put always)",
    ],
    "packages": ["awswrangler", "deltalake"],
    "requirements": ["awswrangler", "deltalake", "pyarrow"],
    "failure_kind": "data-loss",
    "trigger_rate": {"reproduced": 20, "attempts": 20,
                     "cell": "py3.11.7 awswrangler==3.11.0 deltalake==0.22.3 (trigger)"},
    "services": ["moto"],
    "variants": {
        # N writer processes each append K rows through awswrangler with unsafe rename.
        "trigger": {"role": "trigger", "run": "wrangler_unsafe_rename", "timeout": 180,
                    "params": {"writers": 4, "rows": 10, "unsafe_rename": True, "writers_timeout": 150}},
        # The same through deltalake.write_deltalake directly: the loss is delta-rs's.
        "trigger-deltalake": {"role": "trigger", "run": "deltalake_unsafe_rename", "timeout": 180,
                              "params": {"writers": 4, "rows": 10, "unsafe_rename": True, "writers_timeout": 150},
                              # 50 of 50 here; 20 of 20 on each present pair 0.15.3-0.22.3
                              "trigger_rate": {"reproduced": 50, "attempts": 50,
                                               "cell": "py3.11.7 awswrangler==3.11.0 deltalake==0.22.3"}},
        # The trigger plus a DynamoDB lock table on the same moto server (delta-rs's
        # S3DynamoDbLogStore, python 0.15.0 on; removed in 1.6.1, where conditional put is used).
        "control-lock": {"role": "control", "run": "wrangler_dynamodb_lock", "timeout": 180,
                         "requires": {"deltalake": ">=0.15.0"}, "params": {"writers": 4, "rows": 10}},
        # The trigger plus aws_conditional_put=etag, where the release supports it (0.19.2 on).
        "control-conditional-put": {"role": "control", "run": "wrangler_conditional_put", "timeout": 180,
                                    "requires": {"deltalake": ">=0.19.2"},
                                    "params": {"writers": 4, "rows": 10}},
    },
}


def _storage_options(url, extra):
    """Explicit, so no release falls back to its defaults (instance metadata, real endpoints)."""
    return dict({"AWS_ENDPOINT_URL": url, "AWS_ALLOW_HTTP": "true", "AWS_REGION": os.environ["AWS_REGION"],
                 "AWS_S3_ALLOW_UNSAFE_RENAME": "true"}, **extra)


def _create_lock_table(url, name):
    """The lock table delta-rs documents: tablePath (HASH) + fileName (RANGE), on demand."""
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=url)
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "tablePath", "AttributeType": "S"},
                                                {"AttributeName": "fileName", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "tablePath", "KeyType": "HASH"},
                                     {"AttributeName": "fileName", "KeyType": "RANGE"}])


def _seed(path, options):
    """One row first: an empty table cannot be appended to from 0.19 on."""
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(path, pa.table({"writer": pa.array([-1], pa.int64()), "row": pa.array([0], pa.int64())}),
                    storage_options=options)


def _log_and_data_files(url, bucket):
    import re

    import boto3

    keys = []
    for page in boto3.client("s3", endpoint_url=url).get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix="table/"):
        keys += [item["Key"] for item in page.get("Contents", [])]
    commits = [k for k in keys if re.search(r"_delta_log/\d{20}\.json$", k)]
    return len(commits), len([k for k in keys if k.endswith(".parquet")])


def _start_writers(ctx, spec, procs):
    """Start the writer processes (into `procs`, for the caller to clean up) and wait until each
    has imported its libraries."""
    for number in range(int(ctx.param("writers", 4))):
        procs.append(subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), json.dumps(dict(spec, writer=number))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for proc in procs:  # each says "ready" once warm (warnings on its stderr may come first)
        seen = []
        while not seen or seen[-1] != "ready":
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("a writer did not start: %r" % seen[-3:])
            seen.append(line.decode(errors="replace").strip())


def _release_and_collect(procs, deadline):
    """Release every writer at once; their reports as dicts (a writer that fails is an error)."""
    for proc in procs:
        proc.stdin.write(b"go\n")
    for proc in procs:
        proc.stdin.flush()
        proc.stdin.close()
        proc.stdin = None  # so communicate() below only reads
    reports = []
    for proc in procs:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            reports.append(json.loads(lines[-1]))
        except (IndexError, ValueError):
            reports.append({"ok": False, "error": "writer exited %s: %s" % (proc.returncode, lines[-3:])})
    return reports


def _appends(ctx, api, extra_options, lock=False):
    """Seed, N concurrent appends, read back: the oracle's observation."""
    import uuid

    import boto3
    from deltalake import DeltaTable

    from harness.kit import local_endpoint  # stdlib; refuses anything but 127.0.0.1

    url = local_endpoint()
    started = time.monotonic()
    bucket = "repro-%s" % uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
    if lock:
        _create_lock_table(url, bucket)
        extra_options = dict(extra_options, AWS_S3_LOCKING_PROVIDER="dynamodb", DELTA_DYNAMO_TABLE_NAME=bucket)
    path = "s3://%s/table" % bucket
    options = _storage_options(url, extra_options)
    _seed(path, options)
    rows = int(ctx.param("rows", 10))
    # unsafe_rename=False (writers only; the seed is one writer): releases before 0.23.0 then
    # refuse loudly ("LockClient required"), which must be other-failure, never this bug.
    unsafe = str(ctx.param("unsafe_rename", True)).lower() not in ("false", "0", "no")
    if not unsafe:
        extra_options = dict(extra_options, AWS_S3_ALLOW_UNSAFE_RENAME="false")
    spec = {"api": api, "path": path, "rows": rows, "url": url, "extra": extra_options, "lock": lock,
            "unsafe_rename": unsafe}
    procs = []
    try:
        _start_writers(ctx, spec, procs)
        reports = _release_and_collect(procs, started + float(ctx.param("writers_timeout", 150)))
    finally:
        for proc in procs:  # the harness kills the session too; this keeps a clean attempt tidy
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for pipe in (proc.stdin, proc.stdout):
                if pipe:
                    pipe.close()
    table = DeltaTable(path, storage_options=options).to_pyarrow_table(columns=["writer"])
    found = {}
    for writer in table.column("writer").to_pylist():
        found[writer] = found.get(writer, 0) + 1
    errors = [r["error"] for r in reports if not r["ok"]]
    lost = sum(rows - found.get(n, 0) for n, r in enumerate(reports) if r["ok"])
    commits, data_files = _log_and_data_files(url, bucket)
    ctx.note("%d of %d writers returned normally; rows found per writer %s (seed %d); lost %d; "
             "%d commits and %d data files in the table (%.1fs)" % (
                 len(reports) - len(errors), len(reports), [found.get(n, 0) for n in range(len(reports))],
                 found.get(-1, 0), lost, commits, data_files, time.monotonic() - started))
    seed_lost = 0 if found.get(-1) else 1
    return {"errors": errors, "lost": lost + seed_lost}


def wrangler_unsafe_rename(ctx):
    return _appends(ctx, "wrangler", {})


def deltalake_unsafe_rename(ctx):
    return _appends(ctx, "deltalake", {})


def wrangler_dynamodb_lock(ctx):
    return _appends(ctx, "wrangler", {}, lock=True)


def wrangler_conditional_put(ctx):
    return _appends(ctx, "wrangler", {"aws_conditional_put": "etag"})  # the spelling 0.19.2 knows


# ---- writer process: python delta_s3_silent_data_loss.py SPEC ----

def _write(spec):
    """Import first, say ready, wait for the release, then append once."""
    import inspect

    import pandas as pd

    frame = pd.DataFrame({"writer": [spec["writer"]] * spec["rows"], "row": list(range(spec["rows"]))},
                         dtype="int64")
    options = _storage_options(spec["url"], spec["extra"])
    if spec["api"] == "wrangler":
        import awswrangler as wr

        kwargs = {"s3_allow_unsafe_rename": spec["unsafe_rename"], "s3_additional_kwargs": options}
        if spec["lock"] and "lock_dynamodb_table" in inspect.signature(wr.s3.to_deltalake).parameters:
            # 3.7.2+: the documented argument (it sets the same two storage options).
            kwargs["lock_dynamodb_table"] = options["DELTA_DYNAMO_TABLE_NAME"]

        def append():
            wr.s3.to_deltalake(df=frame, path=spec["path"], mode="append", index=False, **kwargs)
    else:
        import pyarrow as pa
        from deltalake import write_deltalake

        def append():
            write_deltalake(spec["path"], pa.Table.from_pandas(frame, preserve_index=False), mode="append",
                            storage_options=options)
    print("ready", flush=True)
    sys.stdin.readline()
    append()


def _writer_main(argv):
    spec = json.loads(argv[0])
    try:
        _write(spec)
        report = {"ok": True}
    except BaseException as exc:  # noqa: BLE001 - a loud failure is reported, not hidden
        report = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
    print(json.dumps(report), flush=True)
    os._exit(0)  # some releases abort at interpreter exit; the report is already out


if __name__ == "__main__":
    _writer_main(sys.argv[1:])
