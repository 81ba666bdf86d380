"""delta-already-borrowed: threads appending through one shared DeltaTable hit PyO3's borrow check.

Runs inside the target interpreter: stdlib at import time, deltalake imported lazily.

Its cells and the verdict each should give: matrix/delta_already_borrowed.toml (schema: matrix/README.md);
what is known of the bug upstream and what was measured: repros/delta_already_borrowed.md.
"""

BUG = {
    "id": "delta-already-borrowed",
    "title": "write_deltalake(dt, ..., mode='append') from threads sharing one DeltaTable raises "
             "RuntimeError: Already borrowed",
    "upstream": [
        "delta-io/delta-rs#2958 (report, 0.20.1)",
        "delta-io/delta-rs#3101 (fix: Mutex in RawDeltaTable, first on the index in 0.23.2)",
        "delta-io/delta-rs#3252 (regression, 0.25.2) reported as #3594",
        "delta-io/delta-rs#3618 (fixed again; first on the index in 1.1.2)",
    ],
    "packages": ["deltalake"],
    # 1.x makes pyarrow an extra; old pyarrow releases need numpy<2 (pin it in the cell).
    "requirements": ["deltalake", "pyarrow"],
    "failure_kind": "exception",
    "signature": r"already (mutably )?borrowed",
    # Measured with `repro run delta-already-borrowed --with deltalake==0.20.1 --exclude-newer release
    # --attempts 50 --measure --control-attempts 0` on Python 3.11.7 (20 of 20 before that).
    "trigger_rate": {"reproduced": 50, "attempts": 50, "cell": "py3.11.7 deltalake==0.20.1"},
    "services": [],
    "variants": {
        "trigger": {"role": "trigger", "run": "shared_table", "timeout": 60,
                    "params": {"threads": 8, "writes": 16}},
        "control-uri": {"role": "control", "run": "table_uri", "timeout": 60,
                        "params": {"threads": 8, "writes": 16}},
    },
}


def _append_concurrently(ctx, target):
    """`writes` appends to `target` from `threads` threads released together; errors as text."""
    import inspect
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa
    from deltalake import write_deltalake

    threads, writes = int(ctx.param("threads", 8)), int(ctx.param("writes", 16))
    data = pa.table({"x": pa.array([1, 2, 3], pa.int64())})
    # Before 0.19 the default engine was pyarrow; the #2958 path is the rust engine. 1.x has no `engine`.
    kwargs = {"engine": "rust"} if "engine" in inspect.signature(write_deltalake).parameters else {}
    barrier = threading.Barrier(min(threads, writes))

    def append(number):
        if number < barrier.parties:
            barrier.wait(timeout=30)
        write_deltalake(target(), data, mode="append", **kwargs)

    errors = []
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(append, n) for n in range(writes)]:
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - every failure is evidence for the oracle
                errors.append(exc)  # the object, not its text: the oracle reads where it was raised
    ctx.note("%d appends from %d threads, %d failed" % (writes, threads, len(errors)))
    return {"errors": errors}


def _seed_table(ctx):
    import os

    import pyarrow as pa
    from deltalake import write_deltalake

    path = os.path.join(ctx.workdir, "table")
    write_deltalake(path, pa.table({"x": pa.array([0], pa.int64())}))
    return path


def shared_table(ctx):
    from deltalake import DeltaTable

    table = DeltaTable(_seed_table(ctx))
    return _append_concurrently(ctx, lambda: table)


def table_uri(ctx):
    path = _seed_table(ctx)
    return _append_concurrently(ctx, lambda: path)
