"""Simple counting methods people would use instead, measured beside ours.

- :func:`detect_otsu` is ImageJ's *Analyze Particles* with its defaults: Otsu
  threshold on the gray image, dark objects, fill holes, drop specks of a few
  pixels; every connected component is one particle and one crystal.
- :func:`detect_blob_log` is scikit-image's Laplacian-of-Gaussian blob detector on
  an edge image (local deviation from the background, smoothed), with its
  threshold and sigmas tuned on synthetic frames; every blob is one crystal.

Both share the signature of every counting method, ``(gray, camera) -> Detections``,
and run at the same working scale as the classical method (about 2 µm per pixel).

Examples
--------
>>> import numpy as np, cv2
>>> from workbench.camera import get_camera
>>> image = np.full((200, 200), 0.8, np.float32)
>>> _ = cv2.circle(image, (100, 100), 10, 0.3, -1)
>>> len(detect_otsu(image, get_camera("legacy")).members)
1
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi
from skimage.feature import blob_log
from skimage.filters import threshold_otsu

from workbench.camera import CameraProfile
from workbench.imaging._morphology import label
from workbench.imaging.detections import Detections, detections_from_labels
from workbench.imaging.working_scale import near_working_scale

OTSU_MIN_SIZE_PX = 5  # ImageJ users set "size" to drop specks of a few pixels
# Tuned for the best counting accuracy on synthetic legacy frames (seeds apart from the
# benchmark's): smaller radii or thresholds find several blobs per crystal rim.
LOG_THRESHOLD = 0.03
LOG_MIN_RADIUS_UM = 24.0
LOG_MAX_RADIUS_UM = 50.0


def detect_otsu(image: np.ndarray, camera: CameraProfile) -> Detections:
    """ImageJ-style Otsu threshold + connected components; each component one crystal.

    Examples
    --------
    >>> from workbench.camera import get_camera
    >>> detect_otsu(np.full((100, 100), 0.5, np.float32), get_camera("legacy")).members.size
    0
    """
    work, scale = near_working_scale(np.asarray(image, np.float32), camera.pixel_size_um)
    if float(work.max() - work.min()) < 1e-6:
        return detections_from_labels(np.zeros(work.shape, np.int32), np.zeros(0, int), scale)
    dark = ndi.binary_fill_holes(work < threshold_otsu(work))
    labels, count = label(dark)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = np.flatnonzero(sizes >= OTSU_MIN_SIZE_PX)
    keep = keep[keep > 0]
    lookup = np.zeros(count + 1, np.int32)
    lookup[keep] = np.arange(1, keep.size + 1)
    return detections_from_labels(lookup[labels], np.ones(keep.size, int), scale)


def detect_blob_log(image: np.ndarray, camera: CameraProfile) -> Detections:
    """Laplacian-of-Gaussian blobs on the smoothed edge image; each blob one crystal.

    Examples
    --------
    >>> from workbench.camera import get_camera
    >>> image = np.full((200, 200), 0.8, np.float32)
    >>> _ = cv2.circle(image, (100, 100), 10, 0.5, 2)
    >>> len(detect_blob_log(image, get_camera("legacy")).members)
    1
    """
    work, scale = near_working_scale(np.asarray(image, np.float32), camera.pixel_size_um)
    pixel_size_um = camera.pixel_size_um * scale
    background = cv2.GaussianBlur(work, (0, 0), 25.0 / pixel_size_um)
    deviation = cv2.GaussianBlur(np.abs(work / np.maximum(background, 1e-3) - 1.0), (0, 0), 1.0)
    # The mean absolute noise is not zero: measure it on the frame and take it off.
    edges = np.clip(deviation - np.median(deviation), 0.0, None)
    # Blob radius = sigma * sqrt(2).
    radii_px = np.array([LOG_MIN_RADIUS_UM, LOG_MAX_RADIUS_UM]) / pixel_size_um
    blobs = blob_log(
        edges,
        min_sigma=radii_px[0] / np.sqrt(2),
        max_sigma=radii_px[1] / np.sqrt(2),
        num_sigma=6,
        threshold=LOG_THRESHOLD,
        overlap=0.5,
    )
    labels = np.zeros(work.shape, np.int32)
    for index, (row, col, sigma) in enumerate(blobs, start=1):
        cv2.circle(
            labels,
            (int(round(col)), int(round(row))),
            int(round(sigma * np.sqrt(2))),
            int(index),
            -1,
        )
    detections = detections_from_labels(labels, np.ones(len(blobs), int), scale)
    # A disc may be partly hidden by a later one; report the blob's own centre and size.
    if len(blobs):
        detections.centroids_xy = (blobs[:, [1, 0]] + 0.5) * scale - 0.5
        detections.areas_px = np.pi * (blobs[:, 2] * np.sqrt(2)) ** 2 * scale**2
    return detections
