"""A synthetic hang bug with a slow setup: the deadline runs from ctx.arm_deadline(), not the start."""
import time

BUG = {
    "id": "synthetic-setup",
    "title": "synthetic hang after a slow setup, for the harness's own tests",
    "packages": [],
    "requirements": [],
    "failure_kind": "hang",
    "trigger_rate": {"reproduced": 1, "attempts": 1},
    "variants": {
        # The setup (3 s) is longer than the deadline (2 s): only arming makes this clean.
        "slow-setup": {"role": "control", "run": "slow_setup", "setup_timeout": 10, "timeout": 2},
        "trigger": {"role": "trigger", "run": "hang_after_arming", "setup_timeout": 10, "timeout": 2},
        "never-arms": {"role": "trigger", "run": "never_arms", "setup_timeout": 1, "timeout": 1},
    },
}


def slow_setup(ctx):
    time.sleep(3)
    ctx.arm_deadline()
    time.sleep(0.2)
    return {}


def hang_after_arming(ctx):
    time.sleep(1)
    ctx.arm_deadline()
    ctx.arm_deadline()  # only the first call counts: this must not push the deadline back
    ctx.hang_evidence("sleeping for an hour")
    time.sleep(3600)


def never_arms(ctx):
    time.sleep(3600)
