"""How many clean attempts an `absent` verdict needs, and what they claim.

If one attempt on a buggy build reproduces with probability p, n clean attempts in a
row happen on a buggy build with probability (1-p)^n. Two claims follow from n clean attempts:

- the confidence against the known-bad rate: 1 - (1-p)^n, with p the lower bound of the bug's
  rate measured on a known-bad release (`confidence_of`); n >= ln(alpha)/ln(1-p) attempts give
  confidence 1-alpha (`attempts_needed`);
- the smallest per-attempt rate they exclude at 95%, whatever release it is: a rate r >=
  1 - 0.05^(1/n) would have shown in n attempts with probability >= 95% (`excluded_rate`: 2 clean
  exclude >= 78%, 29 clean >= 10%). A release where the bug is only partly fixed reproduces at a
  lower rate than the known-bad one, so only this bound says whether it could pass as fixed;
  `attempts_to_exclude` plans for a rate to exclude.

LOW_RATE is the rate the history tier and the bisect points next to a transition exclude by
default: a partly fixed release (lancedb 0.32.0's fork trigger hung in 1 of 10) must not pass as fixed.

A measured trigger rate enters as its lower confidence bound (`rate_lower_bound`), not its point
estimate. The child side imports this module too (harness.attempt.CHILD_CODE): stdlib only.
"""
from __future__ import annotations

import math

EXCLUSION_LEVEL = 0.95  # the level every "excludes >= r" is stated at
LOW_RATE = 0.10          # what the history tier and bisect transitions exclude by default


def attempts_needed(p: float, confidence: float) -> int:
    if p >= 1.0:
        return 1
    return max(1, math.ceil(math.log(1 - confidence) / math.log(1 - p)))


def confidence_of(p: float, clean_attempts: int) -> float:
    return 1 - (1 - p) ** clean_attempts


def excluded_rate(clean_attempts: int, level: float = EXCLUSION_LEVEL) -> float:
    """The smallest per-attempt rate that `clean_attempts` clean attempts exclude at `level`
    (1.0 for none: no attempt excludes nothing below certainty)."""
    if clean_attempts < 1:
        return 1.0
    return 1 - (1 - level) ** (1 / clean_attempts)


def attempts_to_exclude(rate: float, level: float = EXCLUSION_LEVEL) -> int:
    """The clean attempts that exclude a per-attempt rate >= `rate` at `level`: 29 for 10%."""
    if not 0 < rate < 1:
        raise ValueError(f"a rate to exclude is between 0 and 1 (exclusive), not {rate!r}")
    # the smallest n with 1 - (1-level)^(1/n) <= rate, i.e. (1-rate)^n <= 1-level; the tolerance keeps
    # a rate computed by excluded_rate(n) itself from rounding up to n+1
    return max(1, math.ceil(math.log(1 - level) / math.log(1 - rate) - 1e-9))


def percent(rate: float) -> str:
    """A bound as the words say it, rounded up (a rounded-up bound is still excluded):
    0.776 -> "78%", 0.0981 -> "10%", 0.0049 -> "0.5%"."""
    shown = rate * 100
    if shown >= 1 - 1e-9:
        return f"{math.ceil(shown - 1e-9)}%"
    return f"{math.ceil(shown * 10 - 1e-9) / 10:g}%"


def exclusion_words(rate: float) -> str:
    """What clean attempts exclude, in the words every output uses: "excludes >= 78%"."""
    return f"excludes >= {percent(rate)}"


def rate_lower_bound(reproduced: int, attempts: int, confidence: float = 0.95) -> float:
    """One-sided lower confidence bound of a per-attempt rate measured as `reproduced` of `attempts`.

    Exact (Clopper-Pearson) for the all-reproduced case k == n, which is what the repros are
    tuned to; otherwise a Wilson bound.
    """
    k, n = reproduced, attempts
    alpha = 1 - confidence
    if k == n:
        return alpha ** (1 / n)
    z = 1.6448536269514722 if abs(confidence - 0.95) < 1e-9 else _z(confidence)
    p = k / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(1e-6, (centre - margin) / (1 + z * z / n))


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(confidence)
