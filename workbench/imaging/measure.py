"""Crystal sizes: equivalent diameters, crystal size distribution (CSD), agglomeration.

Sizes are counted over *primary* crystals. A single crystal is one primary crystal
of diameter ``d_eq(area)``; an agglomerate estimated to hold ``k`` crystals counts as
``k`` primary crystals of diameter ``d_eq(area) / sqrt(k)`` (its area shared evenly).

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.measure import primary_diameters_um, csd_percentiles
>>> d = primary_diameters_um(np.array([314.16, 1256.6]), np.array([1, 4]), pixel_size_um=2.0)
>>> d.round(1).tolist()
[40.0, 40.0, 40.0, 40.0, 40.0]
>>> csd_percentiles(d)
{'d10': 40.0, 'd50': 40.0, 'd90': 40.0}
"""

from __future__ import annotations

import numpy as np


def equivalent_diameter_um(areas_px: np.ndarray, pixel_size_um: float) -> np.ndarray:
    """Diameter of the disc with the same area, in µm.

    Examples
    --------
    >>> equivalent_diameter_um(np.array([np.pi * 100.0]), 2.0).round(3).tolist()
    [40.0]
    """
    areas = np.asarray(areas_px, dtype=np.float64)
    return 2.0 * np.sqrt(np.clip(areas, 0.0, None) / np.pi) * pixel_size_um


def primary_diameters_um(
    areas_px: np.ndarray, members: np.ndarray, pixel_size_um: float
) -> np.ndarray:
    """Diameters of all primary crystals, agglomerates split into ``k`` equal crystals.

    Parameters
    ----------
    areas_px : ndarray, shape (N,)
        Area of each particle (single crystal or agglomerate) in pixels.
    members : ndarray of int, shape (N,)
        Estimated number of primary crystals in each particle (1 for a single crystal).
    pixel_size_um : float
        Pixel side in µm.

    Returns
    -------
    ndarray, shape (members.sum(),)

    Examples
    --------
    >>> primary_diameters_um(np.array([400.0]), np.array([4]), 1.0).round(2).tolist()
    [11.28, 11.28, 11.28, 11.28]
    """
    members = np.asarray(members, dtype=np.int64)
    per_particle = equivalent_diameter_um(areas_px, pixel_size_um) / np.sqrt(
        np.maximum(members, 1)
    )
    return np.repeat(per_particle, np.maximum(members, 0))


def csd_percentiles(diameters_um: np.ndarray) -> dict[str, float]:
    """Count-weighted d10, d50 and d90 of primary crystal diameters, in µm.

    All three are 0.0 when there is no crystal.

    Examples
    --------
    >>> csd_percentiles(np.arange(1.0, 101.0))
    {'d10': 10.9, 'd50': 50.5, 'd90': 90.1}
    """
    diameters = np.asarray(diameters_um, dtype=np.float64)
    if diameters.size == 0:
        return {"d10": 0.0, "d50": 0.0, "d90": 0.0}
    d10, d50, d90 = np.percentile(diameters, [10, 50, 90])
    return {"d10": round(float(d10), 2), "d50": round(float(d50), 2), "d90": round(float(d90), 2)}


def csd_histogram(
    diameters_um: np.ndarray, bins: int | np.ndarray = 20
) -> tuple[np.ndarray, np.ndarray]:
    """Number of primary crystals per diameter bin.

    Parameters
    ----------
    diameters_um : ndarray
        Primary crystal diameters in µm.
    bins : int or ndarray
        Number of equal bins between 0 and the largest diameter, or explicit bin edges.

    Returns
    -------
    counts : ndarray of int, shape (n_bins,)
    edges_um : ndarray of float, shape (n_bins + 1,)

    Examples
    --------
    >>> counts, edges = csd_histogram(np.array([10.0, 12.0, 35.0]), bins=np.array([0, 20, 40]))
    >>> counts.tolist(), edges.tolist()
    ([2, 1], [0.0, 20.0, 40.0])
    """
    diameters = np.asarray(diameters_um, dtype=np.float64)
    if np.isscalar(bins) or np.ndim(bins) == 0:
        upper = float(diameters.max()) if diameters.size else 1.0
        edges = np.linspace(0.0, upper, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    counts, edges = np.histogram(diameters, bins=edges)
    return counts, edges


def agglomeration_pct(members: np.ndarray) -> float:
    """Share of primary crystals that sit in an agglomerate, in percent.

    Examples
    --------
    >>> agglomeration_pct(np.array([1, 1, 3, 1]))
    50.0
    """
    members = np.asarray(members, dtype=np.int64)
    total = int(members.sum())
    if total == 0:
        return 0.0
    return round(100.0 * float(members[members > 1].sum()) / total, 2)
