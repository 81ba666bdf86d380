"""run_cells: the one way every command and pytest run cells (real child processes, synthetic bugs)."""
from __future__ import annotations

from contextlib import contextmanager

import pytest

from harness import services
from harness.cell import Cell, Options
from harness.runner import Planned, run_cells
from harness.services import ServicePool


def test_each_record_is_kept_before_the_next_cell_starts_and_carries_its_expectation():
    events = []

    class Progress:
        def cell(self, k, n, label):
            events.append(("cell", k, n, label))

        def verdict(self, record):
            events.append(("verdict", record["variant"]))

        def attempt(self, *args):
            pass

        def outcome(self, attempt):
            pass

        def note(self, text):
            pass

    cells = [Planned(Cell("synthetic-faults", "trigger", "current"), expect=("present",), label="first"),
             Cell("synthetic-faults", "control", "current")]
    records = run_cells(cells, Options(attempts=1, control_attempts=0), progress=Progress(),
                        keep=lambda record: events.append(("keep", record["variant"])))
    assert [r["verdict"] for r in records] == ["present", "absent"]
    assert records[0]["expected"] == ["present"] and "expected" not in records[1]
    assert [e[0] for e in events] == ["cell", "verdict", "keep", "cell", "verdict", "keep"]
    # a control's own cell runs first in its group (its attempts are then reused by the trigger)
    assert events[0][:3] == ("cell", 1, 2) and events[3] == ("cell", 2, 2, "first")


def test_a_pool_starts_each_service_once_for_many_calls_and_stops_it_at_the_end(monkeypatch):
    starts, stops = [], []

    @contextmanager
    def counting():
        starts.append(1)
        try:
            yield {"FAKE_SERVICE_URL": "http://127.0.0.1:9"}
        finally:
            stops.append(1)

    monkeypatch.setitem(services.STARTERS, "fake", counting)
    with ServicePool() as pool:
        first = pool.env_for(["fake"])
        second = pool.env_for(["fake"])
        assert pool.env_for([]) == second
        assert first["REPRO_SERVICES"] == "fake" and starts == [1] and stops == []
    assert stops == [1]


def test_an_unknown_service_is_a_usage_error_and_nothing_stays_started():
    from harness.errors import UsageError

    with ServicePool() as pool, pytest.raises(UsageError, match="unknown service"):
        pool.env_for(["no-such-service"])
