"""Things on the slide that are not crystals and must never be counted.

Air bubbles, debris, fibres, scratches and dust. Each is drawn as a :class:`Patch` of
log-transmission, like a crystal. None of them ever hides the centre of a crystal,
and bubbles, debris and dust overlap crystals only now and then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from workbench.errors import WorkbenchError
from workbench.synth._render import Patch, box_grid, stamp
from workbench.synth._shapes import polygon_area, polygon_centroid
from workbench.synth.domain import DEFAULT, Domain

# Mean number per mm² of field (a full frame is about 5.2 mm²).
RATES_PER_MM2 = {"bubble": 0.12, "debris": 0.5, "fibre": 0.08, "scratch": 0.06, "dust": 1.5}
KINDS = tuple(RATES_PER_MM2)
TRIES = 40


@dataclass(frozen=True)
class Imperfection:
    """One imperfection as drawn: where it is, its size, and its patch."""

    kind: str
    centroid: np.ndarray  # (x, y) pixels
    diameter_um: float  # equivalent-circle diameter of its full area
    patch: Patch


def _bubble(rng: np.random.Generator, centre: np.ndarray, px: float) -> Imperfection:
    """Air bubble: thick dark ring, bright centre, soft bright halo outside."""
    diameter_um = float(np.clip(rng.lognormal(np.log(120.0), 0.45), 60.0, 300.0))
    radius = diameter_um / 2 * px
    ring = rng.uniform(0.18, 0.35) * radius
    xs, ys = box_grid(centre, centre, 1.3 * radius + 3)
    r = np.hypot((xs - centre[0])[None, :], (ys - centre[1])[:, None])
    soft = max(1.0, 0.03 * radius)
    band = np.clip((r - (radius - ring)) / soft + 0.5, 0, 1) * np.clip(
        (radius - r) / soft + 0.5, 0, 1
    )
    # The ring darkens towards its outer edge, where the light is bent away the most.
    band *= 0.65 + 0.35 * np.clip((r - radius + ring) / ring, 0, 1)
    spot = np.exp(-0.5 * (r / (0.3 * (radius - ring))) ** 2)
    halo = np.exp(-0.5 * ((r - 1.1 * radius) / (0.07 * radius)) ** 2)
    log_t = (
        np.log1p(-rng.uniform(0.6, 0.85) * band)
        + np.log1p(rng.uniform(0.15, 0.4) * spot)
        + np.log1p(rng.uniform(0.04, 0.1) * halo)
    )
    patch = Patch(int(ys[0]), int(xs[0]), log_t.astype(np.float32), r <= radius)
    return Imperfection("bubble", centre, diameter_um, patch)


def _cover_patch(
    xs: np.ndarray, ys: np.ndarray, draw, blur_sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Anti-aliased coverage in [0, 1] drawn by ``draw(canvas, origin)`` and its footprint."""
    canvas = np.zeros((ys.size, xs.size), np.uint8)
    draw(canvas, np.array([xs[0], ys[0]]))
    cover = canvas.astype(np.float32) / 255
    footprint = cover >= 0.5
    if blur_sigma > 0:
        cover = cv2.GaussianBlur(cover, (0, 0), blur_sigma)
    return cover, footprint


def _fixed(points: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """Points as OpenCV 4-bit fixed-point integers relative to the patch."""
    return np.round((points - origin) * 16).astype(np.int32)


def _debris(rng: np.random.Generator, centre: np.ndarray, px: float) -> Imperfection:
    """Opaque dark irregular blob with some texture."""
    radius = rng.uniform(5.0, 30.0) * px
    angles = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    harmonics = np.arange(2, 6)
    amplitudes = rng.normal(0.0, 0.25, harmonics.size) / harmonics
    phases = rng.uniform(0, 2 * np.pi, harmonics.size)
    wobble = (amplitudes[:, None] * np.cos(harmonics[:, None] * angles + phases[:, None])).sum(0)
    outline = (
        np.stack([np.cos(angles), np.sin(angles)], 1)
        * (radius * np.maximum(1 + wobble, 0.3))[:, None]
    )
    outline += centre
    xs, ys = box_grid(outline.min(axis=0), outline.max(axis=0), 4)
    cover, footprint = _cover_patch(
        xs,
        ys,
        lambda c, o: cv2.fillPoly(c, [_fixed(outline, o)], 255, cv2.LINE_AA, 4),
        rng.uniform(0.3, 1.0),
    )
    texture = cv2.resize(rng.normal(0.0, 0.08, (4, 4)).astype(np.float32), (xs.size, ys.size))
    opacity = np.clip(rng.uniform(0.65, 0.92) + texture, 0.0, 0.97)
    patch = Patch(int(ys[0]), int(xs[0]), np.log1p(-opacity * cover).astype(np.float32), footprint)
    diameter_um = np.sqrt(4 * polygon_area(outline) / np.pi) / px
    return Imperfection("debris", polygon_centroid(outline), float(diameter_um), patch)


def _fibre(rng: np.random.Generator, centre: np.ndarray, px: float) -> Imperfection:
    """Long thin curved strand: a glass-like cylinder, dark at its sides, lighter along its axis."""
    length_um, width_um = rng.uniform(200.0, 800.0), rng.uniform(2.0, 6.0)
    steps = 60
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0.0, rng.uniform(0.02, 0.08), steps))
    path = (
        np.cumsum(np.stack([np.cos(heading), np.sin(heading)], 1), axis=0) * length_um * px / steps
    )
    path += centre - path.mean(axis=0)
    width_px = width_um * px
    xs, ys = box_grid(path.min(axis=0), path.max(axis=0), width_px + 4)
    # Darkness varies slowly along the strand (it twists, and leaves the focal plane).
    strength = 0.85 + 0.15 * np.sin(rng.uniform(0, 2 * np.pi) + np.linspace(0, 6, steps))

    def strand(thickness: int, shade: np.ndarray):
        def draw(canvas: np.ndarray, origin: np.ndarray) -> None:
            points = [tuple(p) for p in _fixed(path, origin)]
            for k in range(steps - 1):
                value = int(255 * shade[k])
                cv2.line(canvas, points[k], points[k + 1], value, thickness, cv2.LINE_AA, 4)

        return draw

    blur = rng.uniform(0.3, 0.8)
    cover, footprint = _cover_patch(xs, ys, strand(max(1, round(width_px)), strength), blur)
    # Sub-pixel strands: thinner than one pixel, so fainter.
    depth = rng.uniform(0.3, 0.65) * min(1.0, width_px)
    log_t = np.log1p(-depth * cover)
    if width_px >= 3:  # resolved: the axis acts as a lens and lets light through
        core, _ = _cover_patch(xs, ys, strand(max(1, round(width_px / 3)), strength), blur)
        log_t += np.log1p(0.6 * depth * core)
    patch = Patch(int(ys[0]), int(xs[0]), log_t.astype(np.float32), footprint)
    diameter_um = np.sqrt(4 * length_um * width_um / np.pi)
    return Imperfection("fibre", path.mean(axis=0), float(diameter_um), patch)


def _scratch(
    rng: np.random.Generator, centre: np.ndarray, px: float, frame_shape: tuple[int, int]
) -> Imperfection:
    """Long straight faint line, bright or dark, cut to the part inside the frame."""
    height, width = frame_shape
    length = rng.uniform(0.4, 1.0) * np.hypot(height, width)
    angle = rng.uniform(0, np.pi)
    half = length / 2 * np.array([np.cos(angle), np.sin(angle)])
    _, start, end = cv2.clipLine(
        (0, 0, width, height), *(tuple(int(v) for v in centre + s * half) for s in (-1, 1))
    )
    ends = np.array([start, end], dtype=np.float64)
    width_um = rng.uniform(1.0, 3.0)
    xs, ys = box_grid(ends.min(axis=0), ends.max(axis=0), width_um * px + 3)
    thickness = max(1, round(width_um * px))
    cover, footprint = _cover_patch(
        xs,
        ys,
        lambda c, o: cv2.line(
            c, *(tuple(p) for p in _fixed(ends, o)), 255, thickness, cv2.LINE_AA, 4
        ),
        0.0,
    )
    contrast = rng.uniform(0.03, 0.08) * (1 if rng.random() < 0.4 else -1)
    patch = Patch(int(ys[0]), int(xs[0]), np.log1p(contrast * cover).astype(np.float32), footprint)
    visible_um = np.linalg.norm(ends[1] - ends[0]) / px
    return Imperfection(
        "scratch", ends.mean(axis=0), float(np.sqrt(4 * visible_um * width_um / np.pi)), patch
    )


def _dust(rng: np.random.Generator, centre: np.ndarray, px: float) -> Imperfection:
    """Tiny dark speck, often out of focus."""
    diameter_um = rng.uniform(3.0, 10.0)
    radius = diameter_um / 2 * px
    blur = 0.0 if rng.random() < 0.3 else rng.uniform(1.0, 4.0) * px
    xs, ys = box_grid(centre, centre, radius + 3 * blur + 3)
    r = np.hypot((xs - centre[0])[None, :], (ys - centre[1])[:, None]).astype(np.float32)
    cover = np.clip(radius - r + 0.5, 0, 1)
    if blur > 0:
        cover = cv2.GaussianBlur(cover, (0, 0), blur)
    footprint = r <= max(radius, 0.75)  # never empty: every pixel centre is within 0.71 px
    patch = Patch(int(ys[0]), int(xs[0]), np.log1p(-rng.uniform(0.3, 0.8) * cover), footprint)
    return Imperfection("dust", centre, diameter_um, patch)


def draw_counts(
    rng: np.random.Generator, field_area_mm2: float, imperfections: bool | Mapping[str, int]
) -> dict[str, int]:
    """How many of each kind: Poisson draws (True), none (False), or exactly the given counts."""
    if isinstance(imperfections, Mapping):
        unknown = sorted(set(imperfections) - set(KINDS))
        if unknown:
            raise WorkbenchError(
                f"unknown imperfection kind {unknown[0]!r}: choose from {', '.join(KINDS)}"
            )
        counts = {kind: imperfections.get(kind, 0) for kind in KINDS}
        for kind, count in counts.items():
            if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 0:
                raise WorkbenchError(f"{kind} count {count!r}: must be a non-negative integer")
        return {kind: int(count) for kind, count in counts.items()}
    if not imperfections:
        return dict.fromkeys(KINDS, 0)
    return {kind: int(rng.poisson(rate * field_area_mm2)) for kind, rate in RATES_PER_MM2.items()}


def scatter(
    rng: np.random.Generator,
    counts: Mapping[str, int],
    log_t: np.ndarray,
    labels: np.ndarray,
    protected: np.ndarray,
    last_crystal: int,
    first_id: int,
    pixel_size_um: float,
    domain: Domain = DEFAULT,
) -> list[Imperfection]:
    """Draw, place and stamp imperfections, labelled `first_id`, `first_id` + 1, ...

    `protected` marks pixels (around crystal centres) that no imperfection may cover;
    labels up to `last_crystal` are crystals. An object of a kind keeps clear of every
    crystal with the domain's ``keep_clear`` chance (the rest may overlap some). An
    object that finds no place is dropped.
    """
    px = 1.0 / pixel_size_um
    height, width = log_t.shape
    placed = []
    for kind in KINDS:
        for _ in range(counts[kind]):
            keep_clear = rng.random() < domain.keep_clear[kind]
            for attempt in range(TRIES):
                centre = rng.uniform([0, 0], [width - 1, height - 1])
                if kind == "scratch":
                    item = _scratch(rng, centre, px, (height, width))
                else:
                    item = {"bubble": _bubble, "debris": _debris, "fibre": _fibre, "dust": _dust}[
                        kind
                    ](rng, centre, px)
                p = item.patch
                r0, c0 = max(p.row, 0), max(p.col, 0)
                r1, c1 = min(p.row + p.log_t.shape[0], height), min(p.col + p.log_t.shape[1], width)
                inside = p.footprint[r0 - p.row : r1 - p.row, c0 - p.col : c1 - p.col]
                if np.any(protected[r0:r1, c0:c1] & inside):
                    continue
                under = labels[r0:r1, c0:c1][inside]
                if (
                    keep_clear
                    and attempt < TRIES // 2
                    and np.any((under > 0) & (under <= last_crystal))
                ):
                    continue
                stamp(log_t, labels, p, first_id + len(placed))
                placed.append(item)
                break
    return placed
