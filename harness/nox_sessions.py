"""The nox sessions of a matrix, for any repository with a `matrix/` (and its `repros/`):

    # noxfile.py
    from harness.nox_sessions import install
    install(globals())

    nox                      the default: `matrix`, the default tier for every Python found
    nox -s matrix -- --tier all                         the history tier too
    nox -s report            results/ -> README table, HTML page, badges, JUnit XML
    nox -t delta-already-borrowed                       every session of one bug
    nox -l --json -t cells                              every cell-group session (the CI job matrix)
    nox -s "delta_already_borrowed(python='3.11', deltalake='0.20.1')"   one cell group

A session's Python is the Python of the cells it runs (`pytest matrix/ --cell-python X` with
harness.pytest_plugin). The harness that runs them is the one nox itself runs with (the noxfile
imports it): one install, no session venv to build or install into, so a cold `nox` pays for the
cells' envs only. A missing interpreter is skipped locally with the reason and is an error under
CI. `install(globals(), harness=...)` instead gives each session a venv of its Python with that
harness installed (a wheel to test, a release). A broken matrix file likewise: its bug's sessions are left
out with a warning, and the `matrix_files` session (run by plain `nox` and listed with the cell
groups) is skipped with the problem locally and fails under CI. After the last session, nox's
process ends with the verdict table of every cell its sessions ran.

The matrix is read from `./matrix` of the noxfile's directory (nox runs there) and the shipped
one, as `repro` does. `install()` puts the session functions into the noxfile's namespace.
"""
from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
from pathlib import Path

import nox

from harness import matrix as matrix_module
from harness import paths
from harness.envs import interpreters
from harness.errors import UsageError
from harness.results import REQUIRED
from harness.text import safe_name
from harness.versions import LATEST, exact_pin, latest_pin, python_key, requirement_name

HARNESS_PYTHON = "%d.%d" % sys.version_info[:2]


def install(namespace: dict, *, harness: str | None = None) -> None:
    """Define the matrix sessions (and `report`) in the noxfile whose globals() is `namespace`.

    harness: what a session venv installs to run the cells (a path, a wheel or a requirement);
    default: no venv, the harness nox runs with runs the cells (see the module's text).
    """
    root = Path(namespace["__file__"]).resolve().parent
    nox.options.default_venv_backend = "uv"
    nox.options.reuse_venv = "yes"
    nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))
    nox.options.sessions = ["matrix"]
    entries, broken = matrix_module.discover()
    for problem in broken.values():
        print(f"noxfile: warning: broken matrix file left out: {problem}", file=sys.stderr)
    runner = _CellRunner(root, _harness_install(harness))
    pythons = _pythons(entries)
    _expose_interpreters(root, sorted({*pythons["host"], HARNESS_PYTHON}))
    _print_verdicts_at_exit(runner.results)
    namespace.update(_matrix_sessions(runner, entries, pythons))
    for bug, entry in entries.items():
        namespace[bug.replace("-", "_")] = _bug_session(runner, bug, entry)
    if broken:
        namespace["matrix_files"] = _broken_files_session(broken)
    namespace["report"] = _report_session()


def _harness_install(harness: str | None) -> tuple | None:
    """The requirements of a session venv (the harness and pytest-xdist), or None: no venv."""
    return None if harness is None else (harness, "pytest-xdist")


def _pythons(entries: dict) -> dict:
    """The Pythons of the matrix by where their cells run: a host interpreter (a nox venv), or the
    Python of an image recipe (debian-trixie:3.13t), whose cells run from a venv of the Python
    running nox, on the docker executor with the recipe's image. python = "newest" is the newest
    interpreter found here."""
    found = sorted({matrix_module.concrete_python(e.cell.python) for e in matrix_module.select(entries, tier="all")},
                   key=python_key)
    return {"host": [p for p in found if not interpreters.image_python(p)],
            "image": [p for p in found if interpreters.image_python(p)]}


def _expose_interpreters(root: Path, versions: list) -> None:
    """Let nox and uv see the interpreters the harness finds (pyenv's shims hide all but one).

    A directory of `pythonX.Y` links goes first on PATH; uv must never download one.
    """
    links = root / ".nox" / ".interpreters"
    links.mkdir(parents=True, exist_ok=True)
    for version, found in interpreters.available(versions).items():
        link = links / f"python{version}"
        if isinstance(found, interpreters.Interpreter) and not link.exists():
            link.symlink_to(found.path)
    os.environ["PATH"] = f"{links}{os.pathsep}{os.environ.get('PATH', '')}"
    os.environ["UV_PYTHON_DOWNLOADS"] = "never"


def _print_verdicts_at_exit(results: Path) -> None:
    """The last lines of a nox run: the verdict of every cell its sessions ran (all Pythons), read
    from what its sessions appended to their results files (nox has no hook after its last
    session; a run without cells prints nothing)."""
    sizes_at_start = {path: path.stat().st_size for path in results.glob("*/*.jsonl")}  # earlier runs' lines

    def print_table() -> None:
        from harness import table

        records = []
        for path in sorted(results.glob("*/*.jsonl")):
            with open(path, "rb") as handle:
                handle.seek(sizes_at_start.get(path, 0))
                records += [r for r in map(_cell_record, handle) if r and all(r.get(k) is not None for k in REQUIRED)]
        table.print_table(records, sys.stderr, title=f"nox: the verdicts of the {len(records)} cells of this run")

    atexit.register(print_table)


def _cell_record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:  # a line torn by a killed writer
        return None
    return record if isinstance(record, dict) and record.get("kind") == "cell" else None


class _CellRunner:
    """Runs `pytest matrix/` for a selection of cells: with the harness nox runs with (`wanted` None),
    or in a session's venv with `wanted` installed."""

    def __init__(self, root: Path, wanted: tuple | None):
        self.root, self.wanted = root, wanted
        self.results = root / "results" / "nox"

    def session_kwargs(self, venv_python: str | None = None) -> dict:
        """How a session of cells is declared: without a venv, or with one of `venv_python` (None: the
        session's parametrized Python)."""
        if self.wanted is None:
            return {"venv_backend": "none"}
        return {"python": venv_python} if venv_python else {}

    def check_python(self, session: nox.Session, python: str) -> None:
        """Without a venv nox looks for no interpreter: a missing host Python is skipped here as nox
        would (an error under CI)."""
        if self.wanted is not None or interpreters.image_python(python):
            return
        try:
            interpreters.find(python)
        except UsageError as exc:
            if os.environ.get("CI"):
                session.error(f"Python {python}: {exc}")
            session.skip(f"Python {python} not found: {exc}")

    def pytest(self) -> tuple:
        """The command of pytest: the session venv's, or this interpreter's (the harness nox imported)."""
        return ("pytest",) if self.wanted is not None else (sys.executable, "-m", "pytest")

    def env(self) -> dict:
        """Without a venv, pytest imports the harness this noxfile imported (a source tree's first)."""
        if self.wanted is not None or not (paths.ROOT / "pyproject.toml").is_file():
            return {}
        return {"PYTHONPATH": os.pathsep.join(p for p in (str(paths.ROOT), os.environ.get("PYTHONPATH")) if p)}

    def install(self, session: nox.Session) -> None:
        """The harness into the session's venv, once per install spec (and the source tree's
        pyproject.toml): an editable install sees source edits without reinstalling, so skipping
        the no-op reinstall saves seconds per session on warm runs."""
        if self.wanted is None:
            return
        stamp = Path(session.virtualenv.location) / ".repro-install"
        metadata = paths.ROOT / "pyproject.toml"
        key = hashlib.sha256((metadata.read_bytes() if metadata.is_file() else b"")
                             + repr(self.wanted).encode()).hexdigest()
        if stamp.is_file() and stamp.read_text() == key:
            return
        session.install(*self.wanted)
        stamp.write_text(key)

    def run(self, session: nox.Session, *selection: str, allow_none: bool = False,
            cell_python: str | None = None) -> None:
        self.check_python(session, cell_python or str(session.python))
        self.install(session)
        results = self.results / safe_name(session.name)
        # Exactly the cells declared for the session's Python: a 3.11 session also runs 3.11.7,
        # whose cells have a session of their own.
        session.run(*self.pytest(), "matrix/", "-p", "no:cacheprovider", "-q", "-rs", "--progress", "--results-dir",
                    str(results), "--junitxml", str(results / "junit.xml"),
                    "--cell-python", cell_python or str(session.python), *selection, *session.posargs,
                    env=self.env(), success_codes=[0, 5] if allow_none else [0])  # 5: pytest collected no cell


def _matrix_sessions(runner: _CellRunner, entries: dict, pythons: dict) -> dict:
    """`matrix` (one session per host Python) and `matrix_images` (per image Python)."""
    def has_cells(python: str, tier: str) -> bool:
        return bool(matrix_module.select(entries, pythons={python}, tier=tier))

    def run_default_tier(session: nox.Session, cell_python: str | None) -> None:
        tier = posarg(session.posargs, "--tier") or "default"
        if not has_cells(cell_python or str(session.python), tier):
            session.skip(f"no cells of the {tier} tier for Python {cell_python or session.python}")
        runner.run(session, "--tier", "default", allow_none=True, cell_python=cell_python)

    @nox.session(**runner.session_kwargs())
    @nox.parametrize("python", pythons["host"])
    def matrix(session: nox.Session) -> None:
        """The default tier of the matrix for this Python (`-- --tier all`: every cell)."""
        run_default_tier(session, None)

    sessions = {"matrix": matrix}
    if pythons["image"]:
        @nox.session(**runner.session_kwargs(HARNESS_PYTHON))
        @nox.parametrize("cell_python", pythons["image"])
        def matrix_images(session: nox.Session, cell_python: str) -> None:
            """The default tier of the matrix for the Python of an image recipe (`-- --tier all`: every cell)."""
            run_default_tier(session, cell_python)

        nox.options.sessions.append("matrix_images")
        sessions["matrix_images"] = matrix_images
    return sessions


def posarg(args, name: str) -> str | None:
    """The value of `name` in a session's posargs (`--tier all` or `--tier=all`), if given."""
    args = list(args)
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _pin_param(pin: str) -> tuple[str, str]:
    """(name, what) of a pin for a session id: deltalake='0.20.1', tinylib='git:v0.1.0'."""
    if exact_pin(pin):
        return exact_pin(pin)
    if latest_pin(pin):
        return requirement_name(latest_pin(pin)), LATEST
    if "@" in pin:  # a direct reference: what follows the '@' names it (git:REF, file:///...)
        return requirement_name(pin), pin.split("@", 1)[1].strip()
    return pin, pin


def _group_params(entry: dict) -> list:
    """One nox param per cell group of the bug on its concrete Python, with an id a person can type."""
    seen, params = set(), []
    for group in matrix_module.cell_groups(entry["cells"]):
        key = (matrix_module.concrete_python(group.python), group.pins)
        if key in seen:  # "newest" and the newest version declared: one session
            continue
        seen.add(key)
        pins = ", ".join(f"{n}='{v}'" for n, v in map(_pin_param, group.pins))
        ident = f"python='{key[0]}'" + (f", {pins}" if pins else "")
        venv_python = HARNESS_PYTHON if interpreters.image_python(key[0]) else key[0]
        params.append(nox.param(venv_python, list(key[1]), key[0], id=ident))
    return params


def _bug_session(runner: _CellRunner, bug: str, entry: dict):
    def cells(session: nox.Session, pins: list, cell_python: str) -> None:
        selection = ["--bug", bug, "--tier", "all"] + [arg for pin in pins for arg in ("--pins", pin)]
        if not pins:
            selection.append("--pins-none")
        runner.run(session, *selection, cell_python=cell_python)

    cells.__doc__ = f"Cells of {bug} for one Python and one set of pins."
    session = nox.parametrize("python,pins,cell_python", _group_params(entry))(cells)
    return nox.session(name=bug.replace("-", "_"), tags=[bug, "cells"], **runner.session_kwargs())(session)


def _broken_files_session(broken: dict):
    """A session of its own, so the problem is a result: a CI job of the cell groups fails on it."""
    @nox.session(python=False, tags=["cells"])
    def matrix_files(session: nox.Session) -> None:
        """Broken matrix files: their cells are left out (an error under CI)."""
        problems = "; ".join(broken.values())
        if os.environ.get("CI"):
            session.error(problems)
        session.skip(problems)

    nox.options.sessions.append("matrix_files")
    return matrix_files


def _report_session():
    @nox.session(python=False)
    def report(session: nox.Session) -> None:
        """Merge results into the README table, the HTML page, badges and a JUnit summary."""
        session.run(sys.executable, "-m", "harness", "report", *(session.posargs or ["results"]))

    return report
