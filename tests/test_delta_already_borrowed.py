"""delta-already-borrowed end to end with the real deltalake releases from the index (Python 3.11)."""
import pytest

from conftest import skip_without_python
from harness.cell import Cell, Options, run_cell
from harness.envs import interpreters, package_index
from harness.versions import version_key

pytestmark = pytest.mark.slow


def newest_deltalake() -> str:
    usable = [r.version for r in package_index.releases("deltalake").values()
              if not r.yanked and any("manylinux" in t and "x86_64" in t for t in r.wheel_tags)]
    return max(usable, key=version_key)


@pytest.fixture(scope="module", autouse=True)
def needs_python_311():
    skip_without_python("3.11")


def run(variant, version):
    return run_cell(Cell("delta-already-borrowed", variant, "3.11", (f"deltalake=={version}",)),
                    Options(control_attempts=0))


def test_present_on_0_20_1():
    record = run("trigger", "0.20.1")
    assert record["verdict"] == "present", record["reason"]
    assert record["installed"]["deltalake"] == "0.20.1"
    errors = record["evidence"][0]["evidence"]["observation"]["errors"]
    assert any("Already borrowed" in e or "Already mutably borrowed" in e for e in errors)


def test_absent_on_the_newest_release():
    version = newest_deltalake()
    record = run("trigger", version)
    assert record["verdict"] == "absent", record["reason"]
    assert record["installed"]["deltalake"] == version
    assert record["confidence"] >= 0.99 and record["attempts"] >= 2


@pytest.mark.parametrize("version", ["0.20.1", "newest"])
def test_control_is_clean(version):
    record = run("control-uri", newest_deltalake() if version == "newest" else version)
    assert record["verdict"] == "absent", record["reason"]


def test_second_env_build_installs_nothing():
    from harness.envs import venv

    interpreter = interpreters.find("3.11")
    first = venv.ensure_env(interpreter, ["deltalake==0.20.1", "pyarrow"])
    again = venv.ensure_env(interpreter, ["deltalake==0.20.1", "pyarrow"])
    assert again.reused and again.build_seconds == 0.0 and again.python == first.python
