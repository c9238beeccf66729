"""The learned counter's input: gray at a fixed working scale, flat-fielded.

Both training tiles and images to analyse go through
:func:`~workbench.imaging.working_scale.resample_to_working_scale` and
:func:`normalise_background`, so the network always sees crystals of the same size
in pixels (about 20 px for a 40 µm crystal) whatever camera took them, and a
background of 0 whatever the illumination.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage

from workbench.imaging.working_scale import resample_to_working_scale

# Background = median over ~144 µm windows (wider than a typical crystal, so the
# translucent crystals and their dark rims do not pull it down).
_BACKGROUND_CELL_PX = 8
_BACKGROUND_CELLS = 9
# (gray / background - 1) is a few percent for crystal interiors and up to about
# -0.5 for dark rims; this gain brings that to unit scale.
_CONTRAST_GAIN = 5.0
_CLIP = 4.0


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
    return normalise_background(resample_to_working_scale(gray, pixel_size_um))
