"""Search strategies over an ordered axis of points, on indices only (pure: no cells, no I/O).

A point's state is `present` (bad), `absent` (good) or `skip` (could not be tested), as with
`git bisect skip`: a skipped point never counts as good or bad. Strategies work through a
`Probe` (a memo of tested states), so they are tested against synthetic histories and run
unchanged against real releases:
- `first_transition`: binary search assuming one transition (`--first-fixed`, `--first-bad`);
- `map_history`: every transition of a possibly non-monotonic history, from a stride sample
  refined by bisection, plus the neighbours of every transition.
"""
from __future__ import annotations

from harness.verdict import judged

SKIP = "skip"  # the state of a point whose verdict is neither present nor absent (the others: the verdict)


def state_of(verdict: str) -> str:
    """Only present and absent are verdicts for bisecting; everything else cannot be judged."""
    return verdict if judged(verdict) else SKIP


class Probe:
    """Tests indices at most once, remembering states and the order they were tested in."""

    def __init__(self, n: int, test):
        self.n = n
        self._test = test
        self.states: dict[int, str] = {}
        self.order: list[int] = []

    def __call__(self, i: int) -> str:
        if i not in self.states:
            self.states[i] = self._test(i)
            self.order.append(i)
        return self.states[i]

    def untested(self, lo: int, hi: int) -> list[int]:
        """Untested indices strictly between lo and hi."""
        return [i for i in range(lo + 1, hi) if i not in self.states]

    def judged(self) -> list[int]:
        """Tested indices with a verdict (not skipped), in axis order."""
        return sorted(i for i, s in self.states.items() if s != SKIP)


def _middle(candidates: list[int], lo: int, hi: int) -> int:
    """The candidate nearest the middle of (lo, hi): after a skip, the next nearest (git bisect skip)."""
    return min(candidates, key=lambda i: (abs(2 * i - lo - hi), i))


def bisect_pair(probe: Probe, lo: int, hi: int) -> tuple[int, int]:
    """Narrow judged lo < hi with different states to two judged points with only skips between.
    Points already judged between them count (a point tested again may have changed its state)."""
    while True:
        for i in (j for j in probe.judged() if lo < j < hi):
            if probe.states[i] == probe.states[lo]:
                lo = i
            else:
                hi = i
                break
        inner = probe.untested(lo, hi)
        if not inner:
            return lo, hi
        mid = _middle(inner, lo, hi)
        state = probe(mid)
        if state == SKIP:
            continue
        if state == probe.states[lo]:
            lo = mid
        else:
            hi = mid


def _first_judged(probe: Probe, start: int, stop: int) -> int | None:
    """The first judged point walking from start towards stop with doubling steps (few tests on a skip run)."""
    sign = 1 if stop >= start else -1
    i, step = start, 1
    while (i - stop) * sign <= 0:
        if probe(i) != SKIP:
            return i
        i += sign * step
        step *= 2
    return None


def first_transition(probe: Probe, old: str, new: str) -> dict:
    """Binary search for the first point in state `new` after the last in state `old`.

    Assumes one transition. Without skips it tests at most ceil(log2 n) + 2 points: both
    ends, then halving. Returns {"transition": (a, b)} or {"problem": text}.
    """
    lo = _first_judged(probe, 0, probe.n - 1)
    hi = _first_judged(probe, probe.n - 1, lo) if lo is not None else None
    if lo is None or hi is None or hi == lo:
        return {"problem": "fewer than two points in the range could be tested"}
    if probe.states[lo] != old or probe.states[hi] != new:
        return {"problem": f"the oldest testable point is {probe.states[lo]} and the newest {probe.states[hi]}; "
                           f"this search needs {old} then {new} (use --map for the whole history)"}
    return {"transition": bisect_pair(probe, lo, hi)}


def transitions(probe: Probe) -> list[tuple[int, int]]:
    """Consecutive judged points whose states differ."""
    judged = probe.judged()
    return [(a, b) for a, b in zip(judged, judged[1:]) if probe.states[a] != probe.states[b]]


def _edges(probe: Probe) -> list[tuple[int, int]]:
    """Gaps between a skipped run at either end and the first/last judged point (where testability starts)."""
    judged = probe.judged()
    if not judged:
        return []
    skipped = [i for i, s in probe.states.items() if s == SKIP]
    before = [i for i in skipped if i < judged[0]]
    after = [i for i in skipped if i > judged[-1]]
    gaps = []
    if before:
        gaps.append((max(before), judged[0]))
    if after:
        gaps.append((judged[-1], min(after)))
    return gaps


def _refine(probe: Probe) -> None:
    """Bisect every open gap (differing judged neighbours, or a skip edge) until none is left."""
    while True:
        gaps = [(a, b) for a, b in transitions(probe) + _edges(probe) if probe.untested(a, b)]
        if not gaps:
            return
        for a, b in gaps:
            inner = probe.untested(a, b)
            if inner:  # an earlier gap of this round may have tested it
                probe(_middle(inner, a, b))


def samples(n: int, stride: int) -> list[int]:
    return sorted(set(range(0, n, stride)) | {n - 1}) if n else []


def map_history(probe: Probe, stride: int) -> None:
    """Test a stride sample, bisect every gap whose ends differ, test both neighbours of each transition.

    A run of fewer than `stride` points with another verdict, lying between two sampled
    points that agree, is missed unless a neighbour check lands on it: stride 1 tests all.
    """
    for i in samples(probe.n, stride):
        probe(i)
    checked: set = set()
    while True:
        _refine(probe)
        fresh = [t for t in transitions(probe) if t not in checked]
        if not fresh:
            return
        for a, b in fresh:
            checked.add((a, b))
            for i in (a - 1, b + 1):
                if 0 <= i < probe.n:
                    probe(i)
