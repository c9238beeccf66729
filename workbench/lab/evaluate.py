"""Scoring a :class:`~workbench.imaging.pipeline.CrystalReport` against ground truth.

Ground truth is the ``truth`` dict of a synthetic sample (or the ``<stem>.json``
written beside it): ``count``, ``particles``, ``csd_um`` and the per-object records.
True *particles* are single crystals plus agglomerates (an agglomerate is one
particle); imperfections (bubble, debris, fibre, scratch, dust) are never particles.

Examples
--------
>>> from workbench.lab.evaluate import counting_accuracy
>>> counting_accuracy(predicted=97, true=100)
0.97
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from workbench.imaging.detections import IMPERFECTION_KINDS


@dataclass
class ImageScore:
    """How one prediction compares with the truth of one image.

    Attributes
    ----------
    true_count, predicted_count : int
        Primary crystals.
    accuracy : float
        ``1 - |predicted - true| / true``, floored at 0.
    abs_error : int
        ``|predicted - true|`` (primary crystals).
    tp, fp, fn : int
        Particle detections matched by centroid.
    agg_tp, agg_fp, agg_fn : int
        Agglomerate detections (a predicted particle of more than one crystal).
    imperfection_crystals : int
        Predicted crystals that sit on an imperfection and match no true particle.
    d50_true, d50_predicted : float
        Median primary crystal diameter in µm.
    seconds : float
        Time the method took on this image (wall clock).
    cpu_seconds : float
        Processor time it took, when measured (unaffected by other jobs on the machine).
    """

    true_count: int
    predicted_count: int
    accuracy: float
    abs_error: int
    tp: int
    fp: int
    fn: int
    agg_tp: int
    agg_fp: int
    agg_fn: int
    imperfection_crystals: int
    d50_true: float
    d50_predicted: float
    seconds: float
    cpu_seconds: float = 0.0

    def to_dict(self) -> dict:
        """Plain dict of the fields (JSON-ready)."""
        return asdict(self)


def counting_accuracy(predicted: int, true: int) -> float:
    """``1 - |predicted - true| / true``, floored at 0 (1.0 when both are 0).

    Examples
    --------
    >>> counting_accuracy(0, 0), counting_accuracy(300, 100)
    (1.0, 0.0)
    """
    if true == 0:
        return 1.0 if predicted == 0 else 0.0
    return max(0.0, 1.0 - abs(predicted - true) / true)


def f1_score(tp: int, fp: int, fn: int) -> float:
    """F1 from counts (1.0 when there is nothing to find and nothing was found).

    Examples
    --------
    >>> round(f1_score(8, 2, 2), 3)
    0.8
    """
    if tp + fp + fn == 0:
        return 1.0
    return 2.0 * tp / (2.0 * tp + fp + fn)


def score_image(report, truth: dict, labels: np.ndarray | None = None) -> ImageScore:
    """Compare a report with the ground truth of the same image.

    Predicted particles are matched one-to-one to true particles (Hungarian
    assignment on centroid distance) within half the median true crystal diameter,
    or half the true particle's own diameter if larger (agglomerates).

    Parameters
    ----------
    report : CrystalReport
        Prediction; its ``objects`` give particle centroids and crystal counts.
    truth : dict
        Ground truth with ``count``, ``pixel_size_um``, ``csd_um`` and ``objects``.
    labels : ndarray of int, optional
        Object id per pixel of the synthetic image; when given, an unmatched
        predicted particle whose centroid lies on an imperfection's pixels counts
        as an imperfection taken for crystals. Without it, nearness to the
        imperfection's centroid (within its radius) decides.

    Returns
    -------
    ImageScore

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> truth = {"count": 2, "pixel_size_um": 2.0, "csd_um": {"d50": 40.0}, "objects": [
    ...     {"id": 1, "kind": "crystal", "centroid_xy": [10, 10], "diameter_um": 40,
    ...      "agglomerate": None},
    ...     {"id": 2, "kind": "crystal", "centroid_xy": [60, 10], "diameter_um": 40,
    ...      "agglomerate": None}]}
    >>> report = SimpleNamespace(count=2, csd_um={"d50": 38.0}, seconds=0.1, objects=[
    ...     {"kind": "crystal", "centroid_xy": [11, 10], "members": 1},
    ...     {"kind": "crystal", "centroid_xy": [90, 40], "members": 1}])
    >>> s = score_image(report, truth)
    >>> s.accuracy, s.tp, s.fp, s.fn
    (1.0, 1, 1, 1)
    """
    pixel_size = float(truth["pixel_size_um"])
    objects = truth["objects"]
    true_particles = [
        o
        for o in objects
        if o["kind"] == "agglomerate" or (o["kind"] == "crystal" and o.get("agglomerate") is None)
    ]
    imperfections = [o for o in objects if o["kind"] in IMPERFECTION_KINDS]
    predicted = [o for o in report.objects if o["kind"] in ("crystal", "agglomerate")]

    crystal_diameters = [o["diameter_um"] for o in objects if o["kind"] == "crystal"]
    median_radius_px = (
        0.5 * float(np.median(crystal_diameters)) / pixel_size if (crystal_diameters) else 10.0
    )
    true_xy = np.array([o["centroid_xy"] for o in true_particles], float).reshape(-1, 2)
    true_radius = np.array(
        [max(median_radius_px, 0.5 * o["diameter_um"] / pixel_size) for o in true_particles]
    )
    pred_xy = np.array([o["centroid_xy"] for o in predicted], float).reshape(-1, 2)
    pairs = _match(pred_xy, true_xy, true_radius)

    matched_pred = {p for p, _ in pairs}
    true_is_agg = np.array([o["kind"] == "agglomerate" for o in true_particles], bool)
    pred_is_agg = np.array([o["members"] > 1 for o in predicted], bool)
    agg_tp = sum(1 for p, t in pairs if pred_is_agg[p] and true_is_agg[t])

    unmatched = [i for i in range(len(predicted)) if i not in matched_pred]
    on_imperfection = _on_imperfections(
        pred_xy[unmatched], imperfections, labels, pixel_size, median_radius_px
    )
    imperfection_crystals = sum(
        int(predicted[i]["members"])
        for i, hit in zip(unmatched, on_imperfection, strict=True)
        if hit
    )

    true_count = int(truth["count"])
    # A frame the quality gate refused counts nothing: refusing a good frame is a miss.
    predicted_count = 0 if report.count is None else int(report.count)
    return ImageScore(
        true_count=true_count,
        predicted_count=predicted_count,
        accuracy=counting_accuracy(predicted_count, true_count),
        abs_error=abs(predicted_count - true_count),
        tp=len(pairs),
        fp=len(predicted) - len(pairs),
        fn=len(true_particles) - len(pairs),
        agg_tp=agg_tp,
        agg_fp=int(pred_is_agg.sum()) - agg_tp,
        agg_fn=int(true_is_agg.sum()) - agg_tp,
        imperfection_crystals=imperfection_crystals,
        d50_true=float(truth["csd_um"]["d50"]),
        d50_predicted=float(report.csd_um["d50"]),
        seconds=float(report.seconds),
    )


def summarize(scores: list[ImageScore]) -> dict[str, float]:
    """Aggregate image scores of one method on one set of images.

    Returns
    -------
    dict
        ``images``, ``accuracy`` (mean), ``mae``, ``detection_f1`` and ``agglomerate_f1``
        (pooled over images), ``imperfections_pct`` (imperfection crystals as % of all
        true crystals), ``d50_error_pct`` (mean absolute relative error),
        ``seconds_per_image``.

    Examples
    --------
    >>> s = ImageScore(100, 98, 0.98, 2, 90, 5, 10, 3, 1, 1, 0, 40.0, 41.0, 0.2)
    >>> summarize([s])["detection_f1"]
    0.9231
    """
    if not scores:
        return {}

    def total(name: str) -> int:
        return sum(getattr(s, name) for s in scores)

    true_total = max(total("true_count"), 1)
    d50_errors = [abs(s.d50_predicted - s.d50_true) / s.d50_true for s in scores if s.d50_true > 0]
    return {
        "images": len(scores),
        "accuracy": round(float(np.mean([s.accuracy for s in scores])), 4),
        "mae": round(float(np.mean([s.abs_error for s in scores])), 2),
        "detection_f1": round(f1_score(total("tp"), total("fp"), total("fn")), 4),
        "agglomerate_f1": round(f1_score(total("agg_tp"), total("agg_fp"), total("agg_fn")), 4),
        "imperfections_pct": round(100.0 * total("imperfection_crystals") / true_total, 3),
        "d50_error_pct": round(100.0 * float(np.mean(d50_errors)), 2) if d50_errors else 0.0,
        "seconds_per_image": round(float(np.mean([s.seconds for s in scores])), 3),
        "cpu_seconds_per_image": round(float(np.mean([s.cpu_seconds for s in scores])), 3),
    }


def _match(pred_xy: np.ndarray, true_xy: np.ndarray, true_radius: np.ndarray) -> list:
    if len(pred_xy) == 0 or len(true_xy) == 0:
        return []
    distance = np.linalg.norm(pred_xy[:, None, :] - true_xy[None, :, :], axis=2)
    allowed = distance <= true_radius[None, :]
    # Forbidden pairs get a cost no allowed assignment can reach, then are dropped.
    cost = np.where(allowed, distance, 1e9)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if allowed[r, c]]


def _on_imperfections(
    xy: np.ndarray,
    imperfections: list[dict],
    labels: np.ndarray | None,
    pixel_size: float,
    default_radius_px: float,
) -> np.ndarray:
    if len(xy) == 0 or not imperfections:
        return np.zeros(len(xy), bool)
    hits = _near(xy, imperfections, pixel_size, default_radius_px)
    if labels is not None:
        ids = np.array([o["id"] for o in imperfections])
        cols = np.clip(np.round(xy[:, 0]).astype(int), 0, labels.shape[1] - 1)
        rows = np.clip(np.round(xy[:, 1]).astype(int), 0, labels.shape[0] - 1)
        hits |= np.isin(labels[rows, cols], ids)
    return hits


def _near(xy, imperfections, pixel_size, default_radius_px) -> np.ndarray:
    centres = np.array([o["centroid_xy"] for o in imperfections], float)
    radius = np.array(
        [
            max(default_radius_px, 0.5 * o.get("diameter_um", 0.0) / pixel_size)
            for o in imperfections
        ]
    )
    distance = np.linalg.norm(xy[:, None, :] - centres[None, :, :], axis=2)
    return (distance <= radius[None, :]).any(axis=1)
