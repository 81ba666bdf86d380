"""Environments: interpreter discovery, the content-hash cache and its file lock (real uv, real index)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import envs, interpreters
from harness.errors import EnvBuildError, UsageError

ROOT = Path(__file__).resolve().parent.parent


def test_finds_an_interpreter_by_minor_and_exact_version():
    current = interpreters.find("current")
    assert interpreters.find(current.minor).minor == current.minor
    assert interpreters.find(current.version).version == current.version


def test_missing_interpreter_says_where_it_looked():
    with pytest.raises(UsageError, match=r"no Python 3\.99 interpreter found \(looked on PATH"):
        interpreters.find("3.99")


def test_key_depends_on_interpreter_pins_and_date():
    py = interpreters.find("current")
    base = envs.env_key(py, ["a==1"], None)
    assert base == envs.env_key(py, ["a==1"], None)
    assert base != envs.env_key(py, ["a==2"], None)
    assert base != envs.env_key(py, ["a==1"], "2024-01-01")


def test_merge_replaces_by_name():
    merged = envs.merge_requirements(["deltalake", "pyarrow"], ["DeltaLake==0.20.1", "numpy<2"])
    assert merged == ["DeltaLake==0.20.1", "numpy<2", "pyarrow"]


def test_unsatisfiable_requirement_is_an_env_build_error(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path))
    with pytest.raises(EnvBuildError, match="cannot install"):
        envs.ensure_env(interpreters.find("current"), ["six==0.0.0.1"])
    assert not [p for p in (tmp_path / "envs").iterdir() if p.is_dir()], "a failed build leaves nothing"


BUILD = """
import json, sys
from harness import envs, interpreters
env = envs.ensure_env(interpreters.find("current"), ["six==1.16.0"], "2024-06-01")
print(json.dumps({"python": env.python, "reused": env.reused}))
"""


def test_concurrent_builds_share_one_env(tmp_path):
    env = {**os.environ, "REPRO_CACHE_DIR": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", BUILD], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    outs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert len({o["python"] for o in outs}) == 1
    assert sorted(o["reused"] for o in outs) == [False, True, True], "exactly one process built the env"
    python = outs[0]["python"]
    version = subprocess.run([python, "-c", "import six; print(six.__version__)"], capture_output=True, text=True)
    assert version.stdout.strip() == "1.16.0"
