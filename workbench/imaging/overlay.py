"""Draw what was found on top of the image: crystals, agglomerates, removed imperfections.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.pipeline import analyze
>>> from workbench.imaging.overlay import draw_overlay
>>> image = np.full((128, 128), 200, np.uint8)
>>> draw_overlay(image, analyze(image)).shape
(128, 128, 3)
"""

from __future__ import annotations

import cv2
import numpy as np

from workbench.imaging.io import LoadedImage, to_gray_float

# RGB colours, told apart also by people with red-green colour blindness.
CRYSTAL_RGB = (0, 200, 255)
AGGLOMERATE_RGB = (255, 140, 0)
IMPERFECTION_RGB = (230, 0, 230)
UNCERTAIN_RGB = (220, 0, 0)  # a frame to check by eye


def draw_overlay(image, report) -> np.ndarray:
    """Outline crystals, agglomerates (with their estimated crystal number) and removed
    imperfections, with a legend.

    Parameters
    ----------
    image : ndarray or LoadedImage
        The analysed image (gray or RGB, any dtype).
    report : CrystalReport
        The report :func:`workbench.imaging.pipeline.analyze` returned for it.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        RGB picture.
    """
    gray = image.pixels if isinstance(image, LoadedImage) else to_gray_float(image)
    canvas = cv2.cvtColor((np.clip(gray, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2RGB)
    detections = report.detections
    shape = gray.shape
    thickness = max(1, int(round(max(shape) / 1500)))
    if detections is not None and detections.labels is not None:
        labels = _to_shape(detections.labels, shape)
        agglomerate_ids = np.flatnonzero(detections.members > 1) + 1
        is_agglomerate = np.isin(labels, agglomerate_ids)
        _outline(canvas, np.where(is_agglomerate, 0, labels), CRYSTAL_RGB, thickness)
        _outline(canvas, np.where(is_agglomerate, labels, 0), AGGLOMERATE_RGB, thickness)
        _member_counts(canvas, detections, thickness)
    if detections is not None and detections.artifact_labels is not None:
        _outline(canvas, _to_shape(detections.artifact_labels, shape), IMPERFECTION_RGB, thickness)
    _legend(canvas, report)
    return canvas


def _to_shape(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if labels.shape == shape:
        return labels
    return cv2.resize(labels.astype(np.int32), shape[::-1], interpolation=cv2.INTER_NEAREST)


def _outline(canvas: np.ndarray, labels: np.ndarray, colour: tuple[int, int, int], width: int):
    """Paint the inner boundary of every labelled region."""
    as_float = labels.astype(np.float32)
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    edge = (labels > 0) & (
        (cv2.erode(as_float, kernel) != as_float) | (cv2.dilate(as_float, kernel) != as_float)
    )
    canvas[edge] = colour


def _member_counts(canvas: np.ndarray, detections, thickness: int) -> None:
    """Write the estimated number of crystals beside each agglomerate."""
    scale = 0.35 * thickness
    for (x, y), members in zip(detections.centroids_xy, detections.members, strict=True):
        if members > 1:
            cv2.putText(canvas, str(int(members)), (int(x) + 4 * thickness, int(y)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, AGGLOMERATE_RGB, thickness, cv2.LINE_AA)


def _legend(canvas: np.ndarray, report) -> None:
    lines = [
        (f"crystals: {report.count}  particles: {report.particles}", CRYSTAL_RGB),
        (f"agglomerates: {report.agglomerates}", AGGLOMERATE_RGB),
        (f"imperfections removed: {report.artifacts_removed}", IMPERFECTION_RGB),
    ]
    uncertainty = report.uncertainty
    if uncertainty is not None:
        check = f"  CHECK: {uncertainty.flag}" if uncertainty.flag else ""
        lines.append((f"count range: {uncertainty.low}-{uncertainty.high}{check}",
                      UNCERTAIN_RGB if uncertainty.flag else CRYSTAL_RGB))
    scale = max(0.4, canvas.shape[1] / 4000)
    weight = max(1, int(round(scale * 1.5)))
    sizes = [cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, weight)[0] for text, _ in lines]
    step = int(max(h for _, h in sizes) * 1.8)
    swatch = step // 2
    width = max(w for w, _ in sizes) + swatch + 24
    cv2.rectangle(canvas, (4, 4), (4 + width, 12 + step * len(lines)), (255, 255, 255), -1)
    for row, (text, colour) in enumerate(lines):
        y = 4 + step * (row + 1)
        cv2.rectangle(canvas, (10, y - swatch), (10 + swatch, y), colour, -1)
        cv2.putText(canvas, text, (18 + swatch, y), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), weight, cv2.LINE_AA)
