"""repro bisect and repro check.

The search strategies are tested against synthetic histories (the strategies are the thing
under test: the oracle is a list of states). The interpreter axis runs a real stdlib-only repro
through the engine on the available interpreters; `repro check` drives a real `git bisect run`
over a small local git repository of a package built from each checked-out tree.
"""
import io
import json
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.bisect import cache as bisect_cache
from harness.bisect import points as axis_points
from harness.bisect import run as bisect_run
from harness.bisect import search
from harness.bisect.search import SKIP, Probe
from harness.verdict import ABSENT, PRESENT

ROOT = Path(__file__).resolve().parent.parent
P, A, S = PRESENT, ABSENT, SKIP


def probe_of(history):
    return Probe(len(history), lambda i: history[i])


def true_transitions(history):
    judged = [i for i, s in enumerate(history) if s != SKIP]
    return [(a, b) for a, b in zip(judged, judged[1:]) if history[a] != history[b]]


# ---------------------------------------------------------------- binary search

@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 64, 100])
def test_first_fixed_finds_the_transition_within_the_budget(n):
    for fixed_at in range(1, n):
        history = [P] * fixed_at + [A] * (n - fixed_at)
        probe = probe_of(history)
        assert search.first_transition(probe, P, A) == {"transition": (fixed_at - 1, fixed_at)}
        assert len(probe.order) <= math.ceil(math.log2(n)) + 2


def test_first_bad_is_the_mirror():
    history = [A] * 7 + [P] * 9
    assert search.first_transition(probe_of(history), A, P) == {"transition": (6, 7)}


def test_skipped_points_are_never_good_or_bad():
    # The first fixed release is 6; 4, 5 and 7 cannot be tested (not installable, control failed).
    history = [P, P, P, P, S, S, A, S, A, A]
    probe = probe_of(history)
    result = search.first_transition(probe, P, A)
    assert result["transition"] == (3, 6)
    assert all(probe.states[i] == SKIP for i in (4, 5) if i in probe.states)


def test_untestable_ends_move_inwards():
    history = [S, S, S, P, P, A, A, S]
    assert search.first_transition(probe_of(history), P, A) == {"transition": (4, 5)}


def test_wrong_orientation_is_a_problem_not_an_answer():
    result = search.first_transition(probe_of([A, A, P, P]), P, A)
    assert "problem" in result and "--map" in result["problem"]
    same = search.first_transition(probe_of([P, A, P]), P, A)  # ends agree: nothing to bisect
    assert "problem" in same


def test_all_skipped_is_a_problem():
    assert "problem" in search.first_transition(probe_of([S, S, S]), P, A)


# ---------------------------------------------------------------- the map

# deltalake on 3.11 as bugs.md describes it: old releases not installable, clean, intermittent,
# present, fixed (3 releases), present again, fixed again.
DELTALAKE_LIKE = [S] * 20 + [A] * 15 + [P, A, P, P, A, P] + [P] * 10 + [A] * 3 + [P] * 7 + [A] * 20


def test_map_finds_every_transition_of_a_non_monotonic_history_without_testing_all():
    probe = probe_of(DELTALAKE_LIKE)
    search.map_history(probe, stride=3)
    assert search.transitions(probe) == true_transitions(DELTALAKE_LIKE)
    assert len(probe.order) < len(DELTALAKE_LIKE)


def test_map_finds_where_testability_starts():
    probe = probe_of(DELTALAKE_LIKE)
    search.map_history(probe, stride=5)
    assert probe.states[19] == SKIP and probe.states[20] == ABSENT


@pytest.mark.parametrize("stride", [1, 2, 3, 4, 6])
def test_map_finds_every_run_at_least_as_long_as_the_stride(stride):
    rng = random.Random(stride)
    for _ in range(300):
        history = []
        while len(history) < rng.randint(2, 80):
            state = rng.choice([P, A, A, S]) if rng.random() < 0.9 else S
            history += [state] * (stride if state != SKIP else rng.randint(1, 2)) * rng.randint(1, 3)
        probe = probe_of(history)
        search.map_history(probe, stride)
        assert search.transitions(probe) == true_transitions(history), history


def test_a_short_flip_inside_an_agreeing_gap_is_missed_unless_stride_one():
    history = [A] * 10 + [P] + [A] * 9  # a single bad release between samples 8 and 12
    coarse = probe_of(history)
    search.map_history(coarse, stride=4)
    assert search.transitions(coarse) == []
    full = probe_of(history)
    search.map_history(full, stride=1)
    assert search.transitions(full) == [(9, 10), (10, 11)]
    assert len(full.order) == len(history)


def test_neighbours_of_a_transition_catch_a_flip_back_next_to_it():
    history = [A] * 8 + [P] + [A] + [P] * 8   # 8 present, 9 absent, 10 present
    probe = probe_of(history)
    search.map_history(probe, stride=6)
    assert search.transitions(probe) == true_transitions(history)


# ---------------------------------------------------------------- verdict cache and report

def test_cache_key_changes_with_the_repro_file_and_the_deps_date(tmp_path):
    from harness.cell import Cell, Options
    from harness.registry import load_bug

    def key(bug, cell):
        return bisect_cache.key_of(bisect_cache.inputs_of(bug, cell, Options()))

    repro = tmp_path / "synthetic_version_bug.py"
    repro.write_text(SYNTHETIC_REPRO)
    bug = load_bug(repro)
    cell = Cell(bug.id, "trigger", "3.11.7", ("x==1",), "2024-01-01")
    assert key(bug, cell) == key(bug, cell)
    assert key(bug, cell) != key(bug, Cell(bug.id, "trigger", "3.11.7", ("x==1",), "2024-02-01"))
    assert key(bug, cell) != key(bug, Cell(bug.id, "trigger", "3.12.1", ("x==1",), "2024-01-01"))
    before = key(bug, cell)
    repro.write_text(SYNTHETIC_REPRO + "\n# changed\n")
    assert before != key(load_bug(repro), cell)



def test_a_skip_is_cached_by_its_kind_not_by_the_words_of_its_reason(tmp_path, monkeypatch):
    """A release uv cannot install is skipped for good (cached); a missing interpreter is this
    machine's problem (not cached). The cell says which where it decides the skip."""
    from harness.cell import Cell, Options
    from harness.registry import get_bug

    (tmp_path / "synthetic_six_bug.py").write_text(SYNTHETIC_REPRO.replace(
        '"synthetic-version-bug"', '"synthetic-six-bug"').replace('"requirements": [],', '"requirements": ["six"],'))
    monkeypatch.setenv("REPRO_PATH", str(tmp_path))
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    bug = get_bug("synthetic-six-bug")
    points = [axis_points.Point("0.0.0.1", None, Cell(bug.id, "trigger", "current", ("six==0.0.0.1",))),
              axis_points.Point("3.99", None, Cell(bug.id, "trigger", "3.99"))]
    records = []
    tester = bisect_run.Tester(bug, points, Options(), on_record=records.append)
    assert tester(0) == tester(1) == SKIP
    assert [(r["verdict"], r["skip_kind"]) for r in records] == [("skipped", "not-installable"),
                                                                  ("skipped", "no-interpreter")]
    inputs = [bisect_cache.inputs_of(bug, point.cell, Options()) for point in points]
    assert bisect_cache.read(inputs[0]).env_failed is True
    assert bisect_cache.read(inputs[1]) is None
    assert tester.counts["env_build_failures"] == 1
    # The reason's words do not matter: only the kind does.
    assert not bisect_run._cacheable({"verdict": "skipped", "reason": "cannot install x", "skip_kind": "no-service"})
    assert bisect_run._cacheable({"verdict": "skipped", "reason": "anything", "skip_kind": "not-installable"})


# ---------------------------------------------------------------- the package index

def test_releases_left_out_on_the_real_index():
    from packaging import tags

    from harness.envs import interpreters, package_index
    from harness.registry import get_bug

    if not any(t.platform.startswith("manylinux") and t.platform.endswith("x86_64") for t in tags.sys_tags()):
        pytest.skip("the expected wheel gaps are those of linux x86_64")
    try:
        interpreter = interpreters.find("3.11")
        package_index.releases("deltalake")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"needs Python 3.11 and the package index: {exc}")
    bug = get_bug("delta-already-borrowed")
    points, left_out = axis_points.release_points(bug, "trigger", "deltalake", interpreter, (), "0.24.0", "1.2.0")
    why = dict(left_out)
    assert "no wheel" in why["0.25.0"] and "no wheel" in why["1.1.1"]
    labels = [p.label for p in points]
    assert labels[0] == "0.24.0" and labels[-1] == "1.2.0" and "1.1.2" in labels and "0.25.0" not in labels
    point = points[labels.index("1.1.2")]
    assert point.cell.pins == ("deltalake==1.1.2",)
    assert point.cell.exclude_newer == package_index.release_date_cutoff("deltalake", "1.1.2")
    _, newest = axis_points.release_points(bug, "trigger", "deltalake", interpreter, (), "1.6.0", None)
    assert dict(newest).get("1.6.4") == "yanked"


# ---------------------------------------------------------------- interpreters as the axis, end to end

SYNTHETIC_REPRO = textwrap.dedent('''
    """A stdlib-only stand-in for an interpreter-level bug: present from Python 3.12 on."""
    import sys

    BUG = {
        "id": "synthetic-version-bug",
        "title": "a synthetic bug that exists on Python 3.12 and newer",
        "packages": [],
        "requirements": [],
        "failure_kind": "exception",
        "signature": "synthetic version bug",
        "trigger_rate": {"reproduced": 20, "attempts": 20},
        "variants": {
            "trigger": {"role": "trigger", "run": "trigger", "timeout": 20},
            "control": {"role": "control", "run": "control", "timeout": 20},
        },
    }


    def trigger(ctx):
        if sys.version_info >= (3, 12):
            raise RuntimeError("synthetic version bug on %d.%d" % sys.version_info[:2])
        return {}


    def control(ctx):
        return {}
''')


def harness_env(env):
    """This checkout's harness, whatever `pip install -e` last pointed the interpreter at."""
    return {**os.environ, **env, "PYTHONPATH": str(ROOT)}


def repro_cli(*args, env, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          env=harness_env(env), cwd=cwd, timeout=timeout)


@pytest.fixture
def version_bug(tmp_path):
    from harness.envs import interpreters

    found = interpreters.available(["3.10", "3.11", "3.12"])
    usable = [v for v, i in found.items() if not isinstance(i, str)]
    if len(usable) < 3:
        pytest.skip(f"needs Python 3.10, 3.11 and 3.12; found {usable}")
    repros = tmp_path / "repros"
    repros.mkdir()
    (repros / "synthetic_version_bug.py").write_text(SYNTHETIC_REPRO)
    env = {"REPRO_PATH": str(repros), "REPRO_CACHE_DIR": str(tmp_path / "cache")}
    return usable, env, tmp_path


def test_interpreter_axis_map_then_everything_from_the_cache(version_bug):
    usable, env, tmp = version_bug
    args = ["bisect", "synthetic-version-bug", "--python-versions", ",".join(usable), "--map",  # stride 1: default
            "--json", "--quiet", "--results", str(tmp / "r.jsonl")]
    first = repro_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert [(t["kind"], t["last"][:4], t["first"][:4]) for t in report["transitions"]] == [
        ("introduced", "3.11", "3.12")]
    assert report["counts"]["tested"] == len(usable) and report["counts"]["from_cache"] == 0
    assert report["stride"] == 1  # on the interpreter axis every interpreter is tested by default
    verdicts = {row["point"][:4]: row["verdict"] for row in report["timeline"]}
    assert verdicts["3.11"] == "absent" and verdicts["3.12"] == "present"
    again = json.loads(repro_cli(*args, env=env).stdout)
    assert again["counts"]["from_cache"] == again["counts"]["tested"] == len(usable)
    assert again["counts"]["attempts"] == 0
    assert [r["verdict"] for r in again["timeline"]] == [r["verdict"] for r in report["timeline"]]


def test_interpreter_axis_first_bad_and_text_output(version_bug):
    usable, env, tmp = version_bug
    out = repro_cli("bisect", "synthetic-version-bug", "--python-versions", ",".join(usable), "--first-bad",
                    "--quiet", "--results", str(tmp / "r.jsonl"), env=env)
    assert out.returncode == 0, out.stderr
    assert "INTRODUCED between 3.11" in out.stdout and "(present)" in out.stdout
    wrong = repro_cli("bisect", "synthetic-version-bug", "--python-versions", ",".join(usable), "--first-fixed",
                      "--quiet", "--results", str(tmp / "r.jsonl"), env=env)
    assert wrong.returncode == 1 and "no transition found" in wrong.stdout


FEATURE_REPRO = SYNTHETIC_REPRO.replace("synthetic-version-bug", "synthetic-feature-bug").replace(
    """    if sys.version_info >= (3, 12):""",
    """    if sys.version_info < (3, 11):  # before the feature: the bug cannot exist there
        return {"feature_missing": "the synthetic feature, from Python 3.11"}
    if sys.version_info >= (3, 11):""")


def test_a_point_without_the_feature_is_absent_so_the_features_arrival_is_a_transition(version_bug):
    usable, env, tmp = version_bug
    (Path(env["REPRO_PATH"]) / "synthetic_feature_bug.py").write_text(FEATURE_REPRO)
    out = repro_cli("bisect", "synthetic-feature-bug", "--python-versions", ",".join(usable), "--json", "--quiet",
                    "--results", str(tmp / "r.jsonl"), env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [(t["kind"], t["last"][:4], t["first"][:4]) for t in report["transitions"]] == [
        ("introduced", "3.10", "3.11")]
    assert report["timeline"][0]["verdict"] == "absent" and report["not_judged"] == {}


PARTIAL_REPRO = SYNTHETIC_REPRO.replace("synthetic-version-bug", "synthetic-partial-fix").replace(
    """    if sys.version_info >= (3, 12):""",
    """    # fixed in 3.12; 3.11 only partly: one attempt of every five (counted in a file, so exactly)
    with open(ctx.param("counter", ""), "a+") as handle:
        handle.write("%d.%d\\n" % sys.version_info[:2])
        handle.seek(0)
        mine = handle.read().split().count("%d.%d" % sys.version_info[:2])
    if sys.version_info < (3, 11) or (sys.version_info < (3, 12) and mine % 5 == 0):""").replace(
    '"timeout": 20},', '"timeout": 20, "params": {"counter": ""}},', 1)


def test_an_absent_next_to_a_transition_must_exclude_ten_percent_so_a_partial_fix_is_not_the_fix(version_bug):
    usable, env, tmp = version_bug
    (Path(env["REPRO_PATH"]) / "synthetic_partial_fix.py").write_text(PARTIAL_REPRO)
    counter = tmp / "attempts.txt"
    out = repro_cli("bisect", "synthetic-partial-fix", "--python-versions", ",".join(usable), "--first-fixed",
                    "--param", f"counter={counter}", "--json", "--quiet", "--results", str(tmp / "r.jsonl"), env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    # 3 clean attempts on 3.11 reach 0.99 against the known-bad rate: absent, a transition after 3.10. Tested
    # again to exclude 10% (up to 29 attempts), its 5th attempt in all (the 2nd of the new run) reproduces.
    assert [(t["kind"], t["last"][:4], t["first"][:4]) for t in report["transitions"]] == [("fixed", "3.11", "3.12")]
    ran = counter.read_text().split()
    assert ran.count("3.11") == 3 + 2 and ran.count("3.12") == 3 + 29
    assert report["counts"]["confirmed"] == 2
    verdicts = {row["point"][:4]: (row["verdict"], row["attempts"]) for row in report["timeline"]}
    assert verdicts["3.11"] == ("present", 2) and verdicts["3.12"] == ("absent", 29)


# ---------------------------------------------------------------- repro check under git bisect run

TOY_REPRO = textwrap.dedent('''
    """Lost updates in toylib.Counter.add from threads (a synthetic bug in a package made for the test)."""
    BUG = {
        "id": "toylib-lost-update",
        "title": "toylib.Counter.add loses updates under threads",
        "packages": ["toylib"],
        "requirements": ["toylib"],
        "failure_kind": "data-loss",
        "trigger_rate": {"reproduced": 20, "attempts": 20},
        "variants": {
            "trigger": {"role": "trigger", "run": "threads", "timeout": 30, "params": {"threads": 4, "adds": 25}},
            "control-one-thread": {"role": "control", "run": "one_thread", "timeout": 30},
        },
    }


    def _count(threads, adds):
        import threading

        import toylib

        counter = toylib.Counter()
        workers = [threading.Thread(target=lambda: [counter.add() for _ in range(adds)]) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        return {"lost": threads * adds - counter.value}


    def threads(ctx):
        return _count(int(ctx.param("threads", 4)), int(ctx.param("adds", 25)))


    def one_thread(ctx):
        return _count(1, 100)
''')

PYPROJECT = '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n' \
            '[project]\nname = "toylib"\nversion = "{version}"\n'
LOCKED = ("import threading\nimport time\n\n\nclass Counter:\n    def __init__(self):\n        self.value = 0\n"
          "        self._lock = threading.Lock()\n\n    def add(self):\n        with self._lock:\n"
          "            value = self.value\n            time.sleep(0.0005)\n            self.value = value + 1\n")
UNLOCKED = LOCKED.replace("        with self._lock:\n            value = self.value\n            time.sleep(0.0005)\n"
                          "            self.value = value + 1\n",
                          "        value = self.value  # 'optimised': no lock\n        time.sleep(0.0005)\n"
                          "        self.value = value + 1\n")


def git(repo, *args):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid", "TZ": "UTC"}
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0 or args[0] == "bisect", done.stderr
    return done


# label, version string, code, builds: 1.0 good, 1.1 good, 1.2 does not build, 1.3 good, 1.4 drops
# the lock (bad), 1.5 bad, 1.5-fix restores it without a new version string, 1.6 good.
TOY_HISTORY = [("1.0", "1.0", LOCKED, True), ("1.1", "1.1", LOCKED, True), ("1.2", "1.2", LOCKED, False),
               ("1.3", "1.3", LOCKED, True), ("1.4", "1.4", UNLOCKED, True), ("1.5", "1.5", UNLOCKED, True),
               ("1.5-fix", "1.5", LOCKED, True), ("1.6", "1.6", LOCKED, True)]


@pytest.fixture(scope="module")
def toy_repo(tmp_path_factory):
    """A package's git history (TOY_HISTORY), each commit tagged v<label>; main is at 1.6."""
    base = tmp_path_factory.mktemp("toy")
    repo, repros = base / "toylib", base / "repros"
    (repo / "toylib").mkdir(parents=True)
    repros.mkdir()
    (repros / "toylib_lost_update.py").write_text(TOY_REPRO)
    git(repo, "init", "-q", "-b", "main")
    commits = {}
    for label, version, code, builds in TOY_HISTORY:
        (repo / "pyproject.toml").write_text(PYPROJECT.format(version=version) + ("" if builds else "[[[ broken\n"))
        (repo / "toylib" / "__init__.py").write_text(f"__version__ = {version!r}\n" + code)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"toylib {label}")
        git(repo, "tag", f"v{label}")
        commits[label] = git(repo, "rev-parse", "HEAD").stdout.strip()
    env = {"REPRO_PATH": str(repros), "REPRO_CACHE_DIR": str(base / "cache")}
    return repo.resolve(), commits, env, base


def check(repo, env, base, *extra):
    return repro_cli("check", "toylib-lost-update", "--python", "current", "--quiet",
                     "--results", str(base / "r.jsonl"), *extra, env=env, cwd=repo)


def test_check_exit_codes(toy_repo):
    repo, commits, env, base = toy_repo
    expected = {"1.0": 0, "1.2": 125, "1.5": 1}
    for version, code in expected.items():
        git(repo, "checkout", "-q", commits[version])
        out = check(repo, env, base)
        assert out.returncode == code, (version, out.stderr)
    records = [json.loads(line) for line in (base / "r.jsonl").read_text().splitlines()]
    assert [r["installed"]["toylib"] for r in records] == ["1.0", "1.5"]  # 1.2 never got an env
    assert records[-1]["verdict"] == "present" and "rows lost silently" in records[-1]["evidence"][0]["reason"]
    git(repo, "checkout", "-q", commits["1.0"])
    dated = check(repo, env, base, "--exclude-newer", "commit")  # build deps as of the commit's date
    assert dated.returncode == 0, dated.stderr
    record = json.loads((base / "r.jsonl").read_text().splitlines()[-1])
    assert record["exclude_newer"] == git(repo, "log", "-1", "--format=%cd",
                                          "--date=format-local:%Y-%m-%dT%H:%M:%SZ").stdout.strip()
    git(repo, "checkout", "-q", "main")


def test_check_rebuilds_when_the_working_tree_changes(toy_repo):
    repo, commits, env, base = toy_repo
    git(repo, "checkout", "-q", commits["1.5"])
    init = repo / "toylib" / "__init__.py"
    init.write_text(f"__version__ = '1.5'\n{LOCKED}")  # an uncommitted fix
    try:
        assert check(repo, env, base).returncode == 0, "the uncommitted fix in the working tree was not built"
    finally:
        git(repo, "checkout", "-q", "--", ".")
    assert check(repo, env, base).returncode == 1
    git(repo, "checkout", "-q", "main")


def test_check_usage_problems_stop_git_bisect(toy_repo):
    repo, _, env, base = toy_repo
    assert check(repo, env, base, "--variant", "nope").returncode == 128
    assert repro_cli("check", "no-such-bug", env=env, cwd=repo).returncode == 128
    assert repro_cli("check", "toylib-lost-update", "--no-such-option", env=env, cwd=repo).returncode == 128


def test_git_bisect_run_finds_the_commit_that_dropped_the_lock(toy_repo):
    repo, commits, env, base = toy_repo
    git(repo, "bisect", "start", commits["1.5"], commits["1.0"])
    try:
        done = subprocess.run(["git", "bisect", "run", sys.executable, "-m", "harness", "check", "toylib-lost-update",
                               "--python", "current", "--quiet", "--results", str(base / "r.jsonl")],
                              cwd=repo, capture_output=True, text=True, timeout=600,
                              env=harness_env(env))
    finally:
        log = git(repo, "bisect", "log").stdout
        git(repo, "bisect", "reset")
    assert f"{commits['1.4']} is the first bad commit" in done.stdout, done.stdout + done.stderr + log


def last_record(path):
    return json.loads(path.read_text().splitlines()[-1])


def test_find_fix_swaps_present_and_absent_and_keeps_skip_and_stop(toy_repo):
    repo, commits, env, base = toy_repo
    for label, code in {"1.0": 1, "1.2": 125, "1.5": 0}.items():  # absent 1, cannot build 125, present 0
        git(repo, "checkout", "-q", commits[label])
        out = check(repo, env, base, "--find-fix", "--attempts", "1", "--results", str(base / "fix.jsonl"))
        assert out.returncode == code, (label, out.stderr)
    assert last_record(base / "fix.jsonl")["check"] == {"find_fix": True, "exit_code": 0}
    assert check(repo, env, base, "--find-fix", "--variant", "nope").returncode == 128
    git(repo, "checkout", "-q", "main")


def test_check_records_the_source_so_one_version_string_is_told_apart(toy_repo):
    repo, commits, env, base = toy_repo
    results_file = base / "source.jsonl"
    sources = {}
    for label in ("1.5", "1.5-fix"):  # both build toylib 1.5
        git(repo, "checkout", "-q", commits[label])
        assert check(repo, env, base, "--attempts", "1", "--results", str(results_file)).returncode in (0, 1)
        record = last_record(results_file)
        assert record["installed"]["toylib"] == "1.5"
        sources[label] = record["source"]
        tree = git(repo, "rev-parse", "HEAD^{tree}").stdout.strip()
        assert sources[label] == {"path": str(repo), "commit": commits[label], "tree": tree, "dirty": False}
    assert sources["1.5"]["commit"] != sources["1.5-fix"]["commit"]
    (repo / "toylib" / "extra.py").write_text("X = 1\n")  # an untracked file is part of what is built
    try:
        check(repo, env, base, "--attempts", "1", "--results", str(results_file))
    finally:
        (repo / "toylib" / "extra.py").unlink()
    dirty = last_record(results_file)["source"]
    assert dirty["dirty"] is True and dirty["commit"] == commits["1.5-fix"]
    assert dirty["tree"] != sources["1.5-fix"]["tree"]
    git(repo, "checkout", "-q", "main")


# ---------------------------------------------------------------- repro check --bisect OLD..NEW

def check_bisect(repo, env, base, spec, *extra):
    return repro_cli("check", "toylib-lost-update", "--python", "current", "--attempts", "1", "--source", str(repo),
                     "--results", str(base / "bisect.jsonl"), "--bisect", spec, *extra, env=env, cwd=base)


def repo_state(repo):
    """Branch, commit and whether a bisect is under way: what --bisect must leave as it found it."""
    bisecting = (repo / ".git" / "BISECT_START").exists()
    branch = git(repo, "symbolic-ref", "-q", "HEAD").stdout.strip()
    return branch, git(repo, "rev-parse", "HEAD").stdout.strip(), bisecting


def test_check_bisect_finds_where_the_bug_appeared(toy_repo):
    repo, commits, env, base = toy_repo
    before = repo_state(repo)
    out = check_bisect(repo, env, base, "v1.0..v1.5", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["commit"] == commits["1.4"] and report["subject"] == "toylib 1.4"
    assert (report["old"]["verdict"], report["new"]["verdict"]) == ("absent", "present")
    assert report["terms"] == {"old": "good", "new": "bad"} and report["checks"] >= 3
    assert "checking the OLD end v1.0" in out.stderr and "checking the NEW end v1.5" in out.stderr
    assert repo_state(repo) == before == ("refs/heads/main", commits["1.6"], False)


def test_check_of_a_variant_that_installs_nothing_stops_git_bisect_run(tmp_path):
    """The package built from --source would not be installed: no verdict, exit 128 (git bisect run stops)."""
    out = repro_cli("check", "synthetic-faults", "--source", str(tmp_path), "--results", str(tmp_path / "r.jsonl"),
                    env={"REPRO_PATH": str(ROOT / "tests" / "fault_repros")})
    assert out.returncode == 128 and "installs nothing (a bare interpreter)" in out.stderr, out.stderr
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.fault("left behind: build output in the user's tree")
def test_check_bisect_leaves_no_build_output_in_the_tree(toy_repo, tmp_path):
    """setuptools writes build/ and toylib.egg-info where it builds: never in the user's tree."""
    repo, commits, env, base = toy_repo
    fresh = {**env, "REPRO_CACHE_DIR": str(tmp_path / "cache")}  # every wheel is built now, none reused
    out = check_bisect(repo, fresh, base, "v1.3..v1.5", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["commit"] == commits["1.4"]
    assert git(repo, "status", "--porcelain", "--ignored").stdout == "", "the tree is as the user left it"
    assert not [p for p in repo.rglob("*") if p.name == "build" or p.name.endswith(".egg-info")]
    worktrees = [line for line in git(repo, "worktree", "list", "--porcelain").stdout.splitlines()
                 if line.startswith("worktree ")]
    assert worktrees == [f"worktree {repo}"], "no build worktree left"


def test_check_bisect_find_fix_finds_the_fix_that_kept_the_version_string(toy_repo):
    repo, commits, env, base = toy_repo
    out = check_bisect(repo, env, base, "v1.4..v1.6", "--find-fix")
    assert out.returncode == 0, out.stderr
    assert f"first fixed commit {commits['1.5-fix']} toylib 1.5-fix" in out.stdout
    assert "OLD v1.4" in out.stdout and "present" in out.stdout and "back at main" in out.stdout
    assert repo_state(repo) == ("refs/heads/main", commits["1.6"], False)


@pytest.mark.parametrize("spec, extra, says", [
    ("v1.0..v1.3", [], "the ends agree"),                   # absent at both ends
    ("v1.4..v1.6", [], "add --find-fix"),                   # fixed in the range, but looking for the bug
    ("v1.3..v1.4", ["--find-fix"], "drop --find-fix"),      # appeared in the range, but looking for a fix
    ("v1.5..v1.0", [], "not an ancestor"),                  # the range written newest first
])
def test_check_bisect_refuses_ranges_that_would_name_a_wrong_commit(toy_repo, spec, extra, says):
    repo, commits, env, base = toy_repo
    out = check_bisect(repo, env, base, spec, *extra)
    assert out.returncode == 2 and says in out.stderr, out.stderr
    assert "first" not in out.stdout
    assert repo_state(repo) == ("refs/heads/main", commits["1.6"], False)


def test_check_bisect_refuses_uncommitted_changes(toy_repo):
    repo, commits, env, base = toy_repo
    init = repo / "toylib" / "__init__.py"
    text = init.read_text()
    init.write_text(text + "# local edit\n")
    try:
        out = check_bisect(repo, env, base, "v1.0..v1.5")
    finally:
        init.write_text(text)
    assert out.returncode == 2 and "uncommitted changes" in out.stderr
    assert repo_state(repo) == ("refs/heads/main", commits["1.6"], False)


SPY = '''import json, os, sys
with open({log!r}, "a") as log:
    log.write(json.dumps([sys.orig_argv, os.environ.get("GITHUB_TOKEN")]) + "\\n")
'''


def test_check_bisect_keeps_our_secrets_from_the_checks_it_runs(toy_repo, tmp_path):
    """The checks build and import the source under test: a token of ours must not reach them."""
    repo, commits, env, base = toy_repo
    spy, log = tmp_path / "spy", tmp_path / "processes.jsonl"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SPY.format(log=str(log)))  # every Python process says what it saw
    out = subprocess.run([sys.executable, "-m", "harness", "check", "toylib-lost-update", "--python", "current",
                          "--attempts", "1", "--source", str(repo), "--results", str(base / "bisect.jsonl"),
                          "--bisect", "v1.3..v1.5"], cwd=base, capture_output=True, text=True, timeout=600,
                         env={**harness_env(env), "PYTHONPATH": f"{spy}{os.pathsep}{ROOT}", "GITHUB_TOKEN": "s3cret"})
    assert out.returncode == 0 and commits["1.4"] in out.stdout, out.stderr
    seen = [json.loads(line) for line in log.read_text().splitlines()]
    checks = [token for argv, token in seen if "check" in argv and "--bisect" not in argv]
    assert [token for argv, token in seen if "--bisect" in argv] == ["s3cret"]  # the spy saw the outer one
    assert len(checks) == 3 and set(checks) == {None}, seen  # both ends and the step of git bisect run
    assert repo_state(repo) == ("refs/heads/main", commits["1.6"], False)


def test_check_bisect_resets_the_repository_on_ctrl_c(toy_repo):
    repo, commits, env, base = toy_repo
    proc = subprocess.Popen([sys.executable, "-m", "harness", "check", "toylib-lost-update", "--python", "current",
                             "--attempts", "1", "--source", str(repo), "--results", str(base / "bisect.jsonl"),
                             "--bisect", "v1.0..v1.5"], cwd=base, env=harness_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "checking the NEW end" in line:  # a check is running in the middle of the bisect
                break
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert repo_state(repo) == ("refs/heads/main", commits["1.6"], False)


# ---------------------------------------------------------------- odd index answers, honest summaries

def fake_index_answer(monkeypatch, files):
    """Serve `files` as the simple-API answer for the package `oddlib` (no network)."""
    from harness.envs import package_index

    answer = json.dumps({"name": "oddlib", "files": files}).encode()

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(package_index.urllib.request, "urlopen", lambda request, timeout=None: Response(answer))
    package_index.releases.cache_clear()


def index_file(name, day, **extra):
    return {"filename": name, "upload-time": f"2020-01-{day:02d}T00:00:00Z", **extra}


def test_odd_file_names_on_the_index_are_not_releases_and_break_nothing(monkeypatch):
    from harness.envs import package_index
    from harness.envs.interpreters import Interpreter
    from harness.registry import get_bug

    fake_index_answer(monkeypatch, [
        index_file("oddlib-0.0.1-py36,py37-none-any.whl", 1),   # tags that do not parse (awswrangler 0.0.x)
        index_file("oddlib-0.0.1.tar.gz", 1),
        index_file("oddlib-0.0.21-py3.6.egg", 2),                # an egg: not a release of its own
        index_file("oddlib-0.0.21-glue-none-any.whl", 2),        # a tag for no interpreter
        index_file("oddlib-0.0.21.tar.gz", 2),
        index_file("oddlib-1.0.0-py3-none-any.whl", 3),
        index_file("oddlib-1.0.0-py3.6.egg", 3),
        index_file("oddlib-1.1.0-1-py3-none-any.whl", 4),        # a build tag
        index_file("oddlib-1.2.0rc1-py3-none-any.whl", 5),
        index_file("oddlib-1.3.0-py3-none-any.whl", 6, yanked=True),
        index_file("oddlib-1.4.0-py3-none-any.whl", 7, **{"requires-python": ">=3.99"}),
        index_file("oddlib-1.5.0-py3-none-any.whl", 8, **{"requires-python": "not a specifier"}),
        index_file("oddlib-1.6.0.win32.exe", 9),
    ])
    try:
        interpreter = Interpreter(sys.executable, "3.9.18")
        points, left_out = axis_points.release_points(get_bug("wrangler-athena-cache-race"), "trigger", "oddlib",
                                                 interpreter, ())
        assert [p.label for p in points] == ["1.0.0", "1.1.0", "1.5.0"]
        why = dict(left_out)
        assert "no wheel" in why["0.0.1"] and "no wheel" in why["0.0.21"]
        assert why["1.2.0rc1"] == "pre-release" and why["1.3.0"] == "yanked" and "3.99" in why["1.4.0"]
        assert not any(".egg" in version or ".exe" in version for version, _ in left_out)  # counted, not listed
        text = "\n".join(bisect_run.left_out_lines(left_out))
        assert "egg" not in text.replace(axis_points.NOT_A_RELEASE, "")
    finally:
        package_index.releases.cache_clear()


def point_results(verdicts):
    """Points tested in order with these verdicts (None: not tested), as Tester leaves them."""
    from harness.cell import Cell

    points, probe = [], Probe(len(verdicts), lambda i: search.state_of(verdicts[i]))
    for i, verdict in enumerate(verdicts):
        point = axis_points.Point(f"1.{i}.0", "2020-01-01T00:00:00Z", Cell("b"))
        if verdict is not None:
            point.result = {"verdict": verdict, "state": search.state_of(verdict), "reason": f"{verdict} here",
                            "attempts": 1, "reproductions": int(verdict == P), "cached": False}
            probe(i)
        points.append(point)
    return points, probe


def rendered_map(verdicts):
    from types import SimpleNamespace

    points, probe = point_results(verdicts)
    counts = {"tested": len(probe.order), "from_cache": 0, "env_builds": 0, "env_build_failures": 0, "attempts": 0}
    report = bisect_run._report(SimpleNamespace(id="b"), points, probe, "map", 1, {}, counts, 1.0)
    return report, bisect_run.render(report, "releases")


def test_the_summary_names_points_without_a_verdict_instead_of_calling_the_history_flat():
    report, text = rendered_map(["error", "other-failure", "other-failure", P, P, "skipped", P])
    assert "same verdict" not in text
    assert "not judged: 4 tested points (1 error, 2 other-failure, 1 skipped)" in text
    assert "no transition: all 3 judged points are present (a change among the points not judged" in text
    assert "judged points span 1.3.0 (present) to 1.6.0 (present); before 1.3.0 nothing was judged " \
           "(3 tested without a verdict, 0 untested), so present may begin earlier" in text
    assert report["not_judged"] == {"error": 1, "other-failure": 2, "skipped": 1}
    _, nothing = rendered_map(["error", "skipped"])
    assert "no tested point could be judged" in nothing


def test_the_summary_of_a_transition_names_the_unjudged_points_between():
    report, text = rendered_map([P, P, "error", A, A])
    assert [(t["kind"], t["last"], t["first"]) for t in report["transitions"]] == [("fixed", "1.1.0", "1.3.0")]
    assert "not judged between: 1.2.0" in text and "not judged: 1 tested points (1 error)" in text
    assert "no transition" not in text


@pytest.mark.parametrize("command, shown", [
    ("check", ["--exclude-newer DATE|commit|none", "(default: commit)", "(default: trigger)", "--find-fix",
               "git bisect start --term-old=broken --term-new=fixed NEW OLD", "swaps 0 and 1"]),
    ("bisect", ["(default: trigger)", "(default: 0.99)", "--term-old=broken --term-new=fixed"]),
])
def test_help_shows_defaults_and_both_recipes(capsys, command, shown):
    from harness.cli import main as cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps option help
    for expected in shown:
        assert " ".join(expected.split()) in text, expected


def test_git_s_answers_are_read_both_named_and_left_to_skipped_candidates(tmp_path):
    from harness.bisect.git import outcome

    git(tmp_path, "init", "-q")
    for n in range(1, 6):  # commit k holds n = k + 1
        (tmp_path / "n").write_text(str(n))
        git(tmp_path, "add", "n")
        git(tmp_path, "commit", "-q", "-m", f"c{n}")
    commits = git(tmp_path, "rev-list", "--reverse", "HEAD").stdout.split()
    answers = {}
    for name, script in {"named": "[ $(cat n) -ge 3 ] && exit 1; exit 0",
                         "skipped": "[ $(cat n) -ge 4 ] && exit 1; [ $(cat n) -ge 2 ] && exit 125; exit 0"}.items():
        git(tmp_path, "bisect", "start", "--term-old=broken", "--term-new=fixed", commits[-1], commits[0])
        answers[name] = outcome(git(tmp_path, "bisect", "run", "sh", "-c", script).stdout)
        git(tmp_path, "bisect", "reset")
    assert answers["named"] == {"commit": commits[2]}
    assert answers["skipped"]["commit"] is None and sorted(answers["skipped"]["candidates"]) == sorted(commits[1:4])
