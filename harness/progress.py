"""Progress on stderr: which cell, attempt k of n, elapsed. One line per event when not a terminal."""
from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, stream=None, enabled: bool = True):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self.cell_started = self.started
        self.tty = self.stream.isatty()

    def _write(self, text: str, final: bool = True) -> None:
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def cell(self, index: int, total: int, label: str) -> None:
        self.cell_started = time.monotonic()
        self._write(f"[{index}/{total}] {label}")

    def note(self, text: str) -> None:
        self._write(f"  {text}")

    def attempt(self, variant: str, k: int, n: int) -> None:
        elapsed = time.monotonic() - self.cell_started
        self._write(f"  {variant}: attempt {k} of {n}  ({elapsed:.1f}s in cell, "
                    f"{time.monotonic() - self.started:.0f}s total)", final=not self.tty)

    def outcome(self, attempt) -> None:
        self._write(f"  -> {attempt.outcome} in {attempt.duration:.1f}s: {attempt.reason[:160]}", final=True)

    def verdict(self, record: dict) -> None:
        extra = f", confidence {record['confidence']:.4f}" if record.get("confidence") else ""
        self._write(f"  = {record['verdict'].upper()} ({record['attempts']} attempts{extra}; "
                    f"{record['seconds']:.1f}s): {record['reason'][:200]}")
