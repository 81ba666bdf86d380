"""Fault injection: synthetic misbehaving children, each classified right, nothing left running."""
import sys

import pytest

from conftest import alive, sessions_alive
from harness.attempt import ChildCommand, child_env, run_attempt
from harness.registry import get_bug

pytestmark = [pytest.mark.fault("stuck or fooled: a misbehaving child"), pytest.mark.usefixtures("no_process_survives")]


def attempt(variant, bug="synthetic-faults", env=None, **kwargs):
    spec = get_bug(bug)
    command = ChildCommand(sys.executable, child_env(env or {}))
    result = run_attempt(spec, spec.variant(variant), command, kill_grace=1.0, **kwargs)
    assert sessions_alive(result.evidence["pid"]) == [], "processes of the attempt survived it"
    return result


def test_clean_run():
    result = attempt("control")
    assert result.outcome == "clean"


def test_signature_exception_is_reproduced():
    result = attempt("trigger")
    assert result.outcome == "reproduced"
    assert "synthetic bug" in result.evidence["observation"]["errors"][0]


def test_signature_among_thread_errors_is_reproduced():
    assert attempt("thread-errors").outcome == "reproduced"


def test_foreign_exception_is_other_failure():
    result = attempt("other-exception")
    assert result.outcome == "other-failure"
    assert "KeyError" in result.reason


def test_deadlock_holding_the_gil_is_a_hang_with_every_thread_stack():
    result = attempt("gil-deadlock")
    assert result.outcome == "hang"
    stacks = result.evidence["stacks"]
    # faulthandler's C watchdog wrote the stacks although no Python thread could run.
    assert "gil_deadlock" in stacks and "Thread" in stacks
    assert result.evidence["threads"], "thread count of the hung child recorded"


def test_native_hang_is_a_hang():
    result = attempt("native-hang")
    assert result.outcome == "hang"
    assert "native_hang" in result.evidence["stacks"]


def test_native_stacks_from_py_spy_when_installed():
    import shutil

    if not shutil.which("py-spy"):
        pytest.skip("py-spy is not installed")
    result = attempt("native-hang")
    dumps = result.evidence["native_stacks"]
    assert dumps and any("native_hang" in text or "pause" in text for text in dumps.values()), dumps


def test_hang_is_the_bug_for_a_hang_bug():
    spec = get_bug("synthetic-hang")
    result = attempt("trigger", bug="synthetic-hang")
    assert result.outcome == "hang" and result.matches_bug(spec)
    assert not attempt("gil-deadlock").matches_bug(get_bug("synthetic-faults"))


def test_segfault_is_a_crash_with_its_signal():
    result = attempt("segfault")
    assert result.outcome == "crash"
    assert result.evidence["signal"] == 11
    assert "Segmentation fault" in result.evidence["stacks"]


def test_segfault_where_a_hang_was_the_bug_is_not_the_bug():
    result = attempt("segfault", bug="synthetic-hang")
    assert result.outcome == "crash" and not result.matches_bug(get_bug("synthetic-hang"))


def test_os_exit_protects_against_abort_at_exit():
    result = attempt("abort-at-exit")
    assert result.outcome == "clean"
    assert "exit_signal_after_result" not in result.evidence


def test_abort_at_exit_after_the_result_keeps_the_result():
    # Force the normal interpreter exit, so the library-style abort really happens.
    result = attempt("abort-at-exit", env={"REPRO_CHILD_EXIT": "interpreter"})
    assert result.outcome == "clean"
    assert result.evidence["exit_signal_after_result"] == 6


def test_grandchildren_that_outlive_the_child_are_killed(tmp_path):
    pid_file = tmp_path / "pids"
    result = attempt("grandchildren", params={"pid_file": str(pid_file)})
    assert result.outcome == "clean"
    ours = {inner: pid for pid, inner in result.evidence.get("namespace_pids", {}).items()}
    pids = [ours.get(int(p), int(p)) for p in pid_file.read_text().split()]  # as the repro saw them -> ours
    assert sorted(result.evidence["lingering_processes"]) == sorted(pids)
    assert not any(alive(pid) for pid in pids)


def test_output_flood_keeps_a_bounded_tail():
    result = attempt("flood", params={"mib": 200})
    assert result.outcome == "clean"
    assert result.evidence["output_bytes"] >= 200 * 1024 * 1024
    assert len(result.evidence["output_tail"]) <= 16384
    assert result.evidence["output_tail"].endswith("THE END\n")


def test_child_that_ignores_sigterm_is_killed():
    result = attempt("ignore-sigterm")
    assert result.outcome == "hang"


def test_child_exiting_without_a_result_is_an_error():
    result = attempt("exit-early")
    assert result.outcome == "error"
    assert "code 3" in result.reason and "gave up" in result.reason


def test_missing_interpreter_is_an_error_not_an_exception():
    spec = get_bug("synthetic-faults")
    command = ChildCommand("/nonexistent/bin/python", child_env({}))
    result = run_attempt(spec, spec.variant("control"), command)
    assert result.outcome == "error" and "cannot start" in result.reason


def test_silent_corruption_is_reproduced_with_its_detail():
    result = attempt("trigger", bug="synthetic-corruption")
    assert result.outcome == "reproduced", result.reason
    assert "1 records corrupt" in result.reason and "keys stored twice: [1]" in result.reason


def test_corruption_with_an_error_is_a_loud_failure_not_the_bug():
    result = attempt("loud", bug="synthetic-corruption")
    assert result.outcome == "other-failure", result.reason


def test_no_corrupt_records_is_clean():
    assert attempt("control", bug="synthetic-corruption").outcome == "clean"


@pytest.mark.parametrize("variant", ["trigger", "in-a-thread"])
def test_the_message_raised_by_the_library_is_the_bug(variant):
    result = attempt(variant, bug="synthetic-attribution")
    assert result.outcome == "reproduced", result.reason
    frame = result.evidence["observation"]["error_frames"][0]
    assert (frame["module"], frame["function"]) == ("_synthetic_library", "share")


@pytest.mark.parametrize("variant", ["foreign", "foreign-escapes"])
def test_the_message_raised_by_another_module_is_another_failure_naming_its_frame(variant):
    result = attempt(variant, bug="synthetic-attribution")
    assert result.outcome == "other-failure", result.reason
    assert "raised outside the library under test (_synthetic_library)" in result.reason
    assert "_synthetic_other.export (" in result.reason and "_synthetic_other.py:" in result.reason


def test_the_message_raised_by_the_repro_itself_is_not_the_bug():
    result = attempt("repro-raises", bug="synthetic-attribution")
    assert result.outcome == "other-failure" and "repro_under_test.repro_raises" in result.reason


def test_an_error_reported_as_text_has_no_frame_and_is_taken_at_its_word():
    result = attempt("as-text", bug="synthetic-attribution")
    assert result.outcome == "reproduced", result.reason
    assert result.evidence["observation"]["error_frames"] == [None]
