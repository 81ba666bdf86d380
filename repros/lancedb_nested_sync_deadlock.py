"""lancedb-nested-sync-deadlock: a sync call fed by an iterator that makes another sync call hangs.

The sync API runs each call as a coroutine on one background asyncio loop (from 0.17.0,
lancedb#1905) and blocks on its result. `create_table("copy", datagen())` consumes the
generator from inside that loop; the generator's `search().to_batches()` is a sync call too,
so it schedules a coroutine on the same loop and blocks it waiting: the loop waits on
itself forever. No concurrency of the user's own is needed: one thread deadlocks alone.

The call runs in a worker thread; not done after `patience` seconds (a healthy copy of 100
rows takes < 0.1 s) it is the bug's stall: `ctx.hang_evidence`, then the armed deadline.

Runs inside the target interpreter: stdlib at import time, lancedb imported lazily.

Its cells and the verdict each should give: matrix/lancedb_nested_sync_deadlock.toml (schema:
matrix/README.md); what is known of the bug upstream and what was measured:
repros/lancedb_nested_sync_deadlock.md.
"""

BUG = {
    "id": "lancedb-nested-sync-deadlock",
    "title": "conn.create_table(name, generator) whose generator iterates another table's "
             "search().to_batches() hangs forever (one thread, sync API)",
    "upstream": [
        "lancedb/lancedb#2267 (report, 0.21.1: recursive use of the sync API deadlocks; closed)",
        "lancedb/lancedb#2107 (the same with table.add(generator) of search().to_arrow(); open)",
        "lancedb/lancedb#1905 (0.17.0: the sync API runs on one background asyncio loop)",
    ],
    "packages": ["lancedb"],
    # 0.21.2 forgets to declare numpy and pandas.
    "requirements": ["lancedb", "numpy", "pandas"],
    "failure_kind": "hang",
    # Measured with `flock /tmp/repro-measure.lock repro run lancedb-nested-sync-deadlock --python 3.11
    # --with lancedb==0.40.0 --exclude-newer release --attempts 20 --measure`.
    "trigger_rate": {"reproduced": 20, "attempts": 20,
                     "cell": "py3.11.7 lancedb==0.40.0 (dependencies as of its release)"},
    "services": [],
    "variants": {
        "trigger": {"role": "trigger", "run": "create_from_search", "setup_timeout": 60, "timeout": 3,
                    "params": {"patience": 2.0}},
        # Measured as the trigger, with `--variant trigger-add --attempts 10`.
        "trigger-add": {"role": "trigger", "run": "add_from_search", "setup_timeout": 60, "timeout": 3,
                        "params": {"patience": 2.0},
                        "trigger_rate": {"reproduced": 10, "attempts": 10,
                                         "cell": "py3.11.7 lancedb==0.40.0 (dependencies as of its release)"}},
        # The workaround: read the source table first, then feed the call from memory.
        "control-materialised": {"role": "control", "run": "create_from_memory", "setup_timeout": 60,
                                 "timeout": 3, "params": {"patience": 2.0}},
    },
}


def _base_table(ctx):
    import os

    import lancedb
    import pyarrow as pa

    conn = lancedb.connect(os.path.join(ctx.workdir, "db"))
    return conn, conn.create_table("base", pa.table({"x": list(range(100))}))


def _wait_for(ctx, call, what):
    """Run `call` in a worker thread; past `patience` seconds it is the stall: say so, arm the
    deadline and wait with no timeout (a deadline that runs out from here is this bug)."""
    import threading

    failures = []

    def work():
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - every failure is evidence
            failures.append("%s: %s" % (type(exc).__name__, exc))

    worker = threading.Thread(target=work, name="nested-sync-call", daemon=True)
    worker.start()
    worker.join(float(ctx.param("patience", 2.0)))
    if worker.is_alive():
        ctx.hang_evidence("%s is not done after %gs (a healthy one takes < 0.1 s): waiting with no timeout"
                          % (what, float(ctx.param("patience", 2.0))))
        ctx.arm_deadline()
        worker.join()
    ctx.note("%s returned" % what)
    return {"errors": failures}


def create_from_search(ctx):
    """lancedb#2267: create_table fed by a generator over another table's search().to_batches()."""
    conn, base = _base_table(ctx)

    def datagen():
        for batch in base.search().to_batches():
            yield batch

    return _wait_for(ctx, lambda: conn.create_table("copy", datagen()), "create_table(copy, generator)")


def add_from_search(ctx):
    """lancedb#2107: table.add fed by a generator of another table's search().limit(10).to_arrow()."""
    conn, base = _base_table(ctx)
    target = conn.create_table("target", schema=base.schema)

    def datagen():
        for _ in range(5):
            yield base.search().limit(10).to_arrow()

    return _wait_for(ctx, lambda: target.add(datagen()), "add(generator)")


def create_from_memory(ctx):
    conn, base = _base_table(ctx)
    batches = base.to_arrow().to_batches()
    return _wait_for(ctx, lambda: conn.create_table("copy", iter(batches)), "create_table(copy, batches in memory)")
