"""One crystal as a patch of the frame: its thickness map through the microscope's optics."""

from __future__ import annotations

import cv2
import numpy as np

from workbench.lab.heldout._canvas import Patch
from workbench.lab.heldout._optics import Optics, blurred, supersampling, transmitted
from workbench.lab.heldout._solids import Solid, thickness_um


def crystal_patch(
    rng: np.random.Generator,
    solid: Solid,
    centre_xy: tuple[float, float],
    pixel_size_um: float,
    optics: Optics,
    defocus_um: float,
    edge_round_um: float,
) -> Patch:
    """Render `solid` with its centre at pixel ``centre_xy`` (x, y; pixel centres at integers).

    Thickness is sampled on a grid finer than the pixels when pixels are coarse, turned
    into transmitted light, averaged over each pixel and blurred. One crystal in three
    holds a few inclusions (small voids, imaged like tiny lenses).

    Examples
    --------
    >>> from workbench.lab.heldout._optics import draw_optics
    >>> from workbench.lab.heldout._solids import draw_solid
    >>> rng = np.random.default_rng(0)
    >>> p = crystal_patch(rng, draw_solid(rng, 40.0), (50.0, 50.0), 1.0, draw_optics(rng), 0.0, 2.0)
    >>> p.mask.sum() > 0.9 * np.pi * 20**2, p.transmission.dtype
    (True, dtype('float32'))
    """
    ps = pixel_size_um
    reach_um = 4 * edge_round_um + 3 * optics.psf_um + abs(defocus_um) * optics.blur_per_um
    margin = int(np.ceil(reach_um / ps)) + 3
    lo = np.floor(solid.outline.min(axis=0) / ps + centre_xy).astype(int) - margin
    hi = np.ceil(solid.outline.max(axis=0) / ps + centre_xy).astype(int) + margin
    width, height = hi - lo + 1
    k = supersampling(ps)
    cols = lo[0] + (np.arange(width * k) + 0.5) / k - 0.5
    rows = lo[1] + (np.arange(height * k) + 0.5) / k - 0.5
    x_um = ((cols - centre_xy[0]) * ps)[None, :]
    y_um = ((rows - centre_xy[1]) * ps)[:, None]
    thickness = thickness_um(solid, x_um, y_um)
    inside = thickness > 0
    if rng.random() < 1 / 3:
        thickness = _with_inclusions(rng, thickness, x_um, y_um, solid)
    light = transmitted(thickness, ps / k, optics, defocus_um, edge_round_um=edge_round_um)
    if k > 1:
        light = cv2.resize(light, (width, height), interpolation=cv2.INTER_AREA)
        inside = (
            cv2.resize(inside.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)
            >= 0.5
        )
    light = blurred(light, ps, optics, defocus_um)
    return Patch(int(lo[1]), int(lo[0]), np.maximum(light, 1e-3), inside)


def _with_inclusions(
    rng: np.random.Generator,
    thickness: np.ndarray,
    x_um: np.ndarray,
    y_um: np.ndarray,
    solid: Solid,
) -> np.ndarray:
    """`thickness` less a few spherical voids inside the crystal's outline."""
    size = np.sqrt(solid.area_um2)
    lo, hi = solid.outline.min(axis=0), solid.outline.max(axis=0)
    out = thickness.copy()
    for _ in range(int(rng.integers(1, 6))):
        cx, cy = rng.uniform(lo, hi) * 0.6 + 0.2 * (lo + hi)
        radius = rng.uniform(0.02, 0.08) * size
        r2 = (x_um - cx) ** 2 + (y_um - cy) ** 2
        void = 2 * np.sqrt(np.maximum(radius**2 - r2, 0.0)).astype(np.float32)
        out = np.where(out > 0, np.maximum(out - void, 0.25 * out), out)
    return out
