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
