"""The verdict table's summary line: what it holds against the matrix's expectations."""
from harness.table import render


def _record(variant: str, verdict: str, **extra) -> dict:
    return {"bug": "synthetic-x", "variant": variant, "role": "trigger", "python_requested": "3.13t",
            "pins": [], "verdict": verdict, "expected": "present", "reason": "", **extra}


RECORDS = [_record("trigger", "present", python="3.11.7", python_requested="3.11"),
           _record("image", "skipped", skip_kind="no-interpreter", reason="no Docker engine here")]


def test_a_cell_this_machine_cannot_run_is_not_judged_locally(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    text = render(RECORDS)
    assert text.splitlines()[-1] == "2 cells: 1 present, 1 skipped; 1 of 1 as expected; " \
                                    "1 not judged (cannot run on this machine)", text
    assert "skipped here" in text and "NO (expected" not in text


def test_under_ci_the_same_cell_counts_against_its_expectation(monkeypatch):
    monkeypatch.setenv("CI", "true")
    text = render(RECORDS)
    assert text.splitlines()[-1].startswith("2 cells: 1 present, 1 skipped; 1 of 2 as expected, 1 NOT: "
                                            "synthetic-x[image] py3.13t"), text


def test_a_cell_that_cannot_install_what_it_expects_is_still_judged(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    text = render([_record("trigger", "skipped", skip_kind="not-installable", python_requested="3.11")])
    assert "0 of 1 as expected, 1 NOT" in text.splitlines()[-1], text
