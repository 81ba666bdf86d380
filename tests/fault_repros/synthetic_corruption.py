"""A synthetic `corruption` bug for the oracle's tests (stdlib only): records read back wrong with
no error is the bug; the same with an error is a loud failure, never this silent bug."""

BUG = {
    "id": "synthetic-corruption",
    "title": "synthetic silent corruption for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "corruption",
    "trigger_rate": {"reproduced": 20, "attempts": 20},
    "variants": {
        "trigger": {"role": "trigger", "run": "duplicated", "timeout": 20},
        "loud": {"role": "trigger", "run": "duplicated_and_failed", "timeout": 20},
        "control": {"role": "control", "run": "clean", "timeout": 20},
    },
}


def _store_twice():
    rows = {}
    for key in (1, 1, 2):  # the second upsert of key 1 should have replaced the first, not added one
        rows.setdefault(key, []).append("row")
    return [key for key, found in rows.items() if len(found) > 1]


def duplicated(ctx):
    twice = _store_twice()
    return {"corrupt": len(twice), "corrupt_detail": "keys stored twice: %s" % twice}


def duplicated_and_failed(ctx):
    return dict(duplicated(ctx), errors=["OSError: the second write failed loudly"])


def clean(ctx):
    return {"corrupt": 0}
