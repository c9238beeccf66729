"""Differential privacy for released sums: OpenDP noise and a per-researcher budget.

The unit of privacy is one image: a request declares ``max_per_image`` (the most
crystals one image may add to a count or to the histogram), the datasite clamps each
image's contribution to it, so one image changes the sum vector by at most
:func:`l1_sensitivity` (or :func:`l2_sensitivity`). Noise comes from OpenDP's
measurements, which also state the privacy loss:

- a factory's own answer: the Laplace mechanism, ``ε = Δ₁ / scale`` (pure DP);
- a pooled answer over ``n`` factories with secure aggregation: each factory adds a
  Gaussian share of variance ``σ² / n``, so only the pooled sum carries the full
  ``σ`` (distributed DP; no single factory's value is ever seen in the clear). ``σ``
  is the smallest that gives the declared ``(ε, δ)`` through OpenDP's zCDP-to-(ε, δ)
  conversion.

Spending is recorded in the factory's audit log (kind ``budget``); a request whose
``ε`` would take a researcher past the factory's budget is refused before it runs.

Examples
--------
>>> noised, spent = laplace_release([100.0, 5.0], epsilon=1.0, sensitivity=2.0)
>>> spent
1.0
>>> round(gaussian_sigma(epsilon=1.0, delta=1e-6, sensitivity=1.0), 2) > 0
True
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.privacy import audit


def _opendp():
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def l1_sensitivity(n_counts: int, max_per_image: float) -> float:
    """How much one image can change the sum vector (L1): 1 image, ``n_counts`` sums,
    and a histogram that together hold at most ``max_per_image`` each."""
    return 1.0 + (n_counts + 1) * max_per_image


def l2_sensitivity(n_counts: int, max_per_image: float) -> float:
    """The same bound in L2."""
    return math.sqrt(1.0 + (n_counts + 1) * max_per_image**2)


def clamp_image_row(row: Sequence[float], n_counts: int, max_per_image: float) -> list[float]:
    """One image's vector clamped: ``images`` to 1, each count and the histogram's total
    to ``max_per_image`` (the histogram scaled down when it holds more).

    Examples
    --------
    >>> clamp_image_row([1, 900, 20, 600, 600], n_counts=2, max_per_image=500)
    [1.0, 500.0, 20.0, 250.0, 250.0]
    """
    values = [float(v) for v in row]
    head = [min(max(values[0], 0.0), 1.0)]
    head += [min(max(v, 0.0), float(max_per_image)) for v in values[1 : 1 + n_counts]]
    histogram = [max(v, 0.0) for v in values[1 + n_counts :]]
    total = sum(histogram)
    if total > max_per_image:
        histogram = [v * max_per_image / total for v in histogram]
    return head + histogram


def laplace_release(
    values: Sequence[float], *, epsilon: float, sensitivity: float
) -> tuple[list[float], float]:
    """Laplace noise for ``ε``-DP on `values` with L1 `sensitivity`; ``(noised, ε spent)``."""
    dp = _opendp()
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)
    measurement = dp.m.make_laplace(*space, scale=sensitivity / epsilon)
    return list(measurement([float(v) for v in values])), float(measurement.map(sensitivity))


def gaussian_share(
    values: Sequence[float], *, epsilon: float, delta: float, sensitivity: float, shares: int
) -> list[float]:
    """One of `shares` Gaussian noise shares whose sum gives ``(ε, δ)``-DP on the sum."""
    dp = _opendp()
    sigma = gaussian_sigma(epsilon, delta, sensitivity) / math.sqrt(shares)
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float)
    return list(dp.m.make_gaussian(*space, scale=sigma)([float(v) for v in values]))


@functools.lru_cache(maxsize=64)
def gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """The smallest Gaussian σ (to 0.1 %) that OpenDP certifies as ``(ε, δ)``-DP."""
    dp = _opendp()
    space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l2_distance(T=float)

    def epsilon_at(sigma: float) -> float:
        curve = dp.c.make_zCDP_to_approxDP(dp.m.make_gaussian(*space, scale=sigma))
        return curve.map(sensitivity).epsilon(delta)

    low, high = 1e-6, sensitivity
    while epsilon_at(high) > epsilon:
        high *= 2.0
    while high - low > 1e-3 * high:
        middle = (low + high) / 2.0
        low, high = (middle, high) if epsilon_at(middle) > epsilon else (low, middle)
    return high


def spent(state_dir: str | Path, researcher: str) -> float:
    """Privacy loss ``ε`` a researcher has spent at this factory (from the audit log)."""
    return sum(
        float(entry["details"].get("epsilon", 0.0))
        for entry in audit.entries(state_dir, actor=researcher, kind="budget")
    )


def check_budget(state_dir: str | Path, researcher: str, epsilon: float, budget: float) -> float:
    """Remaining budget after spending `epsilon`; refuse when it would go below zero."""
    remaining = budget - spent(state_dir, researcher) - epsilon
    if remaining < -1e-9:
        raise WorkbenchError(
            f"privacy budget: {researcher} has {budget - spent(state_dir, researcher):.3g} of "
            f"ε = {budget:g} left here; this request asks for {epsilon:g}"
        )
    return remaining


def record_spend(
    state_dir: str | Path, researcher: str, request: str, epsilon: float, delta: float
) -> None:
    """Write the spend into the factory's audit log (the ledger)."""
    audit.append(
        state_dir, "budget", actor=researcher, request=request, epsilon=epsilon, delta=delta
    )
