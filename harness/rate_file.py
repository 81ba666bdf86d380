"""Write a measured trigger rate into a repro file in place: `repro run ... --measure --write`.

Only the `trigger_rate` dict literal is replaced (or, for a variant without one, inserted as the
first key of the variant's dict); every other byte of the file (comments, layout, order) stays.
The rate keeps the command that measured it:

    "trigger_rate": {"reproduced": 19, "attempts": 20, "cell": "py3.11.7 mylib==1.2.0",
                     "command": "repro run mylib-race --with mylib==1.2.0 --attempts 20 --measure --write"},

Where it goes (the bug's rate is its weakest trigger's, harness/registry.py):
- a variant that declares its own `trigger_rate` gets the new one there;
- else the bug's `trigger_rate` is replaced, unless other triggers inherit it and the new rate is
  the stronger one: then the variant gets a rate of its own, and theirs is not overstated;
- a variant's own rate weaker than the bug's also becomes the bug's.

The file must hold `BUG = {...}` as a literal; the rewritten file is loaded again, and put back
(UsageError) if it no longer loads.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

from harness import stats
from harness.errors import UsageError
from harness.registry import Bug, load_bug


def write_measured(bug: Bug, variant: str, rate: dict) -> list[str]:
    """Write `rate` ({"reproduced", "attempts", "cell", "command"}) for the trigger `variant` of `bug`;
    the lines that say what was written where."""
    if not 0 < rate["reproduced"] <= rate["attempts"]:
        raise UsageError(f"--write: {rate['reproduced']} of {rate['attempts']} reproduced: a rate needs at least "
                         f"one reproduction; nothing written to {bug.path}")
    own = bug.variants[variant].trigger_rate is not None
    inheriting = [v for v in bug.variants.values() if v.role == "trigger" and v.name != variant and not v.trigger_rate]
    stronger = _bound(rate) > _bound(bug.trigger_rate)
    targets = [variant] if own or (inheriting and stronger) else [None]
    if targets == [variant] and _bound(rate) < _bound(bug.trigger_rate):
        targets.append(None)
    original = bug.path.read_bytes()
    text = original
    for target in targets:
        text = _replaced(text, bug.path, target, rate)
    bug.path.write_bytes(text)
    try:
        load_bug(bug.path)
    except Exception as exc:  # noqa: BLE001 - whatever broke it, the user's file comes back
        bug.path.write_bytes(original)
        raise UsageError(f"--write: the rewritten {bug.path} did not load ({exc}); it is left as it was") from None
    return [f"wrote trigger_rate {rate['reproduced']} of {rate['attempts']} into {bug.path} "
            f"({'variant ' + repr(t) if t else 'the bug'})" for t in targets]


def _bound(rate: dict) -> float:
    return stats.rate_lower_bound(rate["reproduced"], rate["attempts"])


def _replaced(text: bytes, path: Path, variant: str | None, rate: dict) -> bytes:
    """`text` with the trigger_rate of `variant` (None: the bug's) set to `rate`."""
    target = _bug_dict(text, path)
    if variant is not None:
        target = _dict_value(_dict_value(target, "variants", path), variant, path)
    starts = _line_starts(text)
    existing = next((v for k, v in zip(target.keys, target.values) if _is_key(k, "trigger_rate")), None)
    if existing is not None:
        begin, end = _offset(starts, existing.lineno, existing.col_offset), \
            _offset(starts, existing.end_lineno, existing.end_col_offset)
        return text[:begin] + _literal(rate, existing.col_offset).encode() + text[end:]
    after_brace = _offset(starts, target.lineno, target.col_offset) + 1
    key = '"trigger_rate": '
    return (text[:after_brace] + (key + _literal(rate, target.col_offset + 1 + len(key)) + ", ").encode()
            + text[after_brace:])


def _literal(rate: dict, column: int) -> str:
    """The rate as a dict literal, `command` on a line of its own aligned under the first key."""
    head = {k: v for k, v in rate.items() if k != "command"}
    text = json.dumps(head, ensure_ascii=False)
    if "command" not in rate:
        return text
    return f'{text[:-1]},\n{" " * (column + 1)}"command": {json.dumps(rate["command"], ensure_ascii=False)}}}'


def _bug_dict(text: bytes, path: Path) -> ast.Dict:
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "BUG" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            return node.value
    raise UsageError(f"--write: {path} has no `BUG = {{...}}` dict literal to write the rate into")


def _dict_value(node: ast.Dict, key: str, path: Path) -> ast.Dict:
    value = next((v for k, v in zip(node.keys, node.values) if _is_key(k, key)), None)
    if not isinstance(value, ast.Dict):
        raise UsageError(f"--write: {path}: {key!r} is not a dict literal in the file")
    return value


def _is_key(node, key: str) -> bool:
    return isinstance(node, ast.Constant) and node.value == key


def _line_starts(text: bytes) -> list[int]:
    starts, at = [0], 0
    for line in text.splitlines(keepends=True):
        at += len(line)
        starts.append(at)
    return starts


def _offset(starts: list[int], lineno: int, col: int) -> int:
    """The byte offset of an ast position (1-based line, UTF-8 byte column)."""
    return starts[lineno - 1] + col
