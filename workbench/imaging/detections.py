"""What every counting method returns: particles, their crystal numbers, and imperfections.

The contract between the counting methods (classical, baselines, learned model) and
everything after them (:func:`workbench.imaging.pipeline.report_from_detections`,
overlays, evaluation). The object kinds are defined here once: a particle is a
single ``crystal`` or an ``agglomerate``; an imperfection is one of
:data:`IMPERFECTION_KINDS` and is never counted.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.detections import Artifact, Detections
>>> found = Detections(np.array([[5.0, 5.0]]), np.array([300.0]), np.array([2]),
...                    [Artifact("dust", (9.0, 9.0), 4.0)])
>>> int(found.members.sum()), found.removed_counts()["dust"]
(2, 1)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from workbench.imaging._morphology import label_sums

PARTICLE_KINDS = ("crystal", "agglomerate")
IMPERFECTION_KINDS = ("bubble", "debris", "fibre", "scratch", "dust")


@dataclass(frozen=True)
class Artifact:
    """One removed imperfection.

    Attributes
    ----------
    kind : str
        One of :data:`IMPERFECTION_KINDS`.
    centroid_xy : tuple of float
        (col, row) in pixels of the image it was found on.
    area_px : float
        Area in pixels of that image.
    """

    kind: str
    centroid_xy: tuple[float, float]
    area_px: float


def count_by_kind(artifacts: list[Artifact]) -> dict[str, int]:
    """Number of `artifacts` per imperfection kind, every kind listed (zeros included).

    Examples
    --------
    >>> count_by_kind([Artifact("fibre", (1.0, 2.0), 30.0)])
    {'bubble': 0, 'debris': 0, 'fibre': 1, 'scratch': 0, 'dust': 0}
    """
    counts = Counter(a.kind for a in artifacts)
    return {kind: counts.get(kind, 0) for kind in IMPERFECTION_KINDS}


@dataclass
class Detections:
    """What a counting method found on one image.

    Every counting method returns this; the pipeline measures sizes and counts from
    it the same way for all.

    Attributes
    ----------
    centroids_xy : ndarray of float, shape (N, 2)
        (col, row) of each particle, in pixels of the input image.
    areas_px : ndarray of float, shape (N,)
        Area of each particle in input-image pixels.
    members : ndarray of int, shape (N,)
        Estimated primary crystals per particle (1 = single crystal, > 1 = agglomerate).
    artifacts : list of Artifact
        Imperfections removed (centroids and areas in input-image pixels).
    labels : ndarray of int32, optional
        ``i + 1`` on the pixels of particle ``i`` (for overlays), at working scale.
    artifact_labels : ndarray of int32, optional
        ``j + 1`` on the pixels of ``artifacts[j]``, at working scale.
    scale : float
        Input-image pixels per pixel of ``labels`` and ``artifact_labels``.
    """

    centroids_xy: np.ndarray
    areas_px: np.ndarray
    members: np.ndarray
    artifacts: list[Artifact] = field(default_factory=list)
    labels: np.ndarray | None = None
    artifact_labels: np.ndarray | None = None
    scale: float = 1.0

    def removed_counts(self) -> dict[str, int]:
        """Number of removed imperfections per kind (all kinds listed)."""
        return count_by_kind(self.artifacts)


def detections_from_labels(
    labels: np.ndarray,
    members: np.ndarray,
    scale: float = 1.0,
    artifacts: list[Artifact] | None = None,
    artifact_labels: np.ndarray | None = None,
    areas: np.ndarray | None = None,
) -> Detections:
    """Build :class:`Detections` from a particle label image at working scale.

    Parameters
    ----------
    labels : ndarray of int
        ``i + 1`` on the pixels of particle ``i``.
    members : ndarray of int, shape (labels.max(),)
        Primary crystals per particle.
    scale : float
        Input-image pixels per label pixel; centroids and areas are converted.
    artifacts : list of Artifact, optional
        In working-scale pixels; converted too.
    artifact_labels : ndarray of int, optional
        ``j + 1`` on the pixels of ``artifacts[j]``.
    areas : ndarray of float, optional
        Particle areas in label pixels, when the method measures them better than
        by counting label pixels (converted too).

    Returns
    -------
    Detections

    Examples
    --------
    >>> labels = np.zeros((10, 10), np.int32); labels[2:4, 2:6] = 1
    >>> d = detections_from_labels(labels, np.array([1]), scale=2.0)
    >>> d.centroids_xy.tolist(), d.areas_px.tolist()
    ([[7.5, 5.5]], [32.0])
    """
    count = len(members)
    inside = labels > 0
    rows, cols = np.nonzero(inside)  # particle pixels only: most of a frame is background
    inner = labels[inside]
    pixels = np.maximum(label_sums(inside, labels, count), 1.0)
    centres = np.column_stack(
        [
            label_sums(cols.astype(float), inner, count) / pixels,
            label_sums(rows.astype(float), inner, count) / pixels,
        ]
    )
    if areas is None:
        areas = pixels
    # Pixel centres: working pixel (r, c) covers input pixels [r*scale, (r+1)*scale).
    centroids = (centres + 0.5) * scale - 0.5
    scaled_artifacts = [
        Artifact(
            a.kind,
            tuple(float((v + 0.5) * scale - 0.5) for v in a.centroid_xy),
            a.area_px * scale**2,
        )
        for a in artifacts or []
    ]
    return Detections(
        centroids_xy=centroids,
        areas_px=np.asarray(areas, float) * scale**2,
        members=np.asarray(members, int),
        artifacts=scaled_artifacts,
        labels=labels.astype(np.int32),
        artifact_labels=artifact_labels,
        scale=scale,
    )
