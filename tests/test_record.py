"""The typed cell record: one to_json/from_json, lenient with older records, strict with types."""
import json

import pytest

from harness import results, seal
from harness.record import SCHEMA, AttemptEvidence, AttemptRecord, CellRecord, RecordError
from report_records import delta_history, hang_with_workers, record, wrangler_history

EVERY_RECORD = delta_history() + wrangler_history() + [hang_with_workers()]


@pytest.mark.parametrize("index", range(len(EVERY_RECORD)))
def test_every_record_of_the_report_tests_comes_back_as_it_went_in(index):
    data = EVERY_RECORD[index]
    typed = CellRecord.from_json(data)
    assert typed.to_json() == data
    assert results.encode(typed) == json.dumps(data, sort_keys=True), "the same line on disk"
    assert CellRecord.from_json(typed.to_json()) == typed


def test_the_fields_are_typed_down_to_an_attempt_s_evidence():
    hang = CellRecord.from_json(hang_with_workers())
    [attempt] = hang.evidence
    assert isinstance(attempt, AttemptRecord) and isinstance(attempt.evidence, AttemptEvidence)
    assert attempt.attempt == 1 and attempt.evidence.pid == 5301 and set(attempt.evidence.native_stacks) == {
        "5301", "5328"}
    assert [c.variant for c in hang.controls] == ["control-spawn"] and hang.controls[0].evidence is None
    assert hang.verdict == "present" and hang.confidence is None and hang.kind == "cell"


def test_a_record_of_an_older_harness_is_read_with_what_it_lacks_as_none_and_its_unknown_keys_kept():
    old = {"kind": "cell", "bug": "delta-already-borrowed", "variant": "trigger", "role": "trigger",
           "python_requested": "3.11", "verdict": "absent", "attempts": 3, "reason": "3 clean attempts",
           "exclude_newer": None, "confidence": 0.99, "retired_field": {"kept": [1, 2]},
           "evidence": [{"attempt": 1, "outcome": "hang", "evidence": {"pid": 7, "old_key": "x"}}]}
    typed = CellRecord.from_json(old)  # no "schema": written before there was one
    assert typed.gil is None and typed.controls is None and typed.installed is None and typed.skip_kind is None
    assert typed.extra == {"retired_field": {"kept": [1, 2]}}
    assert typed.evidence[0].evidence.extra == {"old_key": "x"}
    assert typed.to_json() == {"schema": SCHEMA, **old}, "written back as it came, with the schema"
    assert CellRecord.from_json({**old, "schema": SCHEMA - 1}).to_json() == {"schema": SCHEMA, **old}


def test_a_record_of_a_newer_schema_is_refused_by_name():
    with pytest.raises(RecordError) as caught:
        CellRecord.from_json({**record("b", "trigger", "3.11", "p", "1.0", "absent"), "schema": SCHEMA + 1})
    assert caught.value.field == "schema"


WRONG = {  # field: (the value, where it goes: the record or its first attempt's evidence)
    "attempts": ("2", "record"), "confidence": (True, "record"), "pins": ("deltalake==1", "record"),
    "requirements": ([1], "record"), "installed": ({"deltalake": 1}, "record"), "verdict": ("fixed!", "record"),
    "gil": ([], "record"), "expected": ({"present": 1}, "record"), "evidence": ({"attempt": 1}, "record"),
    "controls": (["clean"], "record"), "bug": (["b"], "record"),
    "notes": ("one note", "attempt"), "observation": (["errors"], "attempt"), "pid": ("5301", "attempt"),
}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_a_field_of_the_wrong_type_is_refused_naming_it_as_results_problem_does(name):
    value, where = WRONG[name]
    data = record("delta-already-borrowed", "trigger", "3.11", "deltalake", "0.20.1", "present")
    (data if where == "record" else data["evidence"][0]["evidence"])[name] = value
    with pytest.raises(RecordError) as caught:
        CellRecord.from_json(data)
    assert repr(name) in str(caught.value)
    assert caught.value.field == (name if where == "record" else "evidence")
    assert results.problem(data) is not None and repr(name) in results.problem(data)


def test_the_dict_view_reads_what_the_json_holds_and_sets_fields():
    typed = CellRecord.from_json(delta_history()[0])
    assert typed["verdict"] == typed.verdict == "present" and typed["schema"] == SCHEMA
    assert "gil" not in typed, "an absent field is absent from the view, as from the dict"
    with pytest.raises(KeyError):
        typed["gil"]
    typed["expected"], typed["matrix_note"] = ["absent"], "x"
    assert typed.expected == ["absent"] and typed.extra == {"matrix_note": "x"}


def test_a_child_that_never_started_has_a_pid_of_null_and_nothing_else():
    assert AttemptEvidence.not_started().to_json() == {"pid": None}
    assert AttemptEvidence(pid=12).to_json() == {"pid": 12}


def test_a_cell_run_by_the_engine_is_written_and_read_back_to_the_same_record(tmp_path, monkeypatch):
    from conftest import FAULT_REPROS
    from harness.cell import Cell, Options, run_cell

    monkeypatch.setenv("REPRO_PATH", str(FAULT_REPROS))
    ran = run_cell(Cell("synthetic-faults", "trigger", "current"), Options(attempts=2, control_attempts=1))
    assert isinstance(ran, CellRecord) and isinstance(ran.evidence[0].evidence, AttemptEvidence)
    assert ran.controls and all(isinstance(c, AttemptRecord) for c in ran.controls)
    path = tmp_path / "r.jsonl"
    results.append(path, ran)
    [line] = path.read_text().splitlines()
    [data] = results.read(path)
    assert data == json.loads(results.encode(ran))
    assert results.encode(CellRecord.from_json(data)) == seal.canonical(json.loads(line)), \
        "read and written again: the same bytes, but the line's seal"
    assert set(json.loads(line)) - set(data) == {seal.FIELD}
    assert {"exclude_newer", "confidence"} <= set(data) and data["evidence"][0]["evidence"]["pid"] > 0
