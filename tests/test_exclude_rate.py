"""What an `absent` excludes, and planning to exclude a rate: the figures of harness.stats, and a
partly fixed synthetic bug (tests/fault_repros/synthetic_partial.py, 1 reproduction in 5 attempts)
run in real child processes."""
import math

import pytest

from harness import stats
from harness.cell import Cell, Options, plan_attempts, run_cell
from harness.record import CellRecord, RecordError, strength


@pytest.mark.parametrize("clean,words", [(1, "excludes >= 95%"), (2, "excludes >= 78%"), (3, "excludes >= 64%"),
                                         (10, "excludes >= 26%"), (29, "excludes >= 10%"), (59, "excludes >= 5%")])
def test_clean_attempts_exclude_rates_at_95_percent(clean, words):
    assert stats.excluded_rate(clean) == pytest.approx(1 - 0.05 ** (1 / clean))
    assert stats.exclusion_words(stats.excluded_rate(clean)) == words


def test_the_exact_figures():
    assert stats.excluded_rate(2) == pytest.approx(0.7763932)   # 1 - sqrt(0.05)
    assert stats.excluded_rate(29) == pytest.approx(0.0981446)
    assert stats.excluded_rate(0) == 1.0


@pytest.mark.parametrize("rate,attempts", [(0.1, 29), (0.05, 59), (0.2, 14), (0.5, 5), (0.01, 299)])
def test_attempts_to_exclude_a_rate(rate, attempts):
    assert stats.attempts_to_exclude(rate) == attempts
    assert stats.excluded_rate(attempts) <= rate < stats.excluded_rate(attempts - 1)


def test_a_bound_is_rounded_up_in_words():
    assert stats.percent(0.4507) == "46%"  # never a rate the attempts do not exclude
    assert stats.percent(stats.excluded_rate(600)) == "0.5%"


def test_planning_excludes_the_rate_past_the_cap():
    bound = 0.05 ** (1 / 50)  # 50 of 50 measured: 2 attempts reach 0.99
    assert plan_attempts(bound, Options()) == 2
    assert plan_attempts(bound, Options(exclude_rate=0.1)) == 29
    assert plan_attempts(bound, Options(exclude_rate=0.05)) == 59 > Options().max_attempts
    assert plan_attempts(0.05, Options(exclude_rate=0.5)) == Options().max_attempts  # the confidence rule, capped
    assert plan_attempts(bound, Options(attempts=3, exclude_rate=0.1)) == 3


def partial(tmp_path, **options):
    counter = tmp_path / "attempts.txt"
    record = run_cell(Cell("synthetic-partial", "trigger", "current"),
                      Options(params={"counter": str(counter)}, **options))
    return record, counter.read_text().split()


def test_two_clean_attempts_of_a_partly_fixed_bug_say_what_they_exclude(tmp_path):
    record, ran = partial(tmp_path)
    assert record.verdict == "absent" and record.attempts == 2 and ran == ["trigger", "trigger"]
    assert record.confidence == pytest.approx(1 - (1 - 0.05 ** (1 / 50)) ** 2, abs=1e-6)
    assert record.excludes_rate == pytest.approx(stats.excluded_rate(2), abs=1e-6)
    assert record.excludes_rate >= stats.excluded_rate(2)  # rounded up, never down
    assert strength(record) == "2 clean, conf 0.997, excludes >= 78%"
    assert "excludes >= 78% per attempt" in record.reason


def test_excluding_ten_percent_finds_the_partly_fixed_bug(tmp_path):
    record, ran = partial(tmp_path, exclude_rate=0.1)
    assert record.verdict == "present" and record.reproductions == 1
    assert record.attempts == 5 and ran.count("trigger") == 5  # planned 29, stopped at the 5th: the bug
    assert record.excludes_rate is None and record.controls[0].outcome == "clean"


def test_the_cli_plans_29_attempts_for_exclude_rate(tmp_path):
    import subprocess
    import sys

    counter = tmp_path / "attempts.txt"
    done = subprocess.run([sys.executable, "-m", "harness", "run", "synthetic-partial", "--python", "current",
                           "--param", f"counter={counter}", "--param", "every=30", "--exclude-rate", "0.1",
                           "--results", str(tmp_path / "r.jsonl"), "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert counter.read_text().split() == ["trigger"] * 29
    assert "29 clean attempts" in done.stderr and "excludes >= 10%" in done.stderr


@pytest.mark.parametrize("args,problem", [(["--exclude-rate", "1"], "between 0 and 1"),
                                          (["--exclude-rate", "nan"], "between 0 and 1"),
                                          (["--exclude-rate", "0.1", "--attempts", "3"], "not both")])
def test_bad_exclude_rate_is_a_usage_error(tmp_path, args, problem):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "harness", "run", "synthetic-partial", "--python", "current",
                           "--results", str(tmp_path / "r.jsonl"), *args], capture_output=True, text=True)
    assert done.returncode == 2 and problem in done.stderr


def test_an_older_record_without_the_field_still_says_it():
    old = CellRecord.from_json({"kind": "cell", "verdict": "absent", "attempts": 3, "confidence": 0.9998})
    assert old.excludes_rate is None and strength(old) == "3 clean, conf 1.000, excludes >= 64%"
    assert "excludes_rate" not in old.to_json()


@pytest.mark.parametrize("value", [0, 1.5, -0.1, "0.7", True])
def test_a_bad_excludes_rate_is_refused_on_read(value):
    with pytest.raises(RecordError) as caught:
        CellRecord.from_json({"kind": "cell", "verdict": "absent", "attempts": 2, "excludes_rate": value})
    assert caught.value.field == "excludes_rate"


def test_the_rate_round_trips():
    record = CellRecord(verdict="absent", attempts=2, excludes_rate=math.ceil(stats.excluded_rate(2) * 1e6) / 1e6)
    assert CellRecord.from_json(record.to_json()).excludes_rate == record.excludes_rate
