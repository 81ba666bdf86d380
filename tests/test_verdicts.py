"""Verdicts from repeated attempts, on synthetic bugs run through the real engine."""
import math

import pytest

from harness import stats
from harness.cell import Cell, Options, run_cell
from harness.registry import get_bug


def run(variant, bug="synthetic-faults", **options):
    return run_cell(Cell(bug, variant, "current"), Options(**options))


def test_present_stops_at_first_reproduction_and_is_validated_by_the_control():
    record = run("trigger")
    assert record["verdict"] == "present"
    assert record["attempts"] == 1 and record["reproductions"] == 1
    assert record["controls"][0]["outcome"] == "clean"


def test_a_clean_trigger_needs_no_control():
    record = run("control", bug="synthetic-hang", attempts=2)  # a control cell runs no controls
    assert "controls" not in record
    record = run("measured-trigger", bug="synthetic-hang", confidence=0.99)
    assert record["verdict"] == "absent" and record["controls"] == []


def test_absent_is_backed_by_enough_clean_attempts():
    bug = get_bug("synthetic-faults")
    p = bug.trigger_rate_lower_bound()  # measured 20/20 -> lower bound 0.861
    record = run("control", confidence=0.9)
    wanted = math.ceil(math.log(0.1) / math.log(1 - p))
    assert record["verdict"] == "absent"
    assert record["attempts"] == wanted == stats.attempts_needed(p, 0.9)
    assert record["confidence"] >= 0.9


def test_capped_absent_says_so():
    record = run("control", bug="synthetic-hang", confidence=0.99, max_attempts=2)  # rate 1/1: needs 90
    assert record["verdict"] == "absent" and record["attempts"] == 2
    assert "capped" in record["reason"] and record["confidence"] < 0.99


def test_absent_uses_the_variants_own_trigger_rate():
    bug = get_bug("synthetic-hang")
    variant = bug.variant("measured-trigger")
    p = bug.trigger_rate_lower_bound(variant=variant)
    assert p == pytest.approx(0.05 ** (1 / 20)) and bug.trigger_rate_lower_bound() == pytest.approx(0.05)
    record = run("measured-trigger", bug="synthetic-hang", confidence=0.99, control_attempts=0)
    assert record["verdict"] == "absent" and record["attempts"] == stats.attempts_needed(p, 0.99) == 3
    assert record["trigger_rate_measured"] == {"reproduced": 20, "attempts": 20}
    assert record["confidence"] >= 0.99


def test_trigger_rate_is_only_for_triggers(tmp_path):
    from harness.errors import UsageError
    from harness.registry import load_bug

    path = tmp_path / "bad_rate.py"
    path.write_text('BUG = {"id": "bad-rate", "title": "t", "failure_kind": "hang", '
                    '"trigger_rate": {"reproduced": 1, "attempts": 1}, "variants": {'
                    '"trigger": {"role": "trigger", "run": "f", "timeout": 1}, '
                    '"control": {"role": "control", "run": "f", "timeout": 1, '
                    '"trigger_rate": {"reproduced": 1, "attempts": 1}}}}\ndef f(ctx):\n    return {}\n')
    with pytest.raises(UsageError, match="trigger_rate is for trigger variants"):
        load_bug(path)


def test_a_trigger_may_name_the_controls_that_validate_it(tmp_path):
    from harness.errors import UsageError
    from harness.registry import load_bug

    text = ('BUG = {"id": "named-controls", "title": "t", "failure_kind": "exception", "signature": "x", '
            '"trigger_rate": {"reproduced": 1, "attempts": 1}, "variants": {'
            '"trigger": {"role": "trigger", "run": "f", "timeout": 1, "controls": ["control-b"]}, '
            '"other": {"role": "trigger", "run": "f", "timeout": 1}, '
            '"control-a": {"role": "control", "run": "f", "timeout": 1}, '
            '"control-b": {"role": "control", "run": "f", "timeout": 1}}}\ndef f(ctx):\n    return {}\n')
    path = tmp_path / "named_controls.py"
    path.write_text(text)
    bug = load_bug(path)
    assert [c.name for c in bug.controls_for(bug.variant("trigger"))] == ["control-b"]
    assert [c.name for c in bug.controls_for(bug.variant("other"))] == ["control-a", "control-b"]
    path.write_text(text.replace('["control-b"]', '["other"]'))
    with pytest.raises(UsageError, match="controls \\['other'\\] are not control variants"):
        load_bug(path)


def test_control_that_reproduces_is_an_error():
    record = run("control", bug="synthetic-broken-control", attempts=1)
    assert record["verdict"] == "error" and "control reproduced" in record["reason"]


def test_trigger_cell_is_an_error_when_its_control_fails():
    record = run("trigger", bug="synthetic-broken-control")
    assert record["verdict"] == "error"
    assert "control 'control' was not clean" in record["reason"]
    assert record["attempts"] == 1  # the trigger reproduced; its control then showed the repro invalid


def test_foreign_failure_is_never_absent():
    record = run("other-exception", attempts=2)
    assert record["verdict"] == "other-failure" and record["attempts"] == 2


def test_unexpected_hang_is_a_hang_verdict():
    record = run("gil-deadlock", attempts=1, control_attempts=0)
    assert record["verdict"] == "hang"


def test_hang_bug_hang_is_present():
    record = run("trigger", bug="synthetic-hang")
    assert record["verdict"] == "present" and record["outcomes"] == {"hang": 1}


def test_crash_where_hang_expected_is_a_crash_verdict():
    record = run("segfault", bug="synthetic-hang", attempts=2)
    assert record["verdict"] == "crash" and record["reproductions"] == 0


def test_missing_interpreter_is_skipped_with_reason():
    record = run_cell(Cell("synthetic-faults", "control", "3.99"), Options())
    assert record["verdict"] == "skipped" and "no Python 3.99" in record["reason"]


def test_measure_runs_every_attempt():
    record = run("trigger", attempts=3, measure=True, control_attempts=0)
    assert record["attempts"] == 3 and record["reproductions"] == 3


@pytest.mark.parametrize("k,n,conf,expected", [(20, 20, 0.95, 0.05 ** (1 / 20)), (1, 1, 0.95, 0.05)])
def test_trigger_rate_lower_bound_exact_when_all_reproduced(k, n, conf, expected):
    bug = get_bug("synthetic-faults")
    object.__setattr__(bug, "trigger_rate", {"reproduced": k, "attempts": n})
    assert bug.trigger_rate_lower_bound(conf) == pytest.approx(expected)


def test_trigger_rate_lower_bound_below_point_estimate():
    bug = get_bug("synthetic-faults")
    object.__setattr__(bug, "trigger_rate", {"reproduced": 10, "attempts": 20})
    assert 0.25 < bug.trigger_rate_lower_bound() < 0.5


def test_decide_returns_the_verdict_with_the_numbers_it_used():
    from harness.verdict import AttemptOutcome, decide

    clean = AttemptOutcome("clean", "no sign of the bug", False)
    absent = decide("trigger", [clean] * 3, 0.5, 0.99)
    assert (absent.verdict, absent.attempts, absent.reproductions, absent.rate_bound) == ("absent", 3, 0, 0.5)
    assert absent.confidence == pytest.approx(0.875) and "capped" in absent.reason
    stall = AttemptOutcome("hang", "no result within 5s, after the repro saw its bug's stall begin", True)
    present = decide("trigger", [clean, stall], 0.5, 0.99)
    assert (present.verdict, present.reproductions, present.confidence) == ("present", 1, None)
    assert decide("control", [stall], 0.5, 0.99).verdict == "error"
    crash = AttemptOutcome("crash", "child died by signal 11 (SIGSEGV)", False)
    assert decide("trigger", [crash, crash, clean], 0.5, 0.99).verdict == "crash"


def test_a_skipped_record_says_why_by_kind():
    record = run_cell(Cell("synthetic-faults", "control", "3.99"), Options())
    assert record["verdict"] == "skipped" and record["skip_kind"] == "no-interpreter"
    assert "skip_kind" not in run("control", attempts=1)
