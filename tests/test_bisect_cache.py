"""The bisect verdict cache is verified on read: a tampered, copied or broken entry is tested again.

The end-to-end case runs `repro bisect` on the synthetic fault repros (a stdlib-only trigger that
always reproduces) on the current interpreter, edits the cached verdict from present to absent, and
checks that the next bisect ignores the entry with a note, tests the point again and says present.
The other cases store and read entries directly (harness/bisect/cache.py is the thing under test).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.bisect import cache
from harness.cell import Cell, Options
from harness.registry import load_bug

ROOT = Path(__file__).resolve().parent.parent
FAULTS = ROOT / "tests" / "fault_repros"


def bisect(cache_dir: Path, results: Path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "REPRO_PATH": str(FAULTS), "REPRO_CACHE_DIR": str(cache_dir)}
    out = subprocess.run([sys.executable, "-m", "harness", "bisect", "synthetic-faults", "--python-versions",
                          "current", "--map", "--attempts", "2", "--json", "--quiet", "--results", str(results)],
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    row, = report["timeline"]
    return row, report["counts"], out.stderr


def the_verdict_holder(entry: dict) -> dict:
    """The mapping that holds the cached verdict, wherever the entry's format keeps it."""
    if "verdict" in entry:
        return entry
    return next(value for value in entry.values() if isinstance(value, dict) and "verdict" in value)


@pytest.mark.fault("fooled: a tampered bisect cache")
def test_an_edited_cached_verdict_is_tested_again(tmp_path):
    first, counts, _ = bisect(tmp_path / "cache", tmp_path / "r.jsonl")
    assert first["verdict"] == "present" and counts["from_cache"] == 0
    again, counts, _ = bisect(tmp_path / "cache", tmp_path / "r.jsonl")
    assert again["verdict"] == "present" and counts["from_cache"] == 1  # the cache is used when it holds

    entry_file, = (tmp_path / "cache" / "verdicts").glob("*.json")
    entry = json.loads(entry_file.read_text())
    the_verdict_holder(entry).update(verdict="absent", state="absent", reproductions=0)
    entry_file.write_text(json.dumps(entry, indent=1))

    after, counts, stderr = bisect(tmp_path / "cache", tmp_path / "r.jsonl")
    assert (after["verdict"], after["cached"], counts["from_cache"]) == ("present", False, 0)
    assert counts["attempts"] >= 1
    assert "ignored" in stderr and "mac does not verify" in stderr
    # The entry is rewritten from the new run, and holds again.
    rebuilt, counts, stderr = bisect(tmp_path / "cache", tmp_path / "r.jsonl")
    assert (rebuilt["verdict"], counts["from_cache"]) == ("present", 1) and "ignored" not in stderr


SUMMARY = {"verdict": "present", "state": "present", "reason": "reproduced 2 of 2", "attempts": 2,
           "reproductions": 2, "controls": 1, "seconds": 1.5, "env_built": False, "env_failed": False,
           "env_seconds": 0.0, "installed": {}, "python": "3.11.7", "exclude_newer": None}


@pytest.fixture
def stored(tmp_path, monkeypatch):
    """One verified entry in a fresh cache: (its inputs, its file)."""
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    bug = load_bug(FAULTS / "synthetic_faults.py")
    inputs = cache.inputs_of(bug, Cell(bug.id, "trigger", "3.11.7"), Options())
    cache.store(inputs, cache.PointSummary.from_json(SUMMARY))
    assert cache.read(inputs).to_json() == SUMMARY
    return inputs, cache.entry_path(cache.key_of(inputs))


def rewrite(path: Path, change) -> None:
    entry = json.loads(path.read_text())
    change(entry)
    path.write_text(json.dumps(entry))


def test_the_entry_names_what_it_was_computed_from(stored):
    _, path = stored
    held = json.loads(path.read_text())["inputs"]
    assert {"bug", "variant", "python", "pins", "exclude_newer", "repro", "harness", "schema"} <= set(held)
    assert held["repro"] == cache.file_digest(FAULTS / "synthetic_faults.py")
    assert oct((path.parent / ".key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("damage, says", [
    (lambda e: e["summary"].update(verdict="absent", state="absent"), "mac does not verify"),
    (lambda e: e.update(mac="0" * 64), "mac does not verify"),
    (lambda e: e.pop("mac"), "mac does not verify"),
    (lambda e: e["inputs"].update(python="3.12.1"), "other inputs"),       # copied under another key
    (lambda e: e["summary"].update(attempts="2"), "field 'attempts' is str"),
    (lambda e: e["summary"].update(installed=["x"]), "field 'installed' is list"),
    (lambda e: e["summary"].update(state="absent"), "does not follow"),
    (lambda e: e["summary"].update(verdict="fixed", state="skip"), "unknown verdict"),
    (lambda e: e.update(schema=1), "schema"),
])
@pytest.mark.fault("fooled: a tampered bisect cache")
def test_a_damaged_entry_is_ignored_with_a_note(stored, capsys, damage, says):
    inputs, path = stored
    rewrite(path, damage)
    assert cache.read(inputs) is None
    assert says in capsys.readouterr().err


@pytest.mark.fault("fooled: a tampered bisect cache")
def test_an_entry_that_is_not_json_or_too_deep_is_ignored(stored, capsys):
    inputs, path = stored
    for text in ("{not json", "[" * 100_000 + "]" * 100_000, '"a string"', "null"):
        path.write_text(text)
        assert cache.read(inputs) is None
    assert capsys.readouterr().err.count("ignored") == 4


@pytest.mark.fault("fooled: a tampered bisect cache")
def test_an_entry_of_another_cache_does_not_verify(stored, tmp_path, monkeypatch, capsys):
    inputs, path = stored
    entry = path.read_text()
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "other"))
    absent = cache.PointSummary.from_json({**SUMMARY, "verdict": "absent", "state": "absent"})
    cache.store(inputs, absent)  # makes the other cache's key
    cache.entry_path(cache.key_of(inputs)).write_text(entry)  # a whole entry, made with the first key
    assert cache.read(inputs) is None and "mac does not verify" in capsys.readouterr().err


@pytest.mark.fault("fooled: a tampered bisect cache")
def test_a_damaged_key_voids_every_entry_and_is_replaced(stored, capsys):
    inputs, path = stored
    (path.parent / ".key").write_bytes(b"short")
    assert cache.read(inputs) is None
    cache.store(inputs, cache.PointSummary.from_json(SUMMARY))
    assert "damaged" in capsys.readouterr().err
    assert len((path.parent / ".key").read_bytes()) == cache.KEY_BYTES and cache.read(inputs).to_json() == SUMMARY
