"""Fixtures for the harness's own tests, and the fault table (`--fault-table`).

    python -m pytest tests/test_trust.py tests/test_attempt_faults.py tests/test_setup_deadline.py \
        -p no:cacheprovider -p no:xdist --fault-table

(docs/reliability.md gives the whole list of files the table is made from)

runs every fault-injection test and ends with a Markdown table per class of fault: faults
tried, and of those how many lost a result, leaked a process (found by ancestry), hung the
harness, or gave a wrong verdict or message. It is the README's reliability table.
"""
import contextlib
import os
import signal
import subprocess
import time
from collections import defaultdict
from pathlib import Path

import pytest

FAULT_REPROS = Path(__file__).parent / "fault_repros"

# Started in the background (`nohup pytest &`), the tests run with SIGINT ignored, and every
# process they start would inherit that (their Ctrl-C tests would fail): a handler here is
# reset to the default in each process the tests start.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def fault_repros(monkeypatch):
    """Make the synthetic bugs discoverable next to the real ones."""
    monkeypatch.setenv("REPRO_PATH", str(FAULT_REPROS))


def skip_without_python(version: str) -> None:
    """Skip the calling test (or module fixture) with the reason when no such interpreter is here."""
    from harness.envs import interpreters

    try:
        interpreters.find(version)
    except Exception as exc:  # noqa: BLE001 - any failure to find it is a reason to skip
        pytest.skip(f"no Python {version} here: {exc}")


@contextlib.contextmanager
def small_tmpfs(mount: Path, size: str):
    """A real filesystem of `size` at `mount` (a new folder) for the test's duration; skips where no mount."""
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def alive(pid: int) -> bool:
    """True if pid is a live (non-zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def sessions_alive(sid: int) -> list:
    from harness.procs import session_members

    return session_members(sid)


@pytest.fixture
def no_process_survives():
    """Whatever the test started, nothing of it runs afterwards (ancestry from this process)."""
    from harness import guardian, procs

    before = set(procs.descendants([os.getpid()]))
    yield
    keep = before | {guardian.start()}
    deadline = time.monotonic() + 10
    while True:
        table = procs.process_table()
        left = [p for p in procs.descendants([os.getpid()], table) if p not in keep and table[p][0] != "Z"]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == [], f"processes left running: {[_cmdline(p) for p in left]}"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120]
    except OSError:
        return f"{pid} (gone)"


# ------------------------------------------------------------------ the fault table

FAULT_COLUMNS = ("results lost", "processes leaked", "harness hangs", "wrong verdicts")


def pytest_addoption(parser):
    parser.addoption("--fault-table", action="store_true",
                     help="end with the reliability table of the fault-injection tests (marked `fault`)")


def pytest_configure(config):
    config.addinivalue_line("markers", "fault(kind): a fault-injection test of this class of attack")
    config._fault_rows = defaultdict(lambda: {"tried": set(), **{c: set() for c in FAULT_COLUMNS}})


def pytest_collection_modifyitems(items):
    """Every fault-injection test also checks that no process it started is left."""
    for item in items:
        if item.get_closest_marker("fault") and "no_process_survives" not in item.fixturenames:
            item.fixturenames.append("no_process_survives")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    marker = item.get_closest_marker("fault")
    if marker is None or report.skipped:
        return
    row = item.config._fault_rows[marker.args[0]]
    row["tried"].add(item.nodeid)
    if report.failed:
        row[_failure_column(item, report)].add(item.nodeid)


def _failure_column(item, report) -> str:
    text = str(report.longrepr)
    if report.when == "teardown" or "processes left running" in text or "survived" in text:
        return "processes leaked"
    if "the harness is stuck" in text or "Timeout" in text:
        return "harness hangs"
    if item.get_closest_marker("fault").kwargs.get("loses") == "results":
        return "results lost"
    return "wrong verdicts"


def pytest_terminal_summary(terminalreporter, config):
    if not config.getoption("--fault-table"):
        return
    rows = config._fault_rows
    total = {c: sum(len(r[c]) for r in rows.values()) for c in ("tried", *FAULT_COLUMNS)}
    lines = ["| class of fault | faults tried | " + " | ".join(FAULT_COLUMNS) + " |",
             "|---|---:|" + "---:|" * len(FAULT_COLUMNS)]
    for kind in sorted(rows):
        lines.append(f"| {kind} | {len(rows[kind]['tried'])} | "
                     + " | ".join(str(len(rows[kind][c])) for c in FAULT_COLUMNS) + " |")
    lines.append(f"| **all** | **{total['tried']}** | " + " | ".join(f"**{total[c]}**" for c in FAULT_COLUMNS) + " |")
    terminalreporter.write_sep("=", "fault table")
    terminalreporter.write_line("\n".join(lines))
