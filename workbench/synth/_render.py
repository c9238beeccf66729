"""Brightfield look of translucent crystals, rendered patch by patch in log-transmission.

The frame is ``illumination * prod(transmission of each object)``; in logs the product
is a sum, so every object adds its small patch of log-transmission into one array.
A crystal is nearly as bright as the background inside, with a thin dark refraction
rim on its edges, a thin bright (Becke) line beside it and, on some, faint facet lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.synth._shapes import polygon_area, polygon_centroid, signed_distance
from workbench.synth.domain import DEFAULT, Domain


@dataclass(frozen=True)
class Patch:
    """Log-transmission of one object over a box of the frame, and its footprint."""

    row: int
    col: int
    log_t: np.ndarray  # float32 (h, w)
    footprint: np.ndarray  # bool (h, w): pixels that belong to the object


@dataclass(frozen=True)
class CrystalLook:
    """How one crystal refracts light; lengths in pixels."""

    interior: float  # relative brightness change of the body
    tilt: tuple[float, float]  # linear brightness change across the body, per radius
    rim_depth: float
    edge_contrast: tuple[float, ...]  # per edge: each facet bends light its own way
    rim_sigma: float
    halo_gain: float
    halo_offset: float  # negative: bright line inside the rim
    halo_sigma: float
    band_depth: float  # a thick crystal bends light away near its edges: a soft dark band
    band_width: float
    facets: tuple[tuple[float, float, float, float], ...]  # segments x0, y0, x1, y1
    facet_depth: float
    inclusions: tuple[tuple[float, float, float], ...]  # dark specks inside: x, y, radius
    blur_sigma: float  # 0 for a crystal in focus
    contrast: float

    @property
    def reach(self) -> float:
        """How far outside the polygon the look extends, in pixels."""
        halo = abs(self.halo_offset) + 4 * self.halo_sigma
        return max(halo, 4 * self.rim_sigma) + 3 * self.blur_sigma + 2


def draw_look(
    rng: np.random.Generator,
    vertices: np.ndarray,
    pixel_size_um: float,
    in_focus: bool,
    domain: Domain = DEFAULT,
) -> CrystalLook:
    """Random refraction parameters for one crystal (rim about 1-2 px at 2 µm/px)."""
    px = 1.0 / pixel_size_um
    magnitude = rng.uniform(0.02, 0.08)
    rim_sigma = rng.uniform(*domain.rim_sigma_px) * px
    halo_sigma = 1.3 * rim_sigma
    side = -1.0 if rng.random() < 0.7 else 1.0
    facets: list[tuple[float, float, float, float]] = []
    if rng.random() < 0.4:
        centre = polygon_centroid(vertices)
        radius = np.sqrt(polygon_area(vertices) / np.pi)
        inner = centre + rng.normal(0.0, 0.15 * radius, 2)
        for i in rng.choice(
            len(vertices), size=min(len(vertices), rng.integers(1, 4)), replace=False
        ):
            end = vertices[i] + rng.uniform(0.5, 1.0) * (inner - vertices[i])
            facets.append((*vertices[i], *end))
    # The other side of focus swaps the rim: a bright line with a dark halo beside it.
    polarity = -0.5 if domain.bright_rim > 0 and rng.random() < domain.bright_rim else 1.0
    inclusions = _inclusions(rng, vertices, domain.inclusions)
    return CrystalLook(
        inclusions=inclusions,
        interior=-magnitude if rng.random() < 0.65 else magnitude,
        tilt=tuple(rng.uniform(-0.03, 0.03, 2)),
        rim_depth=polarity * rng.uniform(*domain.rim_depth),
        edge_contrast=tuple(rng.uniform(0.55, 1.15, len(vertices))),
        rim_sigma=rim_sigma,
        halo_gain=np.copysign(rng.uniform(0.06, 0.18), polarity),
        halo_offset=side * (2.2 * np.hypot(rim_sigma, 0.3) + 0.5 * px),
        halo_sigma=halo_sigma,
        band_depth=rng.uniform(*domain.band_depth),
        band_width=rng.uniform(*domain.band_width) * np.sqrt(polygon_area(vertices) / np.pi),
        facets=tuple(facets),
        facet_depth=rng.uniform(0.03, 0.10),
        blur_sigma=0.0 if in_focus else rng.uniform(1.0, 3.0) * px,
        contrast=1.0 if in_focus else rng.uniform(0.75, 0.95),
    )


def _inclusions(
    rng: np.random.Generator, vertices: np.ndarray, chance: float
) -> tuple[tuple[float, float, float], ...]:
    """1-4 small dark specks inside a crystal, with `chance` (none, and no draw, at 0)."""
    if chance <= 0 or rng.random() >= chance:
        return ()
    centre = polygon_centroid(vertices)
    radius = np.sqrt(polygon_area(vertices) / np.pi)
    specks = []
    for _ in range(int(rng.integers(1, 5))):
        x, y = centre + rng.uniform(-0.5, 0.5, 2) * radius
        specks.append((float(x), float(y), float(rng.uniform(0.04, 0.12) * radius)))
    return tuple(specks)


def line_profile(distance: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian line of peak 1, widened by the pixel's own extent so thin lines don't alias."""
    effective = np.hypot(sigma, np.sqrt(1 / 12))
    return (sigma / effective) * np.exp(-0.5 * (distance / effective) ** 2)


def segment_distance(xs: np.ndarray, ys: np.ndarray, segment: tuple[float, ...]) -> np.ndarray:
    """Distance from every pixel of the grid ``ys x xs`` to a line segment."""
    x0, y0, x1, y1 = segment
    dx, dy = x1 - x0, y1 - y0
    px, py = (xs - x0)[None, :], (ys - y0)[:, None]
    t = np.clip((px * dx + py * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
    return np.hypot(px - t * dx, py - t * dy)


def box_grid(low: np.ndarray, high: np.ndarray, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (xs, ys) of the box around ``[low, high]`` plus `margin`."""
    start = np.floor(low - margin).astype(int)
    stop = np.ceil(high + margin).astype(int) + 1
    return np.arange(start[0], stop[0], dtype=np.float32), np.arange(
        start[1], stop[1], dtype=np.float32
    )


def crystal_patch(vertices: np.ndarray, look: CrystalLook) -> Patch:
    """Log-transmission and footprint of one crystal over its bounding box."""
    xs, ys = box_grid(vertices.min(axis=0), vertices.max(axis=0), look.reach)
    distance, nearest = signed_distance(vertices, xs, ys)
    edge_gain = np.asarray(look.edge_contrast, np.float32)[nearest]
    cover = np.clip(0.5 - distance, 0.0, 1.0)  # anti-aliased body
    centre = polygon_centroid(vertices)
    radius = np.sqrt(polygon_area(vertices) / np.pi)
    body = (
        look.interior
        + look.tilt[0] * ((xs - centre[0]) / radius)[None, :]
        + look.tilt[1] * ((ys - centre[1]) / radius)[:, None]
    )
    log_t = cover * np.log1p(body)
    log_t += np.log1p(-look.rim_depth * edge_gain * line_profile(distance, look.rim_sigma))
    halo = line_profile(distance - look.halo_offset, look.halo_sigma)
    log_t += np.log1p(look.halo_gain * edge_gain * halo)
    # The band starts beyond the rim and its bright line and fades towards the middle.
    start = abs(look.halo_offset) + 2 * look.halo_sigma
    band = np.exp(np.minimum(distance + start, 0.0) / look.band_width)
    log_t += cover * np.log1p(-look.band_depth * band)
    for x, y, r in look.inclusions:  # trapped mother liquor or air: small dark discs
        disc = np.clip(r + 0.5 - np.hypot(xs[None, :] - x, ys[:, None] - y), 0.0, 1.0)
        log_t += cover * np.log1p(-0.6 * disc)
    for segment in look.facets:
        line = line_profile(segment_distance(xs, ys, segment), 0.8 * look.rim_sigma)
        log_t += cover * np.log1p(-look.facet_depth * line)
    log_t = log_t.astype(np.float32)
    if look.blur_sigma > 0:
        log_t = cv2.GaussianBlur(log_t, (0, 0), look.blur_sigma) * np.float32(look.contrast)
    return Patch(int(ys[0]), int(xs[0]), log_t, distance <= 0)


def stamp(log_t: np.ndarray, labels: np.ndarray, patch: Patch, label: int) -> None:
    """Add `patch` to the frame's log-transmission and label its footprint, within the frame."""
    height, width = log_t.shape
    r0, c0 = max(patch.row, 0), max(patch.col, 0)
    r1 = min(patch.row + patch.log_t.shape[0], height)
    c1 = min(patch.col + patch.log_t.shape[1], width)
    if r1 <= r0 or c1 <= c0:
        return
    inner = (slice(r0 - patch.row, r1 - patch.row), slice(c0 - patch.col, c1 - patch.col))
    log_t[r0:r1, c0:c1] += patch.log_t[inner]
    labels[r0:r1, c0:c1][patch.footprint[inner]] = label
