"""Layout: build agglomerates and place particles so that separate ones never touch.

A particle is one crystal or an agglomerate (2 or more touching or overlapping crystals,
as many as the domain allows).
Particles are placed by rejection sampling on a coarse occupancy grid, keeping a gap
of at least two grid cells between any two of them, and kept fully inside the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from workbench.synth._shapes import (
    Crystal,
    clipped_area,
    contains,
    draw_crystal,
    edge_planes,
    overlap_area,
    polygon_area,
    polygon_centroid,
)
from workbench.synth.domain import DEFAULT, Domain

CELL_UM = 4.0  # occupancy grid cell
GRID_BORDER = 8  # cells of padding so no slice ever leaves the grid
PLACEMENT_TRIES = 60


def _attach(
    rng: np.random.Generator, members: list[Crystal], new: Crystal, domain: Domain, chain: bool
) -> Crystal | None:
    """Slide `new` towards a random member (the last one in a chain) until they share a
    random fraction of area, at most ``domain.max_overlap`` of the smaller."""
    anchor = members[-1] if chain else members[rng.integers(len(members))]
    angle = rng.uniform(0.0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    smaller = min(polygon_area(anchor.vertices), polygon_area(new.vertices))
    target = rng.uniform(0.03, domain.max_overlap) * smaller
    centre = anchor.vertices.mean(axis=0)
    near, far = (
        0.0,
        float(np.ptp(anchor.vertices, axis=0).max() + np.ptp(new.vertices, axis=0).max()),
    )
    planes = edge_planes(anchor.vertices)
    for _ in range(14):  # bisection on the distance between centres, to ~1e-4
        middle = (near + far) / 2
        shared = clipped_area(new.vertices + centre + middle * direction, planes)
        near, far = (middle, far) if shared > target else (near, middle)
    placed = new.shifted(centre + far * direction)
    for member in members:
        shared = overlap_area(member.vertices, placed.vertices)
        limit = domain.max_overlap * min(
            polygon_area(member.vertices), polygon_area(placed.vertices)
        )
        # The newest crystal lies on top: it must leave every older centre visible.
        if shared > limit + 1e-9 or contains(placed.vertices, polygon_centroid(member.vertices)):
            return None
    return placed


def draw_agglomerate(
    rng: np.random.Generator, pixel_size_um: float, size: int, domain: Domain = DEFAULT
) -> list[Crystal]:
    """Up to `size` crystals, each touching or overlapping an earlier one (drawn on top of it)."""
    chain = domain.chain > 0 and bool(rng.random() < domain.chain)
    members = [draw_crystal(rng, pixel_size_um, domain)]
    for _ in range(10 * size):
        if len(members) == size:
            break
        placed = _attach(rng, members, draw_crystal(rng, pixel_size_um, domain), domain, chain)
        if placed is not None:
            members.append(placed)
    centre = np.concatenate([m.vertices for m in members]).mean(axis=0)
    return [m.shifted(-centre) for m in members]


def draw_particles(
    rng: np.random.Generator,
    pixel_size_um: float,
    n_crystals: int,
    agglomerate_fraction: float,
    domain: Domain = DEFAULT,
) -> list[list[Crystal]]:
    """Particles holding about `n_crystals` crystals in all, centred on the origin."""
    particles: list[list[Crystal]] = []
    member_counts = np.arange(2, 2 + len(domain.member_probabilities))
    remaining = n_crystals
    while remaining > 0:
        if remaining >= 2 and rng.random() < agglomerate_fraction:
            size = min(int(rng.choice(member_counts, p=domain.member_probabilities)), remaining)
            particle = draw_agglomerate(rng, pixel_size_um, size, domain)
        else:
            particle = [draw_crystal(rng, pixel_size_um, domain)]
        particles.append(particle)
        remaining -= len(particle)
    return particles


def place_particles(
    rng: np.random.Generator,
    particles: list[list[Crystal]],
    frame_shape: tuple[int, int],
    pixel_size_um: float,
    margin_px: float,
) -> list[list[Crystal]]:
    """Shift each particle to a random free spot; particles that find none are dropped.

    Largest particles go first, as they are the hardest to fit.
    """
    height, width = frame_shape
    cell = max(1, round(CELL_UM / pixel_size_um))
    grid = np.zeros(
        (height // cell + 2 * GRID_BORDER + 1, width // cell + 2 * GRID_BORDER + 1), bool
    )
    extent = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))  # covers partly filled cells
    keep_out = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))  # + a gap of two cells
    placed = []
    order = sorted(
        particles, key=lambda p: -np.ptp(np.concatenate([c.vertices for c in p]), axis=0).prod()
    )
    for particle in order:
        points = np.concatenate([c.vertices for c in particle])
        low = margin_px - points.min(axis=0)
        high = np.array([width - 1, height - 1]) - margin_px - points.max(axis=0)
        if np.any(high < low):
            continue
        for _ in range(PLACEMENT_TRIES):
            centre = rng.uniform(low, high)
            corner = np.floor((points.min(axis=0) + centre) / cell).astype(int) - 4
            size = np.ceil(np.ptp(points, axis=0) / cell).astype(int) + 9
            raster = np.zeros((size[1], size[0]), np.uint8)
            for crystal in particle:
                cells = (
                    (crystal.vertices + centre) / cell - 0.5 - corner
                )  # cv2: integers are centres
                cv2.fillPoly(raster, [np.round(cells * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
            rows = slice(corner[1] + GRID_BORDER, corner[1] + GRID_BORDER + size[1])
            cols = slice(corner[0] + GRID_BORDER, corner[0] + GRID_BORDER + size[0])
            if np.any(grid[rows, cols] & cv2.dilate(raster, keep_out).astype(bool)):
                continue
            grid[rows, cols] |= cv2.dilate(raster, extent).astype(bool)
            placed.append([c.shifted(centre) for c in particle])
            break
    return placed
