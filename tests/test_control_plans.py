"""How controls are planned and paid for, on synthetic triggers and controls whose children count
themselves (tests/fault_repros/synthetic_controls.py): real child processes, no mocks."""
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
