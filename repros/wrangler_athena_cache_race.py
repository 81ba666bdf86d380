"""wrangler-athena-cache-race: awswrangler's local Athena query cache is read without its lock.

`_LocalMetadataCacheManager.update_cache` inserts under `self._lock` (since 3.2.0, #2299),
but `sorted_successful_generator` iterated `self._cache.values()` without it until 3.12.0
(#3137), so a thread inserting while another iterates raises
`RuntimeError: dictionary changed size during iteration`.

Two levels, both with the real library: `trigger` drives the cache manager itself from
threads (one inserting, several reading); `read-sql` calls `wr.athena.read_sql_query`
from threads against moto's Athena/Glue/S3 with the local cache on.

The manager came with the local cache in 2.3.0 (#504) in `awswrangler.athena._utils` and moved
to `awswrangler.athena._cache` in 2.14.0; the library level finds it in either. A release
without it has no cache and so not this bug: the variant says so (`feature_missing`) and the
attempt is clean, which makes the release `absent` and the cache's arrival a transition of a
bisect (a failed import would make it `other-failure`, which a bisect cannot judge).

Runs inside the target interpreter: stdlib at import time, awswrangler imported lazily.

Its cells and the verdict each should give: matrix/wrangler_athena_cache_race.toml (schema: matrix/README.md);
what is known of the bug upstream and what was measured: repros/wrangler_athena_cache_race.md.
"""

BUG = {
    "id": "wrangler-athena-cache-race",
    "title": "wr.athena.read_sql_query from threads with the local cache on raises "
             "RuntimeError: dictionary changed size during iteration",
    "upstream": [
        "aws/aws-sdk-pandas#3136 (report, 3.11.0)",
        "aws/aws-sdk-pandas#3137 (fix: reads under the cache's lock, first released in 3.12.0)",
        "aws/aws-sdk-pandas#2299 (3.2.0: the lock, on writes only)",
    ],
    "packages": ["awswrangler"],
    "requirements": ["awswrangler"],
    "failure_kind": "exception",
    # Both texts are CPython's answer to a dict mutated under a running iteration: a growing
    # cache changes its size, a full one (insert + evict) changes its keys.
    "signature": r"dictionary (changed size|keys changed) during iteration",
    # The weakest trigger cell measured (`repro run ... --attempts 20 --measure`, under the lock):
    # read-sql on 3.13. trigger: 20/20 on 2.14.0 (3.9), 3.2.0 (3.11), 3.11.0 (3.9, 3.11, 3.12, 3.13);
    # read-sql: 20/20 on 3.2.0, 19/20 on 3.11.0 with 3.9, 3.11 and 3.12.
    "trigger_rate": {"reproduced": 14, "attempts": 20, "cell": "py3.13.0 awswrangler==3.11.0 (read-sql)"},
    "services": ["moto"],
    "variants": {
        # Library level: the cache manager itself, one writer and `readers` reader threads.
        "trigger": {"role": "trigger", "run": "cache_threads", "timeout": 60,
                    "params": {"readers": 4, "seconds": 5, "cache_size": 100, "switch_interval": 1e-6},
                    # Its own rate (50 of 50 on this cell; 20 of 20 on every other cell measured);
                    # the bug's rate above is read-sql's, which would make `absent` cost 7 attempts.
                    "trigger_rate": {"reproduced": 50, "attempts": 50,
                                     "cell": "py3.11.7 awswrangler==3.11.0 (trigger)"},
                    "controls": ["control-serialised"]},  # the same calls, never concurrent
        # End to end: read_sql_query from threads against moto, local cache on.
        # `seed` earlier executions in the workgroup make the cache big enough to take a while
        # to iterate, as in a busy workgroup.
        "read-sql": {"role": "trigger", "run": "read_sql_cache_on", "timeout": 120,
                     "controls": ["control-no-cache"],  # the same calls with the cache off
                     "requires": {"awswrangler": ">=3.0.0"},  # athena_cache_settings
                     "params": {"threads": 8, "queries": 6, "seed": 500, "switch_interval": 1e-5}},
        # The same end-to-end workload with the cache off: the documented way around it.
        "control-no-cache": {"role": "control", "run": "read_sql_cache_off", "timeout": 120,
                             "requires": {"awswrangler": ">=3.0.0"},
                             "params": {"threads": 8, "queries": 6, "seed": 500, "switch_interval": 1e-5}},
        # The library-level workload with every cache call behind one caller-side lock: the
        # same calls, never concurrent; shows the failure needs a read racing an insert.
        "control-serialised": {"role": "control", "run": "cache_threads_serialised", "timeout": 60,
                               "params": {"readers": 4, "seconds": 5, "cache_size": 100,
                                          "switch_interval": 1e-6}},
    },
}


def _query_entry(number):
    """A cache entry shaped like Athena's batch_get_query_execution items."""
    import datetime

    when = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=number)
    return {"QueryExecutionId": "query-%d" % number, "Query": "SELECT %d" % number, "StatementType": "DML",
            "Status": {"State": "SUCCEEDED", "SubmissionDateTime": when, "CompletionDateTime": when}}


# Where the cache manager lives: athena._cache from 2.14.0, athena._utils from 2.3.0 to 2.13.0.
CACHE_MODULES = ("awswrangler.athena._cache", "awswrangler.athena._utils")


def _cache_manager_class():
    """The local cache's manager class, or None in a release that has no local cache."""
    import importlib

    import awswrangler  # noqa: F401 - a release that cannot be imported is a failure, not a missing cache

    for module_name in CACHE_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name not in (module_name, "awswrangler.athena"):  # a missing dependency is a real failure
                raise
            continue
        if hasattr(module, "_LocalMetadataCacheManager"):
            return module._LocalMetadataCacheManager
    return None


def _drive_cache(ctx, serialised):
    """One thread inserts through update_cache, `readers` threads read, for `seconds` or a failure."""
    import contextlib
    import sys
    import threading

    manager_class = _cache_manager_class()
    if manager_class is None:
        ctx.note("this release has no local Athena query cache (_LocalMetadataCacheManager): no race to run")
        return {"feature_missing": "awswrangler's local Athena query cache (2.3.0, #504)"}
    sys.setswitchinterval(float(ctx.param("switch_interval", 1e-6)))  # many thread switches per pass
    manager = manager_class()
    manager.max_cache_size = int(ctx.param("cache_size", 100))
    stop = threading.Event()
    errors, counts = [], {"reads": 0, "writes": 0}

    outer = threading.Lock() if serialised else contextlib.nullcontext()

    def loop(step, key):
        try:
            while not stop.is_set():
                with outer:
                    step()
                counts[key] += 1
        except Exception as exc:  # noqa: BLE001 - the failure is the evidence
            errors.append(exc)  # the object: the oracle reads where it was raised
            stop.set()

    number = iter(range(10 ** 12))
    threads = [threading.Thread(target=loop, args=(lambda: manager.update_cache([_query_entry(next(number))]),
                                                   "writes"))]
    threads += [threading.Thread(target=loop, args=(manager.sorted_successful_generator, "reads"))
                for _ in range(int(ctx.param("readers", 4)))]
    for thread in threads:
        thread.start()
    stop.wait(float(ctx.param("seconds", 5)))
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    ctx.note("%(writes)d inserts, %(reads)d reads of the cache" % counts)
    return {"errors": errors}


def cache_threads(ctx):
    return _drive_cache(ctx, serialised=False)


def cache_threads_serialised(ctx):
    return _drive_cache(ctx, serialised=True)


# ---- end to end: read_sql_query from threads against moto's Athena, Glue and S3 ----

def _queue_query_results(url, count):
    """moto runs no SQL: it hands the next registered result to each new execution and writes
    it as the execution's CSV output in S3, which read_sql_query(ctas_approach=False) reads."""
    import json
    import urllib.request

    result = {"rows": [{"Data": [{"VarCharValue": "label"}]}, {"Data": [{"VarCharValue": "moto"}]}],
              "column_info": [{"Name": "label", "Label": "label", "Type": "varchar", "Nullable": "UNKNOWN"}]}
    request = urllib.request.Request(url + "/moto-api/static/athena/query-results", method="POST",
                                     data=json.dumps({"results": [result] * count}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        if response.status != 201:
            raise RuntimeError("moto refused the Athena results: HTTP %d" % response.status)


def _athena_setup(url):
    """A private results bucket, Glue database and Athena workgroup for this attempt."""
    import uuid

    import awswrangler as wr
    import boto3

    for service in ("s3", "athena", "glue", "sts"):  # explicit: old botocore ignores AWS_ENDPOINT_URL
        setattr(wr.config, service + "_endpoint_url", url)
    name = "repro-%s" % uuid.uuid4().hex[:12]
    # One default session for every call (as awswrangler recommends): warmed here, in one thread,
    # so the threads below only create clients from an initialised session.
    boto3.setup_default_session()
    session = boto3.DEFAULT_SESSION
    session.client("sts", endpoint_url=url).get_caller_identity()
    session.client("s3", endpoint_url=url).create_bucket(Bucket=name)
    session.client("glue", endpoint_url=url).create_database(DatabaseInput={"Name": name.replace("-", "_")})
    session.client("athena", endpoint_url=url).create_work_group(
        Name=name, Configuration={"ResultConfiguration": {"OutputLocation": "s3://%s/results/" % name}})
    return name


def _seed_executions(name, url, count):
    """Earlier queries of the workgroup: a cache this size takes a while to iterate."""
    import boto3

    athena = boto3.DEFAULT_SESSION.client("athena", endpoint_url=url)
    for number in range(count):
        # An explicit output location: moto appends each execution's id to the workgroup's own.
        athena.start_query_execution(QueryString="SELECT %d AS earlier" % number, WorkGroup=name,
                                     ResultConfiguration={"OutputLocation": "s3://%s/earlier/" % name})
    return count


def _read_sql_threads(ctx, cache_seconds):
    import sys
    import threading
    import time

    import awswrangler as wr

    from harness.kit import local_endpoint  # stdlib; refuses anything but 127.0.0.1

    url = local_endpoint()
    threads, queries = int(ctx.param("threads", 8)), int(ctx.param("queries", 12))
    name = _athena_setup(url)
    started = time.monotonic()
    seeded = _seed_executions(name, url, int(ctx.param("seed", 0)))
    ctx.note("%d earlier executions seeded in %.1fs" % (seeded, time.monotonic() - started))
    _queue_query_results(url, threads * queries + 8)  # after seeding: each new execution takes one
    # 0 turns the local cache off. moto lists executions oldest first (Athena: newest first),
    # so the remote window must cover all of this attempt's executions to see the new ones.
    window = seeded + threads * queries + 8
    settings = {"max_cache_seconds": cache_seconds, "max_remote_cache_entries": window,
                "max_local_cache_entries": window}
    sys.setswitchinterval(float(ctx.param("switch_interval", 1e-5)))
    barrier = threading.Barrier(threads)
    errors, rows = [], []

    failed = threading.Event()  # the first failure decides the attempt: stop starting queries

    def run(thread):
        try:
            barrier.wait(timeout=60)
            for number in range(queries):
                if failed.is_set():
                    return
                # Distinct SQL: every call misses the cache, runs a query and so grows the cache.
                sql = "SELECT 'moto' AS label, %d AS n" % (thread * 1000 + number)
                frame = wr.athena.read_sql_query(sql, database=name.replace("-", "_"), workgroup=name,
                                                 ctas_approach=False, athena_cache_settings=settings,
                                                 athena_query_wait_polling_delay=0.01)
                rows.append(len(frame))
        except Exception as exc:  # noqa: BLE001 - every failure is evidence for the oracle
            errors.append(exc)  # the object: the oracle reads where it was raised
            failed.set()

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    ctx.note("%d of %d queries returned (%d rows), %d failed, local cache %s, %.1fs" % (
        len(rows), threads * queries, sum(rows), len(errors), "on" if cache_seconds else "off",
        time.monotonic() - started))
    return {"errors": errors}


def read_sql_cache_on(ctx):
    return _read_sql_threads(ctx, cache_seconds=900)


def read_sql_cache_off(ctx):
    return _read_sql_threads(ctx, cache_seconds=0)
