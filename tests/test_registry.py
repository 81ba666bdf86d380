"""Loading a repro's BUG dict: a misspelt key is refused with the file, the key and the close one."""
import pytest

from harness import registry
from harness.errors import UsageError
from harness.registry import load_bug

REPRO = '''BUG = {
    "id": "spelt", "title": "t", "failure_kind": "hang", "services": [],
    "trigger_rate": {"reproduced": 1, "attempts": 1},
    "variants": {
        "trigger": {"role": "trigger", "run": "f", "timeout": 1, "setup_timeout": 60},
        "control": {"role": "control", "run": "f", "timeout": 1},
    },
}


def f(ctx):
    return {}
'''


def write(tmp_path, text):
    path = tmp_path / "spelt.py"
    path.write_text(text)
    return path


def problem_of(path) -> str:
    with pytest.raises(UsageError) as info:
        load_bug(path)
    return str(info.value)


def test_the_well_spelt_repro_loads(tmp_path):
    bug = load_bug(write(tmp_path, REPRO))
    assert bug.services == [] and bug.variant("trigger").setup_timeout == 60


def test_a_misspelt_bug_key_names_the_file_the_key_and_the_close_one(tmp_path):
    path = write(tmp_path, REPRO.replace('"services"', '"servics"'))
    assert problem_of(path) == f"{path}: BUG: unknown key(s) servics; did you mean 'services'?"


def test_a_misspelt_variant_key_names_the_variant(tmp_path):
    path = write(tmp_path, REPRO.replace('"setup_timeout"', '"setup_timout"'))
    assert problem_of(path) == (f"{path}: variant 'trigger': unknown key(s) setup_timout; "
                                "did you mean 'setup_timeout'?")


def test_a_key_like_no_other_is_named_without_a_guess(tmp_path):
    path = write(tmp_path, REPRO.replace('"services": []', '"colour": 1'))
    assert problem_of(path) == f"{path}: BUG: unknown key(s) colour"


def test_every_shipped_and_test_repro_still_loads():
    bugs, broken = registry.discover()
    assert not broken and {"synthetic-faults", "delta-already-borrowed"} <= set(bugs)
