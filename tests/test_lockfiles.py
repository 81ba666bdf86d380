"""The releases a requirements file, a uv.lock or a pylock.toml pins (harness/envs/lockfiles.py), read
from files the real tools wrote (tests/lockfiles/README.md), and `repro run --with-requirements FILE`:
only the releases of what the bug's variant installs are taken; a missing or unparsable file, or one
that pins none of the bug's packages, is one line and exit 2 before anything runs."""
import json
from pathlib import Path

import pytest

from harness.envs import lockfiles
from harness.errors import UsageError
from test_cli import repro

LOCKS = Path(__file__).resolve().parent / "lockfiles"
UV_LOCK, PYLOCK = LOCKS / "uv" / "uv.lock", LOCKS / "pylock" / "pylock.toml"
COMPILED = LOCKS / "pip-compile" / "requirements.txt"


def test_uv_lock_pins_the_index_releases_not_the_project_itself():
    locked = lockfiles.read(UV_LOCK)
    assert locked.kind == "uv.lock"
    assert locked.pins(["awswrangler", "deltalake", "pyarrow"]) == \
        ["awswrangler==3.9.1", "deltalake==0.19.2", "pyarrow==17.0.0"]
    assert locked.version_of("pipeline") is None  # source = { virtual = "." }: no release of the index
    assert locked.version_of("Typing_Extensions") == "4.12.2"  # names compare normalised


def test_pylock_toml():
    locked = lockfiles.read(PYLOCK)
    assert locked.kind == "pylock.toml"
    assert locked.pins(["deltalake", "pyarrow", "awswrangler"]) == ["deltalake==0.20.1",
                                                                     "pyarrow==17.0.0"]


def test_compiled_requirements_with_hashes_and_continuations():
    locked = lockfiles.read(COMPILED)
    assert locked.kind == "requirements"
    assert locked.version_of("awswrangler") == "3.12.0" and locked.version_of("deltalake") == "1.1.2"
    assert len(locked.versions) == 19


def test_the_kind_is_told_by_the_content_when_the_name_does_not(tmp_path):
    renamed = tmp_path / "deps.lock"
    renamed.write_text(UV_LOCK.read_text())
    assert lockfiles.read(renamed).kind == "uv.lock"
    renamed.write_text(PYLOCK.read_text())
    assert lockfiles.read(renamed).kind == "pylock.toml"


def test_requirements_includes_ranges_urls_and_options(tmp_path):
    (tmp_path / "base.txt").write_text("pyarrow==17.0.0  # the base\n")
    (tmp_path / "constraints.txt").write_text("numpy===2.1.1\n")
    (tmp_path / "requirements.txt").write_text(
        "--index-url https://pypi.org/simple\n-r base.txt\n--constraint constraints.txt\n-e ./src\n"
        "deltalake>=0.20\nmylib @ file:///tmp/mylib\npandas==2.*\n"
        "awswrangler==3.9.1 ; python_version >= '3.9' \\\n    --hash=sha256:00\n")
    locked = lockfiles.read(tmp_path / "requirements.txt")
    assert {name: sorted(v) for name, v in locked.versions.items()} == \
        {"pyarrow": ["17.0.0"], "numpy": ["2.1.1"], "awswrangler": ["3.9.1"]}  # no range, URL or wildcard


def test_a_package_locked_at_two_versions_is_no_guess(tmp_path):
    fork = tmp_path / "uv.lock"
    fork.write_text(UV_LOCK.read_text() + '\n[[package]]\nname = "numpy"\nversion = "2.1.1"\n'
                    'source = { registry = "https://pypi.org/simple" }\n')  # a fork, as uv writes per Python
    with pytest.raises(UsageError, match=r"locks numpy at 2 versions \(1.26.4, 2.1.1\).*--with numpy==VERSION"):
        lockfiles.read(fork).version_of("numpy")


@pytest.mark.parametrize("name, text, problem", [
    ("uv.lock", "version = 1\n[[package]\n", "uv.lock: not a uv.lock file: not valid TOML"),
    ("uv.lock", "version = 1\n", "uv.lock: not a uv.lock file: no [[package]] tables"),
    ("pylock.toml", 'lock-version = "1.0"\npackages = 3\n', "pylock.toml: not a pylock.toml file: no [[packages]]"),
    ("requirements.txt", "deltalake==0.20.1\nnot a requirement!\n", "requirements.txt:2: not a requirement: "),
    ("requirements.txt", "-r missing.txt\n", "requirements.txt:1: "),
    ("requirements.txt", b"\xff\xfe\x00", "requirements.txt: cannot be read"),
])
def test_unparsable_files_are_one_line_usage_errors(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(UsageError) as caught:
        lockfiles.read(path)
    assert problem in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("args, problem", [
    (["delta-already-borrowed", "--with-requirements", "no-such.txt"], "no-such.txt: no such file"),
    (["lancedb-fork-hang", "--with-requirements", str(UV_LOCK)],
     "pins none of lancedb, pylance (the packages of lancedb-fork-hang)"),
    (["beam-py311-gc-deadlock", "--variant", "cpython-trigger", "--with-requirements", str(UV_LOCK)],
     "the variant installs nothing (a bare interpreter)"),
])
def test_run_with_a_bad_requirements_file_is_exit_2_before_anything_runs(tmp_path, args, problem):
    out = repro("run", *args, "--results", str(tmp_path / "r.jsonl"))
    assert out.returncode == 2, out.stderr
    assert out.stderr.count("\n") == 1 and problem in out.stderr, out.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_run_with_an_unparsable_file_is_exit_2(tmp_path):
    bad = tmp_path / "requirements.txt"
    bad.write_text("deltalake==0.20.1 ===\n")
    out = repro("run", "delta-already-borrowed", "--with-requirements", str(bad), "--results", str(tmp_path / "r"))
    assert out.returncode == 2 and out.stderr.startswith(f"repro: {bad}:1: not a requirement"), out.stderr


@pytest.mark.slow
def test_a_real_cell_installs_the_locks_releases_of_what_the_variant_installs(tmp_path):
    """deltalake and pyarrow from the uv.lock (awswrangler, numpy, ... are not what the bug installs);
    --with wins for the name it pins."""
    results = tmp_path / "r.jsonl"
    out = repro("run", "delta-already-borrowed", "--with-requirements", str(UV_LOCK), "--with", "pyarrow==18.0.0",
                "--attempts", "1", "--control-attempts", "0", "--results", str(results), "--json", timeout=900)
    assert out.returncode in (0, 1), out.stderr  # present or absent: a rate, not a constant
    assert f"from {UV_LOCK}: deltalake==0.19.2 (what delta-already-borrowed installs" in out.stderr
    record = json.loads(results.read_text().splitlines()[-1])
    assert sorted(record["pins"]) == ["deltalake==0.19.2", "pyarrow==18.0.0"]
    assert record["installed"]["deltalake"] == "0.19.2" and record["environment"]["pyarrow"] == "18.0.0"
    assert "awswrangler" not in record["environment"]
