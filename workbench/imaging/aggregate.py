"""Aggregates of many counted images that pool correctly across factories.

A :class:`CrystalAggregate` holds sums only (images, primary crystals, crystals in
agglomerates, particles, agglomerates, imperfections removed and the crystal size
histogram on fixed bin edges), so the aggregate of two image sets is the sum of
their aggregates (``a + b``), whichever factory counted them. Means, the
agglomeration percentage and d10/d50/d90 are derived from the sums (the percentiles
by linear interpolation inside the histogram's bins, which is what a pooled answer
can know). :func:`primary_diameters` is the one place that turns a report's objects
into primary crystals (a crystal inside an agglomerate counts once).

Examples
--------
>>> bins = (0,) * 20
>>> a = CrystalAggregate(images=2, crystals=40, agglomerated=10, particles=35, agglomerates=5,
...                      artifacts_removed=1, csd_counts=bins)
>>> b = CrystalAggregate(images=1, crystals=20, agglomerated=5, particles=17, agglomerates=2,
...                      artifacts_removed=0, csd_counts=bins)
>>> pooled = a + b
>>> pooled.images, pooled.mean_count, pooled.agglomeration_pct
(3, 20.0, 25.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from workbench.imaging.pipeline import CrystalReport

# 10 µm bins from 0 to 200 µm; larger crystals land in the last bin.
CSD_EDGES_UM: tuple[float, ...] = tuple(float(edge) for edge in range(0, 210, 10))
_COUNT_FIELDS = (
    "images",
    "crystals",
    "agglomerated",
    "particles",
    "agglomerates",
    "artifacts_removed",
)


@dataclass(frozen=True)
class CrystalAggregate:
    """Sums over a set of counted images.

    Attributes
    ----------
    images, crystals, agglomerated, particles, agglomerates, artifacts_removed : int
        Images; primary crystals; primary crystals inside agglomerates; particles (an
        agglomerate counts once); agglomerates; imperfections removed.
    csd_counts : tuple of int
        Primary crystals per diameter bin.
    csd_edges_um : tuple of float
        The bin edges (one more than bins); the last bin is open-ended.
    unfit : int
        Images the quality gate refused: not counted, in no other sum. Kept where the
        aggregates are made; not part of :meth:`vector`, so pooled answers hold 0.
    """

    images: int
    crystals: int
    agglomerated: int
    particles: int
    agglomerates: int
    artifacts_removed: int
    csd_counts: tuple[int, ...]
    csd_edges_um: tuple[float, ...] = CSD_EDGES_UM
    unfit: int = 0

    @classmethod
    def empty(cls, edges_um: Sequence[float] = CSD_EDGES_UM) -> CrystalAggregate:
        """The aggregate of no image."""
        return cls(0, 0, 0, 0, 0, 0, (0,) * (len(edges_um) - 1), tuple(edges_um))

    def __add__(self, other: CrystalAggregate) -> CrystalAggregate:
        if self.csd_edges_um != other.csd_edges_um:
            raise ValueError("aggregates with different CSD bin edges cannot be pooled")
        sums = {name: getattr(self, name) + getattr(other, name) for name in _COUNT_FIELDS}
        csd = tuple(int(a + b) for a, b in zip(self.csd_counts, other.csd_counts, strict=True))
        return CrystalAggregate(**sums, csd_counts=csd, csd_edges_um=self.csd_edges_um,
                                unfit=self.unfit + other.unfit)

    @property
    def mean_count(self) -> float:
        """Primary crystals per image."""
        return round(self.crystals / self.images, 2) if self.images else 0.0

    @property
    def agglomeration_pct(self) -> float:
        """Primary crystals inside agglomerates, % of all primary crystals."""
        return round(100.0 * self.agglomerated / self.crystals, 2) if self.crystals else 0.0

    def percentile_um(self, q: float) -> float:
        """The `q`-th percentile (0-100) of crystal diameter, interpolated in the histogram."""
        return histogram_percentile(self.csd_counts, self.csd_edges_um, q)

    def vector(self) -> list[float]:
        """The sums as one vector (:data:`vector_names` order), for secure pooling."""
        return [float(getattr(self, name)) for name in _COUNT_FIELDS] + [
            float(n) for n in self.csd_counts
        ]

    def vector_names(self) -> list[str]:
        """Names of :meth:`vector`'s entries."""
        return list(_COUNT_FIELDS) + [f"csd_{i:02d}" for i in range(len(self.csd_counts))]

    @classmethod
    def from_vector(
        cls, values: Sequence[float], edges_um: Sequence[float] = CSD_EDGES_UM
    ) -> CrystalAggregate:
        """Inverse of :meth:`vector` (noisy sums are rounded and kept non-negative)."""
        whole = [max(0, int(round(v))) for v in values]
        counts = dict(zip(_COUNT_FIELDS, whole, strict=False))
        return cls(
            **counts, csd_counts=tuple(whole[len(_COUNT_FIELDS) :]), csd_edges_um=tuple(edges_um)
        )

    def summary(self) -> dict:
        """Plain numbers for a table: counts, means, agglomeration, d10/d50/d90, histogram."""
        return {
            "images": self.images,
            "total_count": self.crystals,
            "mean_count": self.mean_count,
            "agglomeration_pct": self.agglomeration_pct,
            "d10_um": round(self.percentile_um(10), 2),
            "d50_um": round(self.percentile_um(50), 2),
            "d90_um": round(self.percentile_um(90), 2),
            "csd_counts": list(self.csd_counts),
        }


def primary_diameters(report: CrystalReport) -> tuple[list[float], int]:
    """Diameters (µm) of a report's primary crystals, and how many sit in agglomerates.

    An agglomerate of ``k`` crystals of equivalent diameter ``d`` counts as ``k``
    crystals of ``d / sqrt(k)``; removed imperfections (no members) count as none.
    """
    diameters: list[float] = []
    grouped = 0
    for record in report.objects:
        members = int(record["members"])
        if members > 0:
            diameters += [record["diameter_um"] / np.sqrt(members)] * members
            grouped += members if members > 1 else 0
    return diameters, grouped


def aggregate_report(
    report: CrystalReport, edges_um: Sequence[float] = CSD_EDGES_UM
) -> CrystalAggregate:
    """The aggregate of one counted image; an unfit one adds only to ``unfit``.

    Examples
    --------
    >>> from workbench.imaging.pipeline import CrystalReport
    >>> from workbench.imaging.quality import QualityVerdict
    >>> unfit = CrystalReport.unfit(None, "classical", QualityVerdict(False, "too dark"), 0.0)
    >>> aggregate = aggregate_report(unfit)
    >>> aggregate.images, aggregate.crystals, aggregate.unfit
    (0, 0, 1)
    """
    if report.count is None:
        return replace(CrystalAggregate.empty(edges_um), unfit=1)
    diameters, grouped = primary_diameters(report)
    clipped = np.clip(diameters, edges_um[0], np.nextafter(edges_um[-1], -np.inf))
    histogram, _ = np.histogram(clipped, bins=np.asarray(edges_um))
    return CrystalAggregate(
        images=1,
        crystals=int(report.count),
        agglomerated=grouped,
        particles=int(report.particles),
        agglomerates=int(report.agglomerates),
        artifacts_removed=int(report.artifacts_removed),
        csd_counts=tuple(int(n) for n in histogram),
        csd_edges_um=tuple(edges_um),
    )


def pool(aggregates: Iterable[CrystalAggregate]) -> CrystalAggregate:
    """The sum of several aggregates (an empty one for none)."""
    total = None
    for aggregate in aggregates:
        total = aggregate if total is None else total + aggregate
    return total if total is not None else CrystalAggregate.empty()


def histogram_percentile(counts: Sequence[int], edges_um: Sequence[float], q: float) -> float:
    """The `q`-th percentile of a histogram, linear inside the bin where it falls.

    Examples
    --------
    >>> histogram_percentile([10, 10], [0.0, 10.0, 20.0], 50)
    10.0
    >>> histogram_percentile([0, 4], [0.0, 10.0, 20.0], 25)
    12.5
    """
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return 0.0
    cumulative = np.concatenate([[0.0], np.cumsum(counts)])
    target = total * q / 100.0
    index = int(np.clip(np.searchsorted(cumulative, target, side="left") - 1, 0, len(counts) - 1))
    inside = (target - cumulative[index]) / counts[index] if counts[index] else 0.0
    return float(edges_um[index] + inside * (edges_um[index + 1] - edges_um[index]))
