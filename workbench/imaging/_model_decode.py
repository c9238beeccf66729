"""From the learned counter's maps to particles: crystals, agglomerates, imperfections.

Particles are the connected regions of the crystal + agglomerate classes. A region
is an agglomerate when the agglomerate class outweighs the single-crystal class over
it, or when it holds several heat peaks and the agglomerate class has a fair share of
it; an agglomerate holds as many primary crystals as it has peaks (at least 2), any
other region is one crystal. Heat peaks outside every region (a crystal under an
imperfection, or one the class map missed) still count, as single crystals drawn as
a disc of the image's median crystal area.
Imperfections are the connected regions of the imperfection classes, of the kind
that has most probability over the region.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.imaging._model_network import CLASSES
from workbench.imaging.detections import Artifact

# Chosen on seeded frames apart from the benchmark's: lower thresholds also find the
# lens where two crystals of an agglomerate overlap, higher ones miss small crystals.
PEAK_THRESHOLD = 0.55
# A peak must be the highest within this diameter (working px, 7 px = 14 µm): the
# centroids of two touching crystals are further apart than that.
PEAK_WINDOW = 7
# Regions smaller than this (working px: a 8 µm disc) are dust or noise; the smallest
# crystals are about 12 µm across.
MIN_REGION_PX = 12
MIN_IMPERFECTION_PX = 2
MULTI_PEAK_SHARE = 0.1
DEFAULT_CRYSTAL_AREA_PX = 300.0  # a 40 µm crystal at 2 µm/px, for images with no single
_CRYSTAL, _AGGLOMERATE = CLASSES.index("crystal"), CLASSES.index("agglomerate")
_FIRST_IMPERFECTION = CLASSES.index("agglomerate") + 1


@dataclass
class DecodedMaps:
    """Particles and imperfections on the working grid.

    Attributes
    ----------
    labels : ndarray of int32
        ``i + 1`` on the pixels of particle ``i``.
    members : ndarray of int, shape (N,)
        Primary crystals in each particle (>= 2 for an agglomerate).
    artifacts : list of Artifact
        Imperfections (working pixel coordinates and areas).
    artifact_labels : ndarray of int32
        ``j + 1`` on the pixels of ``artifacts[j]``.
    """

    labels: np.ndarray
    members: np.ndarray
    artifacts: list[Artifact]
    artifact_labels: np.ndarray


def heat_peaks(
    heat: np.ndarray, threshold: float = PEAK_THRESHOLD, window: int = PEAK_WINDOW
) -> np.ndarray:
    """(row, col) of the maxima of `heat` over `window` x `window` above `threshold`.

    Touching maxima of equal height (a flat top) are one peak, at their first pixel.
    """
    local_max = cv2.dilate(heat, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (window, window)))
    is_peak = ((heat >= local_max) & (heat > threshold)).astype(np.uint8)
    n, tops = cv2.connectedComponents(is_peak, connectivity=8)
    rows, cols = np.nonzero(tops)
    first = np.unique(tops[rows, cols], return_index=True)[1]
    return np.stack([rows[first], cols[first]], axis=1).reshape(-1, 2)


def decode_maps(heat: np.ndarray, probabilities: np.ndarray) -> DecodedMaps:
    """Particles and imperfections from the heat map and class probabilities (C, H, W)."""
    classes = probabilities.argmax(axis=0)
    particle = (classes == _CRYSTAL) | (classes == _AGGLOMERATE)
    n_regions, regions, stats, _ = cv2.connectedComponentsWithStats(
        particle.astype(np.uint8), connectivity=4
    )
    peaks = heat_peaks(heat, PEAK_THRESHOLD, PEAK_WINDOW)
    region_of_peak = regions[peaks[:, 0], peaks[:, 1]]
    peaks_per_region = np.bincount(region_of_peak, minlength=n_regions)[1:]
    flat = regions.ravel()
    agglomerate_mass = np.bincount(flat, probabilities[_AGGLOMERATE].ravel(), n_regions)[1:]
    crystal_mass = np.bincount(flat, probabilities[_CRYSTAL].ravel(), n_regions)[1:]
    areas = stats[1:, cv2.CC_STAT_AREA]

    # Single crystals never touch, so a region with several peaks is an agglomerate
    # unless the class map is quite sure it is one crystal (a long prism can show
    # two peaks).
    share = agglomerate_mass / np.maximum(agglomerate_mass + crystal_mass, 1e-6)
    is_agglomerate = (share > 0.5) | ((peaks_per_region > 1) & (share > MULTI_PEAK_SHARE))
    keep = areas >= MIN_REGION_PX
    members = np.where(is_agglomerate, np.maximum(peaks_per_region, 2), 1)[keep]

    table = np.zeros(n_regions, np.int32)
    table[1:][keep] = np.arange(1, int(keep.sum()) + 1)
    labels = table[regions]
    lone = peaks[region_of_peak == 0]
    single_areas = areas[keep][members == 1]
    disc_area = float(np.median(single_areas)) if single_areas.size else DEFAULT_CRYSTAL_AREA_PX
    for offset, (row, col) in enumerate(lone, start=int(keep.sum()) + 1):
        _label_disc(labels, row, col, np.sqrt(disc_area / np.pi), offset)
    artifacts, artifact_labels = _imperfections(classes, probabilities)
    return DecodedMaps(
        labels=labels,
        members=np.concatenate([members, np.ones(len(lone), int)]).astype(int),
        artifacts=artifacts,
        artifact_labels=artifact_labels,
    )


def _label_disc(labels: np.ndarray, row: int, col: int, radius: float, label: int) -> None:
    """Label a disc around (row, col) where no particle is yet (always the centre pixel)."""
    reach = int(np.ceil(radius))
    r0, r1 = max(0, row - reach), min(labels.shape[0], row + reach + 1)
    c0, c1 = max(0, col - reach), min(labels.shape[1], col + reach + 1)
    rr, cc = np.ogrid[r0:r1, c0:c1]
    window = labels[r0:r1, c0:c1]
    window[((rr - row) ** 2 + (cc - col) ** 2 <= radius**2) & (window == 0)] = label
    labels[row, col] = label


def _imperfections(
    classes: np.ndarray, probabilities: np.ndarray
) -> tuple[list[Artifact], np.ndarray]:
    mask = (classes >= _FIRST_IMPERFECTION).astype(np.uint8)
    n, regions, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    kept = np.flatnonzero(stats[1:, cv2.CC_STAT_AREA] >= MIN_IMPERFECTION_PX) + 1
    table = np.zeros(n, np.int32)
    table[kept] = np.arange(1, len(kept) + 1)
    flat = regions.ravel()
    mass = np.stack(
        [
            np.bincount(flat, probabilities[k].ravel(), n)
            for k in range(_FIRST_IMPERFECTION, len(CLASSES))
        ]
    )
    kinds = CLASSES[_FIRST_IMPERFECTION:]
    artifacts = [
        Artifact(
            kinds[int(mass[:, index].argmax())],
            (float(centroids[index, 0]), float(centroids[index, 1])),
            float(stats[index, cv2.CC_STAT_AREA]),
        )
        for index in kept
    ]
    return artifacts, table[regions]
