"""Brightfield image of a transparent object from its thickness: refraction, defocus, blur.

Three effects of a thickness map ``t(x, y)`` (µm) of index contrast ``dn``:

- light crossing a sloped face is deflected by about ``dn * |grad t|`` radians; past the
  objective's acceptance angle it is lost, so steep faces image dark (the rim);
- out of focus by ``z``, the transport-of-intensity term ``1 - z * dn * laplacian(t)``
  turns edges into a bright/dark halo pair whose polarity flips with the sign of ``z``;
- absorption ``exp(-mu * t)``; then the point spread (diffraction) and a pillbox of
  radius proportional to ``|z|`` (geometric defocus).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Optics:
    """The microscope's settings for one frame.

    Attributes
    ----------
    index_contrast : float
        Refractive index of sugar minus that of the mounting medium.
    acceptance_rad : float
        Deflection at which transmitted light falls to 1/e of the background.
    stray : float
        Fraction of the light still reaching the camera when fully deflected.
    focus_um : float
        Distance of the focal plane from the crystals' mid-plane (its sign sets rim polarity).
    field_curvature_um : float
        Extra defocus at the corner of the field (grows with the squared radius).
    psf_um : float
        Gaussian sigma of the in-focus point spread, µm.
    blur_per_um : float
        Pillbox radius per µm of defocus (the condenser's numerical aperture).
    absorption_per_um : float
        Bulk absorption of sugar, per µm of thickness.
    """

    index_contrast: float
    acceptance_rad: float
    stray: float
    focus_um: float
    field_curvature_um: float
    psf_um: float
    blur_per_um: float
    absorption_per_um: float


def draw_optics(rng: np.random.Generator) -> Optics:
    """Random microscope settings (mounting medium, aperture, focus) for one frame.

    Examples
    --------
    >>> optics = draw_optics(np.random.default_rng(0))
    >>> 0.04 <= optics.index_contrast <= 0.16
    True
    """
    return Optics(
        # Sucrose (1.54) in saturated syrup (~1.49) up to isopropanol (1.38).
        index_contrast=float(rng.uniform(0.04, 0.16)),
        # About the objective's numerical aperture: 4x-10x objectives, NA 0.1-0.25.
        acceptance_rad=float(rng.uniform(0.06, 0.2)),
        stray=float(rng.uniform(0.1, 0.4)),
        focus_um=float(rng.normal(0.0, 6.0)),
        field_curvature_um=float(rng.uniform(0.0, 12.0)),
        psf_um=float(rng.uniform(0.5, 1.4)),
        blur_per_um=float(rng.uniform(0.04, 0.12)),
        absorption_per_um=float(rng.uniform(0.0, 0.0015)),  # sucrose is nearly clear
    )


def supersampling(pixel_size_um: float) -> int:
    """Sub-samples per pixel side used to draw edges (more on coarse pixels).

    Examples
    --------
    >>> supersampling(0.3), supersampling(2.0), supersampling(3.0)
    (1, 2, 3)
    """
    return int(min(3, max(1, np.ceil(pixel_size_um - 1e-9))))


def transmitted(
    thickness: np.ndarray,
    step_um: float,
    optics: Optics,
    defocus_um: float,
    *,
    index_contrast: float | None = None,
    edge_round_um: float = 1.0,
) -> np.ndarray:
    """Fraction of the background light reaching each point behind a transparent object.

    Parameters
    ----------
    thickness : np.ndarray
        float32 ``(h, w)``, µm; 0 around the object (leave a margin for the halo).
    step_um : float
        Grid spacing of `thickness`, µm.
    optics : Optics
    defocus_um : float
        This object's distance from the focal plane (signed).
    index_contrast : float, optional
        Overrides ``optics.index_contrast`` (an air bubble has a large negative one).
    edge_round_um : float
        Radius over which the object's edges are rounded; sets the rim's width.

    Returns
    -------
    np.ndarray
        float32 ``(h, w)``, positive; 1 where nothing is in the way (before blurring).

    Examples
    --------
    >>> t = np.zeros((41, 41), np.float32); t[10:31, 10:31] = 15.0
    >>> optics = draw_optics(np.random.default_rng(1))
    >>> out = transmitted(t, 1.0, optics, 0.0)
    >>> float(out[20, 20]) > float(out[20, 10])  # bright interior, dark rim
    True
    """
    dn = optics.index_contrast if index_contrast is None else index_contrast
    rounded = cv2.GaussianBlur(thickness, (0, 0), max(edge_round_um / step_um, 0.3))
    gy, gx = np.gradient(rounded, step_um)
    deflection = dn * np.hypot(gx, gy)
    kept = optics.stray + (1.0 - optics.stray) * np.exp(
        -((deflection / optics.acceptance_rad) ** 2)
    )
    laplacian = cv2.Laplacian(rounded, cv2.CV_32F) / step_um**2
    halo = np.clip(1.0 - defocus_um * dn * laplacian, 0.15, 2.5)
    absorbed = np.exp(-optics.absorption_per_um * thickness)
    return (kept * halo * absorbed).astype(np.float32)


def blurred(
    intensity: np.ndarray, pixel_size_um: float, optics: Optics, defocus_um: float
) -> np.ndarray:
    """`intensity` through the point spread and the defocus pillbox of radius ~ ``|z|``.

    Examples
    --------
    >>> img = np.ones((21, 21), np.float32); img[10, 10] = 0.0
    >>> out = blurred(img, 1.0, draw_optics(np.random.default_rng(0)), 20.0)
    >>> 0.0 < float(out[10, 10]) < 1.0
    True
    """
    radius_px = abs(defocus_um) * optics.blur_per_um / pixel_size_um
    out = intensity
    if radius_px >= 0.75:
        r = int(np.ceil(radius_px))
        yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
        disk = np.clip(radius_px + 0.5 - np.hypot(xx, yy), 0.0, 1.0).astype(np.float32)
        out = cv2.filter2D(out, -1, disk / disk.sum(), borderType=cv2.BORDER_REPLICATE)
    sigma_px = optics.psf_um / pixel_size_um
    if sigma_px >= 0.25:
        out = cv2.GaussianBlur(out, (0, 0), sigma_px, borderType=cv2.BORDER_REPLICATE)
    return out
