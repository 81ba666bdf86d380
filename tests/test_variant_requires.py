"""A variant's `requires`: where the installed releases lack what it needs, it is skipped, not run."""
import textwrap

import pytest

from harness.cell import Cell, Options, not_applicable, run_cell
from harness.errors import UsageError
from harness.registry import Variant, load_bug

REPRO = textwrap.dedent('''
    BUG = {"id": "requires-probe", "title": "probe", "packages": [], "requirements": [],
           "failure_kind": "exception", "signature": "probe bug", "trigger_rate": {"reproduced": 1, "attempts": 1},
           "variants": {
               "trigger": {"role": "trigger", "run": "reproduce", "timeout": 30},
               "trigger-new": {"role": "trigger", "run": "clean", "timeout": 30,
                               "requires": {"nosuchpkg": ">=1"}},
               "control-new": {"role": "control", "run": "fail", "timeout": 30,
                               "requires": {"nosuchpkg": ">=1"}},
               "control": {"role": "control", "run": "clean", "timeout": 30}}}

    def clean(ctx):
        return {}

    def reproduce(ctx):
        return {"errors": ["RuntimeError: probe bug"]}

    def fail(ctx):
        raise RuntimeError("ran although it does not apply")
''')


@pytest.fixture
def probe(tmp_path, monkeypatch):
    path = tmp_path / "requires_probe.py"
    path.write_text(REPRO)
    monkeypatch.setenv("REPRO_PATH", str(tmp_path))
    return path


def test_specifiers_against_installed_releases():
    control = Variant("control-conditional-put", "control", "f", 10.0, requires={"deltalake": ">=0.19.2"})
    assert not_applicable(control, {"deltalake": "0.22.3"}) is None
    assert "needs deltalake>=0.19.2; installed: 0.18.2" in not_applicable(control, {"deltalake": "0.18.2"})
    assert "installed: none" in not_applicable(control, {})


def test_an_inapplicable_control_is_skipped_and_the_others_still_validate(probe):
    record = run_cell(Cell("requires-probe", "trigger", "current"), Options(attempts=1))
    assert record["verdict"] == "present", record["reason"]
    outcomes = {c["variant"]: c["outcome"] for c in record["controls"]}
    assert outcomes == {"control-new": "skipped", "control": "clean"}


def test_an_inapplicable_cell_is_skipped_with_the_reason(probe):
    record = run_cell(Cell("requires-probe", "trigger-new", "current"), Options(attempts=1))
    assert record["verdict"] == "skipped"
    assert "needs nosuchpkg>=1" in record["reason"]


def test_an_inapplicable_cell_says_so_by_kind(probe):
    record = run_cell(Cell("requires-probe", "trigger-new", "current"), Options(attempts=1))
    assert record["skip_kind"] == "not-applicable"


def test_a_bad_specifier_is_a_usage_error(probe):
    probe.write_text(REPRO.replace('"nosuchpkg": ">=1"', '"nosuchpkg": "about one"', 1))
    with pytest.raises(UsageError, match="bad specifier"):
        load_bug(probe)
