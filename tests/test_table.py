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


WIDE = [_record("cache-reuse-trigger", "present", bug="wrangler-athena-cache-race", python="3.11.7",
                python_requested="3.11", installed={"awswrangler": "3.10.0", "boto3": "1.35.1"},
                reproductions=19, attempts=20),
        _record("control", "absent", bug="delta-already-borrowed", python="3.12.1", python_requested="3.12",
                installed={"deltalake": "0.18.2"}, attempts=60, cached=True)]


def test_at_80_columns_every_cell_is_one_line_with_its_verdict_whole():
    lines = render(WIDE, width=80).splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    table = lines[:lines.index(next(line for line in lines if line.startswith("2 cells:")))]
    assert len(table) == 2 + len(WIDE), table  # header, rule, one line per cell: nothing folds
    assert table[0].split() == ["bug", "variant", "Python", "releases", "verdict", "expected"], table
    assert [line.split()[-2:] for line in table[2:]] == [["absent", "NO"], ["present", "yes"]], table


def test_a_wide_screen_keeps_every_column_and_every_word():
    text = render(WIDE, width=200)
    assert "19/20 reproduced" in text and "NO (expected present)" in text
    assert "60 clean, excludes >= 5% (cached)" in text, text  # a bisect's point read from its verdict cache
    assert "awswrangler 3.10.0, boto3 1.35.1" in text, text
