"""Synthetic triggers and the controls that validate them, counting their child processes.

Shaped like wrangler-athena-cache-race: the bug's weakest measured rate (14 of 20) is one
trigger's (`read-sql`), the other (`trigger`) has its own 50 of 50; each names its own control.
Both triggers reproduce every time, both controls are clean. Each attempt appends its variant's
`name` param to the `counter` file, so a test counts the children each variant ran.
"""

BUG = {
    "id": "synthetic-controls",
    "title": "synthetic triggers with their own controls, for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"synthetic controlled bug",
    "trigger_rate": {"reproduced": 14, "attempts": 20, "cell": "read-sql, the weakest"},
    "variants": {
        "trigger": {"role": "trigger", "run": "reproduce", "timeout": 20, "controls": ["control-serialised"],
                    "trigger_rate": {"reproduced": 50, "attempts": 50},
                    "params": {"counter": "", "name": "trigger"}},
        # a second trigger of the same env that the same control validates
        "library-twin": {"role": "trigger", "run": "reproduce", "timeout": 20, "controls": ["control-serialised"],
                         "trigger_rate": {"reproduced": 50, "attempts": 50},
                         "params": {"counter": "", "name": "library-twin"}},
        "read-sql": {"role": "trigger", "run": "reproduce", "timeout": 20, "controls": ["control-no-cache"],
                     "params": {"counter": "", "name": "read-sql"}},
        "control-serialised": {"role": "control", "run": "clean", "timeout": 20,
                               "params": {"counter": "", "name": "control-serialised"}},
        "control-no-cache": {"role": "control", "run": "clean", "timeout": 20,
                             "params": {"counter": "", "name": "control-no-cache"}},
    },
}


def _count(ctx):
    path = ctx.param("counter", "")
    if path:
        with open(path, "a") as handle:
            handle.write(ctx.param("name", "?") + "\n")


def reproduce(ctx):
    _count(ctx)
    raise RuntimeError("synthetic controlled bug")


def clean(ctx):
    _count(ctx)
    return {}
