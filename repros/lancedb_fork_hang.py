"""lancedb-fork-hang: a child forked after the parent used lancedb hangs in connect/open_table/add.

The runtimes lancedb drives its work through (a tokio runtime, from 0.17 also an asyncio
loop on a background thread started at import) live in threads, and threads do not
survive fork(): the forked worker waits forever for them. The attempt child blocks on the
worker; the harness's deadline makes that a `hang`, with the stacks of every process.

From 0.32.0 the runtimes are rebuilt in the child: the steady hang is gone, but a child
forked after the parent *used* lancedb still dies by SIGSEGV in some attempts (a native
thread of _lancedb.abi3.so) and, rarely, still hangs. A signal death is `other-failure`.

Runs inside the target interpreter: stdlib at import time, lancedb imported lazily.

Its cells and the verdict each should give: matrix/lancedb_fork_hang.toml (schema: matrix/README.md);
what is known of the bug upstream and what was measured: repros/lancedb_fork_hang.md.
"""

BUG = {
    "id": "lancedb-fork-hang",
    "title": "table.add (connect, open_table) in a ProcessPoolExecutor worker started with fork after "
             "the parent used lancedb hangs forever",
    "upstream": [
        "lancedb/lancedb#1393 (report: table.add deadlocks under ProcessPoolExecutor)",
        "lancedb/lancedb#768 (ask for fork detection); #2258 (0.21.2: 'not fork-safe' warning, still hangs)",
        "lancedb/lancedb#1905 (0.17.0: background event loop started at import, so importing is enough)",
        "lancedb/lancedb#3339 (fix: runtimes rebuilt in the child after fork, first released in 0.32.0)",
        "lancedb/lancedb#3432, #3459 (0.34.0: more state reset after fork)",
        "lance-format/lance#4903 (pylance 0.38.3: runtimes rebuilt in the child)",
    ],
    "packages": ["lancedb", "pylance"],
    # 0.21.2 forgets to declare numpy.
    "requirements": ["lancedb", "numpy"],
    "failure_kind": "hang",
    # Measured with `flock /tmp/repro-measure.lock repro run lancedb-fork-hang --python 3.11
    # --with lancedb==0.14.0 --exclude-newer release --attempts 20 --measure --control-attempts 0`.
    # Also 20/20: trigger on py3.12.1 lancedb==0.30.2, trigger-import on py3.11.7 lancedb==0.30.2.
    "trigger_rate": {"reproduced": 20, "attempts": 20,
                     "cell": "py3.11.7 lancedb==0.14.0 (dependencies as of its release)"},
    "notes": "0.32.0+ (runtimes rebuilt after fork): trigger on lancedb==0.40.0 gave 16 clean and 4 "
             "SIGSEGV (other-failure) in 20 attempts on py3.11.7, 13 clean and 7 SIGSEGV on py3.12.1, no "
             "hang; with --param rounds=100, 3 of 10 attempts still hung (py3.11.7). A parent that only "
             "imported lancedb (trigger-import) is clean there.",
    "services": [],
    # The deadline is armed when a worker is not done after `patience` seconds (ctx.arm_deadline):
    # importing lancedb and creating the table take 2 s on an idle machine and over 8 s on a
    # loaded one, and are not the hang. A healthy fork worker finishes in < 0.3 s: 2 s of
    # patience plus 3 s of deadline are far from it and keep the verdict of a hang fast.
    # spawn and forkserver workers import lancedb afresh (forkserver: up to 7 s): much longer.
    "variants": {
        "trigger": {"role": "trigger", "run": "fork_after_use", "setup_timeout": 60, "timeout": 3,
                    "params": {"rounds": 1, "patience": 2.0}},
        "trigger-import": {"role": "trigger", "run": "fork_after_import", "setup_timeout": 60, "timeout": 3,
                           "params": {"rounds": 1, "patience": 2.0},
                           "trigger_rate": {"reproduced": 50, "attempts": 50, "cell": "py3.11.7 lancedb==0.30.2"}},
        "control-spawn": {"role": "control", "run": "spawn_after_use", "setup_timeout": 60, "timeout": 60,
                          "params": {"rounds": 1, "patience": 30.0}},
        "control-forkserver": {"role": "control", "run": "forkserver_after_use", "setup_timeout": 60,
                               "timeout": 60, "params": {"rounds": 1, "patience": 30.0}},
    },
}

# The worker's code runs through the builtin `exec`, which pickles by reference under every
# start method; a function of this file would not: the harness loads it under a module name
# that spawn and forkserver children cannot import.
WORKER = """
import lancedb
db = lancedb.connect(uri)
table = db.create_table(name, data=[{"vector": [1.0, 0.0]}]) if create else db.open_table("rows")
table.add([{"vector": [1.0, 2.0]}])
"""


def _create_table(ctx):
    import os

    import lancedb

    uri = os.path.join(ctx.workdir, "db")
    lancedb.connect(uri).create_table("rows", data=[{"vector": [1.0, 0.0]}])
    return uri


def _run_workers(ctx, method, uri, create):
    """`rounds` one-worker pools started with `method`, one after the other, each running WORKER.

    A worker not done after `patience` seconds arms the harness's deadline and is waited for
    with no timeout: if it hangs, the harness records the hang with every process's stacks.
    A worker that dies by a signal or fails does not stop the rounds (a later one may hang);
    the first signal is reported, which makes the attempt another failure, not this bug.
    """
    rounds, patience = int(ctx.param("rounds", 1)), float(ctx.param("patience", 2.0))
    signals, errors, failed_rounds = [], [], []
    for number in range(1, rounds + 1):
        round_errors, round_signals, slow = _one_pool(ctx, method, uri, create, number, patience)
        errors += round_errors
        signals += round_signals
        if round_errors or round_signals:
            failed_rounds.append(number)
        if slow:  # the deadline is armed now: further rounds would run against it
            break
    ctx.note("%d of %d round(s); %d worker(s) died by a signal (%s), %d error(s); rounds with a failure: %s"
             % (number, rounds, len(signals), sorted(set(signals)), len(errors), failed_rounds[:20]))
    return {"errors": errors[:5], "signal": signals[0] if signals else None}


def _one_pool(ctx, method, uri, create, number, patience):
    """One ProcessPoolExecutor with one worker: its errors, the signal it died by, and
    whether it outlived `patience` (then the deadline was armed).

    A worker that dies by a signal breaks the pool (BrokenProcessPool); the signal itself is
    only in the worker's exit code.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, wait

    errors = []
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context(method)) as pool:
        future = pool.submit(exec, WORKER, {"uri": uri, "create": create, "name": "rows%d" % number})
        # The executor does not expose its worker's exit code; keep the process to read it.
        processes = list(pool._processes.values())
        slow = bool(wait([future], timeout=patience).not_done)
        if slow:
            # A healthy worker is done in < 0.3 s: from here a deadline that runs out is this bug.
            ctx.hang_evidence("round %d: the %s worker (pid %s) is not done after %gs: waiting with no timeout"
                              % (number, method, [p.pid for p in processes], patience))
            ctx.arm_deadline()
        try:
            future.result()
        except Exception as exc:  # noqa: BLE001 - BrokenProcessPool or the worker's own error
            errors.append("%s: %s" % (type(exc).__name__, exc))
    for process in processes:
        process.join(timeout=5)
    signals = [-p.exitcode for p in processes if p.exitcode is not None and p.exitcode < 0]
    return errors, signals, slow


def fork_after_use(ctx):
    """The report (#1393): the parent created the table, then a fork worker adds to it."""
    return _run_workers(ctx, "fork", _create_table(ctx), create=False)


def fork_after_import(ctx):
    """The parent only imported lancedb (0.17+ starts its event loop thread at import)."""
    import os

    import lancedb  # noqa: F401 - importing is the trigger

    return _run_workers(ctx, "fork", os.path.join(ctx.workdir, "db"), create=True)


def spawn_after_use(ctx):
    return _run_workers(ctx, "spawn", _create_table(ctx), create=False)


def forkserver_after_use(ctx):
    return _run_workers(ctx, "forkserver", _create_table(ctx), create=False)
