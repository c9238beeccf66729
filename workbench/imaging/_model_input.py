"""The learned counter's input: gray at a fixed working scale, flat-fielded.

Both training tiles and images to analyse go through :func:`to_working_scale` and
:func:`normalise_background`, so the network always sees crystals of the same size
in pixels (about 20 px for a 40 µm crystal) whatever camera took them, and a
background of 0 whatever the illumination.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

# 2 µm per working pixel: legacy images are used as they are, hires ones are shrunk
# 3.125x, which is what makes a 12 MP frame cheap to analyse.
WORKING_PIXEL_UM = 2.0
# Background = median over ~144 µm windows (wider than a typical crystal, so the
# translucent crystals and their dark rims do not pull it down).
_BACKGROUND_CELL_PX = 8
_BACKGROUND_CELLS = 9
# (gray / background - 1) is a few percent for crystal interiors and up to about
# -0.5 for dark rims; this gain brings that to unit scale.
_CONTRAST_GAIN = 5.0
_CLIP = 4.0


def working_scale(pixel_size_um: float) -> float:
    """How many image pixels make one working pixel (> 1 shrinks the image)."""
    return WORKING_PIXEL_UM / float(pixel_size_um)


def to_working_scale(gray: np.ndarray, pixel_size_um: float) -> np.ndarray:
    """Resample a gray image to :data:`WORKING_PIXEL_UM` per pixel, float32.

    Shrinking uses area averaging (cv2.INTER_AREA), which also averages the sensor
    noise away; enlarging (pixels coarser than 2 µm) is bilinear.
    """
    scale = working_scale(pixel_size_um)
    rows, cols = gray.shape[:2]
    size = (max(1, round(cols / scale)), max(1, round(rows / scale)))
    if size == (cols, rows):
        return np.asarray(gray, dtype=np.float32)
    interpolation = cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR
    return cv2.resize(np.asarray(gray, dtype=np.float32), size, interpolation=interpolation)


def normalise_background(working: np.ndarray) -> np.ndarray:
    """Divide by a robust background estimate and centre on 0, float32.

    The background is a median over coarse cells, so uneven illumination
    (vignetting, gradients) and the absolute exposure drop out.
    """
    rows, cols = working.shape
    cell = _BACKGROUND_CELL_PX
    coarse = cv2.resize(
        working, (max(1, cols // cell), max(1, rows // cell)), interpolation=cv2.INTER_AREA
    )
    coarse = ndimage.median_filter(coarse, size=_BACKGROUND_CELLS, mode="reflect")
    background = cv2.resize(coarse, (cols, rows), interpolation=cv2.INTER_LINEAR)
    np.maximum(background, 1e-3, out=background)
    normalised = working / background
    normalised -= 1.0
    normalised *= _CONTRAST_GAIN
    return np.clip(normalised, -_CLIP, _CLIP, out=normalised)


def prepare_input(gray: np.ndarray, pixel_size_um: float) -> np.ndarray:
    """Working-scale, background-normalised float32 image the network reads."""
    return normalise_background(to_working_scale(gray, pixel_size_um))
