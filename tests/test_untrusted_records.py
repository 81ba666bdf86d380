"""Records are untrusted data: the code under test writes reasons and notes, and a results file can be
edited. What a record holds must stay text in the tracking issues (no way out of a code fence, no
@mention, no table cell split) and never name a path outside where the report writes."""
import json
import re

import pytest

from harness import watch
from report_records import record

BREAKOUT = ("x\n```\n\n## All fixed, close this\n\n@maintainer ![img](https://evil.example/p.png)\n"
            "````\nmore")


def failing_latest(reason: str, variant: str = "trigger") -> dict:
    cell = record("delta_already_borrowed", variant, "3.13", "deltalake", "latest", "absent", expected="present")
    cell["reason"] = reason
    return cell


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_a_reason_with_backtick_fences_stays_inside_the_issue_s_code_block():
    [payload] = watch.issue_payloads([failing_latest(BREAKOUT)], [])
    body = payload["body"]
    fences = re.findall(r"^(`{3,})$", body, flags=re.M)
    opening = fences[0]
    assert len(opening) > 4, "the fence is longer than every backtick run of the reason"
    inside = body.split(opening + "\n", 1)[1].split("\n" + opening, 1)[0]
    assert "## All fixed" in inside and "@maintainer" in inside, "the whole reason is inside the one fence"
    outside = body.replace(inside, "")
    assert "@maintainer" not in outside and "![img]" not in outside and "## All fixed" not in outside


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_a_variant_with_a_pipe_an_html_comment_and_a_mention_is_one_escaped_table_cell():
    [payload] = watch.issue_payloads([failing_latest("r", variant="a|b <!-- x --> @team")], [])
    row = next(line for line in payload["body"].splitlines() if line.startswith("| a"))
    assert row.count("|") - row.count("\\|") == 6, row  # five cells: the variant's own | is escaped
    assert "<!--" not in payload["body"] and "@team" not in payload["body"]


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_a_16_mib_note_and_reason_are_cut_with_their_length_recorded():
    import sys

    from harness.attempt import ChildCommand, child_env, run_attempt
    from harness.registry import get_bug

    spec = get_bug("synthetic-trust")
    result = run_attempt(spec, spec.variant("huge-text"), ChildCommand(sys.executable, child_env({})), kill_grace=1.0)
    [note] = result.evidence["notes"]
    assert len(note) < 5000 and f"{16 << 20} characters in all" in note
    import json

    assert len(json.dumps(result.evidence, default=str)) < 50_000, "the exception's 16 MiB message is cut too"
    assert result.outcome == "reproduced", "the cut reason still carries the bug's signature"


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_a_record_whose_bug_is_a_path_writes_nothing_outside_out_and_is_named(tmp_path):
    import json

    from test_cli import repro

    good = record("delta_already_borrowed", "trigger", "3.11", "deltalake", "0.20.1", "present")
    evil = record("../../../escaped", "trigger", "3.11", "deltalake", "0.20.1", "absent")
    marker = record("delta_already_borrowed", "<!-- results:end -->", "3.11", "deltalake", "0.20.1", "absent")
    results_dir = tmp_path / "a" / "b" / "c"
    results_dir.mkdir(parents=True)
    (results_dir / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (good, evil, marker)))
    out = repro("report", str(results_dir), "--out", str(results_dir / "site"), "--no-readme")
    assert out.returncode == 0, out.stderr
    assert not list(tmp_path.rglob("escaped*")), "no file named by the record outside --out (or anywhere)"
    assert "not a plain name" in out.stderr and out.stderr.count("left out") >= 2
    assert (results_dir / "site" / "badges" / "delta_already_borrowed.json").exists(), "the good record is reported"


def _run_synthetic(results_file, variant: str, *args):
    from test_cli import repro

    return repro("run", "synthetic-trust", "--variant", variant, "--python", "current", "--quiet",
                 "--max-attempts", "1", "--results", str(results_file), *args)


def _report_step(results_dir, site, *flags):
    """CI's report job on `results_dir`: the pages and badges, then the watch's merged results."""
    from test_cli import repro

    out = repro("report", str(results_dir), "--out", str(site), "--no-readme", *flags)
    assert out.returncode == 0, out.stderr[-2000:]
    watch = repro("matrix", "watch", str(results_dir), "--published", str(site / "none"), "--payloads",
                  str(site / "watch.json"), "--publish", str(site / "results.jsonl"), *flags)
    assert watch.returncode == 0, watch.stderr[-2000:]
    published = [json.loads(line) for line in (site / "results.jsonl").read_text().splitlines()]
    [trigger] = [r for r in published if r["bug"] == "synthetic-trust" and r["variant"] == "trigger"]
    return trigger["verdict"], out.stderr + watch.stderr


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_a_record_the_code_under_test_forges_is_not_counted_by_the_report_job(tmp_path):
    """The child appends to the results file its harness writes: a genuine `present` record turned
    `absent` and dated later, once with the old seal, once re-sealed under the key disclosed by the
    earlier run. The report job's reading (--sealed) counts neither; a plain read is fooled."""
    results_file = tmp_path / "results" / "r.jsonl"
    first = _run_synthetic(results_file, "trigger")
    assert '"present"' in results_file.read_text(), first.stderr[-2000:]
    _run_synthetic(results_file, "forge-record", "--param", f"results={results_file}")
    assert results_file.read_text().count("forged by the code under test") == 2, "the child did forge"

    fooled, _ = _report_step(results_file.parent, tmp_path / "plain")
    assert fooled == "absent", "without seals the forged record wins: the attack is real"
    verdict, warnings = _report_step(results_file.parent, tmp_path / "site", "--sealed")
    assert verdict == "present", "the forged records are not counted"
    assert warnings.count("seal does not verify") == 2, warnings  # one from the report, one from the watch
    assert warnings.count("seal is not among those its key sealed") == 2, warnings
    badges = {site: json.loads((tmp_path / site / "badges" / "synthetic-trust.json").read_text())
              for site in ("plain", "site")}
    assert badges["plain"]["color"] == "brightgreen", badges  # the forgery would have turned the badge
    assert badges["site"]["color"] == "red" and "present in" in badges["site"]["message"], badges


@pytest.mark.fault("untrusted records: from the code under test or an edit")
@pytest.mark.parametrize("containment", ["default", "process-groups"])
def test_the_child_can_read_no_copy_of_the_key_its_harness_seals_with(tmp_path, monkeypatch, containment):
    """The harness (this process) has sealed a record, so its key exists; a child then reads its
    environment, every environ and cmdline it can see and every file where the results go."""
    import sys

    from harness import procs, results, seal
    from harness.attempt import ChildCommand, child_env, run_attempt
    from harness.registry import get_bug
    from report_records import record

    if containment != "default":
        monkeypatch.setenv(procs.CONTAINMENT_VARIABLE, containment)
    results_file = tmp_path / "results" / "r.jsonl"
    results.append(results_file, record("delta_already_borrowed", "trigger", "3.11", "deltalake", "0.20.1", "present"))
    key = seal._key.hex()
    spec = get_bug("synthetic-trust")
    dump = tmp_path / "dump.txt"
    attempt = run_attempt(spec, spec.variant("read-all"), ChildCommand(sys.executable, child_env({})),
                          params={"directory": str(results_file.parent), "dump": str(dump)}, kill_grace=1.0)
    assert attempt.outcome == "clean", attempt.reason
    seen = dump.read_text(encoding="latin-1")
    assert "deltalake==0.20.1" in seen and "PATH" in seen, "the child read the results file and environments"
    assert key not in seen and key.upper() not in seen
    assert not seal.keys_file(results_file).exists(), "the key is disclosed only when the harness ends"


def _good_and_bad(tmp_path, bad_line: str):
    """A results file deep under tmp_path: a valid record on line 1, `bad_line` on line 2."""
    import json

    good = record("delta_already_borrowed", "trigger", "3.11", "deltalake", "0.20.1", "present")
    results_dir = tmp_path / "a" / "b" / "c"
    results_dir.mkdir(parents=True)
    file = results_dir / "r.jsonl"
    file.write_text(json.dumps(good) + "\n" + bad_line + "\n")
    return file


def _absent_with(**fields) -> str:
    import json

    bad = record("delta_already_borrowed", "other", "3.12", "deltalake", "0.23.2", "absent")
    bad.update(fields)
    return json.dumps(bad)


DEEP = '{"schema": 1, "kind": "cell", "evidence": ' + "[" * 100_000 + "]" * 100_000 + "}"
BAD_LINES = {  # the case: (the line, the word its warning names)
    "nested-100000-deep": (DEEP, "not a whole result record"),
    "installed-a-list": (_absent_with(installed=["deltalake", "0.23.2"]), "'installed'"),
    "evidence-a-string": (_absent_with(evidence="boom"), "'evidence'"),
    "bug-not-a-string": (_absent_with(bug=["delta_already_borrowed"]), "'bug'"),
    "unknown-verdict": (_absent_with(verdict="fixed!"), "'verdict'"),
    "bug-a-path": (_absent_with(bug="../../../escaped"), "'bug'"),
}


@pytest.mark.fault("untrusted records: from the code under test or an edit")
@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_report_steps_over_a_bad_record_naming_its_line_and_reports_the_rest(tmp_path, case):
    from test_cli import repro

    bad_line, named = BAD_LINES[case]
    file = _good_and_bad(tmp_path, bad_line)
    site = file.parent / "site"
    out = repro("report", str(file.parent), "--out", str(site), "--no-readme")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    warning = next((w for w in out.stderr.splitlines() if f"{file}:2:" in w), None)
    assert warning is not None and named in warning, out.stderr[-2000:]
    assert f"{file}:1:" not in out.stderr, "the valid record is not warned about"
    assert (site / "badges" / "delta_already_borrowed.json").exists(), "the valid record is reported"
    outside = [p for p in tmp_path.rglob("*") if site not in p.parents and p not in (site, file)
               and p not in file.parents]
    assert not outside, f"written outside --out: {outside}"


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_every_reader_steps_over_a_record_whose_bug_is_a_path(tmp_path):
    from harness import results

    file = _good_and_bad(tmp_path, _absent_with(bug="../../../escaped"))
    problems = []
    assert [number for number, _ in results.read_numbered(file, problems)] == [1]
    assert len(problems) == 1 and problems[0].startswith(f"{file}:2:") and "'bug'" in problems[0]


def test_the_records_the_engine_writes_are_all_accepted():
    from harness import results
    from report_records import delta_history

    assert [results.problem(r) for r in delta_history()] == [None] * len(delta_history())


# ---------------------------------------------------------------- the README table and the OSV output

HOSTILE = "a|b `c` <!-- results:end --> [x](https://evil.example) @team\n| forged | row |"


def hostile_cell() -> dict:
    """A present cell whose every free-text field a table or the section markers could trip over."""
    cell = record("delta_already_borrowed", "trigger", "3.11", "deltalake", "0.20.1", "present")
    cell.update(python=HOSTILE, python_requested="3.11" + HOSTILE, pins=[HOSTILE, "deltalake==0.20.1"],
                installed={"deltalake": "0.20.1", HOSTILE: HOSTILE}, expected=["absent", HOSTILE])
    return cell


def table_rows(text: str) -> list[str]:
    section = text.split("<!-- results:start -->", 1)[1].split("<!-- results:end -->", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


@pytest.mark.fault("untrusted records: from the code under test or an edit")
def test_every_record_field_stays_inside_its_readme_table_cell(tmp_path):
    import json

    from test_cli import repro

    (tmp_path / "r.jsonl").write_text(json.dumps(hostile_cell()) + "\n")
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\noutro\n")
    out = repro("report", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "site"), "--readme", str(readme))
    assert out.returncode == 0, out.stderr[-2000:]
    text = readme.read_text()
    assert text.count("<!--") == 2 and text.endswith("<!-- results:end -->\noutro\n"), text
    header, rule, *rows = table_rows(text)
    assert len(rows) == 1, "the newline in a field did not start a row of its own"
    unescaped = len(re.findall(r"(?<!\\)\|", rows[0]))
    assert unescaped == 8, rows[0]  # seven cells, as the header has
    assert "`" not in rows[0].replace("\\`", "") and "](" not in rows[0] and "@team" not in rows[0]
    assert "**present** (expected absent or" in rows[0]
    again = repro("report", str(tmp_path / "r.jsonl"), "--out", str(tmp_path / "site"), "--readme", str(readme))
    assert again.returncode == 0 and readme.read_text() == text, "the section is found again, whole"


def test_a_readme_with_a_second_results_marker_is_refused_before_anything_is_written(tmp_path):
    from harness.outputs.readme import check_readme

    readme = tmp_path / "README.md"
    readme.write_text("<!-- results:start -->\n| a | <!-- results:end --> |\n<!-- results:end -->\nkept\n")
    with pytest.raises(ValueError, match="one <!-- results:start --> followed by one"):
        check_readme(readme)
    readme.write_text("<!-- results:end -->\n<!-- results:start -->\n")
    with pytest.raises(ValueError, match="followed by"):
        check_readme(readme)


@pytest.mark.fault("untrusted records: from the code under test or an edit")
@pytest.mark.parametrize("name, version", [
    ("../../../escaped", "0.20.1"),        # a path as the package name: would be osv/<bug>-../../../escaped.json
    ("deltalake/../x", "0.20.1"),
    ("-leading", "0.20.1"), ("has space", "0.20.1"), ("<img src=x>", "0.20.1"),
    ("evillib", "0.20.1 <!-- x -->"),      # a version that is not a version
    ("evillib", "not-a-version"), ("evillib", "1.0\n2.0"),
])
def test_osv_leaves_out_a_package_that_is_not_a_distribution_name_or_version(tmp_path, name, version):
    import json

    from harness import osv

    present = record("delta_already_borrowed", "trigger", "3.11", "deltalake", "0.20.1", "present")
    absent = record("delta_already_borrowed", "trigger", "3.11", "deltalake", "1.1.2", "absent")
    present["installed"][name] = version
    absent["installed"][name] = "1.1.2" if version == "0.20.1" else version
    bugs = {}
    written = osv.write_all([present, absent], tmp_path / "out", None, bugs, index_of=lambda p: None)
    assert sorted(written) == ["osv:delta_already_borrowed-deltalake"], written
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [written["osv:delta_already_borrowed-deltalake"]]
    entry = json.loads(written["osv:delta_already_borrowed-deltalake"].read_text())
    assert entry["affected"][0]["package"]["name"] == "deltalake"
    assert osv.unpublishable([present, absent]), "the left-out release is named"
    assert osv.badge("delta_already_borrowed", [present, absent], index_of=lambda p: None)["message"].startswith(
        "fixed between 0.20.1 and")


def test_osv_publishes_ordinary_names_and_versions():
    from harness import osv

    for name, version in [("deltalake", "0.20.1"), ("apache-beam", "2.63.0"), ("zope.interface", "6.0"),
                          ("Pillow", "10.0.0.post1"), ("a", "1!2.0rc1+local.7"), ("typing_extensions", "4.12.2")]:
        assert osv.publishable(name, version), (name, version)
