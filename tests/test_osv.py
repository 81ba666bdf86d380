"""OSV export and badges: the verified ranges of each bug and package, validated against the OSV schema."""
import json
from pathlib import Path

import pytest

from harness import osv, report
from harness.outputs.readme import README_END, README_START

SCHEMA = Path(__file__).parent / "osv" / "schema.json"
DELTA_INDEX = ["0.20.0", "0.20.1", "0.21.0", "0.23.1", "0.23.2", "0.25.1", "0.25.2", "1.1.0", "1.1.1", "1.1.2",
               "1.6.6"]


def cell(bug, version, verdict, package="deltalake", python="3.11", variant="trigger", **installed):
    return {"kind": "cell", "bug": bug, "variant": variant, "role": "trigger", "python_requested": python,
            "pins": [f"{package}=={version}"], "verdict": verdict, "reason": "r",
            "attempts": 2 if verdict == "absent" else 1,
            "installed": {package: version, **installed}, "started_at": "2026-12-01T00:00:00+00:00"}


def delta_history(newest_verdict="absent"):
    """deltalake's borrow bug as the matrix measured it: fixed in 0.23.2, back in 0.25.2, fixed again in 1.1.2."""
    verdicts = {"0.20.1": "present", "0.23.1": "present", "0.23.2": "absent", "0.25.2": "present",
                "1.1.0": "present", "1.1.2": "absent", "1.6.6": newest_verdict}
    records = [cell("delta-already-borrowed", v, x) for v, x in verdicts.items()]
    records.append(cell("delta-already-borrowed", "0.20.1", "error", python="3.12"))  # no verdict: left out
    return records


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema", reason="the dev extra brings jsonschema")
    return jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()),
                                           format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def entries(records):
    from harness.registry import get_bug

    bugs = {b: get_bug(b) for b in {r["bug"] for r in records}}
    return osv.entries(records, bugs, lambda package: DELTA_INDEX if package == "deltalake" else None)


def test_ranges_say_only_what_was_verified(validator):
    [entry] = entries(delta_history())
    assert list(validator.iter_errors(entry)) == []
    events = [r["events"] for r in entry["affected"][0]["ranges"]]
    # 0.23.1 -> 0.23.2 and 1.1.0 -> ... 1.1.2 : a fix where the clean release follows the last affected one,
    # else the last affected release (1.1.1 was not tested).
    assert events == [[{"introduced": "0.20.1"}, {"fixed": "0.23.2"}],
                      [{"introduced": "0.25.2"}, {"last_affected": "1.1.0"}]]
    assert entry["id"] == "x_repro-delta-already-borrowed-deltalake" and entry["affected"][0]["package"] == {
        "ecosystem": "PyPI", "name": "deltalake", "purl": "pkg:pypi/deltalake"}
    assert {"type": "FIX", "url": "https://github.com/delta-io/delta-rs/issues/3101"} in entry["references"]


def test_a_bug_back_in_the_newest_release_is_an_open_range_and_a_red_badge(validator):
    records = delta_history(newest_verdict="present")
    [entry] = entries(records)
    assert list(validator.iter_errors(entry)) == []
    # back in 1.6.6, the newest release on the index: a range with no end
    assert [r["events"] for r in entry["affected"][0]["ranges"]][1:] == [
        [{"introduced": "0.25.2"}, {"last_affected": "1.1.0"}], [{"introduced": "1.6.6"}]]
    index = {"deltalake": DELTA_INDEX}.get
    assert osv.badge("delta-already-borrowed", records, index) == {"message": "present in 1.6.6 (newest)",
                                                                   "color": "red"}
    # 1.1.1 was not tested: the fix lies between 1.1.0 and 1.1.2
    assert osv.badge("delta-already-borrowed", delta_history(), index) == {
        "message": "fixed between 1.1.0 and 1.1.2 · 1.6.6 absent (excludes >= 78%)", "color": "brightgreen"}
    tested = delta_history() + [cell("delta-already-borrowed", "1.1.1", "present")]
    assert osv.badge("delta-already-borrowed", tested, index)["message"] == \
        "fixed in 1.1.2 · 1.6.6 absent (excludes >= 78%)"


def test_a_package_whose_release_does_not_decide_the_verdict_gets_no_range():
    # awswrangler 3.11.0 loses rows with deltalake 0.22.3 and not with 0.23.0: the bug is deltalake's.
    records = [cell("delta-s3-silent-data-loss", "3.11.0", "present", package="awswrangler", deltalake="0.22.3"),
               cell("delta-s3-silent-data-loss", "3.11.0", "absent", package="awswrangler", deltalake="0.23.0")]
    assert osv.verdicts_by_release("delta-s3-silent-data-loss", "awswrangler", records) is None
    assert osv.verdicts_by_release("delta-s3-silent-data-loss", "deltalake", records) == {
        "0.22.3": "present", "0.23.0": "absent"}
    assert [e["affected"][0]["package"]["name"] for e in entries(records)] == ["deltalake"]
    # the badge names the library that decides, since the cells pin two
    index = {"deltalake": ["0.22.3", "0.23.0"]}.get
    assert osv.badge("delta-s3-silent-data-loss", records, index)["message"] == \
        "deltalake fixed in 0.23.0 (excludes >= 78%)"


def test_an_absent_release_says_the_rate_it_excludes():
    records = delta_history()
    records.append({**cell("delta-already-borrowed", "1.6.6", "absent", python="3.12"), "attempts": 29})
    [entry] = entries(records)
    # 1.6.6 is absent on 3.11 (2 clean) and 3.12 (29 clean): the weaker claim is the one said
    assert "0.23.2 absent (excludes >= 78%)" in entry["details"]
    assert "1.6.6 absent (excludes >= 78%)" in entry["details"]
    newest = next(i for i, r in enumerate(records) if r["pins"] == ["deltalake==1.6.6"])
    records[newest] = {**records[newest], "attempts": 30}
    [entry] = entries(records)
    assert "1.6.6 absent (excludes >= 10%)" in entry["details"]


def test_the_invalid_is_seen(validator):
    [entry] = entries(delta_history())
    entry["affected"][0]["ranges"][0]["events"].append({"last_affected": "0.23.1"})  # with a fixed: not allowed
    assert list(validator.iter_errors(entry))


def test_report_writes_the_osv_files_and_the_readme_badges(validator, tmp_path, monkeypatch):
    from harness import results

    monkeypatch.setattr(osv, "_index", lambda package: DELTA_INDEX if package == "deltalake" else None)
    for record in delta_history() + [cell("delta-already-borrowed", "1.1.1", "present")]:
        results.append(tmp_path / "r.jsonl", record)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{osv.BADGES_START}\nold\n{osv.BADGES_END}\n{README_START}\n{README_END}\n")
    monkeypatch.delenv("REPRO_PAGES_URL", raising=False)
    written = report.write_all(results.collect([tmp_path / "r.jsonl"])[0], tmp_path / "out", readme)
    entry = json.loads(written["osv:delta-already-borrowed-deltalake"].read_text())
    assert list(validator.iter_errors(entry)) == []
    badge = json.loads(written["badge:delta-already-borrowed"].read_text())
    assert badge["message"] == "fixed in 1.1.2 · 1.6.6 absent (excludes >= 78%)"
    assert badge["color"] == "brightgreen"
    text = readme.read_text()
    assert "old" not in text and "https://img.shields.io/badge/delta--already--borrowed-fixed%20in%201.1.2" in text
    monkeypatch.setenv("REPRO_PAGES_URL", "https://example.github.io/repro")
    report.write_all(results.collect([tmp_path / "r.jsonl"])[0], tmp_path / "out", readme)
    badge = "https%3A%2F%2Fexample.github.io%2Frepro%2Fbadges%2Fdelta-already-borrowed.json"
    assert f"img.shields.io/endpoint?url={badge}" in readme.read_text()


def test_a_badge_is_red_only_when_the_newest_release_tested_has_the_bug(monkeypatch):
    from harness.outputs import badges

    monkeypatch.setattr(osv, "_index", lambda package: DELTA_INDEX if package == "deltalake" else None)
    # a cell expected present that was only skipped here (no image on this machine): unexpected
    skipped = {**cell("delta-already-borrowed", "0.20.1", "skipped", python="3.13t"), "expected": "present"}
    fixed = badges.badge("delta-already-borrowed", delta_history() + [skipped])
    assert fixed["color"] == "brightgreen" and fixed["message"].endswith("· 1 unexpected"), fixed
    back = badges.badge("delta-already-borrowed", delta_history(newest_verdict="present") + [skipped])
    assert back["color"] == "red" and back["message"].startswith("present in 1.6.6 (newest)"), back
    untested = badges.badge("delta-already-borrowed", [skipped])
    assert (untested["color"], untested["message"]) == ("lightgrey", "untested · 1 unexpected"), untested
