"""`repro run`'s answer: an exit code a script can read (0 absent, 1 present, 2 usage, 3 cannot tell,
4 not written), and last lines that say the verdict, the controls behind it, where the record went and
what to do: for a present bug, the release its matrix verifies as fixed."""
import re

import pytest

from harness.cli import answer
from harness.cli.main import build_parser
from harness.registry import get_bug
from test_cli import repro

FAULTS = ("synthetic-faults", "--python", "current", "--attempts", "1")


def run(tmp_path, *args):
    out = repro("run", *args, "--results", str(tmp_path / "r.jsonl"), "--quiet")
    return out, out.stderr.strip().splitlines()


def test_present_is_exit_1_and_the_answer_shows_the_clean_control_and_the_record(tmp_path):
    out, lines = run(tmp_path, *FAULTS)
    assert out.returncode == 1, out.stderr
    assert lines[-4].startswith("answer: PRESENT: synthetic-faults[trigger] in Python "), out.stderr
    assert lines[-3] == "controls: control clean in 1 of 1 attempts"  # the control's clean run is said
    assert lines[-2] == f"record: {tmp_path / 'r.jsonl'}"
    assert lines[-1].startswith("next: no fixed release is known") and lines[-1].endswith("[exit 1: present]")


def test_absent_is_exit_0(tmp_path):
    out, lines = run(tmp_path, "synthetic-faults", "--python", "current", "--variant", "control", "--confidence", "0.9")
    assert out.returncode == 0, out.stderr
    assert lines[-3].startswith("answer: ABSENT: synthetic-faults[control]")
    assert lines[-1] == ("next: nothing to do for these versions if the bug is fully fixed in them: 2 clean attempts "
                         "leave a per-attempt rate below 78% possible (a partly fixed release); --exclude-rate 0.1 "
                         "runs 29 attempts, excludes >= 10% [exit 0: absent]")


@pytest.mark.parametrize("variant, verdict", [("segfault", "CRASH"), ("other-exception", "OTHER-FAILURE")])
def test_a_failure_without_the_signature_is_exit_3_cannot_tell(tmp_path, variant, verdict):
    out, lines = run(tmp_path, *FAULTS, "--variant", variant)
    assert out.returncode == 3, out.stderr
    assert lines[-3].startswith(f"answer: {verdict}: synthetic-faults[{variant}]")
    assert "the record's evidence says how" in lines[-1] and lines[-1].endswith("[exit 3: cannot tell]")


def test_a_control_that_fails_too_is_an_error_exit_3_not_present(tmp_path):
    out, lines = run(tmp_path, "synthetic-broken-control", "--python", "current", "--attempts", "1")
    assert out.returncode == 3, out.stderr
    assert lines[-3].startswith("answer: ERROR: synthetic-broken-control[trigger]") and "control" in lines[-3]
    assert "the repro, a control or the env broke" in lines[-1] and lines[-1].endswith("[exit 3: cannot tell]")


def test_present_beside_a_cell_without_verdict_is_still_present(tmp_path):
    out, lines = run(tmp_path, *FAULTS, "--variant", "segfault", "--variant", "trigger")
    assert out.returncode == 1, out.stderr
    assert lines[-4].startswith("answer: PRESENT: synthetic-faults[trigger]") and "2 cells" in lines[-4]


def test_a_record_that_cannot_be_written_is_exit_4_and_said_so():
    out = repro("run", *FAULTS, "--results", "/dev/full", "--quiet")
    assert out.returncode == 4, out.stderr
    assert "record: on stdout above (/dev/full could not be written)" in out.stderr
    assert out.stdout.strip().startswith("{")


def test_usage_error_stays_exit_2(tmp_path):
    out, lines = run(tmp_path, "synthetic-faults", "--variant", "nope")
    assert out.returncode == 2 and len(lines) == 1 and "answer:" not in out.stderr


def test_exit_code_of_records():
    def cell(verdict):
        return {"verdict": verdict}
    assert answer.exit_code([cell("absent"), cell("absent")]) == 0
    assert answer.exit_code([cell("absent"), cell("hang"), cell("present")]) == 1
    assert answer.exit_code([cell("absent"), cell("skipped")]) == 3
    assert answer.exit_code([cell("error")]) == 3
    assert answer.exit_code([]) == 3  # no cell: no claim
    assert answer.exit_code([cell("absent")], written=False) == 4


@pytest.mark.parametrize("bug, package, last_bad, first_clean", [
    ("wrangler-athena-cache-race", "awswrangler", "3.11.0", "3.12.0"),
    ("delta-already-borrowed", "deltalake", "1.1.0", "1.1.2"),     # fixed, back in 0.25.2, fixed again
    ("delta-s3-silent-data-loss", "deltalake", "0.22.3", "0.23.0"),  # awswrangler's releases do not decide
    ("beam-py311-gc-deadlock", "apache-beam", "2.63.0", "2.64.0"),
])
def test_the_fix_is_read_from_the_bugs_matrix(bug, package, last_bad, first_clean):
    assert answer.fixed_in(get_bug(bug)) == answer.Fix(package, last_bad, first_clean)


def test_present_advice_names_the_fix_or_a_regression():
    bug = get_bug("wrangler-athena-cache-race")
    old = answer.present_advice({"installed": {"awswrangler": "3.10.0"}, "pins": ["awswrangler==3.10.0"]}, bug)
    assert old.startswith("upgrade awswrangler to 3.12.0 or newer: the oldest release its matrix verifies")
    assert "upstream: aws/aws-sdk-pandas#3137 (fix:" in old
    newer = answer.present_advice({"installed": {"awswrangler": "3.13.0"}, "pins": []}, bug)
    assert newer.startswith("awswrangler 3.13.0 is not older than 3.12.0") and "regression" in newer


def test_run_help_groups_the_options_and_documents_every_exit_code():
    run_parser = build_parser()._subparsers._group_actions[0].choices["run"]
    text = run_parser.format_help()
    groups = {g.title: [a.dest for a in g._group_actions] for g in run_parser._action_groups}
    assert groups["what to run"][:2] == ["bug", "variants"] and "pins" in groups["what to run"]
    assert {"attempts", "timeout", "measure", "control_attempts"} <= set(groups["how long"])
    assert {"results", "json", "quiet"} == set(groups["where results go"])
    assert "examples:" in text
    for code, word in answer.EXIT_WORDS.items():
        assert re.search(rf"^  {code}  {word}", text, re.M), (code, word)
    assert re.search(r"^  2  usage error", text, re.M)
