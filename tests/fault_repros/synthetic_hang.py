"""A synthetic hang bug: the trigger deadlocks with the GIL held, the control returns."""
import ctypes

BUG = {
    "id": "synthetic-hang",
    "title": "synthetic deadlock holding the GIL, for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "hang",
    "trigger_rate": {"reproduced": 1, "attempts": 1},
    "variants": {
        "trigger": {"role": "trigger", "run": "deadlock", "timeout": 4},
        "control": {"role": "control", "run": "clean", "timeout": 10},
        "segfault": {"role": "trigger", "run": "segfault", "timeout": 10},
        # A trigger measured on its own (20 of 20): its absent needs far fewer attempts than
        # the bug's 1-of-1 rate would ask for.
        # Like Beam's CPython-level trigger on a fixed interpreter: the repro watches its workload
        # itself and, after `watch` seconds, finds no hang. A deadline shorter than that is no evidence.
        "own-monitor": {"role": "trigger", "run": "own_monitor", "timeout": 10, "params": {"watch": 4.0}},
        "measured-trigger": {"role": "trigger", "run": "clean", "timeout": 10,
                             "trigger_rate": {"reproduced": 20, "attempts": 20}},
    },
}


def deadlock(ctx):
    ctx.hang_evidence("calling pause() with the GIL held: it never returns")
    ctypes.PyDLL("libc.so.6").pause()


def clean(ctx):
    return {}


def segfault(ctx):
    ctypes.string_at(0)


def own_monitor(ctx):
    import time

    time.sleep(float(ctx.param("watch", 4.0)))
    return {"hung": False}
