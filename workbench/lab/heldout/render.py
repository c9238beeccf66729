"""One held-out frame: crystals, agglomerates and imperfections through optics and a sensor.

The frame is built in the sample plane as a log-transmission map (objects multiply the
light that passes them, so overlapping crystals add), then lit, exposed, demosaiced and
quantised. The truth is taken from the geometry, never from the rendered pixels.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.lab.heldout._canvas import Patch, paint, visible_mask
from workbench.lab.heldout._crystals import crystal_patch
from workbench.lab.heldout._imperfections import KINDS, draw_counts, scatter
from workbench.lab.heldout._layout import (
    Particle,
    build_particle,
    place_particles,
    union_area_centroid,
)
from workbench.lab.heldout._optics import Optics, draw_optics
from workbench.lab.heldout._sensor import (
    clean_frame,
    draw_sensor,
    expose,
    illumination,
    jpeg_roundtrip,
)
from workbench.lab.heldout._solids import polygon_area, polygon_centroid

RENDERER = "heldout"
MEDIAN_DIAMETER_UM = (30.0, 80.0)  # per frame, drawn
SIZE_SPREAD = (0.2, 0.45)  # sigma of log diameter, per frame
AGGLOMERATED_SHARE = (0.2, 0.55)  # of crystals, per frame
FAR_OUT_OF_FOCUS = 0.08  # of particles


@dataclass(frozen=True, eq=False)
class HeldoutFrame:
    """One held-out frame and everything true about it.

    Attributes
    ----------
    image : np.ndarray
        uint8 ``(H, W)`` gray or ``(H, W, 3)`` RGB: what the camera writes.
    clean : np.ndarray
        float32 in [0, 1], same shape: the crystals alone, same light and tone, no noise.
    illumination : np.ndarray
        float32 ``(H, W)``: relative illumination.
    labels : np.ndarray
        int32 ``(H, W)``: 0 for background, else the id of the object seen there (the
        upper crystal where two overlap; a crystal before an imperfection).
    truth : dict
        Ground truth with the field names of ``workbench count --json`` and ``objects``.
    """

    image: np.ndarray
    clean: np.ndarray
    illumination: np.ndarray
    labels: np.ndarray
    truth: dict[str, Any]


def _checked(
    seed: int,
    density: float | None,
    jpeg_quality: int | None,
    shape: tuple[int, int] | None,
    default: tuple[int, int],
) -> tuple[int, int]:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise WorkbenchError(f"seed {seed!r}: must be a non-negative integer")
    if density is not None and not (
        isinstance(density, int | float) and np.isfinite(density) and density > 0
    ):
        raise WorkbenchError(f"density {density!r} per mm²: must be a positive number")
    if jpeg_quality is not None and not (
        isinstance(jpeg_quality, int) and 1 <= jpeg_quality <= 100
    ):
        raise WorkbenchError(f"JPEG quality {jpeg_quality!r}: must be an integer from 1 to 100")
    if shape is None:
        return default
    if len(shape) != 2 or not all(isinstance(n, int | np.integer) and n >= 32 for n in shape):
        raise WorkbenchError(f"frame shape {shape!r}: must be (rows, cols), each at least 32")
    return int(shape[0]), int(shape[1])


def _particles(rng: np.random.Generator, n_crystals: int, ps: float) -> list[Particle]:
    median = rng.uniform(*MEDIAN_DIAMETER_UM)
    spread = rng.uniform(*SIZE_SPREAD)
    share = rng.uniform(*AGGLOMERATED_SHARE)
    # Agglomerates hold 1 + Geometric(1/2) crystals, 3 on average: this many of the
    # particles are agglomerates when `share` of the crystals are in one.
    agglomerate_chance = share / (3 - 2 * share)
    min_contact_um = max(2.0, 1.5 * ps)
    particles, left = [], n_crystals
    while left > 0:
        k = min(1 + int(rng.geometric(0.5)), 9, left) if rng.random() < agglomerate_chance else 1
        diameters = np.clip(rng.lognormal(np.log(median), spread, k), 10.0, 250.0)
        particles.append(build_particle(rng, diameters, min_contact_um))
        left -= k
    return particles


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in values]


def _defocus(
    rng: np.random.Generator, optics: Optics, centre: np.ndarray, shape: tuple[int, int]
) -> float:
    half = np.array(shape[::-1]) / 2
    r2 = float(np.sum(((centre - half) / half) ** 2)) / 2  # 1 at the corners
    z = optics.focus_um + optics.field_curvature_um * r2 + rng.normal(0, 2.5)
    if rng.random() < FAR_OUT_OF_FOCUS:
        z += rng.choice([-1, 1]) * rng.uniform(12, 35)
    return float(z)


def render_heldout(
    camera: str = "legacy",
    seed: int = 0,
    density_per_mm2: float | None = 25.0,
    *,
    pixel_size_um: float | None = None,
    shape: tuple[int, int] | None = None,
    jpeg_quality: int | None = None,
    imperfections: bool | Mapping[str, int] = True,
) -> HeldoutFrame:
    """Render one held-out brightfield frame of seed crystals with its ground truth.

    Same arguments and truth format as :func:`workbench.synth.synthesize`, so either
    renderer plugs into the benchmark; the images come from different geometry and optics.

    Parameters
    ----------
    camera : {"legacy", "hires"}
        Camera profile: frame size, channels (gray, or RGB through a Bayer mosaic), pixel size.
    seed : int
        Everything is drawn from it: same arguments, same bytes.
    density_per_mm2 : float or None
        Primary crystals per mm² of field; None draws one in 8-40.
    pixel_size_um : float, optional
        Overrides the profile's pixel size (0.3-3 µm tested).
    shape : (rows, cols), optional
        Overrides the frame size; the pixel size stays.
    jpeg_quality : int, optional
        Pass the image through JPEG at this quality.
    imperfections : bool or mapping
        True: bubbles, debris, fibres, scratches and dust at their usual rates; False:
        none; a mapping such as ``{"fibre": 2}``: exactly those.

    Returns
    -------
    HeldoutFrame

    Examples
    --------
    >>> frame = render_heldout("legacy", seed=1, shape=(256, 320))
    >>> frame.image.shape, frame.truth["count"] == sum(
    ...     o["kind"] == "crystal" for o in frame.truth["objects"])
    ((256, 320), True)
    """
    started = time.perf_counter()
    profile = get_camera(camera, pixel_size_um)
    height, width = _checked(seed, density_per_mm2, jpeg_quality, shape, profile.shape)
    ps = profile.pixel_size_um
    area_mm2 = height * width * (ps / 1000.0) ** 2
    rng = np.random.default_rng([seed, 0x4E1D])
    drawn = round(float(rng.uniform(8.0, 40.0)), 2)
    density = drawn if density_per_mm2 is None else float(density_per_mm2)
    optics = draw_optics(rng)
    sensor = draw_sensor(rng)
    counts = draw_counts(rng, area_mm2, imperfections)

    particles = _particles(rng, round(density * area_mm2), ps)
    placed, occupied = place_particles(
        rng, particles, (height, width), ps, rng.uniform(4.0, 15.0), 2 + 4.0 / ps
    )
    log_t = np.zeros((height, width), np.float32)
    stain = np.zeros((height, width), np.float32)
    labels = np.zeros((height, width), np.int32)
    objects: list[dict[str, Any]] = []
    outlines_px: list[np.ndarray] = []
    next_id = 1
    for particle, centre in placed:
        defocus = _defocus(rng, optics, centre, (height, width))
        group = next_id + len(particle.solids) if len(particle.solids) > 1 else None
        for solid, offset in zip(particle.solids, particle.offsets_um, strict=True):
            where = centre + offset / ps
            patch = crystal_patch(rng, solid, where, ps, optics, defocus, rng.uniform(0.4, 1.6))
            paint(log_t, labels, patch, next_id, on_top=True)
            outlines_px.append(solid.outline / ps + where)
            objects.append(
                {
                    "id": next_id,
                    "kind": "crystal",
                    "habit": solid.habit,
                    "centroid_xy": _rounded(polygon_centroid(solid.outline) / ps + where),
                    "diameter_um": round(float(np.sqrt(4 * solid.area_um2 / np.pi)), 2),
                    "defocus_um": round(defocus, 2),
                    "agglomerate": group,
                }
            )
            next_id += 1
        if group is not None:
            outlines = particle.outlines_um()
            step = min(0.5, min(np.sqrt(polygon_area(o)) for o in outlines) / 40)
            area, middle = union_area_centroid(outlines, step)
            objects.append(
                {
                    "id": group,
                    "kind": "agglomerate",
                    "arrangement": particle.arrangement,
                    "centroid_xy": _rounded(middle / ps + centre),
                    "diameter_um": round(float(np.sqrt(4 * area / np.pi)), 2),
                    "members": list(range(group - len(particle.solids), group)),
                }
            )
            next_id += 1
    crystals_log_t = log_t.copy()

    for item in scatter(rng, counts, (height, width), ps, optics, occupied, outlines_px):
        seen = visible_mask(item.patch, labels)
        if not seen.any():
            continue  # wholly behind crystals or outside the field: not in the truth
        paint(log_t, labels, item.patch, next_id, on_top=False, stain=stain)
        rows, cols = np.nonzero(item.patch.mask & _in_frame(item.patch, (height, width)))
        record = {
            "id": next_id,
            "kind": item.kind,
            "centroid_xy": _rounded([cols.mean() + item.patch.col, rows.mean() + item.patch.row]),
            "diameter_um": round(float(np.sqrt(4 * len(rows) / np.pi) * ps), 2),
        }
        if item.length_um is not None:
            record["length_um"] = item.length_um
        if item.touches_crystal:
            record["touches_crystal"] = True
        objects.append(record)
        next_id += 1

    light = illumination(rng, (height, width))
    image = expose(rng, log_t, stain, light, sensor, profile.channels, profile.name)
    if jpeg_quality is not None:
        image = jpeg_roundtrip(image, jpeg_quality)
    clean = clean_frame(crystals_log_t, light, sensor, profile.channels)

    crystals = [o for o in objects if o["kind"] == "crystal"]
    diameters = np.array([o["diameter_um"] for o in crystals])
    percentiles = np.percentile(diameters, [10, 50, 90]) if diameters.size else [None] * 3
    artifacts = {kind: sum(o["kind"] == kind for o in objects) for kind in KINDS}
    agglomerates = sum(o["kind"] == "agglomerate" for o in objects)
    truth = {
        "image": f"{RENDERER}_{profile.name}_s{seed}.png",
        "renderer": RENDERER,
        "camera": profile.name,
        "pixel_size_um": ps,
        "width": width,
        "height": height,
        "seed": int(seed),
        "density_per_mm2": density,
        "count": len(crystals),
        "particles": len(placed),
        "agglomerates": agglomerates,
        "artifacts_removed": sum(artifacts.values()),
        "artifacts": artifacts,
        "csd_um": {
            name: None if v is None else round(float(v), 2)
            for name, v in zip(("d10", "d50", "d90"), percentiles, strict=True)
        },
        "method": "truth",
        "seconds": round(time.perf_counter() - started, 3),
        "objects": objects,
    }
    return HeldoutFrame(image, clean, light, labels, truth)


def _in_frame(patch: Patch, shape: tuple[int, int]) -> np.ndarray:
    """Which pixels of the patch lie inside the frame."""
    h, w = patch.mask.shape
    rows = np.arange(patch.row, patch.row + h)[:, None]
    cols = np.arange(patch.col, patch.col + w)[None, :]
    return (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
