"""Particles on the slide: single crystals and agglomerates, then their places in the field.

An agglomerate is built crystal by crystal: each new crystal approaches the ones already
there along a chosen direction until it touches them, then sinks in by a chosen depth
(a hair for touching crystals, up to half a crystal for stacks). Arrangements: a touching
or overlapping pair, a stack, a chain (each crystal docks onto the last), a tight cluster
(each docks towards the middle). No crystal's centre may lie under another crystal, so
every crystal of an agglomerate shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.lab.heldout._solids import Solid, draw_solid, polygon_area, polygon_centroid


@dataclass(frozen=True)
class Particle:
    """One particle: a single crystal or an agglomerate.

    Attributes
    ----------
    solids : list of Solid
        Its crystals, bottom to top.
    offsets_um : np.ndarray
        ``(k, 2)`` each crystal's centre relative to the particle's centre, µm.
    arrangement : str
        ``single``, ``touching``, ``overlap``, ``stack``, ``chain`` or ``cluster``.
    """

    solids: list[Solid]
    offsets_um: np.ndarray
    arrangement: str

    def outlines_um(self) -> list[np.ndarray]:
        """Silhouette of each crystal, µm from the particle's centre."""
        return [s.outline + o for s, o in zip(self.solids, self.offsets_um, strict=True)]


def _edge_normals(poly: np.ndarray) -> np.ndarray:
    edges = np.diff(poly, axis=0, append=poly[:1])
    return np.column_stack([edges[:, 1], -edges[:, 0]])


def _separated(a: np.ndarray, b: np.ndarray, axes: np.ndarray) -> bool:
    """True if convex polygons `a` and `b` do not overlap (`axes`: both polygons' edge normals)."""
    pa, pb = a @ axes.T, b @ axes.T
    return bool(np.any((pa.max(axis=0) < pb.min(axis=0)) | (pb.max(axis=0) < pa.min(axis=0))))


def _inside(point: np.ndarray, poly: np.ndarray) -> bool:
    edges = np.roll(poly, -1, axis=0) - poly
    rel = point - poly
    cross = edges[:, 0] * rel[:, 1] - edges[:, 1] * rel[:, 0]
    return bool(np.all(cross > 0) or np.all(cross < 0))


def _dock(
    placed: list[np.ndarray],
    outline: np.ndarray,
    target: np.ndarray,
    direction: np.ndarray,
    depth_um: float,
    min_depth_um: float,
) -> np.ndarray | None:
    """Offset of `outline` that touches `placed` coming from `direction`, sunk `depth_um` in."""
    # Start where the two bounding circles just miss each other.
    reach = max(np.linalg.norm(p - target, axis=1).max() for p in placed)
    reach += np.linalg.norm(outline, axis=1).max() + 1.0
    step = 0.25 * np.sqrt(polygon_area(outline))
    own = _edge_normals(outline)
    axes = [np.vstack([own, _edge_normals(p)]) for p in placed]

    def hits(s: float) -> bool:
        moved = outline + target + direction * (reach - s)
        return not all(_separated(moved, p, a) for p, a in zip(placed, axes, strict=True))

    s = 0.0
    while not hits(s):
        s += step
        if s > 2 * reach:
            return None
    lo, hi = s - step, s
    while hi - lo > 0.05:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if hits(mid) else (mid, hi)
    centres = [polygon_centroid(p) for p in placed]
    depth = depth_um
    while True:
        offset = target + direction * (reach - hi - depth)
        moved = outline + offset
        centre = polygon_centroid(moved)
        if not any(_inside(centre, p) for p in placed) and not any(
            _inside(c, moved) for c in centres
        ):
            return offset
        if depth <= min_depth_um:
            return None
        depth = max(0.5 * depth, min_depth_um)


def _arrangement(rng: np.random.Generator, k: int) -> str:
    if k == 2:
        return str(rng.choice(["touching", "overlap", "stack", "chain"], p=[0.25, 0.4, 0.2, 0.15]))
    if k == 3:
        return str(rng.choice(["stack", "chain", "cluster"], p=[0.15, 0.35, 0.5]))
    return str(rng.choice(["chain", "cluster"], p=[0.35, 0.65]))


def _depth(rng: np.random.Generator, arrangement: str, size_um: float, minimum: float) -> float:
    fraction = {
        "touching": 0.0,
        "overlap": rng.uniform(0.08, 0.3),
        "stack": rng.uniform(0.3, 0.6),
        "chain": rng.uniform(0.0, 0.2),
        "cluster": rng.uniform(0.0, 0.3),
    }[arrangement]
    return max(fraction * size_um, minimum)


def build_particle(
    rng: np.random.Generator, diameters_um: np.ndarray, min_contact_um: float
) -> Particle:
    """A single crystal (one diameter) or an agglomerate of ``len(diameters_um)`` crystals.

    A crystal that cannot dock (it would hide a centre) is left out, so an agglomerate may
    come out with fewer crystals than asked; the particle always holds at least one.

    Examples
    --------
    >>> p = build_particle(np.random.default_rng(0), np.array([40.0, 50.0, 45.0]), 2.0)
    >>> len(p.solids) <= 3 and p.arrangement in ("stack", "chain", "cluster")
    True
    """
    k = len(diameters_um)
    arrangement = "single" if k == 1 else _arrangement(rng, k)
    first = draw_solid(rng, float(diameters_um[0]))
    solids, offsets = [first], [np.zeros(2)]
    placed = [first.outline]
    heading = rng.uniform(0, 2 * np.pi)
    for diameter in diameters_um[1:]:
        solid = draw_solid(rng, float(diameter))
        if arrangement == "cluster":
            target = np.mean([polygon_centroid(p) for p in placed], axis=0)
            angle = rng.uniform(0, 2 * np.pi)
        else:
            target = polygon_centroid(placed[-1])
            angle = (
                heading + rng.normal(0, 0.35)
                if arrangement == "chain"
                else rng.uniform(0, 2 * np.pi)
            )
        direction = np.array([np.cos(angle), np.sin(angle)])
        depth = _depth(rng, arrangement, float(diameter), min_contact_um)
        offset = _dock(placed, solid.outline, target, direction, depth, min_contact_um)
        if offset is None:
            continue
        solids.append(solid)
        offsets.append(offset)
        placed.append(solid.outline + offset)
    if len(solids) == 1:
        arrangement = "single"
    offsets = np.array(offsets)
    everything = np.vstack(placed)
    middle = 0.5 * (everything.min(axis=0) + everything.max(axis=0))
    return Particle(solids, offsets - middle, arrangement)


def union_area_centroid(outlines_um: list[np.ndarray], step_um: float) -> tuple[float, np.ndarray]:
    """Area (µm²) and centroid (µm) of the union of convex outlines, sampled every `step_um`.

    Examples
    --------
    >>> square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    >>> area, centre = union_area_centroid([square, square + [5, 0]], 0.05)
    >>> round(area), np.round(centre, 1).tolist()
    (150, [7.5, 5.0])
    """
    everything = np.vstack(outlines_um)
    lo, hi = everything.min(axis=0), everything.max(axis=0)
    x = np.arange(lo[0] + step_um / 2, hi[0], step_um)[None, :]
    y = np.arange(lo[1] + step_um / 2, hi[1], step_um)[:, None]
    covered = np.zeros((y.size, x.size), bool)
    for outline in outlines_um:
        c0, r0 = np.floor((outline.min(axis=0) - lo) / step_um).astype(int)
        c1, r1 = np.ceil((outline.max(axis=0) - lo) / step_um).astype(int) + 1
        wx, wy = x[:, c0:c1], y[r0:r1, :]
        ex, ey = np.diff(outline, axis=0, append=outline[:1]).T[:, :, None, None]
        vx, vy = outline.T[:, :, None, None]
        side = ex * (wy - vy) - ey * (wx - vx)  # which side of each edge a sample lies on
        covered[r0:r1, c0:c1] |= np.all(side >= 0, axis=0) | np.all(side <= 0, axis=0)
    rows, cols = np.nonzero(covered)
    centre = np.array([x[0, cols].mean(), y[rows, 0].mean()])
    return float(covered.sum() * step_um**2), centre


def place_particles(
    rng: np.random.Generator,
    particles: list[Particle],
    shape: tuple[int, int],
    pixel_size_um: float,
    gap_um: float,
    margin_px: float,
    attempts: int = 60,
) -> tuple[list[tuple[Particle, np.ndarray]], np.ndarray]:
    """Random non-touching places for the particles, largest first.

    Two particles stay at least `gap_um` (and two pixels) apart; every particle lies
    `margin_px` inside the frame. A particle with no free place after `attempts` draws
    is left out.

    Returns
    -------
    placed : list of (Particle, centre_xy)
        Centre in pixels (x, y).
    occupied : np.ndarray
        uint8 ``(H, W)``: 1 where a crystal lies.
    """
    height, width = shape
    margin_px = max(margin_px, 4.0)  # room for the footprint's rounding
    gap_px = max(gap_um / pixel_size_um, 2.0)
    pad = int(np.ceil(gap_px)) + 1
    bordered = np.zeros((height + 2 * pad, width + 2 * pad), np.uint8)
    kernel = np.ones((2 * pad - 1,) * 2, np.uint8)  # square: separable, so fast
    order = np.argsort([-sum(s.area_um2 for s in p.solids) for p in particles], kind="stable")
    placed = []
    for index in order:
        particle = particles[index]
        outlines = [o / pixel_size_um for o in particle.outlines_um()]
        everything = np.vstack(outlines)
        lo, hi = everything.min(axis=0), everything.max(axis=0)
        free_lo = margin_px - lo
        free_hi = np.array([width - 1, height - 1]) - margin_px - hi
        if np.any(free_hi <= free_lo):
            continue
        box = np.ceil(hi - lo).astype(int) + 2 * pad + 2
        footprint = np.zeros((box[1], box[0]), np.uint8)
        for outline in outlines:
            points = np.rint((outline - lo + pad) * 16).astype(np.int32)
            cv2.fillConvexPoly(footprint, points, 1, shift=4)
        halo = cv2.dilate(footprint, kernel)
        for _ in range(attempts):
            centre = np.rint(rng.uniform(free_lo, free_hi))
            c0, r0 = (centre + lo).astype(int)  # the border shifts the window by `pad`
            window = bordered[r0 : r0 + box[1], c0 : c0 + box[0]]
            if not np.any(window & halo):
                window |= footprint
                placed.append((particle, centre + rng.uniform(-0.3, 0.3, 2)))
                break
    return placed, bordered[pad:-pad, pad:-pad]
