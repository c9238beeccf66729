"""Crystal geometry: convex polygons (plates, rhombi, prisms, ...) and how they overlap.

Vertices are ``(x, y)`` = (column, row) in pixels; integer coordinates are pixel
centres, as in OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from workbench.synth.domain import DEFAULT, Domain

HABITS = ("rectangle", "rhombus", "hexagon", "prism", "needle", "irregular", "rounded", "triangle")
# Seed-stage sucrose: lognormal equivalent-circle diameters, median ~40 µm.
MEDIAN_DIAMETER_UM = 40.0
DIAMETER_SIGMA = 0.35
DIAMETER_RANGE_UM = (12.0, 150.0)


@dataclass(frozen=True)
class Crystal:
    """One crystal outline: its habit and convex polygon (pixels)."""

    shape: str
    vertices: np.ndarray

    def shifted(self, offset: np.ndarray) -> Crystal:
        return Crystal(self.shape, self.vertices + offset)


def _following(vertices: np.ndarray) -> np.ndarray:
    """Each vertex's successor around the polygon (np.roll, without its overhead)."""
    return np.concatenate([vertices[1:], vertices[:1]])


def polygon_area(vertices: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula)."""
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(float(np.dot(x, _following(y)) - np.dot(y, _following(x))))


def polygon_centroid(vertices: np.ndarray) -> np.ndarray:
    """Area centroid ``(x, y)`` of a simple polygon."""
    x, y = vertices[:, 0], vertices[:, 1]
    x1, y1 = _following(x), _following(y)
    cross = x * y1 - x1 * y
    area = cross.sum() / 2.0
    return np.array([((x + x1) * cross).sum(), ((y + y1) * cross).sum()]) / (6.0 * area)


def _habit(rng: np.random.Generator, shape: str) -> np.ndarray:
    """Unit outline of one crystal habit, long axis along x."""
    if shape == "rectangle":
        a = rng.uniform(1.0, 1.5)
        return np.array([[-a / 2, -0.5], [a / 2, -0.5], [a / 2, 0.5], [-a / 2, 0.5]])
    if shape == "rhombus":
        t = np.tan(np.radians(rng.uniform(50.0, 80.0)) / 2)
        return np.array([[-1.0, 0.0], [0.0, -t], [1.0, 0.0], [0.0, t]])
    if shape == "hexagon":
        angles = np.arange(6) * np.pi / 3
        return np.stack([np.cos(angles) * rng.uniform(1.0, 1.35), np.sin(angles)], axis=1)
    if shape == "irregular":  # a broken or unevenly grown crystal: 5-9 random faces
        angles = np.sort(rng.uniform(0.0, 2 * np.pi, rng.integers(5, 10)))
        radii = rng.uniform(0.6, 1.0, angles.size)
        return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    if shape == "rounded":  # edges worn round in the mixer
        angles = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
        return np.stack([np.cos(angles) * rng.uniform(1.0, 1.4), np.sin(angles)], axis=1)
    if shape == "triangle":  # a truncated triangular plate
        cut = rng.uniform(0.1, 0.3)
        corners = np.array([[np.cos(a), np.sin(a)] for a in np.arange(3) * 2 * np.pi / 3])
        return np.concatenate(
            [
                [c + cut * (corners[i - 1] - c), c + cut * (corners[(i + 1) % 3] - c)]
                for i, c in enumerate(corners)
            ]
        )
    # Elongated prism (aspect 1.5-3, a needle 3-6) with bevelled ends; some ends square.
    a = rng.uniform(3.0, 6.0) if shape == "needle" else rng.uniform(1.5, 3.0)
    left, right = (rng.uniform(0.15, 0.45) if rng.random() < 0.8 else 0.0 for _ in range(2))
    outline = [[-a / 2 + left, -0.5], [a / 2 - right, -0.5]]
    outline += [[a / 2, 0.0]] if right else []
    outline += [[a / 2 - right, 0.5], [-a / 2 + left, 0.5]]
    outline += [[-a / 2, 0.0]] if left else []
    return np.array(outline)


def draw_diameter_um(rng: np.random.Generator) -> float:
    """Equivalent-circle diameter of one crystal, in µm."""
    d = rng.lognormal(np.log(MEDIAN_DIAMETER_UM), DIAMETER_SIGMA)
    return float(np.clip(d, *DIAMETER_RANGE_UM))


def draw_crystal(
    rng: np.random.Generator, pixel_size_um: float, domain: Domain = DEFAULT
) -> Crystal:
    """A random crystal of `domain`, centred (area centroid) on the origin, random orientation.

    Examples
    --------
    >>> c = draw_crystal(np.random.default_rng(0), 2.0)
    >>> c.shape in HABITS, bool(np.allclose(polygon_centroid(c.vertices), 0))
    (True, True)
    """
    habits = list(domain.habits)
    shape = habits[rng.choice(len(habits), p=list(domain.habits.values()))]
    outline = _habit(rng, shape)
    if domain.elongation != (1.0, 1.0):
        outline = outline * np.array([rng.uniform(*domain.elongation), 1.0])
    outline = outline + rng.normal(0.0, 0.025, outline.shape)  # real crystals are not perfect
    hull = cv2.convexHull(outline.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    angle = rng.uniform(0.0, np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    hull = hull @ rotation.T
    diameter_px = draw_diameter_um(rng) / pixel_size_um
    hull *= np.sqrt(np.pi * diameter_px**2 / 4 / polygon_area(hull))
    return Crystal(shape, hull - polygon_centroid(hull))


def edge_planes(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit outward normals ``n`` and offsets ``c``: inside iff ``n @ p - c <= 0`` for all edges."""
    edges = _following(vertices) - vertices
    normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    offsets = np.einsum("ij,ij->i", normals, vertices)
    inward = normals @ vertices.mean(axis=0) - offsets > 0  # the mean is inside a convex polygon
    normals[inward] *= -1
    offsets[inward] *= -1
    return normals, offsets


def signed_distance(
    vertices: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance (px, negative inside) to a convex polygon on the grid ``ys x xs``.

    Exact inside and along the edges; corners come out sharp outside, as on a crystal.
    Also returns, per pixel, the index of the edge (vertex ``i`` to ``i + 1``) that sets it.
    """
    normals, offsets = edge_planes(vertices)
    distance = np.full((ys.size, xs.size), -np.inf, dtype=np.float32)
    nearest = np.zeros((ys.size, xs.size), np.intp)
    for i, ((nx, ny), c) in enumerate(zip(normals, offsets, strict=True)):
        plane = (nx * xs)[None, :] + (ny * ys - c)[:, None]
        nearest[plane > distance] = i
        np.maximum(distance, plane, out=distance)
    return distance, nearest


def contains(vertices: np.ndarray, point: np.ndarray) -> bool:
    """Whether a convex polygon contains `point`."""
    normals, offsets = edge_planes(vertices)
    return bool(np.all(normals @ point - offsets <= 0))


def clipped_area(polygon: np.ndarray, planes: tuple[np.ndarray, np.ndarray]) -> float:
    """Area of `polygon` inside the convex polygon given by its :func:`edge_planes`.

    Sutherland-Hodgman clipping in plain floats: polygons have a handful of vertices,
    where numpy's per-call overhead would dominate.
    """
    points = polygon.tolist()
    for (nx, ny), c in zip(planes[0].tolist(), planes[1].tolist(), strict=True):
        sides = [nx * x + ny * y - c for x, y in points]
        kept = []
        for i, (p, side) in enumerate(zip(points, sides, strict=True)):
            q, next_side = points[i - len(points) + 1], sides[i - len(points) + 1]
            if side <= 0:
                kept.append(p)
            if (side <= 0) != (next_side <= 0):
                f = side / (side - next_side)
                kept.append((p[0] + f * (q[0] - p[0]), p[1] + f * (q[1] - p[1])))
        points = kept
        if len(points) < 3:
            return 0.0
    twice = sum(
        x0 * y1 - x1 * y0
        for (x0, y0), (x1, y1) in zip(points, points[1:] + points[:1], strict=True)
    )
    return abs(twice) / 2


def overlap_area(a: np.ndarray, b: np.ndarray) -> float:
    """Area shared by two convex polygons."""
    return clipped_area(a, edge_planes(b))


def union_area_centroid(
    polygons: list[np.ndarray], supersample: int = 4
) -> tuple[float, np.ndarray]:
    """Area (px²) and centroid ``(x, y)`` of a union of polygons, rasterised finer."""
    points = np.concatenate(polygons)
    origin = np.floor(points.min(axis=0)) - 1
    size = np.ceil((points.max(axis=0) - origin + 2) * supersample).astype(int)
    mask = np.zeros((size[1], size[0]), np.uint8)
    for polygon in polygons:
        scaled = np.round((polygon - origin) * supersample * 16).astype(np.int32)
        cv2.fillPoly(mask, [scaled], 1, lineType=cv2.LINE_8, shift=4)
    rows, cols = np.nonzero(mask)
    centroid = origin + np.array([cols.mean(), rows.mean()]) / supersample
    return rows.size / supersample**2, centroid
