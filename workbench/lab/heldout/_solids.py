"""Crystal habits as 3-D convex solids: half-spaces, random orientation, projection, thickness.

A habit is a set of face normals; each face is placed tangent to an ellipsoid with the
crystal's three extents (pulled in a little at random, so no two crystals are alike).
Orthographic projection along the optical axis gives the silhouette (a convex polygon)
and the thickness a ray crosses at each point of it (what the optics need).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, HalfspaceIntersection

_AXES = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
_EDGES = np.array(
    [[sx, sy, 0] for sx in (1, -1) for sy in (1, -1)]
    + [[sx, 0, sz] for sx in (1, -1) for sz in (1, -1)]
    + [[0, sy, sz] for sy in (1, -1) for sz in (1, -1)],
    float,
)
_CORNERS = np.array([[sx, sy, sz] for sx in (1, -1) for sy in (1, -1) for sz in (1, -1)], float)

# habit -> (probability, length/width, thickness/width, cut): faces other than the six
# axis faces sit between the ellipsoid of the extents (cut 0: deep, rounded) and the box
# (cut 1: no cut at all); `cut` is the range drawn per face.
HABITS: dict[str, tuple[float, tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "block": (0.2, (1.0, 1.5), (0.45, 0.8), (0.4, 0.9)),
    "rounded": (0.15, (1.0, 1.3), (0.6, 0.9), (0.0, 0.35)),
    "tablet": (0.15, (1.0, 1.3), (0.25, 0.45), (0.0, 0.15)),
    "prism": (0.15, (1.8, 3.5), (0.7, 1.0), (0.0, 0.25)),
    "monoclinic": (0.15, (1.2, 2.0), (0.5, 0.8), (0.3, 0.9)),
    "bipyramid": (0.05, (1.0, 1.6), (0.6, 0.9), (0.0, 0.2)),
    "irregular": (0.15, (1.0, 1.8), (0.4, 0.9), (0.0, 0.8)),
}


@dataclass(frozen=True)
class Solid:
    """A convex crystal, oriented on the slide: ``{p : normals @ p <= offsets}`` in µm.

    Attributes
    ----------
    habit : str
        Name of the habit (a key of :data:`HABITS`).
    normals : np.ndarray
        ``(F, 3)`` unit outward face normals, optical axis along z.
    offsets : np.ndarray
        ``(F,)`` face distances from the crystal's centre, µm.
    outline : np.ndarray
        ``(V, 2)`` silhouette polygon (counter-clockwise, x right, y down), µm from the centre.
    """

    habit: str
    normals: np.ndarray
    offsets: np.ndarray
    outline: np.ndarray

    @property
    def area_um2(self) -> float:
        """Projected area in µm²."""
        return polygon_area(self.outline)


def polygon_area(polygon: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula).

    Examples
    --------
    >>> polygon_area(np.array([[0, 0], [2, 0], [2, 3], [0, 3]], float))
    6.0
    """
    x, y = polygon[:, 0], polygon[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_centroid(polygon: np.ndarray) -> np.ndarray:
    """Centroid ``(x, y)`` of a simple polygon.

    Examples
    --------
    >>> polygon_centroid(np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float)).tolist()
    [1.0, 1.0]
    """
    x, y = polygon[:, 0], polygon[:, 1]
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    area6 = 3.0 * cross.sum()
    return np.array(
        [((x + np.roll(x, -1)) * cross).sum() / area6, ((y + np.roll(y, -1)) * cross).sum() / area6]
    )


def _face_normals(rng: np.random.Generator, habit: str) -> np.ndarray:
    """Face normals of a habit in the crystal's own frame (length x, width y, thickness z)."""
    if habit == "block":
        extra = _EDGES[rng.random(len(_EDGES)) < 0.3]
    elif habit == "rounded":
        extra = np.vstack([_EDGES, _CORNERS])
    elif habit == "tablet":
        angles = np.arange(6) * np.pi / 3 + rng.normal(0, 0.05, 6)
        extra = np.column_stack([np.cos(angles), np.sin(angles), np.zeros(6)])
    elif habit == "prism":
        # Hexagonal cross-section around x, pointed terminations at both ends.
        angles = np.arange(6) * np.pi / 3 + np.pi / 6
        ring = np.column_stack([np.zeros(6), np.cos(angles), np.sin(angles)])
        tip = rng.uniform(0.8, 1.6)
        ends = [np.array([s * tip, 0, 0]) + ring[k] for s in (1, -1) for k in range(0, 6, 2)]
        extra = np.vstack([ring, ends])
    elif habit == "monoclinic":
        # Sucrose-like: end faces inclined in the x-z plane, a few bevelled edges.
        beta = rng.uniform(0.25, 0.5)
        ends = np.array([[np.cos(beta), 0, np.sin(beta)], [-np.cos(beta), 0, -np.sin(beta)]])
        extra = np.vstack([ends, _EDGES[rng.random(len(_EDGES)) < 0.4]])
    elif habit == "bipyramid":
        extra = _CORNERS
    else:  # irregular: random cuts of the box
        extra = rng.normal(size=(int(rng.integers(5, 11)), 3))
    base = _AXES[2:] if habit == "monoclinic" else _AXES  # its ends replace the x faces
    normals = np.vstack([base, extra])
    return normals / np.linalg.norm(normals, axis=1, keepdims=True)


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def draw_solid(rng: np.random.Generator, diameter_um: float, habit: str | None = None) -> Solid:
    """A random crystal whose silhouette has the equivalent diameter `diameter_um`.

    The crystal rests on the slide on a broad face: a random turn about the optical
    axis, a tilt of a few degrees (sometimes tens), prisms rolled onto any side face.

    Examples
    --------
    >>> solid = draw_solid(np.random.default_rng(0), 50.0, "block")
    >>> round(float(np.sqrt(4 * solid.area_um2 / np.pi)), 6)
    50.0
    """
    names = list(HABITS)
    if habit is None:
        weights = np.array([HABITS[h][0] for h in names])
        habit = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    _, elongation, flatness, cut = HABITS[habit]
    semi_axes = np.array([rng.uniform(*elongation), 1.0, rng.uniform(*flatness)])
    normals = _face_normals(rng, habit)
    ellipsoid = np.linalg.norm(normals * semi_axes, axis=1)
    box = np.abs(normals) @ semi_axes
    axis_face = np.abs(normals).max(axis=1) > 0.999
    offsets = np.where(
        axis_face,
        semi_axes[np.abs(normals).argmax(axis=1)] * rng.uniform(0.9, 1.0, len(normals)),
        ellipsoid + rng.uniform(*cut, len(normals)) * (box - ellipsoid),
    )

    roll = (
        _rotation(np.array([1.0, 0, 0]), rng.uniform(0, np.pi)) if habit == "prism" else np.eye(3)
    )
    tilt_angle = abs(rng.normal(0, 0.5 if rng.random() < 0.15 else 0.15))
    tilt_axis = np.array([*rng.normal(size=2), 0.0])
    spin = _rotation(np.array([0, 0, 1.0]), rng.uniform(0, 2 * np.pi))
    rotation = spin @ _rotation(tilt_axis, tilt_angle) @ roll
    normals = normals @ rotation.T

    vertices = HalfspaceIntersection(
        np.column_stack([normals, -offsets]), np.zeros(3)
    ).intersections
    hull = ConvexHull(vertices[:, :2])
    outline = vertices[hull.vertices, :2]
    scale = diameter_um / np.sqrt(4 * polygon_area(outline) / np.pi)
    outline = outline * scale
    return Solid(habit, normals, offsets * scale, outline)


def thickness_um(solid: Solid, x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
    """Length of the vertical ray through ``(x, y)`` inside the solid, µm (0 outside).

    Parameters
    ----------
    solid : Solid
    x_um, y_um : np.ndarray
        Positions relative to the crystal's centre, µm (any matching shapes).

    Examples
    --------
    >>> cube = Solid("block", np.vstack([np.eye(3), -np.eye(3)]), np.full(6, 5.0),
    ...              np.array([[-5, -5], [5, -5], [5, 5], [-5, 5]], float))
    >>> thickness_um(cube, np.array([0.0, 7.0]), np.array([0.0, 0.0])).tolist()
    [10.0, 0.0]
    """
    n = solid.normals.astype(np.float32)
    x, y = np.broadcast_arrays(np.asarray(x_um, np.float32), np.asarray(y_um, np.float32))
    shape = x.shape
    x, y = x.reshape(-1), y.reshape(-1)
    room = solid.offsets.astype(np.float32)[:, None] - n[:, :1] * x - n[:, 1:2] * y
    nz = n[:, 2:3]
    up, down, side = nz[:, 0] > 1e-6, nz[:, 0] < -1e-6, np.abs(nz[:, 0]) <= 1e-6
    top = (room[up] / nz[up]).min(axis=0) if up.any() else np.full(x.shape, np.inf, np.float32)
    bottom = (
        (room[down] / nz[down]).max(axis=0) if down.any() else np.full(x.shape, -np.inf, np.float32)
    )
    inside = (room[side] >= 0).all(axis=0) if side.any() else np.ones(x.shape, bool)
    return np.where(inside, np.maximum(top - bottom, 0.0), 0.0).astype(np.float32).reshape(shape)
