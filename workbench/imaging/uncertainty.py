"""How far to trust one image's count: an interval, and a flag saying what to check.

A counting method is most often wrong about how many crystals an agglomerate holds.
Its own estimate (faces and dents, or heat peaks) is compared with an independent
one from area alone: an agglomerate holds about as many crystals as its area holds
typical single crystals of the same image (the trimmed mean of their areas; on
synthetic frames this sums to the true number within 1 %, though single frames
scatter more than the method's own estimate). Other estimates, such as a second
counting method's, widen the interval too. The interval is their range, widened by a
margin for the crystals inside agglomerates (where every estimate errs); a frame is
flagged when the estimates disagree, or when agglomerates hold most of its crystals.

Examples
--------
>>> import numpy as np
>>> members = np.array([1] * 10 + [3])
>>> areas = np.array([100.0] * 10 + [500.0])
>>> u = count_uncertainty(members, areas)
>>> u.low, u.high, u.flag
(12, 16, None)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

MIN_SINGLES = 5  # fewer single crystals give no typical area to judge agglomerates by
TRIM_PERCENTILES = (10, 90)  # typical single area: mean of the singles between these
RELATIVE_WIDTH = 0.05  # an interval wider than this share of the count is worth a look
MIN_WIDTH = 3  # ... and wider than this many crystals (a few crystals in a sparse frame)
DOMINANT_AGGLOMERATION = 0.7  # share of crystals inside agglomerates worth a look
# Two methods disagree when their counts differ by more than RELATIVE_WIDTH and by at
# least this many crystals: fewer than MIN_WIDTH, since on sparse frames unlike its
# training the model is often two crystals off (``auto`` then keeps the classical count).
METHODS_MIN_GAP = 2
# Margin on both sides of the interval, as a share of the crystals inside agglomerates
# (at least one crystal when there are any): the estimates err together there.
AGGLOMERATE_MARGIN = 0.05

AMBIGUOUS_AGGLOMERATES = "agglomerate sizes ambiguous"
DOMINANT_AGGLOMERATES = "agglomerates dominate"
METHODS_DISAGREE = "methods disagree"


@dataclass(frozen=True)
class CountUncertainty:
    """The range a frame's count is likely in, and why to check it by eye (or None).

    Attributes
    ----------
    low, high : int
        Smallest and largest of the count's estimates, widened by a margin for the
        crystals inside agglomerates.
    flag : str or None
        None when the estimates agree; else the reason an operator should look.
    estimates : mapping of str to int
        Each estimate by name (``method``, ``area``, other methods).
    """

    low: int
    high: int
    flag: str | None
    estimates: Mapping[str, int]

    def to_json(self) -> dict:
        """``{"low", "high", "flag"}`` for the ``workbench count --json`` contract."""
        return {"low": int(self.low), "high": int(self.high), "flag": self.flag}


def members_by_area(members: np.ndarray, areas_px: np.ndarray) -> np.ndarray | None:
    """Crystals per particle judged by area, or None without enough single crystals.

    Single crystals keep 1; an agglomerate holds ``round(area / typical)`` crystals,
    at least 2, where typical is the trimmed mean area of the image's single crystals.

    Examples
    --------
    >>> members_by_area(np.array([1, 1, 1, 1, 1, 2]), np.array([9, 10, 10, 10, 11, 42.0]))
    array([1, 1, 1, 1, 1, 4])
    """
    members = np.asarray(members, int)
    areas = np.asarray(areas_px, float)
    singles = areas[members == 1]
    if singles.size < MIN_SINGLES:
        return None
    low, high = np.percentile(singles, TRIM_PERCENTILES)
    typical = float(singles[(singles >= low) & (singles <= high)].mean())
    by_area = np.maximum(2, np.rint(areas / typical)).astype(int)
    return np.where(members > 1, by_area, 1)


def count_uncertainty(
    members: np.ndarray, areas_px: np.ndarray, other_counts: Mapping[str, int] | None = None
) -> CountUncertainty:
    """Interval and flag for a count of ``members.sum()`` crystals.

    Parameters
    ----------
    members : ndarray of int, shape (N,)
        Crystals per particle, as the method estimated them.
    areas_px : ndarray of float, shape (N,)
        Particle areas.
    other_counts : mapping of str to int, optional
        Other estimates of the same frame's count (e.g. another method's), by name.

    Returns
    -------
    CountUncertainty
    """
    members = np.asarray(members, int)
    count = int(members.sum())
    estimates = {"method": count}
    by_area = members_by_area(members, areas_px)
    if by_area is not None:
        estimates["area"] = int(by_area.sum())
    estimates.update({name: int(value) for name, value in (other_counts or {}).items()})
    agglomerated = int(members[members > 1].sum())
    margin = int(np.ceil(AGGLOMERATE_MARGIN * agglomerated))
    low, high = min(estimates.values()) - margin, max(estimates.values()) + margin
    return CountUncertainty(max(low, 0), high, _flag(estimates, members), estimates)


def _flag(estimates: Mapping[str, int], members: np.ndarray) -> str | None:
    count = estimates["method"]
    others = {name: value for name, value in estimates.items() if name not in ("method", "area")}
    if any(_far(value, count, minimum=METHODS_MIN_GAP) for value in others.values()):
        return METHODS_DISAGREE
    if "area" in estimates and _far(estimates["area"], count):
        return AMBIGUOUS_AGGLOMERATES
    if count and members[members > 1].sum() > DOMINANT_AGGLOMERATION * count:
        return DOMINANT_AGGLOMERATES
    return None


def _far(value: int, count: int, minimum: int = MIN_WIDTH) -> bool:
    gap = abs(value - count)
    return gap >= minimum and gap > RELATIVE_WIDTH * max(count, 1)
