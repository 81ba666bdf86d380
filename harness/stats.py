"""How many clean attempts an `absent` verdict needs, and the confidence they give.

If one attempt on a buggy build reproduces with probability p, n clean attempts in a
row happen on a buggy build with probability (1-p)^n; so n >= ln(alpha)/ln(1-p) clean
attempts give confidence 1-alpha that the bug is absent. p is the lower bound of the
bug's measured trigger rate, not the point estimate.
"""
from __future__ import annotations

import math


def attempts_needed(p: float, confidence: float) -> int:
    if p >= 1.0:
        return 1
    return max(1, math.ceil(math.log(1 - confidence) / math.log(1 - p)))


def confidence_of(p: float, clean_attempts: int) -> float:
    return 1 - (1 - p) ** clean_attempts
