"""nox sessions, generated from matrix/ by harness.nox_sessions, and the harness's own.

    nox                      the default: `matrix`, the default tier for every Python found
    nox -s matrix -- --tier all                         the history tier too
    nox -s tests             the harness's own tests (the 15 slowest listed at the end)
    nox -s bench             benchmark figures
    nox -s report            results/ -> README table, HTML page, badges, JUnit XML
    nox -t delta-already-borrowed                       every session of one bug
    nox -l --json -t cells                              every cell-group session (the CI job matrix)
    nox -s "delta_already_borrowed(python='3.11', deltalake='0.20.1')"   one cell group

A session's Python is the Python of its cells; the harness nox runs with runs them (no session
venv: one install); a missing interpreter is skipped locally and is an error under CI. A broken
matrix file likewise: its bug's sessions are left out with a warning, and the `matrix_files`
session (run by plain `nox` and listed with the cell groups) is skipped with the problem locally
and fails under CI.
Another repository gets the matrix sessions with two lines: see harness/nox_sessions.py.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this checkout's harness, also when a copy runs
from harness.nox_sessions import install

install(globals())


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The harness's own tests (fault injection, CLI, reports, real delta cells)."""
    session.run(sys.executable, "-m", "pytest", "tests", "--durations=15", *session.posargs)


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Benchmark figures (printed, never asserted)."""
    session.run(sys.executable, "-m", "harness.bench", *session.posargs)
