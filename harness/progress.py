"""Progress on stderr: which cell, attempt k of n, elapsed. One line per event when not a terminal.

On a terminal the last line is live: what is going on now (the env being prepared, attempt k of n)
with its elapsed time, redrawn twice a second by a ticker thread, so a long attempt (a hang
waiting for its deadline, a slow env build) is seen to be running. Events print above it.
"""
from __future__ import annotations

import os
import sys
import threading
import time

from harness import stats

TICK = 0.5  # seconds between redraws of the live line


class Progress:
    def __init__(self, stream=None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self.cell_started = self.started
        self.tty = self.stream.isatty() and os.environ.get("TERM") != "dumb"
        self._lock = threading.Lock()   # the ticker and the caller write one line at a time
        self._live = None               # (text, since): the live line's activity and its start
        self._drawn = False             # a live line is on the screen (only that may be erased)
        self._ticker = None

    def _write(self, text: str) -> None:
        """One line, above the live line (which is drawn again under it)."""
        if not self.enabled:
            return
        with self._lock:
            self._erase()
            self.stream.write(text + "\n")
            self.stream.flush()
            if self.tty and self._live:
                self._draw_live()

    def _erase(self) -> None:
        """Take the live line off the screen; what others wrote (pytest's dots) stays."""
        if self._drawn:
            self.stream.write("\r\033[K")
            self._drawn = False

    def _draw_live(self) -> None:
        text, since = self._live
        now = time.monotonic()
        self._erase()
        self.stream.write(f"{text}  {now - since:.1f}s  ({now - self.cell_started:.0f}s in cell, "
                          f"{now - self.started:.0f}s total)")
        self.stream.flush()
        self._drawn = True

    def _set_live(self, text: str | None) -> None:
        """Make `text` the live line (None: none), started now; only on a terminal."""
        if not (self.enabled and self.tty):
            return
        with self._lock:
            self._live = (text, time.monotonic()) if text else None
            if self._live:
                self._draw_live()
            else:
                self._erase()
                self.stream.flush()
        if text and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick, name="repro-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while True:
            time.sleep(TICK)
            with self._lock:
                if self._live:
                    self._draw_live()

    def stop(self) -> None:
        """End the live line (a cell ended, or was interrupted): nothing is redrawn after this."""
        self._set_live(None)

    def cell(self, index: int, total: int, label: str) -> None:
        self.cell_started = time.monotonic()
        self._set_live(None)
        self._write(f"[{index}/{total}] {label}")
        self._set_live("  preparing the interpreter and env")

    def note(self, text: str) -> None:
        self._write(f"  {text}")

    def attempt(self, variant: str, k: int, n: int) -> None:
        if self.tty:
            self._set_live(f"  {variant}: attempt {k} of {n}")
            return
        elapsed = time.monotonic() - self.cell_started
        self._write(f"  {variant}: attempt {k} of {n}  ({elapsed:.1f}s in cell, "
                    f"{time.monotonic() - self.started:.0f}s total)")

    def outcome(self, attempt) -> None:
        self._set_live(None)
        self._write(f"  -> {attempt.outcome} in {attempt.duration:.1f}s: {attempt.reason[:160]}")

    def verdict(self, record) -> None:
        """The cell's verdict line (`record`: a harness.record.CellRecord)."""
        self._set_live(None)
        extra = f", confidence {record.confidence:.4f}" if record.confidence else ""
        if record.excludes_rate is not None:
            extra += f", {stats.exclusion_words(record.excludes_rate)}"
        self._write(f"  = {record.verdict.upper()} ({record.attempts} attempts{extra}; "
                    f"{record.seconds:.1f}s): {record.reason[:200]}")
