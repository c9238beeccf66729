"""Control limits for batch values: an individuals chart with ±3σ limits.

Each batch contributes one value (its mean count, its d50). The centre line is their
mean; σ is estimated from the average moving range between consecutive batches
(MR̄ / 1.128, the usual individuals-chart estimate, which a slow drift does not
inflate the way the plain standard deviation does). A batch outside centre ± 3σ is
out of control.

Examples
--------
>>> limits = control_limits([100, 102, 98, 101, 99, 100, 140])
>>> round(limits.center, 1), limits.out_of_control
(105.7, [6])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

D2 = 1.128  # expected range of two normal samples, in σ


@dataclass(frozen=True)
class ControlLimits:
    """Centre line, σ estimate and ±3σ limits of a series, and who falls outside.

    Attributes
    ----------
    center, sigma, lower, upper : float
        NaN when there are fewer than two values.
    out_of_control : list of int
        Indices of values outside [lower, upper].
    """

    center: float
    sigma: float
    lower: float
    upper: float
    out_of_control: list[int] = field(default_factory=list)


def control_limits(values) -> ControlLimits:
    """Individuals-chart limits of `values` (one per batch, oldest first).

    Examples
    --------
    >>> control_limits([5.0]).upper
    nan
    """
    series = np.asarray(values, dtype=float)
    if series.size < 2:
        center = float(series.mean()) if series.size else float("nan")
        return ControlLimits(center, float("nan"), float("nan"), float("nan"))
    center = float(series.mean())
    sigma = float(np.abs(np.diff(series)).mean() / D2)
    lower, upper = center - 3 * sigma, center + 3 * sigma
    outside = np.flatnonzero((series < lower) | (series > upper)).tolist()
    return ControlLimits(center, sigma, lower, upper, outside)
