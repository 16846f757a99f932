"""Confidence intervals for shares (errors found per task), small counts included."""

from __future__ import annotations

import math

#: Two-sided 95 %.
Z_95 = 1.959964


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson score interval for `successes` out of `n` (None for n = 0).

    Chosen over the normal approximation because it stays inside [0, 1] and is honest at the
    small counts a control arm has early on (Wilson 1927; Brown, Cai & DasGupta 2001).
    """
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be in [0, {n}], got {successes}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
