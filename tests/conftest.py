"""Fixtures for the harness's own tests."""
import os
import signal
from pathlib import Path

import pytest

FAULT_REPROS = Path(__file__).parent / "fault_repros"


@pytest.fixture(autouse=True)
def fault_repros(monkeypatch):
    """Make the synthetic bugs discoverable next to the real ones."""
    monkeypatch.setenv("REPRO_PATH", str(FAULT_REPROS))


def skip_without_python(version: str) -> None:
    """Skip the calling test (or module fixture) with the reason when no such interpreter is here."""
    from harness import interpreters

    try:
        interpreters.find(version)
    except Exception as exc:  # noqa: BLE001 - any failure to find it is a reason to skip
        pytest.skip(f"no Python {version} here: {exc}")


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
