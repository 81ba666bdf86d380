"""A synthetic partly fixed bug: its trigger reproduces in exactly one attempt of every `every` (20%).

Like lancedb 0.32.0's fork trigger (1 hang in 10 attempts) on a release where a fix closed most of
the race: the known-bad rate in the metadata is 50 of 50, so two clean attempts reach the wanted
confidence against it while the bug is still there. The rate is exact, not drawn: each attempt (of
any variant) appends its variant's name to the `counter` file, and the trigger reproduces on every
`every`-th of its own attempts, so a test of it cannot pass or fail by luck, and counting the lines
counts the child processes that ran.
"""

BUG = {
    "id": "synthetic-partial",
    "title": "synthetic bug only partly fixed: reproduces in 1 of 5 attempts, for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"synthetic partial bug",
    "trigger_rate": {"reproduced": 50, "attempts": 50, "cell": "the known-bad release, before the partial fix"},
    "variants": {
        "trigger": {"role": "trigger", "run": "every_nth", "timeout": 20, "params": {"counter": "", "every": 5}},
        "control": {"role": "control", "run": "counted_clean", "timeout": 20, "params": {"counter": ""}},
    },
}


def _count(ctx, name):
    """Append this attempt to the counter file; how many attempts of `name` ran, this one included."""
    path = ctx.param("counter", "")
    if not path:
        raise ValueError("synthetic-partial needs --param counter=PATH")
    with open(path, "a") as handle:
        handle.write(name + "\n")
    with open(path) as handle:
        return sum(line.strip() == name for line in handle)


def every_nth(ctx):
    if _count(ctx, "trigger") % int(ctx.param("every", 5)) == 0:
        raise RuntimeError("synthetic partial bug: the race the fix left open")
    return {}


def counted_clean(ctx):
    _count(ctx, "control")
    return {}
