"""Clipping text for one-line messages: the telling end of a log, an exception on one line."""
from __future__ import annotations


def last_lines(text: str, lines: int = 3, limit: int = 500) -> str:
    """The last non-empty `lines` lines of `text`, joined with ' | ', at most `limit` characters."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[:limit] or "(no output)"


def one_line(value, limit: int = 300) -> str:
    """An exception or a text on one line (whitespace collapsed), at most `limit` characters."""
    text = " ".join(str(value).split())[:limit]
    return text or (type(value).__name__ if isinstance(value, BaseException) else "(empty)")
