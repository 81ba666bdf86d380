"""delta-commit-reported-failed: concurrent appends commit, yet the call raises.

Runs inside the target interpreter: stdlib at import time, deltalake imported lazily.

Its cells and the verdict each should give: matrix/delta_commit_reported_failed.toml (schema:
matrix/README.md); what is known of the bug upstream and what was measured:
repros/delta_commit_reported_failed.md.
"""

BUG = {
    "id": "delta-commit-reported-failed",
    "title": "write_deltalake(path, ..., mode='append') from concurrent writers raises although its "
             "commit landed (DeltaError: Version mismatch)",
    "upstream": [
        "delta-io/delta-rs#2279 (report: successful writes return an error, 0.17.1)",
        "delta-io/delta-rs#2262 (Version mismatch on append, 0.16)",
        "delta-io/delta-rs#2509 (the same for a concurrent delete, 0.17.3)",
    ],
    "packages": ["deltalake"],
    "requirements": ["deltalake", "pyarrow"],
    "failure_kind": "exception",
    # The repro prefixes an error with this word only when every append's rows are in the table
    # afterwards: the write that raised had committed. A genuine conflict (rows missing) keeps its
    # own text and is an other-failure, not this bug.
    "signature": r"^committed-but-raised: ",
    # Measured with `repro run delta-commit-reported-failed --with deltalake==0.17.0 --exclude-newer
    # release --attempts 5 --measure --control-attempts 1` on Python 3.11.7 (and 5 of 5 on each of
    # 0.16.1-0.17.1, 4 of 5 on 0.17.2: the page).
    "trigger_rate": {"reproduced": 5, "attempts": 5, "cell": "py3.11.7 deltalake==0.17.0"},
    "services": [],
    "variants": {
        "trigger": {"role": "trigger", "run": "concurrent_appends", "timeout": 60,
                    "params": {"threads": 8, "writes": 16}},
        "control-serial": {"role": "control", "run": "serial_appends", "timeout": 60,
                           "params": {"writes": 16}},
    },
}

ROWS_PER_APPEND = 3


def _appends(ctx, threads, writes):
    """`writes` appends of 3 rows to a fresh table from `threads` threads released together (each its
    own handle: the table's path); then every error, marked where the table holds all the rows."""
    import inspect
    import os
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    path = os.path.join(ctx.workdir, "table")
    write_deltalake(path, pa.table({"x": pa.array([0], pa.int64())}))
    data = pa.table({"x": pa.array(range(ROWS_PER_APPEND), pa.int64())})
    # Before 0.19 the default engine was pyarrow; the commit path of #2279 is the rust engine's.
    kwargs = {"engine": "rust"} if "engine" in inspect.signature(write_deltalake).parameters else {}
    barrier = threading.Barrier(min(threads, writes))

    def append(number):
        if number < barrier.parties:
            barrier.wait(timeout=30)
        write_deltalake(path, data, mode="append", **kwargs)

    errors = []
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(append, n) for n in range(writes)]:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - every failure is evidence for the oracle
                errors.append("%s: %s" % (type(exc).__name__, exc))
    rows = DeltaTable(path).to_pyarrow_table().num_rows
    every_append_landed = rows == 1 + ROWS_PER_APPEND * writes
    ctx.note("%d appends from %d threads: %d raised, %d rows in the table (%d if all landed)"
             % (writes, threads, len(errors), rows, 1 + ROWS_PER_APPEND * writes))
    if every_append_landed:
        errors = ["committed-but-raised: " + error for error in errors]
    return {"errors": errors}


def concurrent_appends(ctx):
    return _appends(ctx, int(ctx.param("threads", 8)), int(ctx.param("writes", 16)))


def serial_appends(ctx):
    return _appends(ctx, 1, int(ctx.param("writes", 16)))
