"""Functions researchers submit to factory datasites; they return aggregates only.

Each takes one image batch dict (``images``, ``files``, ``camera``,
``pixel_size_um``; see :mod:`workbench.remote.upload`) and optionally ``datasite``
to report progress, and returns numbers and short lists that pass every factory's
output rule. They import what they need inside the body: syft ships only the
function's source to the datasite. They run unchanged on a mock batch locally.

Examples
--------
>>> from workbench.remote.upload import image_batch
>>> import numpy as np
>>> batch = image_batch([np.full((64, 64), 10, np.uint8)], ["a.png"], "legacy", 2.0)
>>> mean_intensity(batch)
{'images': 1, 'mean_intensity': 10.0}
"""

from __future__ import annotations

from typing import Any


def count_crystals(images: dict, datasite: Any = None) -> dict:
    """Count crystals on every image of a batch; return the factory's aggregates.

    Runs :func:`workbench.imaging.pipeline.analyze` on each image with the batch's
    camera profile and pixel size. The crystal size distribution pools the primary
    crystals of all images (an agglomerate of ``k`` crystals of equivalent diameter
    ``d`` counts as ``k`` crystals of ``d / sqrt(k)``). Images the quality gate refuses
    (:mod:`workbench.imaging.quality`) are not counted; ``unfit`` says how many.

    Parameters
    ----------
    images : dict
        An image batch: ``images`` (arrays), ``camera``, ``pixel_size_um``.
    datasite : optional
        syft's datasite handle inside a job (``init_progress``/``increment_progress``).

    Returns
    -------
    dict
        ``images`` (counted), ``unfit`` (refused by the quality gate), ``mean_count``,
        ``total_count``, ``agglomeration_pct`` (primary crystals inside agglomerates, %
        of all), ``d10_um``, ``d50_um``, ``d90_um``, ``csd_counts`` (primary crystals
        per 10 µm bin from 0 to 200 µm, the last bin open-ended) and ``seconds`` (time
        spent counting, on the factory's machine).

    Examples
    --------
    >>> from workbench.remote.upload import mock_batch
    >>> summary = count_crystals(mock_batch("legacy", shape=(256, 320)))  # doctest: +SKIP
    >>> sorted(summary)  # doctest: +SKIP
    ['agglomeration_pct', 'csd_counts', 'd10_um', 'd50_um', 'd90_um', 'images', ...]
    """
    import time

    import numpy as np

    from workbench.imaging.aggregate import CSD_EDGES_UM, primary_diameters
    from workbench.imaging.pipeline import analyze

    started = time.perf_counter()
    frames = images["images"]
    if datasite is not None:
        datasite.init_progress(len(frames))
    counts, primary, grouped = [], [], 0
    reported, last_report = 0, started
    for done, frame in enumerate(frames, start=1):
        report = analyze(frame, camera=images["camera"], pixel_size_um=images["pixel_size_um"])
        if report.count is not None:
            counts.append(report.count)
            diameters, in_agglomerates = primary_diameters(report)
            primary += diameters
            grouped += in_agglomerates
        # Each progress report is a database write on the datasite: at most one a second.
        if datasite is not None and (time.perf_counter() - last_report >= 1 or done == len(frames)):
            datasite.increment_progress(done - reported)
            reported, last_report = done, time.perf_counter()
    total = int(sum(counts))
    d10, d50, d90 = np.percentile(primary, [10, 50, 90]) if primary else (0.0, 0.0, 0.0)
    edges = np.asarray(CSD_EDGES_UM)
    histogram, _ = np.histogram(np.clip(primary, 0, edges[-1] - 0.1), bins=edges)
    return {
        "images": len(counts),
        "unfit": len(frames) - len(counts),
        "mean_count": round(float(np.mean(counts)), 2) if counts else 0.0,
        "total_count": total,
        "agglomeration_pct": round(100.0 * grouped / total, 2) if total else 0.0,
        "d10_um": round(float(d10), 2),
        "d50_um": round(float(d50), 2),
        "d90_um": round(float(d90), 2),
        "csd_counts": [int(n) for n in histogram],
        "seconds": round(time.perf_counter() - started, 3),
    }


def finetune_counter(images: dict, datasite: Any = None) -> dict:
    """Fine-tune the learned counter on the batch's labelled frames; the weights stay.

    Runs :func:`workbench.lab.finetune.finetune_batch` (300 steps from the shipped
    weights; a quarter of the labelled frames scores the counter before and after)
    and writes ``counter.pt`` + ``counter.json`` into the run's keep folder
    (:func:`workbench.sandbox.keep.keep_folder`): on a datasite they are stored at the
    factory (``workbench datasite kept``), and only the admin can release them.

    Parameters
    ----------
    images : dict
        An image batch uploaded with labels (``workbench datasite upload --labels``).
    datasite : optional
        syft's datasite handle inside a job (unused: fine-tuning reports no steps).

    Returns
    -------
    dict
        ``labelled``, ``trained_on``, ``checked_on``, ``steps``, ``seconds``,
        ``accuracy_before``, ``accuracy_after``, ``weights_sha256``.
    """
    from workbench.lab.finetune import finetune_batch
    from workbench.sandbox.keep import keep_folder

    return finetune_batch(images, keep_folder())


def mean_intensity(images: dict, datasite: Any = None) -> dict:
    """Mean gray level over a batch: a quick function for trials and tests.

    Examples
    --------
    >>> from workbench.remote.upload import image_batch
    >>> mean_intensity(image_batch([[0, 4], [2, 2]], ["a", "b"], "legacy", 2.0))
    {'images': 2, 'mean_intensity': 2.0}
    """
    import numpy as np

    frames = images["images"]
    if datasite is not None:
        datasite.init_progress(len(frames))
    means = []
    for frame in frames:
        means.append(float(np.mean(frame)))
        if datasite is not None:
            datasite.increment_progress()
    return {"images": len(frames), "mean_intensity": round(float(np.mean(means)), 3)}


def crystal_rows(images: dict, datasite: Any = None) -> dict:
    """One row of sums per image, for pooled requests (see :mod:`workbench.remote.pooling`).

    Each row is :meth:`~workbench.imaging.aggregate.CrystalAggregate.vector` of one
    image: images (1), primary crystals, crystals in agglomerates, particles,
    agglomerates, imperfections removed, and the 10 µm crystal size histogram. The rows
    stay at the factory: its datasite sums (and clamps, noises, masks) them and
    releases only the pooled share. An image the quality gate refuses has no row.

    Examples
    --------
    >>> from workbench.remote.upload import image_batch
    >>> import numpy as np
    >>> rows = crystal_rows(image_batch([np.full((64, 64), 9, np.uint8)], ["a"], "legacy", 2.0))
    >>> rows["rows"]  # a dark blank frame: unfit, no row
    []
    """
    from workbench.imaging.aggregate import aggregate_report
    from workbench.imaging.pipeline import analyze

    camera, pixel_size_um = images["camera"], images["pixel_size_um"]
    reports = [analyze(frame, camera, pixel_size_um) for frame in images["images"]]
    return {"rows": [aggregate_report(r).vector() for r in reports if r.count is not None]}
