"""What sample preparation adds besides crystals: bubbles, debris, fibres, scratches, dust.

- bubble: air trapped under the cover slip, a flattened lens of large negative index
  contrast: a broad black ring around a bright centre;
- debris: opaque, brownish, irregular (not convex) grains, sometimes against a crystal;
- fibre: a long curved translucent cylinder (cellulose), sometimes starting at a crystal;
- scratch: a straight groove in the slide across much of the field, faint, dark or bright;
- dust: small sharp dark specks on the slide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from workbench.lab.heldout._canvas import Patch
from workbench.lab.heldout._optics import Optics, blurred, supersampling, transmitted

KINDS = ("bubble", "debris", "fibre", "scratch", "dust")
RATES_PER_MM2 = {"bubble": 0.25, "debris": 0.8, "fibre": 0.2, "scratch": 0.12, "dust": 2.0}
TOUCHING = 0.35  # share of debris and fibres that start against a crystal


@dataclass(frozen=True)
class Imperfection:
    """One imperfection: its patch and what the truth records of it.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    patch : Patch
    length_um : float or None
        Length along its path (fibres and scratches).
    touches_crystal : bool
        Placed against a crystal on purpose.
    """

    kind: str
    patch: Patch
    length_um: float | None
    touches_crystal: bool


def draw_counts(
    rng: np.random.Generator, area_mm2: float, wanted: bool | Mapping[str, int]
) -> dict[str, int]:
    """How many of each kind: Poisson at the usual rates, none, or exactly as asked.

    Examples
    --------
    >>> draw_counts(np.random.default_rng(0), 5.0, {"bubble": 2})["bubble"]
    2
    """
    if wanted is False:
        return dict.fromkeys(KINDS, 0)
    if wanted is True:
        return {kind: int(rng.poisson(rate * area_mm2)) for kind, rate in RATES_PER_MM2.items()}
    return {kind: int(wanted.get(kind, 0)) for kind in KINDS}


def _fine_grid(lo: np.ndarray, size: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    cols = lo[0] + (np.arange(size[0] * k) + 0.5) / k - 0.5
    rows = lo[1] + (np.arange(size[1] * k) + 0.5) / k - 0.5
    return cols[None, :], rows[:, None]


def _area_average(values: np.ndarray, size: np.ndarray, k: int) -> np.ndarray:
    """Mean of each pixel's ``k x k`` sub-samples (float32 ``(size[1], size[0])``)."""
    values = values.astype(np.float32)
    return values if k == 1 else cv2.resize(values, tuple(size), interpolation=cv2.INTER_AREA)


def bubble(rng: np.random.Generator, centre: np.ndarray, ps: float, optics: Optics) -> Imperfection:
    """An air bubble of radius 8-70 µm, flattened between slide and cover slip."""
    radius_um = float(rng.uniform(8, 70))
    # Squeezed under the cover slip: a flat middle and a rounded edge (the meniscus).
    edge = rng.uniform(0.2, 0.6)
    margin = int(np.ceil((6 + 3 * optics.psf_um) / ps)) + 3
    lo = np.floor(centre - radius_um / ps).astype(int) - margin
    size = np.full(2, int(np.ceil(2 * radius_um / ps)) + 2 * margin + 1)
    k = supersampling(ps)
    x, y = _fine_grid(lo, size, k)
    r = np.hypot(x - centre[0], y - centre[1]) * ps / radius_um
    into_edge = np.clip((r - (1 - edge)) / edge, 0, 1)
    thickness = 2 * edge * radius_um * np.sqrt(1 - into_edge**2) * (r < 1)
    thickness = thickness.astype(np.float32)
    light = transmitted(
        thickness,
        ps / k,
        optics,
        optics.focus_um,
        index_contrast=-rng.uniform(0.2, 0.45),
        edge_round_um=0.5,
    )
    inside = _area_average(r < 1, size, k) >= 0.5
    light = blurred(_area_average(light, size, k), ps, optics, optics.focus_um)
    return Imperfection(
        "bubble", Patch(int(lo[1]), int(lo[0]), np.maximum(light, 1e-3), inside), None, False
    )


def debris(
    rng: np.random.Generator, centre: np.ndarray, ps: float, optics: Optics, touches: bool
) -> Imperfection:
    """An opaque brownish grain, 6-80 µm, with a lumpy outline and uneven density."""
    radius_um = float(np.exp(rng.uniform(np.log(3), np.log(40))))
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    bumps = sum(
        rng.uniform(0, 0.35 / m) * np.cos(m * angles + rng.uniform(0, 2 * np.pi))
        for m in range(2, 7)
    )
    radii = radius_um * (1 + bumps) / ps
    k = supersampling(ps)
    margin = int(np.ceil(3 * optics.psf_um / ps)) + 4
    lo = np.floor(centre - radii.max()).astype(int) - margin
    size = np.full(2, int(np.ceil(2 * radii.max())) + 2 * margin + 1)
    outline = np.column_stack([np.cos(angles), np.sin(angles)]) * radii[:, None] + centre - lo
    inside = np.zeros((size[1] * k, size[0] * k), np.uint8)
    cv2.fillPoly(inside, [np.rint((outline * k + (k - 1) / 2) * 16).astype(np.int32)], 1, shift=4)
    density = cv2.GaussianBlur(inside.astype(np.float32), (0, 0), max(0.7 * k / ps, 0.5))
    texture = cv2.GaussianBlur(rng.random(inside.shape, np.float32), (0, 0), 1.5 * k)
    optical_density = rng.uniform(0.6, 3.0) * density * (0.6 + 0.8 * texture)
    mask = _area_average(inside, size, k) >= 0.5
    stain = _area_average(optical_density * rng.uniform(0.1, 0.5), size, k)
    light = _area_average(np.exp(-optical_density), size, k)
    light = blurred(light, ps, optics, optics.focus_um + rng.normal(0, 3))
    patch = Patch(int(lo[1]), int(lo[0]), np.maximum(light, 1e-3), mask, stain)
    return Imperfection("debris", patch, None, touches)


def fibre(
    rng: np.random.Generator,
    start: np.ndarray,
    ps: float,
    optics: Optics,
    touches: bool,
    max_length_um: float,
) -> Imperfection:
    """A curved translucent cylinder, 4-22 µm wide, 80-800 µm long."""
    width_um = float(rng.uniform(4, 22))
    length_um = float(min(rng.uniform(80, 800), max_length_um))
    steps = 40
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.12, steps))
    path = start + np.cumsum(
        np.column_stack([np.cos(heading), np.sin(heading)]) * length_um / steps / ps, axis=0
    )
    path = np.vstack([start, path])
    margin = int(np.ceil((width_um + 6 + 3 * optics.psf_um) / ps)) + 3
    lo = np.floor(path.min(axis=0)).astype(int) - margin
    size = np.ceil(path.max(axis=0) - lo).astype(int) + margin + 1
    line = np.full((size[1], size[0]), 255, np.uint8)
    cv2.polylines(line, [np.rint((path - lo) * 16).astype(np.int32)], False, 0, 1, shift=4)
    distance_um = cv2.distanceTransform(line, cv2.DIST_L2, 5) * ps
    half = width_um / 2
    thickness = 2 * np.sqrt(np.clip(half**2 - distance_um**2, 0, None)).astype(np.float32)
    light = transmitted(
        thickness,
        ps,
        optics,
        optics.focus_um,
        index_contrast=rng.uniform(0.03, 0.12),
        edge_round_um=0.8,
    )
    stain = (thickness * np.float32(rng.uniform(0.0, 0.01))).astype(np.float32)
    light = blurred(light * np.exp(-stain), ps, optics, optics.focus_um)
    patch = Patch(int(lo[1]), int(lo[0]), np.maximum(light, 1e-3), distance_um < half, stain)
    return Imperfection("fibre", patch, round(length_um, 2), touches)


def scratch(rng: np.random.Generator, shape: tuple[int, int], ps: float) -> Imperfection:
    """A straight groove in the slide, 0.8-3 µm wide, crossing a good part of the field."""
    height, width = shape
    middle = rng.uniform([0, 0], [width, height])
    angle = rng.uniform(0, np.pi)
    half_length = rng.uniform(0.2, 0.6) * np.hypot(width, height)
    ends = middle + np.outer([-1, 1], [np.cos(angle), np.sin(angle)]) * half_length
    ends = np.clip(ends, [0, 0], [width - 1, height - 1])
    width_px = max(rng.uniform(0.8, 3.0) / ps, 0.7)
    margin = int(np.ceil(4 * width_px)) + 2
    lo = np.floor(ends.min(axis=0)).astype(int) - margin
    size = np.ceil(ends.max(axis=0) - lo).astype(int) + margin + 1
    core = np.zeros((size[1], size[0]), np.float32)
    points = np.rint((ends - lo) * 16).astype(np.int32)
    cv2.line(core, points[0], points[1], 1.0, max(int(round(width_px)), 1), cv2.LINE_AA, 4)
    mask = core > 0.5
    groove = cv2.GaussianBlur(core, (0, 0), 0.6 * width_px + 0.5)
    halo = cv2.GaussianBlur(core, (0, 0), 2.5 * width_px + 1.0)
    sign = rng.choice([-1.0, 1.0])
    light = 1.0 + sign * rng.uniform(0.05, 0.2) * groove - sign * rng.uniform(0.0, 0.05) * halo
    patch = Patch(int(lo[1]), int(lo[0]), np.maximum(light, 1e-3).astype(np.float32), mask)
    return Imperfection("scratch", patch, round(float(2 * half_length * ps), 2), False)


def dust(rng: np.random.Generator, centre: np.ndarray, ps: float, optics: Optics) -> Imperfection:
    """A dark speck on the slide, 2-9 µm."""
    radius_um = float(rng.uniform(1, 4.5))
    margin = int(np.ceil((radius_um + 3 * optics.psf_um) / ps)) + 3
    lo = np.floor(centre).astype(int) - margin
    size = np.full(2, 2 * margin + 1)
    x, y = _fine_grid(lo, size, 1)
    r_um = np.hypot(x - centre[0], y - centre[1]) * ps
    inside = r_um < max(radius_um, 0.5 * ps)
    light = np.exp(-rng.uniform(0.4, 2.0) * np.clip(1.2 - r_um / radius_um, 0, 1)).astype(
        np.float32
    )
    light = blurred(light, ps, optics, optics.focus_um)
    return Imperfection(
        "dust", Patch(int(lo[1]), int(lo[0]), np.maximum(light, 1e-3), inside), None, False
    )


def scatter(
    rng: np.random.Generator,
    counts: Mapping[str, int],
    shape: tuple[int, int],
    ps: float,
    optics: Optics,
    occupied: np.ndarray,
    crystal_outlines_px: list[np.ndarray],
) -> list[Imperfection]:
    """Draw every imperfection; bubbles and free debris avoid crystals, some touch them.

    Parameters
    ----------
    occupied : np.ndarray
        uint8 ``(H, W)``, 1 where a crystal lies.
    crystal_outlines_px : list of np.ndarray
        Crystal silhouettes in frame pixels (x, y), for debris and fibres placed against one.
    """
    height, width = shape
    out: list[Imperfection] = []

    def free_spot(radius_px: float) -> np.ndarray:
        for _ in range(30):
            spot = rng.uniform([0, 0], [width, height])
            r0, c0 = (np.maximum(spot[::-1] - radius_px, 0)).astype(int)
            r1, c1 = (spot[::-1] + radius_px).astype(int) + 1
            if not occupied[r0:r1, c0:c1].any():
                return spot
        return spot

    def against_crystal() -> np.ndarray:
        outline = crystal_outlines_px[int(rng.integers(len(crystal_outlines_px)))]
        vertex = outline[int(rng.integers(len(outline)))]
        outward = vertex - outline.mean(axis=0)
        return vertex + outward / (np.linalg.norm(outward) + 1e-9) * rng.uniform(0, 3 / ps)

    for kind in KINDS:
        for _ in range(counts[kind]):
            touches = (
                kind in ("debris", "fibre")
                and bool(crystal_outlines_px)
                and (rng.random() < TOUCHING)
            )
            spot = against_crystal() if touches else free_spot(40 / ps)
            if kind == "bubble":
                out.append(bubble(rng, spot, ps, optics))
            elif kind == "debris":
                out.append(debris(rng, spot, ps, optics, touches))
            elif kind == "fibre":
                out.append(fibre(rng, spot, ps, optics, touches, 0.6 * min(shape) * ps))
            elif kind == "scratch":
                out.append(scratch(rng, shape, ps))
            else:
                out.append(dust(rng, spot, ps, optics))
    return out
