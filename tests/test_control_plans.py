"""How controls are planned and paid for, on synthetic triggers and controls whose children count
themselves (tests/fault_repros/synthetic_controls.py): real child processes, no mocks."""
from collections import Counter

import pytest

from harness import stats
from harness.cell import Cell, Options, run_cell
from harness.registry import get_bug


def ran(counter):
    return counter.read_text().split() if counter.exists() else []


@pytest.mark.parametrize("control,trigger,attempts", [("control-serialised", "trigger", 2),
                                                      ("control-no-cache", "read-sql", 7)])
def test_a_control_cell_is_planned_by_the_rate_of_the_trigger_it_validates(tmp_path, control, trigger, attempts):
    bug = get_bug("synthetic-controls")
    assert bug.rate_of(bug.variant(control)) == bug.rate_of(bug.variant(trigger))
    bound = bug.trigger_rate_lower_bound(variant=bug.variant(control))
    assert stats.attempts_needed(bound, 0.99) == attempts
    counter = tmp_path / "attempts.txt"
    record = run_cell(Cell(bug.id, control, "current"), Options(params={"counter": str(counter)}))
    assert record.verdict == "absent" and record.attempts == attempts and ran(counter) == [control] * attempts
    assert record.trigger_rate_measured == bug.rate_of(bug.variant(trigger))


def test_a_control_no_trigger_names_is_planned_by_the_bugs_rate():
    bug = get_bug("synthetic-hang")  # its triggers name no controls: each validates the one control
    control = bug.variant("control")
    assert {t.name for t in bug.validated_by(control)} == {"trigger", "segfault", "own-monitor", "measured-trigger"}
    assert bug.rate_of(control) == bug.trigger_rate  # the weakest of them: the bug's own 1 of 1



def run_all(tmp_path, variants, ledger=None):
    from harness.runner import run_cells

    counter = tmp_path / "attempts.txt"
    cells = [Cell("synthetic-controls", v, "current") for v in variants]
    return run_cells(cells, Options(params={"counter": str(counter)}), ledger=ledger), Counter(ran(counter))


def label(variant):
    return Cell("synthetic-controls", variant, "current").label


def test_a_control_cell_runs_first_and_the_present_trigger_reuses_its_attempts(tmp_path):
    (trigger, control), counts = run_all(tmp_path, ["trigger", "control-serialised"])
    assert (trigger.variant, trigger.verdict, control.variant, control.verdict) == \
        ("trigger", "present", "control-serialised", "absent")  # the records in the order given
    # the control's cell ran it twice (its plan); the trigger did not run it once more
    assert counts == {"control-serialised": 2, "trigger": 1}
    assert [(c.variant, c.outcome, c.reused_from) for c in trigger.controls] == \
        [("control-serialised", "clean", label("control-serialised"))] * 2
    assert "reused_from" not in str(control.to_json())


def test_two_triggers_of_one_env_run_their_shared_control_once(tmp_path):
    (first, second), counts = run_all(tmp_path, ["trigger", "library-twin"])
    assert first.verdict == second.verdict == "present"
    assert counts == {"trigger": 1, "library-twin": 1, "control-serialised": 1}
    assert [(c.outcome, c.reused_from) for c in first.controls] == [("clean", None)]
    assert [(c.outcome, c.reused_from) for c in second.controls] == [("clean", label("trigger"))]
    from harness.cli.answer import controls_line

    assert controls_line(second.to_json()) == (f"controls: control-serialised clean in 1 of 1 attempts "
                                               f"(run once, by {label('trigger')}, in this env)")


def test_a_ledger_is_per_run_unless_shared(tmp_path):
    from harness.cell import ControlLedger

    run_all(tmp_path, ["trigger"])
    _, counts = run_all(tmp_path, ["library-twin"])  # another run: its control runs again
    assert counts["control-serialised"] == 2
    ledger = ControlLedger()
    run_all(tmp_path, ["trigger"], ledger)
    _, counts = run_all(tmp_path, ["library-twin"], ledger)  # one ledger (pytest's, per process)
    assert counts["control-serialised"] == 3


def test_a_control_that_could_not_run_is_not_reused():
    from harness.cell import ControlLedger
    from harness.record import AttemptRecord

    ledger = ControlLedger()
    ledger.keep("k", "cell", [AttemptRecord(outcome="error", reason="no child")])
    assert ledger.find("k", 1) is None
    ledger.keep("k", "cell", [AttemptRecord(outcome="hang", reason="stuck")])
    assert ledger.find("k", 3).attempts[0].outcome == "hang"  # a failure says enough: controls stop at it


@pytest.mark.parametrize("value", [3, True, ["a"]])
def test_reused_from_is_text_on_read(value):
    from harness.record import CellRecord, RecordError

    with pytest.raises(RecordError, match="reused_from"):
        CellRecord.from_json({"kind": "cell", "controls": [{"variant": "c", "outcome": "clean",
                                                            "reused_from": value}]})


def test_the_benchmarks_floor_counts_a_reused_control_once(tmp_path):
    from harness.bench import floor_seconds

    (trigger, control), _ = run_all(tmp_path, ["trigger", "control-serialised"])
    records = [trigger.to_json(), control.to_json()]
    ran_here = sum(trigger.durations) + sum(control.durations)  # the trigger's controls are the control cell's
    assert floor_seconds(records) == pytest.approx(ran_here) and all(c.reused_from for c in trigger.controls)
