"""A cache dir the harness cannot use is one line and exit 2, before anything is built.

Each case runs the real command (`python -m harness run`) on a cell that needs an env, against an
unreachable index, so nothing is downloaded whatever happens: a cache dir below a regular file, a
lock path that is a directory, and a cache on a read-only filesystem (root ignores mode bits, a
read-only mount it cannot).
"""
import subprocess

import pytest

from conftest import small_tmpfs
from harness.errors import UsageError
from test_cli import repro

CELL = ["run", "synthetic-trust", "--variant", "path-probe", "--python", "current", "--attempts", "1"]
UNREACHABLE = {"UV_DEFAULT_INDEX": "http://127.0.0.1:9/simple"}


def run_with_cache(cache, results):
    return repro(*CELL, "--results", str(results), env={**UNREACHABLE, "REPRO_CACHE_DIR": str(cache)})


def assert_one_line(out, results, wanted: str):
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    # Progress may have announced the cell; the problem itself is one line.
    problems = [line for line in out.stderr.splitlines() if not line.startswith(("[", "  "))]
    assert len(problems) == 1 and problems[0].startswith("repro: ") and wanted in problems[0], out.stderr
    assert not results.exists()


@pytest.mark.fault("one line: a cache dir that cannot be used")
def test_a_cache_dir_below_a_regular_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    out = run_with_cache(tmp_path / "file" / "cache", tmp_path / "r.jsonl")
    assert_one_line(out, tmp_path / "r.jsonl", f"the cache dir {tmp_path / 'file' / 'cache'} cannot be used")


@pytest.mark.fault("one line: a cache dir that cannot be used")
def test_a_lock_path_that_is_a_directory_is_one_line(tmp_path):
    cache = tmp_path / "cache"
    first = run_with_cache(cache, tmp_path / "r.jsonl")  # takes the env's lock, then cannot reach the index
    assert first.returncode == 2 and "cannot reach the package index" in first.stderr, first.stderr
    locks = sorted((cache / "envs").glob("*.lock"))
    assert locks, "the first run took no lock"
    for lock in locks:
        lock.unlink()
        lock.mkdir()
    out = run_with_cache(cache, tmp_path / "r.jsonl")
    assert_one_line(out, tmp_path / "r.jsonl", f"cannot lock {locks[0]}: Is a directory")


@pytest.mark.fault("one line: a cache dir that cannot be used")
@pytest.mark.parametrize("below", ["", "sub"], ids=["the-mount", "a-dir-to-make-in-it"])
def test_a_read_only_cache_dir_is_one_line(tmp_path, below):
    with small_tmpfs(tmp_path / "ro", "1m") as mount:
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        out = run_with_cache(mount / below, tmp_path / "r.jsonl")
    assert_one_line(out, tmp_path / "r.jsonl", "cannot be used")


def test_an_error_inside_the_lock_is_not_taken_for_a_cache_problem(tmp_path, monkeypatch):
    """Only taking the lock is mapped: what the block raises (a build's own OSError) passes unchanged."""
    from harness.paths import cache_lock

    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError), cache_lock("envs/x.lock"):
        open(tmp_path / "missing")
    (tmp_path / "cache" / "envs" / "y.lock").mkdir()
    with pytest.raises(UsageError, match="cannot lock"), cache_lock("envs/y.lock"):
        pass
