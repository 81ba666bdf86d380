"""lancedb-fork-hang on a real release: the hang's evidence covers the forked worker (Python 3.11)."""
import shutil

import pytest

from conftest import sessions_alive
from harness.attempt import ChildCommand, child_env, run_attempt
from harness.envs import interpreters, package_index, venv
from harness.envs.requirements import merge_requirements
from harness.registry import get_bug

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def command():
    try:
        interpreter = interpreters.find("3.11")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"no Python 3.11 here: {exc}")
    bug = get_bug("lancedb-fork-hang")
    cutoff = package_index.release_date_cutoff("lancedb", "0.14.0")
    env = venv.ensure_env(interpreter, merge_requirements(bug.requirements, ["lancedb==0.14.0"]), cutoff)
    return ChildCommand(env.python, child_env({}))


def test_hang_evidence_has_the_forked_workers_stacks_and_threads(command):
    bug = get_bug("lancedb-fork-hang")
    result = run_attempt(bug, bug.variant("trigger"), command)
    assert result.outcome == "hang", result.reason
    assert sessions_alive(result.evidence["pid"]) == [], "the forked worker outlived the attempt"
    # The attempt child waits on the pool; the worker is a second process of the session.
    assert len(result.evidence["threads"]) >= 2 and all(result.evidence["threads"].values())
    assert "Future.result" in result.evidence["stacks"] or "in result" in result.evidence["stacks"]
    if not shutil.which("py-spy"):
        pytest.skip("py-spy is not installed: no native stacks")
    dumps = result.evidence["native_stacks"].values()
    assert any("LanceTable.add" in d and "tokio" in d for d in dumps), "no native stack of the hung worker"


def test_spawn_control_is_clean_on_the_same_release(command):
    bug = get_bug("lancedb-fork-hang")
    result = run_attempt(bug, bug.variant("control-spawn"), command)
    assert result.outcome == "clean", result.reason
    assert sessions_alive(result.evidence["pid"]) == []
