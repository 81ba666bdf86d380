"""The pytest plugin: one test per matrix cell for the interpreter pytest runs in.

Registered through the `pytest11` entry point of the wheel (named like this module, so a
conftest.py that also names it in `pytest_plugins` does not register it twice). It stays out of
the way of a project's ordinary tests: it collects only the `*.toml` files of `<rootdir>/matrix`
or of the directory given as `--repro-matrix DIR` (whose sibling `repros/` holds the bugs), and
registers its markers only then. Disable it with `-p no:harness.pytest_plugin`.

`pytest matrix/` (or plain `pytest` where nothing else is collected) collects every cell of the
default tier whose Python is the running interpreter's (`--all-pythons`: every Python;
`--tier all`: the history cells too), runs it through the engine and fails when the verdict
differs from the expected one. A trigger of a history cell plans enough attempts to exclude a
per-attempt rate of stats.LOW_RATE (10%: 29 clean attempts for `absent`). Node ids are
`matrix/<file>::<cell group>::<variant>`, so the JUnit classname carries the cell. Results go to
`<results dir>/<worker>.jsonl` (one file per xdist worker). A broken matrix file is one failing
item, `matrix/<file>::load`, with its one-line problem: the other files' cells still run.
The run ends with the verdict table.

Always, matrix or not: a project's own test marked `@pytest.mark.repro(...)` runs as a trigger
in fresh child processes, and its verdict is the test's outcome (harness/pytest_marker.py).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

CURRENT = "%d.%d" % sys.version_info[:2]
RUNNING = "%d.%d.%d" % sys.version_info[:3]  # cells may name an exact release (a bug fixed in 3.11.12)
ENV_BUILD_ALLOWANCE = 1800.0  # outer guard only: a cold Beam or lancedb env takes minutes


def cell_timeout(variant) -> float:
    """pytest-timeout's outer guard of one cell: the env build, then up to 40 attempts of the variant
    (the harness's own deadlines end an attempt long before; this only catches a stuck harness)."""
    return ENV_BUILD_ALLOWANCE + 40 * (variant.timeout + 10)


def pytest_addoption(parser):
    from harness.matrix import TIERS

    group = parser.getgroup("repro", "reproduction matrix (harness.pytest_plugin)")
    group.addoption("--repro-matrix", default=None, metavar="DIR",
                    help="collect the matrix files of DIR (default: <rootdir>/matrix); its sibling repros/ "
                         "holds the bugs. Without paths, pytest collects DIR")
    group.addoption("--bug", action="append", default=[], help="only cells of this bug (repeatable)")
    group.addoption("--attempts", type=_attempt_budget, default=None, help="fixed attempts per cell (at least 1)")
    group.addoption("--exclude-rate", type=_rate, default=None, metavar="R",
                    help="plan enough attempts that `absent` excludes a per-attempt rate >= R at 95%% "
                         "(default: 0.1 for the triggers of history cells, else the confidence rule alone)")
    group.addoption("--pins", action="append", default=[], help="only cells with exactly these pins")
    group.addoption("--pins-none", action="store_true", help="only cells without pins")
    group.addoption("--all-pythons", action="store_true", help="collect cells of every Python, not just this one")
    group.addoption("--cell-python", default=None,
                    help="only cells declared for exactly this Python (default: the running X.Y and X.Y.Z)")
    group.addoption("--tier", default="default", choices=(*TIERS, "all"),
                    help="which cells: the default tier (plain `nox`), the history tier, or all")
    group.addoption("--progress", action="store_true",
                    help="per cell and attempt progress on stderr (cell k of n, attempt k of n, elapsed)")
    group.addoption("--latest-executor", choices=("local", "docker"), default="local",
                    help="where a cell that tracks the newest releases (NAME==latest, python = \"newest\") runs: "
                         "docker keeps that unreviewed code in a container, away from the host, the results and "
                         "the harness (CI's cells jobs); a cell that cannot get one fails, it never runs here")
    group.addoption("--results-dir", default=None, help="where JSON lines results go (default: <rootdir>/results)")
    group.addoption("--baseline", action="append", default=[],
                    help="earlier results (the last published): a cell tracking the newest releases is compared "
                         "with its last run there and in --results-dir (repeatable)")


def _attempt_budget(text: str) -> int:
    """--attempts: a whole number of at least 1 (no verdict may rest on zero attempts)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--attempts must be a whole number, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--attempts must be at least 1")
    return value


def _rate(text: str) -> float:
    """--exclude-rate: a rate strictly between 0 and 1."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value < 1):
        raise argparse.ArgumentTypeError(f"--exclude-rate must be between 0 and 1 (exclusive), not {text!r}")
    return value


def exclude_rate(config, expected, bug) -> float | None:
    """The rate a cell's `absent` must exclude: --exclude-rate, else stats.LOW_RATE for a trigger of
    the history tier (the releases around a fix, where a partly fixed one must not pass as fixed),
    else none. A fixed --attempts budget plans without it."""
    from harness import stats

    if config.option.attempts:
        return None
    if config.option.exclude_rate is not None:
        return config.option.exclude_rate
    trigger = bug.variants[expected.cell.variant].role == "trigger"
    return stats.LOW_RATE if trigger and expected.tier == "history" else None


def matrix_dir(config) -> Path | None:
    """The directory whose matrix files are collected, or None: the plugin is inactive."""
    chosen = config.getoption("repro_matrix")
    directory = Path(chosen).resolve() if chosen else config.rootpath / "matrix"
    return directory if chosen or directory.is_dir() else None


def pytest_configure(config):
    # The marker of a project's own test (harness/pytest_marker.py): known also without a matrix.
    config.addinivalue_line("markers", "repro(attempts=20, timeout=60, signature=None, rate=None, confidence=0.99): "
                            "run the test in fresh child processes under the harness's watchdog; its verdict "
                            "is the outcome")
    directory = config._repro_matrix = matrix_dir(config)
    if directory is None:
        return  # nothing to collect: a project's own tests see no trace of the plugin
    if config.option.results_dir is None:
        config.option.results_dir = str(config.rootpath / "results")
    _find_repros_beside(directory)
    if config.getoption("repro_matrix") and config.args_source != pytest.Config.ArgsSource.ARGS:
        config.args[:] = [str(directory)]  # `pytest --repro-matrix DIR`: DIR is what to collect
    from harness.registry import FAILURE_KINDS, all_bugs

    for bug in all_bugs().values():
        config.addinivalue_line("markers", f"{bug.id.replace('-', '_')}: cells of {bug.id}")
    for kind in FAILURE_KINDS:
        config.addinivalue_line("markers", f"{kind.replace('-', '_')}: cells of bugs whose failure is a {kind}")


def _find_repros_beside(directory: Path) -> None:
    """The bugs of a matrix are in its sibling repros/: put it on REPRO_PATH unless it is found anyway."""
    from harness.registry import repro_dirs

    repros = directory.parent / "repros"
    if repros.is_dir() and repros.resolve() not in {d.resolve() for d in repro_dirs()}:
        os.environ["REPRO_PATH"] = os.pathsep.join(p for p in (str(repros), os.environ.get("REPRO_PATH")) if p)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A test marked `@pytest.mark.repro(...)` runs in fresh children, not here (harness/pytest_marker.py)."""
    marker = pyfuncitem.get_closest_marker("repro")
    if marker is None:
        return None
    from harness import pytest_marker

    try:
        options, problem = pytest_marker.options_of(marker), None
    except ValueError as exc:
        problem = str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)
    outcome = pytest_marker.run_marked(pyfuncitem, options)
    if not outcome.passed:
        pytest.fail(outcome.text, pytrace=False)
    pyfuncitem.add_report_section("call", "repro", outcome.text)
    pyfuncitem.user_properties.append(("repro", outcome.text))
    return True


def pytest_collect_file(file_path, parent):
    directory = getattr(parent.config, "_repro_matrix", None)
    if directory is not None and file_path.suffix == ".toml" and file_path.parent == directory:
        return MatrixFile.from_parent(parent, path=file_path)
    return None


class MatrixFile(pytest.File):
    def collect(self):
        from harness import matrix
        from harness.errors import UsageError
        from harness.registry import get_bug

        opts = self.config.option
        try:
            entry = matrix.load_file(self.path)
        except UsageError as exc:
            if not opts.bug or matrix.claimed_bug(self.path) in opts.bug:
                yield BrokenMatrixFile.from_parent(self, name="load", problem=str(exc))
            return
        if opts.bug and entry["bug"] not in opts.bug:
            return
        bug = get_bug(entry["bug"])
        wanted = {opts.cell_python} if opts.cell_python else {CURRENT, RUNNING}
        pins = opts.pins if (opts.pins or opts.pins_none) else None
        selected = matrix.select({entry["bug"]: entry}, pythons=None if opts.all_pythons else wanted,
                                 tier=opts.tier, pins=pins)
        for group, members in matrix.cell_groups(selected).items():
            yield CellGroup.from_parent(self, name=group.name, members=members, bug=bug)


class BrokenFile(Exception):
    pass


class BrokenMatrixFile(pytest.Item):
    """Fails with the file's one-line problem (a collection error would stop every other cell)."""

    def __init__(self, *, problem, **kwargs):
        super().__init__(**kwargs)
        self.problem = problem

    def runtest(self):
        raise BrokenFile(self.problem)

    def repr_failure(self, excinfo):
        return self.problem if isinstance(excinfo.value, BrokenFile) else super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}: broken matrix file"


class CellGroup(pytest.Collector):
    """The cells of one matrix.CellGroup (one bug, one declared Python, one set of pins)."""

    def __init__(self, *, members, bug, **kwargs):
        super().__init__(**kwargs)
        self.members = members
        self.bug = bug

    def collect(self):
        # the controls' own cells first: a present trigger of the same env then reuses their attempts
        # (harness/runner.py) instead of running its controls once more
        controls_first = sorted(self.members, key=lambda e: self.bug.variants[e.cell.variant].role != "control")
        for expected in controls_first:
            item = CellItem.from_parent(self, name=expected.cell.variant, expected=expected, bug=self.bug)
            item.add_marker(getattr(pytest.mark, self.bug.id.replace("-", "_")))
            item.add_marker(getattr(pytest.mark, self.bug.failure_kind.replace("-", "_")))
            item.add_marker(pytest.mark.timeout(cell_timeout(self.bug.variants[expected.cell.variant])))
            yield item


class VerdictMismatch(Exception):
    pass


class CellItem(pytest.Item):
    def __init__(self, *, expected, bug, **kwargs):
        super().__init__(**kwargs)
        self.expected = expected
        self.bug = bug

    def runtest(self):
        from harness import matrix, results, watch
        from harness.cell import Options
        from harness.runner import Planned, run_cells
        from harness.verdict import CANNOT_INSTALL, SKIPPED

        cell = matrix.resolve(self.expected)  # `latest` and "newest" resolved now
        planned = Planned(cell, expect=tuple(self.expected.expect), extra=matrix.declared(self.expected, cell),
                          position=self._position())
        progress = self._progress()
        try:
            options = Options(attempts=self.config.option.attempts,
                              exclude_rate=exclude_rate(self.config, self.expected, self.bug),
                              **_isolation(self.config, self.expected))
            record, = run_cells([planned], options, progress=progress,
                                services=_service_pool(self.config), ledger=_control_ledger(self.config))
        finally:
            if progress:
                progress.stop()  # no live line may outlive the cell (its ticker writes past capture)
        record = watch.judge(record, self.expected, [self.config.option.results_dir, *self.config.option.baseline])
        self.record = record  # for the verdict table at the end (pytest_runtest_makereport)
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        results.append(Path(self.config.option.results_dir) / f"{worker}.jsonl", record)
        self.user_properties.append(("verdict", record.verdict))
        expect = self.expected.expect
        uninstallable = record.skip_kind in CANNOT_INSTALL and expect and SKIPPED not in expect
        if record.verdict == SKIPPED and not uninstallable:
            pytest.skip(record.reason)  # a cell that cannot install what it expects to test fails below
        if record.verdict not in self.expected.expect:
            raise VerdictMismatch(record)

    def _position(self) -> tuple:
        items = self.session.items
        return items.index(self) + 1, len(items)

    def _progress(self):
        """A progress writer past pytest's capture, or None without --progress."""
        if not self.config.option.progress:
            return None
        from harness.progress import Progress

        progress = getattr(self.config, "_repro_progress", None)
        if progress is None:
            progress = self.config._repro_progress = Progress(_Uncaptured(self.config))
        return progress

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, VerdictMismatch):
            from harness import watch

            record = excinfo.value.args[0]
            return (f"{self.expected.cell.label}: expected {' or '.join(self.expected.expect)}, "
                    f"got {record.verdict}\n"
                    f"  reason: {record.reason}\n  installed: {record.installed}\n"
                    f"  outcomes: {record.outcomes}"
                    + (f"\n{watch.explain(record)}" if record.watch else ""))
        from harness.errors import UsageError

        if isinstance(excinfo.value, UsageError):  # the cell cannot run as declared: one line says why
            return f"{self.expected.cell.label}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.expected.cell.label


class _Uncaptured:
    """A stream to the real stderr while pytest captures the test's output: one line per event,
    and a live line on a terminal (not from an xdist worker: the workers share the terminal)."""

    def __init__(self, config):
        self.capture = config.pluginmanager.getplugin("capturemanager")

    def write(self, text: str) -> None:
        with self.capture.global_and_fixture_disabled():
            sys.stderr.write(text)
            sys.stderr.flush()

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        with self.capture.global_and_fixture_disabled():  # while captured, fd 2 is a file
            return sys.stderr.isatty() and "PYTEST_XDIST_WORKER" not in os.environ


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A cell's record, kept small, rides on its report to the verdict table (across xdist too)."""
    report = yield
    if isinstance(item, CellItem) and report.when == "call":
        from harness.table import plain

        record = getattr(item, "record", None)
        report.repro_cell = plain(record if record is not None else _harness_failed(item, call))
    return report


def _harness_failed(item: CellItem, call):
    """The record of a cell that left none (the harness failed): the table says so."""
    from harness.record import CellRecord
    from harness.verdict import ERROR

    cell = item.expected.cell
    return CellRecord(bug=cell.bug, variant=cell.variant, role=item.bug.variants[cell.variant].role,
                      python_requested=cell.python, pins=list(cell.pins), verdict=ERROR, attempts=0,
                      reason=f"no verdict: {call.excinfo.exconly() if call.excinfo else 'no record'}",
                      expected=list(item.expected.expect))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The verdict of every cell, the last thing before pytest's own count (tryfirst: this wrapper
    is outermost, so it prints after the short test summary)."""
    result = yield
    cells = [report.repro_cell for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "repro_cell", None)]
    if cells:
        from harness.table import PLAIN_WIDTH, render

        writer = terminalreporter._tw
        terminalreporter.write_sep("=", f"verdicts of {len(cells)} cell{'s' if len(cells) != 1 else ''}")
        terminalreporter.write(render(cells, colour=writer.hasmarkup,
                                        width=writer.fullwidth if writer.hasmarkup else PLAIN_WIDTH))
    return result


def _control_ledger(config):
    """One ledger of the controls run per pytest process (xdist: per worker), as for the services."""
    ledger = getattr(config, "_repro_controls", None)
    if ledger is None:
        from harness.cell import ControlLedger

        ledger = config._repro_controls = ControlLedger()
    return ledger


def _isolation(config, expected) -> dict:
    """The Options of where the cell runs: for a cell that tracks the newest releases with
    --latest-executor docker, the docker executor (one per pytest process); else the default.
    No engine or no image fails the cell: unreviewed code is never run on the host instead."""
    from harness import matrix

    if config.option.latest_executor != "docker" or not matrix.tracks_latest(expected):
        return {}
    executor = getattr(config, "_repro_latest_executor", None)
    if executor is None:
        from harness.executors.docker.executor import DockerExecutor

        try:
            executor = config._repro_latest_executor = DockerExecutor()
        except Exception as exc:  # noqa: BLE001 - whatever stops the container from existing
            pytest.fail(f"--latest-executor docker: cannot run this cell in a container ({exc}); it tracks "
                        "the newest releases, so it does not run on the host either", pytrace=False)
    return {"executor": executor}


def _service_pool(config):
    """One pool of services per pytest process (xdist: one per worker, own ports), stopped at its end."""
    pool = getattr(config, "_repro_services", None)
    if pool is None:
        from harness.services import ServicePool

        pool = config._repro_services = ServicePool()
        config.add_cleanup(pool.close)
    return pool
