"""matrix/ files are validated on load: one clear error naming the file, the entry and the problem."""
import pytest

from harness import matrix
from harness.errors import UsageError

GOOD = 'bug = "synthetic-faults"\n[[cells]]\npython = ["3.11"]\nexpect = "present"\n'


def load(tmp_path, text):
    path = tmp_path / "synthetic_faults.toml"
    path.write_text(text)
    return matrix.load_file(path)


def test_a_good_file_expands_pythons_and_variants(tmp_path):
    entry = load(tmp_path, GOOD.replace('["3.11"]', '["3.10", "3.11"]'))
    cells = entry["cells"]
    assert {c.cell.python for c in cells} == {"3.10", "3.11"}
    by_variant = {c.cell.variant: c.expect for c in cells}
    assert by_variant["trigger"] == ("present",) and by_variant["control"] == ("absent",)


def test_expect_may_list_several_verdicts(tmp_path):
    entry = load(tmp_path, GOOD.replace('expect = "present"', 'expect = ["absent", "other-failure"]'))
    assert {c.expect for c in entry["cells"] if c.cell.variant == "trigger"} == {("absent", "other-failure")}


def test_verify_may_name_a_trigger_variant(tmp_path):
    text = GOOD + '[verify]\nabsent = { python = "3.11", variant = "segfault" }\n'
    assert load(tmp_path, text)["verify"]["absent"].cell.variant == "segfault"
    with pytest.raises(UsageError, match="verify.absent: variant must be a trigger variant"):
        load(tmp_path, text.replace('"segfault"', '"control"'))


@pytest.mark.parametrize("text,problem", [
    ('bug = "nope"\n', "bug: unknown bug 'nope'"),
    ("bug = [\n", "not valid TOML"),
    (GOOD.replace('expect = "present"', 'expect = "maybe"'), "cells[1]: expect must be one of"),
    (GOOD.replace('python = ["3.11"]', "python = 3.11"), "cells[1]: python must be"),
    (GOOD + 'variants = ["nope"]\n', "cells[1]: bug synthetic-faults has no variant 'nope'"),
    (GOOD + 'pins = ["deltalake=1"]\n', "cells[1]: malformed requirement"),
    (GOOD + 'exclude_newer = "soon"\n', "cells[1]: bad --exclude-newer"),
    (GOOD + "colour = 1\n", "cells[1]: unknown key(s) colour"),
    (GOOD + '[verify]\nmaybe = { python = "3.11" }\n', "verify.maybe"),
    (GOOD + 'tier = "nightly"\n', "cells[1]: tier must be one of default, history"),
    (GOOD + "[[cells]]\npython = \"3.11\"\nvariants = [\"control\"]\nexpect = \"absent\"\n",
     "cells[2]: synthetic-faults[control] py3.11 is already declared by cells[1]"),
])
def test_bad_entries_name_file_entry_and_problem(tmp_path, text, problem):
    with pytest.raises(UsageError) as info:
        load(tmp_path, text)
    assert str(info.value).startswith("synthetic_faults.toml: ") and problem in str(info.value)


def test_cells_are_in_the_default_tier_unless_marked(tmp_path):
    text = GOOD + '[[cells]]\npython = ["3.12"]\nexpect = "present"\ntier = "history"\n'
    cells = load(tmp_path, text)["cells"]
    assert {c.cell.python for c in cells if matrix.in_tier(c, "default")} == {"3.11"}
    assert {c.cell.python for c in cells if matrix.in_tier(c, "history")} == {"3.12"}
    assert len([c for c in cells if matrix.in_tier(c, "all")]) == len(cells)


def test_pytest_collects_the_default_tier_unless_asked(tmp_path):
    import subprocess
    import sys

    from harness.registry import ROOT

    def collected(*args):
        out = subprocess.run([sys.executable, "-m", "pytest", "matrix/", "--collect-only", "-q", "--all-pythons",
                              "-p", "no:cacheprovider", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        return [line for line in out.stdout.splitlines() if line.startswith("matrix/")]

    loaded = [e for m in matrix.load().values() for e in m["cells"]]
    default, everything = collected(), collected("--tier", "all")
    assert len(default) == sum(e.tier == "default" for e in loaded) < len(everything) == len(loaded)
    assert len(collected("--tier", "history")) == len(everything) - len(default)


def test_the_checked_in_matrix_is_valid():
    loaded = matrix.load()
    assert "delta-already-borrowed" in loaded
    for entry in loaded.values():
        assert entry["cells"], f"{entry['bug']} declares no cells"


def test_every_checked_in_repro_file_loads():
    from harness.registry import ROOT, discover

    _, broken = discover()
    assert not {path: problem for path, problem in broken.items() if path.startswith(str(ROOT / "repros"))}


def test_a_broken_repro_file_does_not_hide_the_others(tmp_path, monkeypatch):
    import os

    from harness.registry import get_bug
    from conftest import FAULT_REPROS

    (tmp_path / "half_written.py").write_text("BUG = {'id': 'half-written',\n")
    monkeypatch.setenv("REPRO_PATH", os.pathsep.join([str(FAULT_REPROS), str(tmp_path)]))
    assert get_bug("synthetic-faults").id == "synthetic-faults"
    with pytest.raises(UsageError, match="bug 'half-written' is broken: .*SyntaxError"):
        get_bug("half-written")
