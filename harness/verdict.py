"""The words of a result, and how a cell's verdict follows from its attempts.

Part of the child side (harness.attempt.CHILD_CODE): the child says an attempt's outcome in
these words too, so each word is defined here and nowhere else.

An attempt's outcome: reproduced (the bug's oracle saw the bug), clean, hang (the deadline ran
out), crash (a signal), other-failure (a failure without the bug's signature), error (the child
could not run, or ran in the wrong env).
A cell's verdict: present (the bug reproduced), absent (enough clean attempts for the wanted
confidence; it also says the smallest per-attempt rate they exclude: harness.stats), hang / crash /
other-failure (the trigger failed, but not with this bug's signature), error (a control failed,
or the harness or the env broke), skipped (the cell could not run here: see the skip kinds).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from harness import stats

# Attempt outcomes; hang, crash, other-failure and error are verdicts too.
REPRODUCED, CLEAN = "reproduced", "clean"
HANG, CRASH, OTHER_FAILURE, ERROR = "hang", "crash", "other-failure", "error"
OUTCOMES = (REPRODUCED, CLEAN, HANG, CRASH, OTHER_FAILURE, ERROR)

# Cell verdicts.
PRESENT, ABSENT, SKIPPED = "present", "absent", "skipped"
VERDICTS = (PRESENT, ABSENT, HANG, CRASH, OTHER_FAILURE, ERROR, SKIPPED)

# Why a cell was skipped (the record's `skip_kind`).
NO_INTERPRETER = "no-interpreter"    # the wanted Python is not on this machine
NOT_INSTALLABLE = "not-installable"  # uv cannot make the env of these requirements: a rerun fails alike
ENV_BROKEN = "env-broken"            # the env build failed here (a damaged uv cache, an engine): may pass
NOT_APPLICABLE = "not-applicable"    # the variant's `requires` excludes the installed releases
NO_SERVICE = "no-service"            # a service the bug needs is not running
SKIP_KINDS = (NO_INTERPRETER, NOT_INSTALLABLE, ENV_BROKEN, NOT_APPLICABLE, NO_SERVICE)


def judged(verdict: str) -> bool:
    """Present and absent say whether the bug is there; every other verdict says it could not be
    judged (for bisecting: neither good nor bad)."""
    return verdict in (PRESENT, ABSENT)


def failed(outcome: str) -> bool:
    """Did the attempt fail in any way (the bug, or anything else)?"""
    return outcome != CLEAN


def shows_bug(outcome: str, failure_kind: str, stall_seen: bool) -> bool:
    """Did an attempt show the bug itself (not some other failure)?

    A deadline that ran out is the bug only for a hang bug whose repro had seen its stall begin
    (ctx.hang_evidence, `stall_seen`): a too short deadline alone proves nothing."""
    if outcome == HANG:
        return failure_kind == "hang" and stall_seen
    return outcome == REPRODUCED


@dataclass(frozen=True)
class AttemptOutcome:
    """What the verdict needs of one attempt."""
    outcome: str
    reason: str
    shows_bug: bool


@dataclass(frozen=True)
class Decision:
    """A cell's verdict, why, and the numbers it rests on."""
    verdict: str
    reason: str
    attempts: int
    reproductions: int
    rate_bound: float                # the lower bound of the trigger rate the plan and `absent` used
    confidence: float | None = None  # `absent` only: a present bug would have shown with this probability
    excludes_rate: float | None = None  # `absent` only: the smallest per-attempt rate the clean attempts exclude
    skip_kind: str | None = None     # `skipped` only: one of SKIP_KINDS


def decide(role: str, attempts: list[AttemptOutcome], rate_bound: float, wanted: float) -> Decision:
    """The verdict of a cell whose variant has this role, from its attempts. `rate_bound` is the
    lower bound of the trigger's rate, `wanted` the confidence an `absent` should reach."""
    n = len(attempts)
    hits = sum(a.shows_bug for a in attempts)

    def decision(verdict: str, reason: str, confidence: float | None = None, excludes: float | None = None) -> Decision:
        return Decision(verdict, reason, n, hits, rate_bound, confidence, excludes)

    if n == 0:  # never `absent` on no evidence: a bad budget must not pass for a clean cell
        return decision(ERROR, "no attempt ran (the attempt budget was 0): no verdict can rest on nothing")
    errors = [a for a in attempts if a.outcome == ERROR]
    if errors:
        return decision(ERROR, f"attempt failed to run: {errors[0].reason}")
    if hits:
        if role == "control":
            return decision(ERROR, f"the control reproduced the bug in {hits} of {n} attempts: the repro is not valid")
        return decision(PRESENT, f"reproduced in {hits} of {n} attempts")
    failures = [a for a in attempts if failed(a.outcome)]
    if failures:
        # The trigger failed, but not with this bug's signature: say how, never `absent`.
        worst = Counter(a.outcome for a in failures).most_common(1)[0][0]
        return decision(worst, f"{len(failures)} of {n} attempts failed without the bug's signature: "
                               f"{failures[0].reason}")
    # Two claims: against the known-bad rate, and against any rate (a partly fixed release's is lower).
    confidence, excludes = stats.confidence_of(rate_bound, n), stats.excluded_rate(n)
    reason = (f"{n} clean attempts; with trigger rate >= {rate_bound:.3f} a present bug would have shown "
              f"with probability {confidence:.4f}")
    if confidence < wanted:
        reason += f" (below the wanted {wanted}: attempts were capped)"
    reason += f"; {stats.exclusion_words(excludes)} per attempt (at {stats.EXCLUSION_LEVEL:.0%})"
    return decision(ABSENT, reason, confidence, excludes)


def skipped(kind: str, reason: str, rate_bound: float) -> Decision:
    """The verdict of a cell that could not run here, and why (one of SKIP_KINDS)."""
    if kind not in SKIP_KINDS:
        raise ValueError(f"not a skip kind: {kind!r}")
    return Decision(SKIPPED, reason, 0, 0, rate_bound, skip_kind=kind)


def broken(reason: str, rate_bound: float) -> Decision:
    """The verdict of a cell whose env or run broke on this machine (a full disk): an error, never a skip,
    so a watch whose disk is full fails instead of staying green."""
    return Decision(ERROR, reason, 0, 0, rate_bound)


# A skip that hides a cell that should have run: its release cannot be installed (vanished from the
# index) or its env build failed here. A cell with an expectation fails on it unless it expects `skipped`.
CANNOT_INSTALL = (NOT_INSTALLABLE, ENV_BROKEN)


def overruled_by_control(decision: Decision, reason: str) -> Decision:
    """A trigger's verdict when a control failed: the repro itself is in doubt."""
    return replace(decision, verdict=ERROR, reason=reason, confidence=None, excludes_rate=None)
