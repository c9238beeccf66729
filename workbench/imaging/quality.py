"""Is a frame fit to be counted? A quality gate that runs before any counter.

:func:`assess_quality` measures a gray frame at the classical working scale (about
2 µm per pixel) and refuses it, with one reason, when it is too large, too dark or
too bright, clipped, too noisy, without contrast, out of focus, or without anything
that looks like a crystal (pure noise, an empty or blank slide). A refused frame is
not counted: a counter fed noise returns hundreds of "crystals" after a long search,
and a count of 0 on a black frame says nothing about the sample.

Every threshold is a named constant below, set from measurements (the comments give
them): synthetic frames of both cameras all pass, and each limit sits between them and
degraded copies (noise added, blurred, darkened, brightened, washed out) on which the
classical counter's count moves by more than about 5 % (where the two overlap, the
limit refuses only the clear cases). The gate takes 50-100 ms on a legacy or
a 12 MP hires frame (it works on a copy reduced to about 2 µm per pixel), a tenth or
less of the time to count it.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.quality import assess_quality
>>> verdict = assess_quality(np.zeros((256, 256), np.float32), "legacy")
>>> verdict.ok, verdict.reason
(False, 'too dark (median level 0.00, need at least 0.1)')
"""

from __future__ import annotations

from dataclasses import dataclass
from time import perf_counter

import cv2
import numpy as np

from workbench.camera import CameraProfile, get_camera
from workbench.imaging.io import MAX_IMAGE_PIXELS, MIN_SIDE_PX
from workbench.imaging.working_scale import WORKING_PIXEL_UM

# Each limit below sits between the worst synthetic frame (80 frames of ``workbench
# synth``: legacy and hires, default and wide domain, 5-60 crystals per mm², raw and
# JPEG) and the first degraded copy of a synthetic legacy frame (131 and 52 crystals)
# where the classical counter's count moved by more than about 5 %.
#
# Exposure: median gray level (1 = full scale). Brightfield frames are a bright
# background with darker crystals; synthetic ones (both renderers) sit at 0.46-0.92.
# Darkened to 0.11-0.13 (8-bit) both frames still count exactly; at 0.08 faint rims
# are a few levels deep and the counts go to 1.5 and 2.4 times the truth. Black is 0.
MIN_LEVEL = 0.10
# Synthetic maximum 0.92; brightened to 0.965 a frame counts exactly; at 1.0 (half the
# frame or more clipped) the counts drop by 4 and 12 %: crystals brighter than the
# background (about a third have a bright interior) vanish into the clipped white.
MAX_LEVEL = 0.97
# Saturation: share of pixels within half an 8-bit level of 0 or 1. Synthetic frames
# clip at most 8.5 % (wide domain, bright light); 13 % clipped still counts exactly,
# 51 % loses 4 %, 98 % loses 12 %. This catches glare or a dark clipped half even when
# the median level looks right.
MAX_CLIPPED_SHARE = 0.25
CLIP_MARGIN = 0.5 / 255
# Noise: standard deviation of pixel noise at working scale over the median level.
# Synthetic frames reach 0.034 (wide domain: few electrons, strong read noise). With
# Gaussian noise added, 0.043 and 0.049 count within 4 %, 0.054 is 8 % over and 0.064
# 19 % over; pure noise (8-bit, 16-bit or float) measures 0.6 and Gaussian noise of
# sigma 0.1 at mid-gray 0.2.
MAX_RELATIVE_NOISE = 0.05
# Contrast: the strongest crystal-scale detail (99.9th percentile of |detail|, see
# below) over the median level. Synthetic frames of both renderers measure 0.11-0.69;
# the lowest are the sparsest (a 3 MP hires crop holding six faint crystals), since a
# frame's strongest detail is that of its few crystals. With contrast reduced to 0.15
# of the original (0.064, 0.073) the counts drop by 31-59 %; to 0.2 (about 0.09) by
# 31-41 %; to 0.25 (0.108, 0.122) by 25 %; to 0.35 (0.150, 0.171) by 8-13 %. Sparse
# fit frames and washed-out ones overlap from 0.11 up, so the limit refuses only
# what is clearly washed out; a blank slide measures 0.01-0.03.
MIN_CONTRAST = 0.09
# Focus: how much a frame's strong edges weaken when smoothed from 2 to 6 µm, pixel by
# pixel (the median over pixels whose 2 µm gradient is at least 0.3 of the frame's
# 99.99th percentile; a sharp step gives 3). Over 64 frames of both renderers and
# cameras, 10 and 50 crystals/mm²: 2.59-6.4 as rendered; blurred by 3 µm (sigma)
# 1.62-3.05, counts within 6 %; by 4 µm 1.42-2.34, within 2-8 %; by 6 µm 1.21-1.65,
# 10-15 % lost; by 8 µm 1.14-1.37, 19-22 % lost. A refused frame loses its whole count,
# so only the clearly defocused are refused. The first measure, the 99.9th percentile
# of the whole frame's gradient fine over coarse, fell on weak edges where crystals
# were few: a sparse 0.3 µm/px frame measured 1.37 and was refused, while 6 µm
# blurred frames reached 1.61.
MIN_SHARPNESS = 1.5
STRONG_EDGE_SHARE = 0.3
# Crystal-like structure: share of the frame whose detail exceeds both STRUCTURE_SNR
# times the noise expected at that scale and half of MIN_CONTRAST. Noise of any
# strength has none (a 6-sigma excursion is one pixel in 500 million); the sparsest
# synthetic frames have 0.76 %.
STRUCTURE_SNR = 6.0
MIN_STRUCTURE_SHARE = 0.001
# Scales in µm: the fine blur that keeps rims, the coarse one that removes the
# background (illumination) but keeps whole crystals (10-150 µm) in the detail.
DETAIL_SIGMA_UM = 2.0
BACKGROUND_SIGMA_UM = 24.0
# A white-noise field smoothed by a Gaussian of sigma s pixels keeps 1 / (2 sqrt(pi) s)
# of its standard deviation.
_SMOOTHED_NOISE_GAIN = 1.0 / (2.0 * np.sqrt(np.pi))
_SAMPLE_PIXELS = 150_000  # pixels sampled for percentiles and clipping


@dataclass(frozen=True)
class QualityVerdict:
    """Whether a frame is fit to count, why not, and what was measured.

    Attributes
    ----------
    ok : bool
        True when every check passed.
    reason : str
        ``"ok"``, or the first failed check with its measured value and limit.
    level : float
        Median gray level (0-1).
    clipped_share : float
        Share of pixels clipped at 0 or 1.
    relative_noise : float
        Pixel noise over the median level.
    contrast : float
        Strongest crystal-scale detail over the median level.
    sharpness : float
        Strong edges' gradient at fine over coarse smoothing (higher is sharper).
    structure_share : float
        Share of the frame with detail well above noise.
    seconds : float
        Time the assessment took.

    Examples
    --------
    >>> verdict = QualityVerdict(False, "too dark (median level 0.02, need at least 0.1)", 0.02)
    >>> verdict.ok, verdict.level
    (False, 0.02)
    """

    ok: bool
    reason: str
    level: float = 0.0
    clipped_share: float = 0.0
    relative_noise: float = 0.0
    contrast: float = 0.0
    sharpness: float = 0.0
    structure_share: float = 0.0
    seconds: float = 0.0


def assess_quality(gray: np.ndarray, camera: str | CameraProfile) -> QualityVerdict:
    """Measure a gray frame and decide whether it is fit to be counted.

    Parameters
    ----------
    gray : ndarray of float32, shape (H, W)
        Gray levels in [0, 1] (as :func:`workbench.imaging.io.to_gray_float` gives).
    camera : str or CameraProfile
        The camera profile; its pixel size sets the working scale and the detail scales.

    Returns
    -------
    QualityVerdict
        ``ok`` with reason ``"ok"``, or the first failed check as the reason.

    Examples
    --------
    >>> import numpy as np
    >>> noise = np.random.default_rng(0).random((512, 640), np.float32)
    >>> assess_quality(noise, "legacy").reason
    'too noisy (noise 0.61 of the level, at most 0.05)'
    """
    started = perf_counter()
    profile = camera if isinstance(camera, CameraProfile) else get_camera(camera)
    rows, cols = gray.shape[:2]
    if rows * cols > MAX_IMAGE_PIXELS:
        reason = (
            f"too large ({cols} x {rows} pixels; at most {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels)"
        )
        return QualityVerdict(False, reason, seconds=perf_counter() - started)
    if min(rows, cols) < MIN_SIDE_PX:
        reason = f"too small ({cols} x {rows} pixels; need at least {MIN_SIDE_PX} on each side)"
        return QualityVerdict(False, reason, seconds=perf_counter() - started)
    work, work_pixel_um = _working_image(gray, profile.pixel_size_um)
    level, clipped_share = _level_and_clipping(gray)
    safe_level = max(level, CLIP_MARGIN)
    noise = _pixel_noise(work)
    fine = _blur(work, DETAIL_SIGMA_UM / work_pixel_um)
    detail = _sample(np.abs(fine - _background(work, BACKGROUND_SIGMA_UM / work_pixel_um)))
    noise_in_detail = noise * _SMOOTHED_NOISE_GAIN * work_pixel_um / DETAIL_SIGMA_UM
    threshold = max(STRUCTURE_SNR * noise_in_detail, 0.5 * MIN_CONTRAST * safe_level)
    measured = {
        "level": level,
        "clipped_share": clipped_share,
        "relative_noise": noise / safe_level,
        "contrast": float(np.percentile(detail, 99.9)) / safe_level,
        "sharpness": _sharpness(fine, work_pixel_um),
        "structure_share": float(np.mean(detail > threshold)),
    }
    reason = _first_failure(**measured)
    rounded = {name: round(float(value), 4) for name, value in measured.items()}
    return QualityVerdict(reason == "ok", reason, **rounded, seconds=perf_counter() - started)


def _first_failure(
    level: float,
    clipped_share: float,
    relative_noise: float,
    contrast: float,
    sharpness: float,
    structure_share: float,
) -> str:
    """The reason of the first failed check, in the order a person would look, or "ok"."""
    if level < MIN_LEVEL:
        return f"too dark (median level {level:.2f}, need at least {MIN_LEVEL})"
    if level > MAX_LEVEL:
        return f"too bright (median level {level:.2f}, at most {MAX_LEVEL})"
    if clipped_share > MAX_CLIPPED_SHARE:
        return f"saturated ({clipped_share:.0%} of pixels clipped, at most {MAX_CLIPPED_SHARE:.0%})"
    if relative_noise > MAX_RELATIVE_NOISE:
        return f"too noisy (noise {relative_noise:.2f} of the level, at most {MAX_RELATIVE_NOISE})"
    if contrast < MIN_CONTRAST:
        return f"no contrast (strongest detail {contrast:.3f} of the level, need {MIN_CONTRAST})"
    if sharpness < MIN_SHARPNESS:
        return f"out of focus (sharpness {sharpness:.2f}, need at least {MIN_SHARPNESS})"
    if structure_share < MIN_STRUCTURE_SHARE:
        return (
            f"no crystal-like structure ({structure_share:.2%} of the frame stands out "
            f"from noise, need {MIN_STRUCTURE_SHARE:.1%})"
        )
    return "ok"


def _working_image(gray: np.ndarray, pixel_size_um: float) -> tuple[np.ndarray, float]:
    """`gray` area-averaged by a whole factor to about :data:`WORKING_PIXEL_UM` per pixel.

    A whole factor takes OpenCV's fast path (10 ms for 12 MP, six times less than an
    exact 2 µm): the gate's measures need the scale of a rim, not the counter's exact one.
    Returns the image and its pixel size in µm.
    """
    # At least 16 working pixels a side, however fine the pixels.
    factor = max(1, min(int(WORKING_PIXEL_UM / pixel_size_um), min(gray.shape[:2]) // 16))
    if factor == 1:
        return gray, pixel_size_um
    rows, cols = (gray.shape[0] // factor) * factor, (gray.shape[1] // factor) * factor
    size = (cols // factor, rows // factor)
    return cv2.resize(
        gray[:rows, :cols], size, interpolation=cv2.INTER_AREA
    ), pixel_size_um * factor


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing with a kernel of +-3 sigma."""
    size = 2 * int(np.ceil(3.0 * sigma)) + 1
    return cv2.GaussianBlur(image, (size, size), sigma)


def _background(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing by a large `sigma`, done at a quarter of the size (the same to 1 %)."""
    rows, cols = image.shape[:2]
    if min(rows, cols) < 64:
        return _blur(image, sigma)
    small = cv2.resize(
        image[: rows // 4 * 4, : cols // 4 * 4],
        (cols // 4, rows // 4),
        interpolation=cv2.INTER_AREA,
    )
    return cv2.resize(_blur(small, sigma / 4.0), (cols, rows), interpolation=cv2.INTER_LINEAR)


def _sample(image: np.ndarray) -> np.ndarray:
    """An even grid of about :data:`_SAMPLE_PIXELS` pixels of `image` (for percentiles)."""
    stride = max(1, int(np.ceil(np.sqrt(image.size / _SAMPLE_PIXELS))))
    return image[::stride, ::stride]


def _level_and_clipping(gray: np.ndarray) -> tuple[float, float]:
    """Median level and share of pixels clipped at 0 or 1, on the frame's own pixels."""
    sample = _sample(gray)
    clipped = (sample <= CLIP_MARGIN) | (sample >= 1.0 - CLIP_MARGIN)
    return float(np.median(sample)), float(np.mean(clipped))


def _pixel_noise(image: np.ndarray) -> float:
    """Standard deviation of pixel noise: robust spread of neighbour differences / sqrt 2.

    Edges are rare among neighbour pairs, so the median absolute deviation of the
    differences measures the noise, not the scene.
    """
    differences = np.diff(_sample(image[::2]) if image.shape[0] > 4 else image, axis=1)
    spread = np.median(np.abs(differences - np.median(differences)))
    return float(1.4826 * spread / np.sqrt(2.0))


def _sharpness(fine: np.ndarray, work_pixel_um: float) -> float:
    """Median, over the strong edges of `fine`, of the gradient over that after smoothing
    to three times its scale (:data:`MIN_SHARPNESS` tells how it was set)."""
    coarse = _blur(fine, 2.0 * np.sqrt(2.0) * DETAIL_SIGMA_UM / work_pixel_um)
    gradient_fine = _gradient(fine)
    strong = gradient_fine >= STRONG_EDGE_SHARE * np.percentile(_sample(gradient_fine), 99.99)
    ratios = gradient_fine[strong] / np.maximum(_gradient(coarse)[strong], 1e-6)
    return float(np.median(ratios))


def _gradient(image: np.ndarray) -> np.ndarray:
    """Gradient magnitude (per pixel) by Sobel."""
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    return cv2.magnitude(gx, gy)
