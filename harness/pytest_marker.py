"""`@pytest.mark.repro(...)`: an existing test function run as a trigger, in fresh child processes.

    @pytest.mark.repro(attempts=20, timeout=30, signature=r"lost \\d+ updates", rate=(19, 20))
    def test_concurrent_appends():
        ...                      # raises (or hangs) when the race strikes

For the everyday "does this still race on my branch?": the plugin does not call the function in
pytest's process. It runs it in up to `attempts` fresh children of the running interpreter (with
pytest's import path, so the code is the code this pytest sees), each under the harness's
watchdog with a `timeout` deadline, and stops at the first reproduction. The outcome is the
verdict (harness/verdict.py):

- present (the function raised an error matching `signature`, default: any error): the test
  fails with the evidence (the error, the child's output);
- hang (no result within `timeout`): fails with the child's stacks;
- absent: passes, and says its strength: "20 clean, conf 1.000" against the declared `rate` (k of
  n reproduced where the bug is known to be: the lower 95% bound is used), and always the smallest
  per-attempt rate the clean attempts exclude at 95%;
- crash, other-failure (an error of another signature), error: fails with the reason.

The function must take no arguments (fixtures do not cross into the child). Nothing is written
to results: the verdict is the test's.
"""
from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness import stats, verdict
from harness.attempt import ChildCommand, child_env, run_attempt
from harness.registry import load_bug

SHIM = '''"""The test {nodeid} as a trigger (written by harness.pytest_marker)."""

BUG = {{"id": "marked-test", "title": {nodeid!r}, "requirements": [], "failure_kind": "exception",
       "signature": {signature!r}, "trigger_rate": {{"reproduced": {k}, "attempts": {n}}},
       "variants": {{"trigger": {{"role": "trigger", "run": "call", "timeout": {timeout!r}}},
                    "control": {{"role": "control", "run": "call", "timeout": {timeout!r}}}}}}}


def call(ctx):
    import importlib.util
    import sys

    sys.path[:0] = {path!r}  # pytest's import path: the code this pytest sees
    spec = importlib.util.spec_from_file_location({module!r}, {file!r})
    module = importlib.util.module_from_spec(spec)
    sys.modules[{module!r}] = module
    spec.loader.exec_module(module)
    getattr(module, {function!r})()
    return {{}}
'''


@dataclass
class Outcome:
    passed: bool
    text: str  # the verdict, its strength, and on a failure the evidence


def options_of(marker) -> dict:
    """The marker's keywords, checked: ValueError with the keyword at fault."""
    known = {"attempts": 20, "timeout": 60.0, "signature": None, "rate": None, "confidence": 0.99}
    unknown = sorted(set(marker.kwargs) - set(known))
    if marker.args or unknown:
        raise ValueError(f"@pytest.mark.repro takes keywords only: {', '.join(known)}; not {marker.args or unknown}")
    options = {**known, **marker.kwargs}
    if not (isinstance(options["attempts"], int) and options["attempts"] >= 1):
        raise ValueError("@pytest.mark.repro: attempts must be a whole number >= 1")
    if not (isinstance(options["timeout"], (int, float)) and options["timeout"] > 0):
        raise ValueError("@pytest.mark.repro: timeout must be a positive number of seconds")
    rate = options["rate"]
    if rate is not None and not (isinstance(rate, tuple) and len(rate) == 2 and 0 < rate[0] <= rate[1]):
        raise ValueError("@pytest.mark.repro: rate must be (reproduced, attempts) with 0 < reproduced <= attempts")
    return options


def run_marked(item, options: dict) -> Outcome:
    """Run the marked test function `item` to a verdict (see the module's text)."""
    with tempfile.TemporaryDirectory(prefix="repro-marked-") as tmp:
        shim = Path(tmp) / "marked_test.py"
        k, n = options["rate"] or (1, 1)
        shim.write_text(SHIM.format(nodeid=item.nodeid, signature=options["signature"] or ".", k=k, n=n,
                                    timeout=float(options["timeout"]), path=[p for p in sys.path if p],
                                    module=item.module.__name__, file=str(item.path), function=item.originalname))
        bug = load_bug(shim)
        trigger = bug.variant("trigger")
        command = ChildCommand(sys.executable, child_env({}))
        attempts = []
        for _ in range(options["attempts"]):
            attempts.append(run_attempt(bug, trigger, command))
            if attempts[-1].outcome == verdict.ERROR or attempts[-1].matches_bug(bug):
                break
    bound = bug.trigger_rate_lower_bound(variant=trigger)
    decision = verdict.decide("trigger", [a.for_verdict(bug) for a in attempts], bound, options["confidence"])
    return Outcome(decision.verdict == verdict.ABSENT, _said(decision, attempts, options))


def _said(decision, attempts, options) -> str:
    n = decision.attempts
    if decision.verdict == verdict.ABSENT:
        excludes = f"excludes a per-attempt rate >= {stats.excluded_rate(n):.3f} at 95%"
        if options["rate"] is None:
            return f"absent: {n} clean; {excludes} (declare rate=(k, n) for a confidence)"
        return f"absent: {n} clean, conf {decision.confidence:.3f} (rate {options['rate'][0]}/{options['rate'][1]}); " \
               f"{excludes}"
    head = f"{decision.verdict}: {decision.reproductions}/{n} reproduced" if decision.verdict == verdict.PRESENT \
        else f"{decision.verdict} after {n} attempts"
    shown = next((a for a in reversed(attempts) if a.outcome != verdict.CLEAN), attempts[-1])
    evidence = [f"{head}: {decision.reason}", f"attempt: {shown.outcome}: {shown.reason}"]
    if shown.evidence.stacks:
        evidence.append("stacks of the child:\n" + shown.evidence.stacks.rstrip())
    if shown.evidence.output_tail:
        evidence.append("output of the child (tail):\n" + shown.evidence.output_tail.rstrip()[-4000:])
    return "\n".join(evidence)
