"""Text for one-line messages (the telling end of a log, an exception on one line, unknown keys,
a duration), record text kept inert inside Markdown, and text made a file name."""
from __future__ import annotations

import difflib
import re


def last_lines(text: str, lines: int = 3, limit: int = 500) -> str:
    """The last non-empty `lines` lines of `text`, joined with ' | ', at most `limit` characters."""
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])[:limit] or "(no output)"


def one_line(value, limit: int = 300) -> str:
    """An exception or a text on one line (whitespace collapsed), at most `limit` characters."""
    text = " ".join(str(value).split())[:limit]
    return text or (type(value).__name__ if isinstance(value, BaseException) else "(empty)")


def duration(seconds: float) -> str:
    """A wall time for a person: 42.0s, or 3m07.5s from a minute on."""
    return f"{int(seconds // 60)}m{seconds % 60:04.1f}s" if seconds >= 60 else f"{seconds:.1f}s"


def did_you_mean(given: str, known) -> str:
    """"; did you mean 'x'?" for the closest of `known` to a mistyped `given`, or ""."""
    close = difflib.get_close_matches(given, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_keys(given, known) -> str | None:
    """What is wrong with the keys of `given` that are not in `known`, with the close known ones
    (a typo such as 'servics' is the usual cause); None when every key is known."""
    unknown = sorted(set(given) - set(known))
    if not unknown:
        return None
    close = [match for key in unknown for match in difflib.get_close_matches(key, list(known), n=1)]
    hint = f"; did you mean {', '.join(repr(k) for k in close)}?" if close else ""
    return f"unknown key(s) {', '.join(unknown)}{hint}"


# ---------------------------------------------------------------- record text inside Markdown (issues, README)
# Record fields are untrusted (the code under test writes reasons and notes): in Markdown they must stay text.

def fenced(text: str, info: str = "") -> str:
    """`text` in a code fence longer than any backtick run in it, so no line of it can close the fence."""
    longest = max((len(run) for run in _backtick_runs(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _backtick_runs(text: str) -> list[str]:
    import re

    return re.findall(r"`+", text)


def inline(value, limit: int = 300) -> str:
    """A record field on one line of Markdown prose or a table cell: no `|` cell split, no HTML or
    comment (`<!-- ... -->`), no @mention that notifies, no image, link or emphasis markup."""
    text = one_line(value, limit)
    for char in "\\`*_[]()<>|!#~":
        text = text.replace(char, "\\" + char)
    return text.replace("@", "@\u200b")  # a zero-width space after @: shown as written, notifies nobody


def safe_name(text: str) -> str:
    """`text` as one file name: every run of other characters than letters, digits and `._=-` is one `_`."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_")
