"""repro bisect and repro check.

The search strategies are tested against synthetic histories (the strategies are the thing
under test: the oracle is a list of states). The interpreter axis runs a real stdlib-only repro
through the engine on the available interpreters; `repro check` drives a real `git bisect run`
over a small local git repository of a package built from each checked-out tree.
"""
import json
import math
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import bisect
from harness.bisect import ABSENT, PRESENT, SKIP, Probe

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
        assert bisect.first_transition(probe, P, A) == {"transition": (fixed_at - 1, fixed_at)}
        assert len(probe.order) <= math.ceil(math.log2(n)) + 2


def test_first_bad_is_the_mirror():
    history = [A] * 7 + [P] * 9
    assert bisect.first_transition(probe_of(history), A, P) == {"transition": (6, 7)}


def test_skipped_points_are_never_good_or_bad():
    # The first fixed release is 6; 4, 5 and 7 cannot be tested (not installable, control failed).
    history = [P, P, P, P, S, S, A, S, A, A]
    probe = probe_of(history)
    result = bisect.first_transition(probe, P, A)
    assert result["transition"] == (3, 6)
    assert all(probe.states[i] == SKIP for i in (4, 5) if i in probe.states)


def test_untestable_ends_move_inwards():
    history = [S, S, S, P, P, A, A, S]
    assert bisect.first_transition(probe_of(history), P, A) == {"transition": (4, 5)}


def test_wrong_orientation_is_a_problem_not_an_answer():
    result = bisect.first_transition(probe_of([A, A, P, P]), P, A)
    assert "problem" in result and "--map" in result["problem"]
    same = bisect.first_transition(probe_of([P, A, P]), P, A)  # ends agree: nothing to bisect
    assert "problem" in same


def test_all_skipped_is_a_problem():
    assert "problem" in bisect.first_transition(probe_of([S, S, S]), P, A)


# ---------------------------------------------------------------- the map

# deltalake on 3.11 as bugs.md describes it: old releases not installable, clean, intermittent,
# present, fixed (3 releases), present again, fixed again.
DELTALAKE_LIKE = [S] * 20 + [A] * 15 + [P, A, P, P, A, P] + [P] * 10 + [A] * 3 + [P] * 7 + [A] * 20


def test_map_finds_every_transition_of_a_non_monotonic_history_without_testing_all():
    probe = probe_of(DELTALAKE_LIKE)
    bisect.map_history(probe, stride=3)
    assert bisect.transitions(probe) == true_transitions(DELTALAKE_LIKE)
    assert len(probe.order) < len(DELTALAKE_LIKE)


def test_map_finds_where_testability_starts():
    probe = probe_of(DELTALAKE_LIKE)
    bisect.map_history(probe, stride=5)
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
        bisect.map_history(probe, stride)
        assert bisect.transitions(probe) == true_transitions(history), history


def test_a_short_flip_inside_an_agreeing_gap_is_missed_unless_stride_one():
    history = [A] * 10 + [P] + [A] * 9  # a single bad release between samples 8 and 12
    coarse = probe_of(history)
    bisect.map_history(coarse, stride=4)
    assert bisect.transitions(coarse) == []
    full = probe_of(history)
    bisect.map_history(full, stride=1)
    assert bisect.transitions(full) == [(9, 10), (10, 11)]
    assert len(full.order) == len(history)


def test_neighbours_of_a_transition_catch_a_flip_back_next_to_it():
    history = [A] * 8 + [P] + [A] + [P] * 8   # 8 present, 9 absent, 10 present
    probe = probe_of(history)
    bisect.map_history(probe, stride=6)
    assert bisect.transitions(probe) == true_transitions(history)


# ---------------------------------------------------------------- verdict cache and report

def test_cache_key_changes_with_the_repro_file_and_the_deps_date(tmp_path):
    from harness.cells import Cell, Options
    from harness.registry import load_bug

    repro = tmp_path / "synthetic_version_bug.py"
    repro.write_text(SYNTHETIC_REPRO)
    bug = load_bug(repro)
    cell = Cell(bug.id, "trigger", "3.11.7", ("x==1",), "2024-01-01")
    key = bisect.cache_key(bug, cell, Options())
    assert key == bisect.cache_key(bug, cell, Options())
    assert key != bisect.cache_key(bug, Cell(bug.id, "trigger", "3.11.7", ("x==1",), "2024-02-01"), Options())
    assert key != bisect.cache_key(bug, Cell(bug.id, "trigger", "3.12.1", ("x==1",), "2024-01-01"), Options())
    repro.write_text(SYNTHETIC_REPRO + "\n# changed\n")
    assert key != bisect.cache_key(load_bug(repro), cell, Options())


# ---------------------------------------------------------------- the package index

def test_releases_left_out_on_the_real_index():
    from harness import index, interpreters
    from harness.registry import get_bug
    from packaging import tags

    if not any(t.platform.startswith("manylinux") and t.platform.endswith("x86_64") for t in tags.sys_tags()):
        pytest.skip("the expected wheel gaps are those of linux x86_64")
    try:
        interpreter = interpreters.find("3.11")
        index.releases("deltalake")
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"needs Python 3.11 and the package index: {exc}")
    bug = get_bug("delta-already-borrowed")
    points, left_out = bisect.release_points(bug, "trigger", "deltalake", interpreter, (), "0.24.0", "1.2.0")
    why = dict(left_out)
    assert "no wheel" in why["0.25.0"] and "no wheel" in why["1.1.1"]
    labels = [p.label for p in points]
    assert labels[0] == "0.24.0" and labels[-1] == "1.2.0" and "1.1.2" in labels and "0.25.0" not in labels
    point = points[labels.index("1.1.2")]
    assert point.cell.pins == ("deltalake==1.1.2",)
    assert point.cell.exclude_newer == index.release_date_cutoff("deltalake", "1.1.2")
    _, newest = bisect.release_points(bug, "trigger", "deltalake", interpreter, (), "1.6.0", None)
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


def repro_cli(*args, env, cwd=ROOT, timeout=600):
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, cwd=cwd, timeout=timeout)


@pytest.fixture
def version_bug(tmp_path):
    from harness import interpreters

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
    assert [(t["kind"], t["last"][:4], t["first"][:4]) for t in report["transitions"]] == [("introduced", "3.11", "3.12")]
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


@pytest.fixture(scope="module")
def toy_repo(tmp_path_factory):
    """Commits: 1.0 good, 1.1 good, 1.2 does not build, 1.3 good, 1.4 drops the lock (bad), 1.5 bad."""
    base = tmp_path_factory.mktemp("toy")
    repo, repros = base / "toylib", base / "repros"
    (repo / "toylib").mkdir(parents=True)
    repros.mkdir()
    (repros / "toylib_lost_update.py").write_text(TOY_REPRO)
    git(repo, "init", "-q", "-b", "main")
    commits = {}
    for version, code, broken in [("1.0", LOCKED, False), ("1.1", LOCKED, False), ("1.2", LOCKED, True),
                                  ("1.3", LOCKED, False), ("1.4", UNLOCKED, False), ("1.5", UNLOCKED, False)]:
        (repo / "pyproject.toml").write_text(PYPROJECT.format(version=version) + ("[[[ broken\n" if broken else ""))
        (repo / "toylib" / "__init__.py").write_text(f"__version__ = {version!r}\n" + code)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"toylib {version}")
        commits[version] = git(repo, "rev-parse", "HEAD").stdout.strip()
    env = {"REPRO_PATH": str(repros), "REPRO_CACHE_DIR": str(base / "cache")}
    return repo, commits, env, base


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
                              env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    finally:
        log = git(repo, "bisect", "log").stdout
        git(repo, "bisect", "reset")
    assert f"{commits['1.4']} is the first bad commit" in done.stdout, done.stdout + done.stderr + log
