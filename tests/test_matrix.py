"""matrix/ files are validated on load: one clear error naming the file, the entry and the problem;
a broken file is left out of `repro verify`, `pytest matrix/` and nox with that one line."""
import json
import os
import shutil
import subprocess
import sys

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
    (GOOD + 'pins = ["six==1.16.0"]\n',
     "cells[1]: pins six==1.16.0: variant 'trigger' of synthetic-faults installs nothing"),
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

    from harness.paths import ROOT

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
    from harness.paths import ROOT
    from harness.registry import discover

    _, broken = discover()
    assert not {path: problem for path, problem in broken.items() if path.startswith(str(ROOT / "repros"))}


def test_a_broken_repro_file_does_not_hide_the_others(tmp_path, monkeypatch):
    import os

    from conftest import FAULT_REPROS
    from harness.registry import get_bug

    (tmp_path / "half_written.py").write_text("BUG = {'id': 'half-written',\n")
    monkeypatch.setenv("REPRO_PATH", os.pathsep.join([str(FAULT_REPROS), str(tmp_path)]))
    assert get_bug("synthetic-faults").id == "synthetic-faults"
    with pytest.raises(UsageError, match="bug 'half-written' is broken: .*SyntaxError"):
        get_bug("half-written")


# ---------------------------------------------------------------- exclude_newer = "release"

def fake_cutoffs(monkeypatch):
    from harness.envs import package_index

    dates = {("awswrangler", "3.9.1"): "2024-08-20T21:07:00Z", ("deltalake", "0.19.2"): "2024-09-06T23:23:43Z"}
    monkeypatch.setattr(package_index, "release_date_cutoff", lambda name, version: dates[(name, version)])
    return dates


@pytest.mark.fault("fooled: pin order")
@pytest.mark.parametrize("pins", [["awswrangler==3.9.1", "deltalake==0.19.2"],
                                  ["deltalake==0.19.2", "awswrangler==3.9.1"],
                                  ["deltalake[pandas] == 0.19.2", "awswrangler==3.9.1", "pyarrow>=14",
                                   "numpy==1.*", "boto3===1.0", "polars @ file:///tmp/polars.whl"]],
                         ids=["first", "last", "with-inexact-pins"])
def test_release_cutoff_is_the_newest_exact_pin_in_any_order(monkeypatch, pins):
    from harness.envs import package_index

    fake_cutoffs(monkeypatch)
    assert package_index.release_cutoff(pins) == "2024-09-06T23:23:43Z"


def test_release_cutoff_without_an_exact_pin_is_none(monkeypatch):
    from harness.envs import package_index

    fake_cutoffs(monkeypatch)
    assert package_index.release_cutoff([]) is None
    assert package_index.release_cutoff(["pyarrow>=14", "numpy==1.*", "polars @ file:///tmp/polars.whl"]) is None


@pytest.mark.fault("fooled: pin order")
def test_resolve_takes_the_newest_pinned_release_in_any_order(tmp_path, monkeypatch):
    fake_cutoffs(monkeypatch)
    two = GOOD.replace("synthetic-faults", "delta-s3-silent-data-loss") + (  # a variant that installs both
        'variants = ["trigger-deltalake"]\npins = ["awswrangler==3.9.1", "deltalake==0.19.2"]\n'
        'exclude_newer = "release"\n')
    swapped = two.replace('"awswrangler==3.9.1", "deltalake==0.19.2"', '"deltalake==0.19.2", "awswrangler==3.9.1"')
    for text in (two, swapped):
        assert {matrix.resolve(e).exclude_newer for e in load(tmp_path, text)["cells"]} == {"2024-09-06T23:23:43Z"}


def test_the_release_rule_needs_an_exact_pin(tmp_path):
    with pytest.raises(UsageError, match='cells\\[1\\]: exclude_newer = "release" needs a NAME==VERSION pin'):
        load(tmp_path, GOOD + 'pins = ["deltalake>=0.19"]\nexclude_newer = "release"\n')


@pytest.mark.fault("fooled: pin order")
@pytest.mark.slow
def test_release_cutoff_on_the_real_index_whatever_the_pin_order():
    from harness.envs import package_index

    try:
        newest = package_index.release_date_cutoff("deltalake", "0.19.2")
    except UsageError as exc:
        pytest.skip(f"needs the package index: {exc}")
    assert package_index.release_date_cutoff("awswrangler", "3.9.1") < newest  # deltalake 0.19.2 came later
    assert package_index.release_cutoff(["awswrangler==3.9.1", "deltalake==0.19.2"]) == newest
    assert package_index.release_cutoff(["deltalake==0.19.2", "awswrangler==3.9.1"]) == newest


# ---------------------------------------------------------------- one broken matrix file

TOML_SLIP = "bug = [\n"


@pytest.mark.parametrize("text,problem", [
    ('bug = "synthetic-faults"\ncells = 3\n', "cells: must be an array of tables"),
    ('bug = "synthetic-faults"\nverify = 3\n', "verify: must be a table of tables"),
    (GOOD + "pins = [3]\n", "cells[1]: pins must be a list of requirements"),
    (GOOD + "variants = 3\n", "cells[1]: variants must be a list of variant names"),
    (GOOD + "exclude_newer = 3\n", "cells[1]: bad --exclude-newer '3'"),
    ('bug = ["synthetic-faults"]\n', "cannot be loaded: TypeError"),
])
def test_a_value_of_the_wrong_type_is_one_line_too(tmp_path, text, problem):
    with pytest.raises(UsageError) as info:
        load(tmp_path, text)
    assert str(info.value).startswith("synthetic_faults.toml: ") and problem in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.fault("one bad file: a broken matrix file")
def test_discover_keeps_the_good_files_and_names_the_broken_ones(tmp_path):
    from harness.registry import all_bugs

    (tmp_path / "synthetic_faults.toml").write_text(GOOD)
    (tmp_path / "synthetic_hang.toml").write_text(TOML_SLIP)
    (tmp_path / "nope.toml").write_text('bug = "nope"\n')
    (tmp_path / "zz_again.toml").write_text(GOOD)
    loaded, broken = matrix.discover(tmp_path)
    assert list(loaded) == ["synthetic-faults"]
    assert broken == {
        str(tmp_path / "nope.toml"): f"nope.toml: bug: unknown bug 'nope'; known: {', '.join(sorted(all_bugs()))}",
        str(tmp_path / "synthetic_hang.toml"): "synthetic_hang.toml: not valid TOML: "
                                               "Invalid value (at end of document)",
        str(tmp_path / "zz_again.toml"): "zz_again.toml: bug synthetic-faults already has a matrix file: "
                                         "synthetic_faults.toml"}
    with pytest.raises(UsageError, match="nope.toml: bug: unknown bug 'nope'"):
        matrix.load(tmp_path)  # the strict whole-matrix check stays


@pytest.mark.fault("one bad file: a broken matrix file")
def test_for_bug_is_scoped_to_the_bugs_own_file(tmp_path):
    (tmp_path / "synthetic_faults.toml").write_text(GOOD)
    (tmp_path / "synthetic_hang.toml").write_text(TOML_SLIP)  # broken TOML: the bug is the file name's
    (tmp_path / "elsewhere.toml").write_text('bug = "synthetic-setup"\n[[cells]]\npython = 3\n')  # the `bug` value's
    assert matrix.for_bug("synthetic-faults", tmp_path)["bug"] == "synthetic-faults"
    assert matrix.for_bug("synthetic-broken-control", tmp_path) is None
    with pytest.raises(UsageError, match="the matrix file of synthetic-hang is broken: synthetic_hang.toml: not valid"):
        matrix.for_bug("synthetic-hang", tmp_path)
    with pytest.raises(UsageError, match="synthetic-setup is broken: elsewhere.toml: cells.1.: python must be"):
        matrix.for_bug("synthetic-setup", tmp_path)


SYNTHETIC_FIXED = '''
"""present on its trigger, absent on its `fixed` trigger: `repro verify` passes on it."""
BUG = {"id": "synthetic-fixed", "title": "a bug and its fix", "failure_kind": "exception",
       "signature": "synthetic bug", "trigger_rate": {"reproduced": 20, "attempts": 20},
       "variants": {"trigger": {"role": "trigger", "run": "buggy", "timeout": 20},
                    "fixed": {"role": "trigger", "run": "clean", "timeout": 20},
                    "control": {"role": "control", "run": "clean", "timeout": 20}}}


def buggy(ctx):
    raise RuntimeError("synthetic bug")


def clean(ctx):
    return {}
'''
CURRENT = "%d.%d" % sys.version_info[:2]
FIXED_MATRIX = f'''bug = "synthetic-fixed"
[verify]
present = {{ python = "current" }}
absent = {{ python = "current", variant = "fixed" }}
[[cells]]
python = "{CURRENT}"
variants = ["trigger", "control"]
expect = "present"
'''


@pytest.fixture
def layout(tmp_path):
    """A checkout of the harness with its own matrix/ and repros/: a good synthetic bug and a TOML slip.

    The harness is copied, not linked: ROOT (and so matrix/) is where harness/ really is.
    """
    from harness.paths import ROOT

    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "harness", repo / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("conftest.py", "noxfile.py", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    (repo / "repros").mkdir()
    (repo / "repros" / "synthetic_fixed.py").write_text(SYNTHETIC_FIXED)
    (repo / "matrix").mkdir()
    (repo / "matrix" / "synthetic_fixed.toml").write_text(FIXED_MATRIX)
    (repo / "matrix" / "synthetic_faults.toml").write_text(TOML_SLIP)
    return repo


def run_in(repo, *args, env=None):
    return subprocess.run([sys.executable, *args], cwd=repo, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


@pytest.mark.fault("one bad file: a broken matrix file")
def test_verify_works_beside_a_broken_file_and_is_one_line_on_it(layout, tmp_path):
    results = tmp_path / "results.jsonl"
    good = run_in(layout, "-m", "harness", "verify", "synthetic-fixed", "--results", str(results), "--quiet")
    assert good.returncode == 0, good.stderr
    assert good.stderr.splitlines() == ["verify synthetic-fixed: 4 of 4 checks hold"]
    broken = run_in(layout, "-m", "harness", "verify", "synthetic-faults", "--results", str(tmp_path / "no.jsonl"))
    assert broken.returncode == 2 and broken.stderr.splitlines() == [
        "repro: the matrix file of synthetic-faults is broken: synthetic_faults.toml: not valid TOML: "
        "Invalid value (at end of document)"], broken.stderr
    assert not (tmp_path / "no.jsonl").exists()


@pytest.mark.fault("one bad file: a broken matrix file")
def test_pytest_runs_the_other_files_and_fails_the_broken_one_in_one_line(layout, tmp_path):
    out = run_in(layout, "-m", "pytest", "matrix/", "-p", "no:cacheprovider", "-q", "--attempts", "1",
                 "--results-dir", str(tmp_path / "results"))
    assert out.returncode == 1, out.stdout[-3000:]
    assert "1 failed, 2 passed" in out.stdout and "Traceback" not in out.stdout, out.stdout[-3000:]
    problem = "synthetic_faults.toml: not valid TOML: Invalid value (at end of document)"
    assert problem in out.stdout.splitlines() and "FAILED matrix/synthetic_faults.toml::load" in out.stdout
    only = run_in(layout, "-m", "pytest", "matrix/", "-p", "no:cacheprovider", "-q", "--collect-only",
                  "--bug", "synthetic-fixed")
    assert only.returncode == 0 and "synthetic_faults.toml" not in only.stdout, only.stdout[-3000:]


@pytest.mark.fault("one bad file: a broken matrix file")
def test_nox_lists_the_other_sessions_with_one_warning_and_fails_on_it_under_ci(layout):
    listed = run_in(layout, "-m", "nox", "-l", env={"CI": ""})
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert f"synthetic_fixed(python='{CURRENT}')" in listed.stdout and "* matrix_files" in listed.stdout
    warnings = [line for line in listed.stderr.splitlines() if "warning" in line]
    assert warnings == ["noxfile: warning: broken matrix file left out: synthetic_faults.toml: not valid TOML: "
                        "Invalid value (at end of document)"], listed.stderr
    local = run_in(layout, "-m", "nox", "-s", "matrix_files", env={"CI": ""})
    assert local.returncode == 0 and "Session matrix_files skipped: synthetic_faults.toml" in local.stderr, local.stderr
    under_ci = run_in(layout, "-m", "nox", "-s", "matrix_files", env={"CI": "true"})
    assert under_ci.returncode == 1 and "synthetic_faults.toml: not valid TOML" in under_ci.stderr, under_ci.stderr
    jobs = json.loads(run_in(layout, "-m", "nox", "-l", "--json", "-t", "cells", env={"CI": "true"}).stdout)
    assert "matrix_files" in {job["session"] for job in jobs}  # a job of the CI matrix
