"""A variant with a setup_timeout: the hang deadline runs from ctx.arm_deadline(), not the start."""
import sys

import pytest

from conftest import sessions_alive
from harness.attempt import ChildCommand, child_env, run_attempt
from harness.registry import get_bug

pytestmark = [pytest.mark.fault("stuck or fooled: a slow setup"), pytest.mark.usefixtures("no_process_survives")]


def attempt(variant):
    bug = get_bug("synthetic-setup")
    result = run_attempt(bug, bug.variant(variant), ChildCommand(sys.executable, child_env({})), kill_grace=1.0)
    assert sessions_alive(result.evidence["pid"]) == [], "processes of the attempt survived it"
    return result


def test_setup_longer_than_the_deadline_is_not_a_hang():
    result = attempt("slow-setup")
    assert result.outcome == "clean", result.reason


def test_hang_after_arming_is_a_hang_with_stacks_from_the_armed_deadline():
    result = attempt("trigger")
    assert result.outcome == "hang", result.reason
    assert "armed its deadline" in result.reason
    # faulthandler's dump was re-armed to a second before the armed deadline: it shows the hang.
    assert "hang_after_arming" in result.evidence["stacks"]
    assert result.evidence["threads"]


def test_a_setup_that_never_arms_is_an_error_not_the_bug():
    result = attempt("never-arms")
    assert result.outcome == "error", result.reason
    assert "did not reach the part that may hang" in result.reason
