"""The git-bisect driver of `repro check --bisect OLD..NEW`: one whole `git bisect` over a source's
history whose every step is a `repro check` (the command given), and the exit codes of that check.

The contract: the range is checked (two different commits, OLD an ancestor of NEW) and the
repository refused when a bisect is under way or it has uncommitted changes, before anything is
checked out; both ends are checked first and a range whose ends agree, lack a verdict or point the
other way is refused (git bisect trusts the ends it is given and would name a wrong commit); then
`git bisect run` runs, and git's words are read for the first commit of the change, or for the
candidates skipped commits leave. The repository is reset whatever happens (an error, Ctrl-C).
Refusals are UsageError. The processes git bisect runs get the attempt's allow-listed environment
plus the harness's own configuration: no token of ours reaches the source's build or its code.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from harness import procs
from harness.attempt import passed_environment
from harness.envs import checkout
from harness.errors import UsageError
from harness.paths import ROOT
from harness.text import duration
from harness.verdict import ABSENT, PRESENT

# `git bisect run` reads 0 as good (old), 125 as skip, 1-127 as bad (new) and anything above
# 127 as "stop": a broken command line or harness must stop the bisection, never mark a commit.
CHECK_EXIT = {ABSENT: 0, PRESENT: 1}
FIND_FIX_EXIT = {PRESENT: 0, ABSENT: 1}   # --find-fix: the old side of the change has the bug
CHECK_SKIP = 125
CHECK_ABORT = 128
# git's words for the two sides of the change (--term-old, --term-new), by --find-fix.
TERMS = {False: ("good", "bad"), True: ("broken", "fixed")}
CHECK_GRACE = 20.0  # seconds a check gets to clean up its attempts and services when stopped

FIRST_RE = re.compile(r"^([0-9a-f]{40}) is the first (\S+) commit", re.M)
CANDIDATES_RE = re.compile(r"could be any of:\n((?:[0-9a-f]{40}\n)+)")

# What a check needs of our environment beyond what any Python process needs (the attempt's
# allow-list): the harness's configuration (repros, caches, index, interpreters, engine, network).
HARNESS_PREFIXES = ("REPRO_", "UV_")
HARNESS_VARIABLES = ("XDG_CACHE_HOME", "PYENV_ROOT", "DOCKER_HOST", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
                     "http_proxy", "https_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "NO_COLOR",
                     "FORCE_COLOR", "CI")


def check_exit_codes(find_fix: bool) -> dict:
    return FIND_FIX_EXIT if find_fix else CHECK_EXIT


def check_env() -> dict:
    """The environment of what git bisect runs: the attempt's allow-list, the harness's configuration,
    and this harness on the path, installed or not."""
    env = passed_environment()
    env.update({k: v for k, v in os.environ.items() if k in HARNESS_VARIABLES or k.startswith(HARNESS_PREFIXES)})
    path = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + path if path else "")
    return env


def _run_stopping_on_interrupt(argv: list, cwd: Path, on_line=None) -> tuple[int, str]:
    """Run a command in its own session (Ctrl-C reaches only us); on any interruption its whole
    session is stopped, with time for a check to clean up its attempts and services.
    With `on_line`, stdout is read line by line and returned; otherwise it goes to our stderr."""
    proc = subprocess.Popen(argv, cwd=cwd, env=check_env(), stdin=subprocess.DEVNULL, text=True,
                            stdout=subprocess.PIPE if on_line else 2, start_new_session=True)  # 2: our stderr
    lines = []
    try:
        for line in proc.stdout if on_line else ():
            lines.append(line)
            on_line(line.rstrip("\n"))
        return proc.wait(), "".join(lines)
    except BaseException:
        with procs.signals_deferred():
            procs.kill_session(proc.pid, CHECK_GRACE)
            proc.wait()
        raise
    finally:
        if proc.stdout:
            proc.stdout.close()


# ---------------------------------------------------------------- refusals before anything runs

def _commit_range(repo: Path, spec: str) -> tuple[str, str]:
    """The commits of OLD..NEW: two different commits, the old one an ancestor of the new one."""
    old, sep, new = spec.partition("..")
    if not sep or not old or not new or new.startswith("."):
        raise UsageError(f"--bisect {spec!r}: expected OLD..NEW, e.g. v1.0..v1.1")
    old_commit, new_commit = checkout.commit_of(repo, old), checkout.commit_of(repo, new)
    if old_commit == new_commit:
        raise UsageError(f"--bisect {spec}: both ends are commit {old_commit[:12]}")
    if not checkout.is_ancestor(repo, old_commit, new_commit):
        raise UsageError(f"--bisect {spec}: {old} is not an ancestor of {new}: the range is reversed "
                         f"or spans two branches (write it oldest first: OLD..NEW)")
    return old_commit, new_commit


def _refuse_unsafe_repository(repo: Path) -> None:
    if checkout.bisecting(repo):
        raise UsageError(f"a git bisect is already under way in {repo}: finish it or `git bisect reset` first")
    changed = checkout.uncommitted_changes(repo)
    if changed:
        raise UsageError(f"{repo} has uncommitted changes ({len(changed)} files, e.g. {changed[0].strip()}): "
                         "a bisect checks out other commits; commit or stash them first")


# ---------------------------------------------------------------- the ends

def _verdict_of(code: int, find_fix: bool) -> str:
    verdicts = {code: verdict for verdict, code in check_exit_codes(find_fix).items()}
    return verdicts.get(code) or {CHECK_SKIP: "cannot be tested"}.get(code, f"a failed check (exit {code})")


def _refuse_ends(codes: tuple, labels: tuple, find_fix: bool) -> None:
    """The ends must be on both sides of the change asked for, or git bisect names a wrong commit."""
    if codes == (0, 1):
        return
    said = (f"OLD {labels[0]} is {_verdict_of(codes[0], find_fix)} and NEW {labels[1]} is "
            f"{_verdict_of(codes[1], find_fix)}")
    if any(code not in (0, 1) for code in codes):
        raise UsageError(f"{said}: both ends need a verdict; pick ends where the check can run")
    if codes[0] == codes[1]:
        raise UsageError(f"{said}: the ends agree, so there is no change between them to find")
    hint = "drop --find-fix to find where it appeared" if find_fix else "add --find-fix to find where it was fixed"
    raise UsageError(f"{said}: the range is the other way round for this search ({hint})")


def _check_ends(repo: Path, command: list, ends: tuple, labels: tuple, find_fix: bool, say) -> dict:
    codes = []
    for name, commit, label in zip(("OLD", "NEW"), ends, labels):
        checkout.git(repo, "checkout", "-q", "--detach", commit)
        say(f"checking the {name} end {label} ({commit[:12]} {checkout.subject(repo, commit)})")
        code, _ = _run_stopping_on_interrupt(command, repo)
        say(f"{name} end {label}: {_verdict_of(code, find_fix)}")
        codes.append(code)
    _refuse_ends(tuple(codes), labels, find_fix)
    return {name: {"rev": label, "commit": commit, "verdict": _verdict_of(code, find_fix)}
            for name, label, commit, code in zip(("old", "new"), labels, ends, codes)}


# ---------------------------------------------------------------- git bisect run, and git's words

def outcome(text: str) -> dict:
    """The first commit of the change from git's words, or the candidates left by skipped commits."""
    first = FIRST_RE.search(text)
    if first:
        return {"commit": first.group(1)}
    candidates = CANDIDATES_RE.search(text + "\n")
    if candidates:
        return {"commit": None, "candidates": candidates.group(1).split()}
    return {"commit": None, "problem": (text.strip().splitlines() or ["git bisect gave no answer"])[-1]}


def _bisect_between(repo: Path, command: list, ends: tuple, terms: tuple, say) -> dict:
    def show(line):
        if line.startswith(("Bisecting:", "[")) or FIRST_RE.match(line):
            say(f"git: {line}")

    checkout.git(repo, "bisect", terms[0], ends[0])
    marked = checkout.git(repo, "bisect", terms[1], ends[1])  # checks out the middle, or names the commit
    for line in marked.splitlines():
        show(line)
    if FIRST_RE.search(marked):
        return outcome(marked)
    code, output = _run_stopping_on_interrupt(["git", "bisect", "run", *command], repo, on_line=show)
    found = outcome(output)
    if code != 0 and found.get("commit"):  # a named commit is git's answer whatever the exit code
        found["git_exit"] = code
    return found


def _steps(log: str, terms: tuple) -> int:
    """Commits git bisect tested itself (the two ends, marked by us, not counted)."""
    marks = [line for line in log.splitlines() if re.match(rf"git bisect ({terms[0]}|{terms[1]}|skip)\b", line)]
    return max(0, len(marks) - 2)


def _reset(repo: Path) -> str:
    with procs.signals_deferred():  # a second Ctrl-C must not leave the repository mid-bisect
        try:
            checkout.git(repo, "bisect", "reset")
        except UsageError as exc:
            print(f"repro check --bisect: {exc}; run `git bisect reset` in {repo}", file=sys.stderr)
    return checkout.where(repo)


def bisect(repo: Path, spec: str, command: list, find_fix: bool, say) -> dict:
    """A whole git bisect of `repo` over `spec` (OLD..NEW), each step running `command`: the ends
    checked, git bisect run, the commit named, the repository reset. `say` tells the progress."""
    ends = _commit_range(repo, spec)
    labels = tuple(spec.split("..", 1))
    _refuse_unsafe_repository(repo)
    terms = TERMS[find_fix]
    started = time.monotonic()
    checkout.git(repo, "bisect", "start", f"--term-old={terms[0]}", f"--term-new={terms[1]}")
    try:
        checked = _check_ends(repo, command, ends, labels, find_fix, say)
        found = _bisect_between(repo, command, ends, terms, say)
        steps = _steps(checkout.git(repo, "bisect", "log"), terms)
    finally:
        left_at = _reset(repo)
    return {"find_fix": find_fix, "terms": {"old": terms[0], "new": terms[1]}, **checked, **found,
            "subject": checkout.subject(repo, found["commit"]) if found.get("commit") else None,
            "checks": steps + 2, "wall_seconds": round(time.monotonic() - started, 1), "left_at": left_at}


def render(report: dict) -> str:
    change = "fixed" if report["find_fix"] else "bad"
    if report["commit"]:
        head = f"{report['bug']}: first {change} commit {report['commit']} {report['subject']}"
    elif report.get("candidates"):
        head = (f"{report['bug']}: skipped commits leave {len(report['candidates'])} candidates for the first "
                f"{change} commit: {', '.join(c[:12] for c in report['candidates'])}")
    else:
        head = f"{report['bug']}: no commit found: {report.get('problem')}"
    old, new = report["old"], report["new"]
    return "\n".join([
        head,
        f"  OLD {old['rev']} ({old['commit'][:12]}): {old['verdict']}; NEW {new['rev']} ({new['commit'][:12]}): "
        f"{new['verdict']}",
        f"  {report['checks']} checks (2 ends + {report['checks'] - 2} by git bisect run); "
        f"wall {duration(report['wall_seconds'])}; the repository is back at {report['left_at']}"])
