"""nox sessions, generated from matrix/.

    nox                      the default: `matrix`, the default tier for every Python found
    nox -s matrix -- --tier all                         the history tier too
    nox -s tests             the harness's own tests
    nox -s bench             benchmark figures
    nox -s report            results/ -> README table, HTML page, badges, JUnit XML
    nox -t delta-already-borrowed                       every session of one bug
    nox -l --json -t cells                              every cell-group session (the CI job matrix)
    nox -s "delta_already_borrowed(python='3.11', deltalake='0.20.1')"   one cell group

A session's Python is the interpreter the harness runs the cells with; a missing one is
skipped locally with nox's reason and is an error under CI. A broken matrix file likewise: its
bug's sessions are left out with a warning, and the `matrix_files` session (run by plain `nox`
and listed with the cell groups) is skipped with the problem locally and fails under CI.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from harness import matrix as matrix_module  # noqa: E402
from harness.envs import interpreters  # noqa: E402

nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))
nox.options.sessions = ["matrix"]

MATRIX, BROKEN = matrix_module.discover()
for _problem in BROKEN.values():
    print(f"noxfile: warning: broken matrix file left out: {_problem}", file=sys.stderr)
# A cell of python = "newest" runs on the newest interpreter found here.
PYTHONS = sorted({matrix_module.concrete_python(e.cell.python) for e in matrix_module.select(MATRIX, tier="all")},
                 key=interpreters.sort_key)
# The Python of an image recipe (debian-trixie:3.13t) is no nox venv: its cells run from a venv
# of the Python running nox, on the docker executor with the recipe's image.
IMAGE_PYTHONS = [p for p in PYTHONS if interpreters.image_python(p)]
HOST_PYTHONS = [p for p in PYTHONS if not interpreters.image_python(p)]
HARNESS_PYTHON = "%d.%d" % sys.version_info[:2]


def _expose_interpreters() -> None:
    """Let nox and uv see the interpreters the harness finds (pyenv's shims hide all but one).

    A directory of `pythonX.Y` links goes first on PATH; uv must never download one.
    """
    links = ROOT / ".nox" / ".interpreters"
    links.mkdir(parents=True, exist_ok=True)
    for version, found in interpreters.available(sorted({*HOST_PYTHONS, HARNESS_PYTHON})).items():
        link = links / f"python{version}"
        if isinstance(found, interpreters.Interpreter) and not link.exists():
            link.symlink_to(found.path)
    os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["UV_PYTHON_DOWNLOADS"] = "never"


_expose_interpreters()
RESULTS = ROOT / "results" / "nox"
SIZES_AT_START = {path: path.stat().st_size for path in RESULTS.glob("*/*.jsonl")}  # what earlier runs wrote


def _verdicts_at_exit() -> None:
    """The last lines of a nox run: the verdict of every cell its sessions ran (all Pythons), read
    from what its sessions appended to their results files."""
    from harness import report, table

    records = []
    for path in sorted(RESULTS.glob("*/*.jsonl")):
        with open(path, "rb") as handle:
            handle.seek(SIZES_AT_START.get(path, 0))
            records += [r for r in map(_record, handle) if r and all(r.get(k) is not None for k in report.REQUIRED)]
    table.print_table(records, sys.stderr, title=f"nox: the verdicts of the {len(records)} cells of this run")


def _record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:  # a line torn by a killed writer
        return None
    return record if isinstance(record, dict) and record.get("kind") == "cell" else None


atexit.register(_verdicts_at_exit)  # nox has no hook after its last session; a run without cells prints nothing


def _install(session: nox.Session) -> None:
    """The project (editable) into the session's venv, once per pyproject.toml.

    An editable install sees source edits without reinstalling; only a change of the project's
    metadata needs one. Skipping the no-op reinstall saves seconds per session on warm runs.
    """
    wanted = ("-e", ".", "pytest-xdist")
    stamp = Path(session.virtualenv.location) / ".repro-install"
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + repr(wanted).encode()).hexdigest()
    if stamp.is_file() and stamp.read_text() == key:
        return
    session.install(*wanted)
    stamp.write_text(key)


def _results_dir(session: nox.Session) -> str:
    from harness.report import safe_name

    return str(RESULTS / safe_name(session.name))


def _run_cells(session: nox.Session, *selection: str, allow_none: bool = False, cell_python: str | None = None) -> None:
    _install(session)
    # Exactly the cells declared for the session's Python: a 3.11 session also runs 3.11.7,
    # whose cells have a session of their own.
    session.run("pytest", "matrix/", "-p", "no:cacheprovider", "-q", "-rs", "--progress", "--results-dir",
                _results_dir(session), "--junitxml", str(Path(_results_dir(session)) / "junit.xml"),
                "--cell-python", cell_python or str(session.python), *selection, *session.posargs,
                success_codes=[0, 5] if allow_none else [0])  # 5: pytest collected no cell


@nox.session
@nox.parametrize("python", HOST_PYTHONS)
def matrix(session: nox.Session) -> None:
    """The default tier of the matrix for this Python (`-- --tier all`: every cell)."""
    tier = _posarg(session, "--tier") or "default"
    if not _has_cells(str(session.python), tier):
        session.skip(f"no cells of the {tier} tier for Python {session.python}")
    _run_cells(session, "--tier", "default", allow_none=True)


if IMAGE_PYTHONS:
    @nox.session(python=HARNESS_PYTHON)
    @nox.parametrize("cell_python", IMAGE_PYTHONS)
    def matrix_images(session: nox.Session, cell_python: str) -> None:
        """The default tier of the matrix for the Python of an image recipe (`-- --tier all`: every cell)."""
        tier = _posarg(session, "--tier") or "default"
        if not _has_cells(cell_python, tier):
            session.skip(f"no cells of the {tier} tier for Python {cell_python}")
        _run_cells(session, "--tier", "default", allow_none=True, cell_python=cell_python)

    nox.options.sessions.append("matrix_images")


def _posarg(session: nox.Session, name: str) -> str | None:
    """The value of `name` in the session's posargs (`--tier all` or `--tier=all`), if given."""
    args = list(session.posargs)
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _has_cells(python: str, tier: str) -> bool:
    return bool(matrix_module.select(MATRIX, pythons={python}, tier=tier))


def _pin_param(pin: str) -> tuple[str, str]:
    name = pin.split("==")[0] if "==" in pin else pin
    return name, pin.split("==", 1)[1] if "==" in pin else pin


def _cell_groups(bug: str, entry: dict) -> list:
    """One nox param per (python, pins) of the bug, with an id a person can type."""
    seen, params = set(), []
    for expected in entry["cells"]:
        key = (matrix_module.concrete_python(expected.cell.python), expected.cell.pins)
        if key in seen:
            continue
        seen.add(key)
        pins = ", ".join(f"{n}='{v}'" for n, v in map(_pin_param, expected.cell.pins))
        ident = f"python='{key[0]}'" + (f", {pins}" if pins else "")
        venv_python = HARNESS_PYTHON if interpreters.image_python(key[0]) else key[0]
        params.append(nox.param(venv_python, list(key[1]), key[0], id=ident))
    return params


def _make_bug_session(bug: str, entry: dict) -> None:
    def cells(session: nox.Session, pins: list, cell_python: str) -> None:
        selection = ["--bug", bug, "--tier", "all"] + [arg for pin in pins for arg in ("--pins", pin)]
        if not pins:
            selection.append("--pins-none")
        _run_cells(session, *selection, cell_python=cell_python)

    cells.__doc__ = f"Cells of {bug} for one Python and one set of pins."
    session = nox.parametrize("python,pins,cell_python", _cell_groups(bug, entry))(cells)
    nox.session(name=bug.replace("-", "_"), tags=[bug, "cells"])(session)


for _bug, _entry in MATRIX.items():
    _make_bug_session(_bug, _entry)


if BROKEN:  # a session of its own, so the problem is a result: a CI job of the cell groups fails on it
    @nox.session(python=False, tags=["cells"])
    def matrix_files(session: nox.Session) -> None:
        """Broken matrix files: their cells are left out (an error under CI)."""
        problems = "; ".join(BROKEN.values())
        if os.environ.get("CI"):
            session.error(problems)
        session.skip(problems)

    nox.options.sessions.append("matrix_files")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The harness's own tests (fault injection, CLI, reports, real delta cells)."""
    session.run(sys.executable, "-m", "pytest", "tests", *session.posargs)


@nox.session(python=False)
def bench(session: nox.Session) -> None:
    """Benchmark figures (printed, never asserted)."""
    session.run(sys.executable, "-m", "harness.bench", *session.posargs)


@nox.session(python=False)
def report(session: nox.Session) -> None:
    """Merge results into the README table, the HTML page, badges and a JUnit summary."""
    session.run(sys.executable, "-m", "harness", "report", *(session.posargs or ["results"]))
