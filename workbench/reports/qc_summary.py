"""The crystal QC aggregate of one production batch: what runs on the factory's datasite.

:func:`qc_summary` takes an image batch dict (see :mod:`workbench.remote.upload`),
keeps the images of one production batch (by file name: ``B-0042_017.png`` belongs
to batch ``B-0042``), counts crystals on each with
:func:`workbench.imaging.pipeline.analyze` and returns aggregates only: counts,
agglomeration, the crystal size distribution as a histogram, never pixels, file
names or per-crystal data. It tolerates a batch with no matching image (the mock,
whose files are called ``mock-000.png``...), returning ``images == 0``.

Examples
--------
>>> import numpy as np
>>> batch = {"images": [np.full((128, 128), 150, np.uint8)], "files": ["B-7_000.png"],
...          "camera": "legacy", "pixel_size_um": 2.0}
>>> summary = qc_summary(batch, batch="B-7", csd_bins=4)
>>> summary["images"], summary["unfit"], len(summary["csd_counts"])  # a blank frame is unfit
(0, 1, 4)
>>> qc_summary(batch, batch="B-8")["images"]
0
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from workbench.imaging.aggregate import primary_diameters
from workbench.imaging.measure import csd_histogram, csd_percentiles
from workbench.imaging.pipeline import analyze


def in_batch(file_name: str, batch: str) -> bool:
    """True if `file_name` belongs to production batch `batch` (every file when empty).

    A file belongs to a batch when its name starts with the batch id followed by
    anything but a letter or digit (``B-0042_017.png``, ``B-0042.tif``; not
    ``B-00421_001.png``).

    Examples
    --------
    >>> in_batch("B-0042_017.png", "B-0042"), in_batch("B-00421_001.png", "B-0042")
    (True, False)
    """
    return not batch or re.match(rf"{re.escape(batch)}(?![A-Za-z0-9])", file_name) is not None


def qc_summary(
    images: dict,
    batch: str = "",
    csd_bins: int = 20,
    method: str = "auto",
    datasite: Any = None,
) -> dict:
    """Counts, agglomeration and the CSD of the images of one batch, as aggregates.

    Parameters
    ----------
    images : dict
        An image batch: ``images`` (arrays), ``files``, ``camera``, ``pixel_size_um``.
    batch : str
        Production batch id; every image when empty (see :func:`in_batch`).
    csd_bins : int
        Equal-width bins of the crystal size distribution, from 0 to the largest
        primary crystal.
    method : str
        Counting method of :func:`~workbench.imaging.pipeline.analyze`.
    datasite : optional
        syft's datasite handle inside a job (progress), or None.

    Returns
    -------
    dict
        ``images`` (counted), ``unfit`` (refused by the quality gate, not counted),
        ``total_count``, ``mean_count``, ``std_count``, ``min_count``,
        ``max_count``, ``particles``, ``agglomerates``, ``agglomeration_pct``,
        ``artifacts_removed``, ``d10_um``, ``d50_um``, ``d90_um``, ``csd_counts``,
        ``csd_edges_um`` and ``method`` (the method that counted).
    """
    chosen = [
        frame
        for frame, name in zip(images["images"], images["files"], strict=True)
        if in_batch(name, batch)
    ]
    if datasite is not None:
        datasite.init_progress(max(len(chosen), 1))
    counts, primary, used = [], [], method
    particles = agglomerates = grouped = artifacts = 0
    for frame in chosen:
        report = analyze(frame, images["camera"], images["pixel_size_um"], method)
        used = report.method
        if report.count is not None:  # None: the quality gate refused the frame
            counts.append(report.count)
            particles += report.particles
            agglomerates += report.agglomerates
            artifacts += report.artifacts_removed
            diameters, in_agglomerates = primary_diameters(report)
            primary += diameters
            grouped += in_agglomerates
        if datasite is not None:
            datasite.increment_progress()
    histogram, edges = csd_histogram(np.asarray(primary), bins=int(csd_bins))
    total = int(sum(counts))
    percentiles = csd_percentiles(np.asarray(primary))
    return {
        "images": len(counts),
        "unfit": len(chosen) - len(counts),
        "total_count": total,
        "mean_count": round(float(np.mean(counts)), 2) if counts else 0.0,
        "std_count": round(float(np.std(counts)), 2) if counts else 0.0,
        "min_count": int(min(counts)) if counts else 0,
        "max_count": int(max(counts)) if counts else 0,
        "particles": particles,
        "agglomerates": agglomerates,
        "agglomeration_pct": round(100.0 * grouped / total, 2) if total else 0.0,
        "artifacts_removed": artifacts,
        "d10_um": percentiles["d10"],
        "d50_um": percentiles["d50"],
        "d90_um": percentiles["d90"],
        "csd_counts": [int(n) for n in histogram],
        "csd_edges_um": [round(float(edge), 2) for edge in edges],
        "method": used,
    }


QC_TABLE_ROWS = (
    ("images", "images analysed", ""),
    ("unfit", "images unfit to count (quality gate), left out", ""),
    ("total_count", "crystals counted", ""),
    ("mean_count", "crystals per image, mean", ""),
    ("std_count", "crystals per image, std", ""),
    ("min_count", "crystals per image, min", ""),
    ("max_count", "crystals per image, max", ""),
    ("particles", "particles (agglomerate counts once)", ""),
    ("agglomerates", "agglomerates", ""),
    ("agglomeration_pct", "crystals in agglomerates", "%"),
    ("artifacts_removed", "imperfections removed", ""),
    ("d10_um", "d10", "µm"),
    ("d50_um", "d50", "µm"),
    ("d90_um", "d90", "µm"),
    ("method", "counting method", ""),
)


def qc_table(summary: dict) -> pd.DataFrame:
    """The short QC table: one row per figure of a :func:`qc_summary`, with its unit.

    Examples
    --------
    >>> qc_table({"images": 3, "d50_um": 41.5}).values.tolist()
    [['images analysed', '3', ''], ['d50', '41.5', 'µm']]
    """
    rows = [
        (label, str(summary[key]), unit) for key, label, unit in QC_TABLE_ROWS if key in summary
    ]
    return pd.DataFrame(rows, columns=["figure", "value", "unit"])
