"""What the learned counter is trained to predict, made from synthetic ground truth.

From a :class:`workbench.synth.SyntheticImage`'s label image and truth records this
builds, at the working scale, the centroid heat map (a Gaussian of height 1 at each
primary crystal) and the class map (background, single crystal, agglomerate member, and
one class per imperfection kind).
"""

from __future__ import annotations

import cv2
import numpy as np

from workbench.imaging._model_network import CLASSES
from workbench.imaging.working_scale import WORKING_PIXEL_UM

PEAK_SIGMA_FRACTION = 0.3
PEAK_SIGMA_PX = 1.5  # the narrowest peak (small crystals), working px

_CLASS = {name: index for index, name in enumerate(CLASSES)}


def class_of_objects(objects: list[dict]) -> np.ndarray:
    """Lookup table: object id -> class index (0 for ids that are not drawn)."""
    table = np.zeros(max((o["id"] for o in objects), default=0) + 1, np.uint8)
    for record in objects:
        if record["kind"] == "crystal":
            member = record.get("agglomerate") is not None
            table[record["id"]] = _CLASS["agglomerate" if member else "crystal"]
        elif record["kind"] in _CLASS:
            table[record["id"]] = _CLASS[record["kind"]]
    return table


def class_map(
    labels: np.ndarray, objects: list[dict], working_shape: tuple[int, int]
) -> np.ndarray:
    """Class index per working pixel, uint8: the class covering most of its area."""
    classes = class_of_objects(objects)[labels]
    rows, cols = working_shape
    if classes.shape == (rows, cols):
        return classes
    fractions = np.stack(
        [
            cv2.resize(
                (classes == k).astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA
            )
            for k in range(len(CLASSES))
        ]
    )
    return fractions.argmax(axis=0).astype(np.uint8)


def heat_map(
    centroids_xy: np.ndarray, sigmas: np.ndarray, working_shape: tuple[int, int]
) -> np.ndarray:
    """Unit-height Gaussians at `centroids_xy` (working pixels), float32.

    Where two overlap the higher one wins, so touching crystals keep two peaks.
    """
    rows, cols = working_shape
    heat = np.zeros((rows, cols), np.float32)
    points = np.asarray(centroids_xy, dtype=np.float64).reshape(-1, 2)
    for (x, y), sigma in zip(points, np.asarray(sigmas, dtype=np.float64), strict=True):
        reach = int(np.ceil(3 * sigma))
        xs = np.arange(max(0, round(x) - reach), min(cols, round(x) + reach + 1))
        ys = np.arange(max(0, round(y) - reach), min(rows, round(y) + reach + 1))
        if xs.size == 0 or ys.size == 0:
            continue
        bump = np.outer(
            np.exp(-0.5 * ((ys - y) / sigma) ** 2), np.exp(-0.5 * ((xs - x) / sigma) ** 2)
        )
        window = heat[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1]
        np.maximum(window, bump.astype(np.float32), out=window)
    return heat


def crystal_peaks(objects: list[dict], scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (x, y) and peak width of every primary crystal, in working pixels.

    The width grows with the crystal (:data:`PEAK_SIGMA_FRACTION` of its radius,
    at least :data:`PEAK_SIGMA_PX`): where the centre of a long prism lies is less
    certain than for a small plate, and a peak too narrow for that splits in two.
    """
    crystals = [o for o in objects if o["kind"] == "crystal"]
    image_xy = np.asarray([o["centroid_xy"] for o in crystals], dtype=np.float64).reshape(-1, 2)
    radius = np.array([o["diameter_um"] for o in crystals], dtype=np.float64) / (
        2.0 * WORKING_PIXEL_UM
    )
    sigmas = np.maximum(PEAK_SIGMA_FRACTION * radius, PEAK_SIGMA_PX)
    # Pixel centres sit at integer coordinates on both grids.
    return (image_xy + 0.5) / scale - 0.5, sigmas


def target_maps(
    labels: np.ndarray, objects: list[dict], working_shape: tuple[int, int], scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Heat map (float32) and class map (uint8) at the working scale.

    Parameters
    ----------
    labels : ndarray of int, shape (H, W)
        Object id per image pixel (``SyntheticImage.labels``).
    objects : list of dict
        ``SyntheticImage.truth["objects"]``.
    working_shape : (rows, cols)
        Shape of the working-scale image.
    scale : float
        Image pixels per working pixel.
    """
    heat = heat_map(*crystal_peaks(objects, scale), working_shape)
    return heat, class_map(labels, objects, working_shape)
