"""Small record sets for the report tests, in the schema harness/cell.py writes (results/*.jsonl).

The histories are the measured ones of matrix/*.toml: deltalake's borrow bug present in 0.20.1,
fixed in 0.23.2, back in 0.25.2 (still in 1.1.0), fixed again in 1.1.2; awswrangler's cache race
present up to 3.11.0 and fixed in 3.12.0 (3.2.0 must sort before 3.11.0, as a version).
"""
from __future__ import annotations

ENV = "/root/.cache/repro-harness/envs/e94cbbfc4b956e2e0537"
BORROWED = "RuntimeError: Already borrowed"
RELEASE_DATES = {"0.20.1": "2024-09-28T19:22:26Z", "0.23.2": "2025-01-07T10:00:00Z",
                 "0.25.2": "2025-02-26T10:00:00Z", "1.1.0": "2025-07-15T10:00:00Z",
                 "1.1.2": "2025-07-25T10:00:00Z", "2.14.0": "2022-01-20T10:00:00Z",
                 "3.2.0": "2023-05-25T10:00:00Z", "3.11.0": "2025-01-15T10:00:00Z",
                 "3.12.0": "2025-03-20T10:00:00Z"}
PATCH = {"3.9": "3.9.18", "3.10": "3.10.13", "3.11": "3.11.7", "3.12": "3.12.1", "3.13": "3.13.0"}


def record(bug: str, variant: str, python: str, package: str, version: str, verdict: str, *,
           role: str = "trigger", expected=None, errors=None, started: str = "2026-12-01T03:01:41+00:00") -> dict:
    """One cell record as the engine writes it; a present exception cell carries its evidence."""
    present = verdict == "present"
    attempts = 1 if present else 2
    evidence = []
    if present:
        errors = errors or [BORROWED] * 15
        evidence.append({"attempt": 1, "outcome": "reproduced", "duration": 0.481,
                         "reason": f"{len(errors)} of {len(errors)} errors match 'already (mutably )?borrowed'",
                         "evidence": {"pid": 3673, "stacks": "", "output_tail": "", "output_bytes": 0,
                                      "notes": [f"16 appends from 8 threads, {len(errors)} failed"],
                                      "observation": {"errors": errors}, "threads_alive": 1},
                         "versions": {package: version}})
    controls = [{"variant": "control-uri", "outcome": "clean", "reason": "no sign of the bug", "duration": 0.374,
                 "evidence": {}, "versions": {package: version}}] if present and role == "trigger" else []
    return {"schema": 1, "kind": "cell", "bug": bug, "variant": variant, "role": role,
            "python_requested": python, "python": PATCH.get(python, python), "pins": [f"{package}=={version}"],
            "exclude_newer": RELEASE_DATES.get(version), "failure_kind": "exception", "host": "ci-runner",
            "harness": {"version": "0.1.0", "commit": "f447d47cb9105a0e1c0de0000000000000000000"},
            "executor": {"kind": "local"}, "started_at": started,
            "interpreter": {"path": f"/root/.pyenv/versions/{PATCH.get(python, python)}/bin/python", "source": "host",
                            "version": PATCH.get(python, python)},
            "requirements": [f"{package}=={version}", "pyarrow"], "installed": {package: version},
            "imported": {package: {"modules": {package: f"{ENV}/lib/python{python}/site-packages/{package}"
                                                        "/__init__.py"},
                                   "version": version}},
            "env": {"build_seconds": 0.0, "reused": True},
            "verdict": verdict, "attempts": attempts, "reproductions": 1 if present else 0,
            "reason": "reproduced in 1 of 1 attempts" if present else
                      "2 clean attempts; with trigger rate >= 0.942 a present bug would have shown with"
                      " probability 0.9966",
            "outcomes": {"reproduced": 1} if present else {"clean": 2},
            "durations": [0.481] if present else [0.473, 0.275], "seconds": 0.9 if present else 1.3,
            "confidence": None if present else 0.996618, "evidence": evidence, "controls": controls,
            "expected": [expected or verdict]}


def delta_history() -> list[dict]:
    """delta-already-borrowed as the history tier measured it, and its control cells."""
    bug, cells = "delta-already-borrowed", []
    for python in ("3.9", "3.10", "3.11", "3.12"):
        cells.append(record(bug, "trigger", python, "deltalake", "0.20.1", "present"))
    for python in ("3.11", "3.12"):
        cells.append(record(bug, "control-uri", python, "deltalake", "0.20.1", "absent", role="control"))
    for version, verdict in (("0.23.2", "absent"), ("0.25.2", "present"), ("1.1.0", "present"), ("1.1.2", "absent")):
        cells.append(record(bug, "trigger", "3.11", "deltalake", version, verdict))
    for python in ("3.10", "3.11", "3.12", "3.13"):
        cells.append(record(bug, "trigger", python, "deltalake", "1.6.6", "absent"))
    return cells


def wrangler_history() -> list[dict]:
    bug, errors = "wrangler-athena-cache-race", ["RuntimeError: dictionary changed size during iteration"]
    return [record(bug, "trigger", "3.9", "awswrangler", "2.14.0", "present", errors=errors),
            record(bug, "trigger", "3.11", "awswrangler", "3.17.1", "absent"),
            record(bug, "trigger", "3.11", "awswrangler", "3.11.0", "present", errors=errors),
            record(bug, "trigger", "3.11", "awswrangler", "3.2.0", "present", errors=errors),
            record(bug, "trigger", "3.11", "awswrangler", "3.12.0", "absent")]


def hang_with_workers() -> dict:
    """A fork hang: the child's Python stacks and py-spy's of the child and of its forked worker."""
    hang = record("lancedb-fork-hang", "trigger", "3.11", "lancedb", "0.30.2", "absent")
    hang.update({"verdict": "present", "expected": ["present"], "failure_kind": "hang", "attempts": 1,
                 "reproductions": 1,
                 "outcomes": {"hang": 1}, "confidence": None, "reason": "reproduced in 1 of 1 attempts",
                 "controls": [{"variant": "control-spawn", "outcome": "clean", "reason": "no sign of the bug",
                               "duration": 3.151}]})
    hang["evidence"] = [{"attempt": 1, "outcome": "hang", "duration": 7.58,
                         "reason": "no result within 3s after the repro saw its bug's stall begin",
                         "evidence": {"pid": 5301, "threads": {"5301": 8, "5328": 1},
                                      "hang_evidence": "round 1: the fork worker (pid [5328]) is not done after 2s",
                                      "stacks": "Thread 0x00007f80932c76c0 (most recent call first):\n"
                                                "  File \"threading.py\", line 327 in wait\n",
                                      "native_stacks": {"5301": "Thread 5301 (idle): \"MainThread\"\n"
                                                                "    Condition.wait",
                                                        "5328": "Thread 5328 (idle): \"MainThread\"\n    "
                                                                "PyThread_acquire_lock_timed (libpython3.11.so.1.0)"},
                                      "output_tail": "", "output_bytes": 0}}]
    return hang
