"""The working scale: about 2 µm per pixel, where every counting method does its work.

Crystals are 12-120 µm across, so 2 µm per pixel resolves their rims while a 12 MP
``hires`` frame (0.64 µm/px) shrinks 3.125x to 1280 x 960, which is what makes it
cheap to count. Two resamplings, for two kinds of method:

- :func:`reduce_to_working_scale` (classical method and baselines, tuned on legacy
  frames at 2 µm/px): only images clearly finer than the working scale are
  area-averaged down; coarser ones are used as they are, since enlarging adds no
  information. Returns the scale actually applied.
- :func:`resample_to_working_scale` (learned counter): every image, finer or coarser,
  is brought to exactly :data:`WORKING_PIXEL_UM`, so the network always sees crystals
  of the same size in pixels.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.working_scale import (
...     reduce_to_working_scale, resample_to_working_scale)
>>> frame = np.zeros((3000, 4000), np.float32)
>>> small, scale = reduce_to_working_scale(frame, pixel_size_um=0.64)
>>> small.shape, scale
((960, 1280), 3.125)
>>> resample_to_working_scale(np.zeros((100, 100), np.float32), pixel_size_um=4.0).shape
(200, 200)
"""

from __future__ import annotations

import cv2
import numpy as np

WORKING_PIXEL_UM = 2.0
# The classical method keeps images up to this much finer than the working scale as
# they are (legacy frames at 2 µm/px; a slightly finer camera loses nothing).
MIN_REDUCTION = 1.25


def pixels_per_working_pixel(pixel_size_um: float) -> float:
    """Image pixels per working pixel, nominal (> 1 shrinks the image).

    Examples
    --------
    >>> pixels_per_working_pixel(0.64)
    3.125
    """
    return WORKING_PIXEL_UM / float(pixel_size_um)


def reduce_to_working_scale(image: np.ndarray, pixel_size_um: float) -> tuple[np.ndarray, float]:
    """Area-average `image` down to about :data:`WORKING_PIXEL_UM` per pixel if it is finer.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
        Any dtype cv2.resize takes; returned unchanged (same object) when not reduced.
    pixel_size_um : float
        Pixel side of `image` in µm.

    Returns
    -------
    reduced : ndarray
        The image at working scale, or `image` itself when it is less than
        :data:`MIN_REDUCTION` times finer than the working scale.
    scale : float
        Image pixels per pixel of `reduced` (>= 1), the actual ratio of the widths.

    Examples
    --------
    >>> image = np.ones((1024, 1280), np.float32)
    >>> reduce_to_working_scale(image, 2.0)[1], reduce_to_working_scale(image, 3.0)[1]
    (1.0, 1.0)
    """
    factor = pixels_per_working_pixel(pixel_size_um)
    if factor < MIN_REDUCTION:
        return image, 1.0
    height, width = image.shape[:2]
    size = (max(int(round(width / factor)), 1), max(int(round(height / factor)), 1))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return small, width / size[0]


def resample_to_working_scale(gray: np.ndarray, pixel_size_um: float) -> np.ndarray:
    """Resample a gray image to exactly :data:`WORKING_PIXEL_UM` per pixel, float32.

    Shrinking uses area averaging (cv2.INTER_AREA), which also averages the sensor
    noise away; enlarging (pixels coarser than the working scale) is bilinear.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Gray image, any real dtype.
    pixel_size_um : float
        Pixel side of `gray` in µm.

    Returns
    -------
    ndarray of float32
        About ``H / s`` x ``W / s`` with ``s = pixels_per_working_pixel(pixel_size_um)``.

    Examples
    --------
    >>> resample_to_working_scale(np.ones((1024, 1280)), 2.0).dtype
    dtype('float32')
    """
    scale = pixels_per_working_pixel(pixel_size_um)
    rows, cols = gray.shape[:2]
    size = (max(1, round(cols / scale)), max(1, round(rows / scale)))
    if size == (cols, rows):
        return np.asarray(gray, dtype=np.float32)
    interpolation = cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR
    return cv2.resize(np.asarray(gray, dtype=np.float32), size, interpolation=interpolation)
