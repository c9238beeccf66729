"""Bring an image to the working scale of the classical methods (about 2 µm per pixel)."""

from __future__ import annotations

import cv2
import numpy as np

WORKING_PIXEL_UM = 2.0


def to_working_scale(
    image: np.ndarray, pixel_size_um: float, target_um: float = WORKING_PIXEL_UM
) -> tuple[np.ndarray, float]:
    """Area-average `image` down to about `target_um` per pixel if it is finer.

    Returns the image and the scale (original pixels per working pixel, >= 1). Coarser
    images are returned as they are: upsampling adds no information.
    """
    factor = target_um / pixel_size_um
    if factor < 1.25:
        return image, 1.0
    height, width = image.shape[:2]
    size = (max(int(round(width / factor)), 1), max(int(round(height / factor)), 1))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, width / size[0]
