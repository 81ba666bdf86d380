"""lancedb-merge-insert-duplicates: two concurrent upserts of the same new key both insert it.

`merge_insert("id").when_matched_update_all().when_not_matched_insert_all()` is how users keep
one row per key. Two writers that both find the key absent both plan an insert; each commit
only adds a fragment and removes none, so lance's conflict check finds nothing in common and
both succeed: the key is stored twice, with no error. Silent corruption, on a local disk.

One race is won by the bug in a third to a half of the rounds here, so an attempt runs up to
`rounds` races (a fresh key, two freshly opened handles each), bounded by `seconds`, and stops
at the first key stored twice. The oracle is `corruption`: the number of keys found more than
once (`corrupt`); any error is a loud failure, never this bug.

Runs inside the target interpreter: stdlib at import time, lancedb imported lazily.

Its cells and the verdict each should give: matrix/lancedb_merge_insert_duplicates.toml (schema:
matrix/README.md); what is known of the bug upstream and what was measured:
repros/lancedb_merge_insert_duplicates.md.
"""

BUG = {
    "id": "lancedb-merge-insert-duplicates",
    "title": "two concurrent merge_insert upserts (asyncio.gather, two table handles) of the same new "
             "key both insert it: the key is stored twice, no error",
    "upstream": [
        "lancedb/lancedb#2463 (report, 0.24.0; open)",
        "lance-format/lance#4585 (the same in lance; closed by #4687, which fixed updated rows only)",
        "lance-format/lance#8949 (new keys still duplicate after #4687)",
        "lance-format/lance#5633 (inserted-key filter when the schema declares an unenforced primary key; "
        "first in lancedb 0.29.0 here)",
        "lance-format/lance#6018, #9238 (open fixes for ordinary ON columns)",
        "lancedb/lancedb#3377 (the same through the JS binding; open)",
    ],
    "packages": ["lancedb"],
    "requirements": ["lancedb"],
    "failure_kind": "corruption",
    # Measured with `flock /tmp/repro-measure.lock repro run lancedb-merge-insert-duplicates
    # --python 3.11 --with lancedb==0.30.2 --exclude-newer release --attempts 20 --measure
    # --control-attempts 0`; also 20 of 20 with lancedb==0.40.0 (the newest). One race alone
    # duplicated in 4 of 20 trials on 0.30.2 and 8 of 20 on 0.40.0 by hand: hence the rounds.
    "trigger_rate": {"reproduced": 20, "attempts": 20,
                     "cell": "py3.11.7 lancedb==0.30.2 (dependencies as of its release)"},
    "services": [],
    "variants": {
        "trigger": {"role": "trigger", "run": "concurrent_upserts", "timeout": 60,
                    "params": {"rounds": 40, "seconds": 20.0}},
        # The application-level workaround upstream points to (lance#8949): serialise the writes.
        "control-serialised": {"role": "control", "run": "serialised_upserts", "timeout": 60,
                               "params": {"rounds": 40, "seconds": 20.0}},
        # The key declared as lance's unenforced primary key (the case of lance#4585): from lancedb
        # 0.29.0 commits carry a filter of the keys they inserted and the second one conflicts
        # and is retried (lance#5633); before, it duplicates like a plain key.
        # Measured as the trigger, with `--variant trigger-primary-key --with lancedb==0.27.1`.
        "trigger-primary-key": {"role": "trigger", "run": "primary_key_upserts", "timeout": 60,
                                "params": {"rounds": 40, "seconds": 20.0},
                                "trigger_rate": {"reproduced": 20, "attempts": 20,
                                                 "cell": "py3.11.7 lancedb==0.27.1 (dependencies as of its release)"}},
    },
}

PRIMARY_KEY = {"lance-schema:unenforced-primary-key": "true"}


def _schema(primary_key):
    import pyarrow as pa

    return pa.schema([pa.field("id", pa.int64(), nullable=False, metadata=PRIMARY_KEY if primary_key else None),
                      pa.field("value", pa.float64())])


async def _race(uri, schema, key, concurrent):
    """Upsert `key` through two freshly opened handles, at once or one after the other:
    how many rows hold the key afterwards, and the errors as text."""
    import asyncio

    import lancedb
    import pyarrow as pa

    handles = [await (await lancedb.connect_async(uri)).open_table("rows") for _ in range(2)]
    data = pa.table({"id": [key], "value": [float(key)]}, schema=schema)

    async def upsert(table):
        await table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(data)

    if concurrent:
        outcomes = await asyncio.gather(*(upsert(t) for t in handles), return_exceptions=True)
    else:
        outcomes = []
        for table in handles:
            try:
                outcomes.append(await upsert(table))
            except Exception as exc:  # noqa: BLE001 - every failure is evidence
                outcomes.append(exc)
    errors = ["%s: %s" % (type(o).__name__, o) for o in outcomes if isinstance(o, BaseException)]
    return await handles[0].count_rows("id = %d" % key), errors


async def _rounds(ctx, primary_key, concurrent):
    import os
    import time

    import lancedb

    rounds, seconds = int(ctx.param("rounds", 40)), float(ctx.param("seconds", 20.0))
    uri = os.path.join(ctx.workdir, "db")
    schema = _schema(primary_key)
    await (await lancedb.connect_async(uri)).create_table("rows", schema=schema)
    ends = time.monotonic() + seconds
    errors, duplicated, done = [], [], 0
    while done < rounds and time.monotonic() < ends and not duplicated and not errors:
        done += 1
        rows, round_errors = await _race(uri, schema, done, concurrent)
        errors += round_errors
        if rows > 1:
            duplicated.append("key %d stored %d times" % (done, rows))
    ctx.note("%d of %d upsert round(s) (%s, %s); keys stored twice: %s; errors: %d"
             % (done, rounds, "concurrent" if concurrent else "serialised",
                "primary key declared" if primary_key else "plain key", duplicated or "none", len(errors)))
    return {"errors": errors[:5], "corrupt": len(duplicated), "corrupt_detail": "; ".join(duplicated)}


def concurrent_upserts(ctx):
    """lancedb#2463: both upserts of each round at once, via asyncio.gather."""
    import asyncio

    return asyncio.run(_rounds(ctx, primary_key=False, concurrent=True))


def serialised_upserts(ctx):
    import asyncio

    return asyncio.run(_rounds(ctx, primary_key=False, concurrent=False))


def primary_key_upserts(ctx):
    import asyncio

    return asyncio.run(_rounds(ctx, primary_key=True, concurrent=True))
