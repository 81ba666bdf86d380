"""A synthetic bug whose control reproduces: the repro itself is invalid."""

BUG = {
    "id": "synthetic-broken-control",
    "title": "a repro whose control fails, for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "exception",
    "signature": r"synthetic bug",
    "trigger_rate": {"reproduced": 1, "attempts": 1},
    "variants": {
        "trigger": {"role": "trigger", "run": "raise_signature", "timeout": 20},
        "control": {"role": "control", "run": "raise_signature", "timeout": 20},
    },
}


def raise_signature(ctx):
    raise RuntimeError("synthetic bug")
