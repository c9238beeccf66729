"""Synthetic brightfield micrographs of sugar seed crystals, with exact ground truth."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.synth import _imperfections
from workbench.synth._optics import (
    channel_gains,
    expose,
    illumination,
    jpeg_roundtrip,
    tinted,
)
from workbench.synth._placement import draw_particles, place_particles
from workbench.synth._render import crystal_patch, draw_look, stamp
from workbench.synth._shapes import Crystal, polygon_area, polygon_centroid, union_area_centroid
from workbench.synth.domain import Domain, get_domain

DENSITY_RANGE_PER_MM2 = (8.0, 40.0)  # drawn when no density is given


@dataclass(frozen=True, eq=False)
class SyntheticImage:
    """One synthetic frame and everything true about it.

    Attributes
    ----------
    image : np.ndarray
        uint8, ``(H, W)`` gray or ``(H, W, 3)`` RGB: what the camera writes.
    clean : np.ndarray
        float32 in [0, 1], same shape: the same crystals under the same illumination,
        without noise, imperfections or JPEG.
    illumination : np.ndarray
        float32 ``(H, W)``: the illumination field.
    labels : np.ndarray
        int32 ``(H, W)``: 0 for background, else the id of the object seen there.
    truth : dict
        Ground truth, with the field names of ``workbench count --json``.
    """

    image: np.ndarray
    clean: np.ndarray
    illumination: np.ndarray
    labels: np.ndarray
    truth: dict[str, Any]


def check_seed(seed: int) -> int:
    """`seed` as an int, or WorkbenchError if it is not a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise WorkbenchError(f"seed {seed!r}: must be a non-negative integer")
    return int(seed)


def check_density(density_per_mm2: float | None) -> None:
    """WorkbenchError unless the density is None or a positive number."""
    if density_per_mm2 is not None and not (
        isinstance(density_per_mm2, int | float)
        and np.isfinite(density_per_mm2)
        and density_per_mm2 > 0
    ):
        raise WorkbenchError(f"density {density_per_mm2!r} per mm²: must be a positive number")


def check_jpeg_quality(jpeg_quality: int | None) -> None:
    """WorkbenchError unless the JPEG quality is None or an integer 1-100."""
    if jpeg_quality is not None and not (
        isinstance(jpeg_quality, int) and 1 <= jpeg_quality <= 100
    ):
        raise WorkbenchError(f"JPEG quality {jpeg_quality!r}: must be an integer from 1 to 100")


def _frame_shape(default: tuple[int, int], shape: tuple[int, int] | None) -> tuple[int, int]:
    if shape is None:
        return default
    if len(shape) != 2 or not all(isinstance(n, int | np.integer) and n >= 16 for n in shape):
        raise WorkbenchError(f"frame shape {shape!r}: must be (rows, cols), each at least 16")
    return int(shape[0]), int(shape[1])


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 2) for v in values]


def synthesize(
    camera: str = "legacy",
    seed: int = 0,
    density_per_mm2: float | None = 25.0,
    *,
    pixel_size_um: float | None = None,
    shape: tuple[int, int] | None = None,
    jpeg_quality: int | None = None,
    imperfections: bool | Mapping[str, int] = True,
    domain: str | Domain = "default",
) -> SyntheticImage:
    """Render one brightfield micrograph of translucent seed crystals with its ground truth.

    Parameters
    ----------
    camera : {"legacy", "hires"}
        Camera profile: frame size, channels and pixel size.
    seed : int
        Everything is drawn from this seed: same arguments, same bytes.
    density_per_mm2 : float or None
        Primary crystals per mm² of field; None draws one in 8-40.
    pixel_size_um : float, optional
        Overrides the profile's pixel size (µm in the sample plane).
    shape : (rows, cols), optional
        Overrides the frame size (small mocks, training tiles); pixel size stays.
    jpeg_quality : int, optional
        If given, the image goes through JPEG at this quality, as some cameras write it.
    imperfections : bool or mapping
        True: a random number of bubbles, debris, fibres, scratches and dust; False:
        none; a mapping such as ``{"bubble": 2}``: exactly those (others none).
    domain : {"default", "wide"} or Domain
        The ranges the frame's geometry, optics and noise are drawn from
        (:mod:`workbench.synth.domain`); "wide" is the training domain.

    Returns
    -------
    SyntheticImage

    Examples
    --------
    >>> s = synthesize("legacy", seed=1, shape=(256, 320))
    >>> s.image.shape, s.image.dtype, s.truth["count"] == sum(
    ...     o["kind"] == "crystal" for o in s.truth["objects"])
    ((256, 320), dtype('uint8'), True)
    """
    started = time.perf_counter()
    profile = get_camera(camera, pixel_size_um)
    seed = check_seed(seed)
    check_density(density_per_mm2)
    check_jpeg_quality(jpeg_quality)
    domain = get_domain(domain)
    height, width = _frame_shape(profile.shape, shape)
    ps = profile.pixel_size_um
    area_mm2 = height * width * (ps / 1000.0) ** 2
    rng = np.random.default_rng(seed)
    # Drawn even when given, so a frame made with a drawn density can be remade from its truth.
    drawn = round(float(rng.uniform(*DENSITY_RANGE_PER_MM2)), 2)
    density_per_mm2 = drawn if density_per_mm2 is None else density_per_mm2
    counts = _imperfections.draw_counts(rng, area_mm2, imperfections)

    particles = draw_particles(
        rng,
        ps,
        round(density_per_mm2 * area_mm2),
        rng.uniform(*domain.agglomerate_fraction),
        domain,
    )
    particles = place_particles(rng, particles, (height, width), ps, margin_px=2 + 3.0 / ps)

    log_t = np.zeros((height, width), np.float32)
    labels = np.zeros((height, width), np.int32)
    protected = np.zeros((height, width), bool)
    objects: list[dict[str, Any]] = []
    crystals: list[dict[str, Any]] = []
    agglomerates = 0
    next_id = 1
    for particle in particles:
        in_focus = bool(rng.random() >= domain.out_of_focus)
        group = next_id + len(particle) if len(particle) > 1 else None
        for crystal in particle:
            stamp(
                log_t,
                labels,
                crystal_patch(
                    crystal.vertices, draw_look(rng, crystal.vertices, ps, in_focus, domain)
                ),
                next_id,
            )
            record = _crystal_record(next_id, crystal, ps, in_focus, group)
            x, y = np.rint(record["centroid_xy"]).astype(int)
            protected[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] = True
            crystals.append(record)
            objects.append(record)
            next_id += 1
        if group is not None:
            area, centroid = union_area_centroid([c.vertices for c in particle])
            objects.append(
                {
                    "id": group,
                    "kind": "agglomerate",
                    "centroid_xy": _rounded(centroid),
                    "diameter_um": round(float(np.sqrt(4 * area / np.pi) * ps), 2),
                    "members": list(range(group - len(particle), group)),
                }
            )
            agglomerates += 1
            next_id += 1

    gains = channel_gains(rng, profile.channels)
    light = illumination(rng, (height, width), domain)
    defocus_px = rng.uniform(*domain.defocus_um) / ps if domain.defocus_um[1] > 0 else 0.0
    clean = tinted(cv2.multiply(light, cv2.exp(_defocused(log_t, defocus_px))), gains)
    np.minimum(clean, 1.0, out=clean)  # bright halos may saturate; nothing goes below 0
    placed = _imperfections.scatter(
        rng, counts, log_t, labels, protected, next_id - 1, next_id, ps, domain
    )
    image = expose(rng, cv2.multiply(light, cv2.exp(_defocused(log_t, defocus_px))), gains, domain)
    if jpeg_quality is not None:
        image = jpeg_roundtrip(image, jpeg_quality)
    for offset, item in enumerate(placed):
        objects.append(
            {
                "id": next_id + offset,
                "kind": item.kind,
                "centroid_xy": _rounded(item.centroid),
                "diameter_um": round(item.diameter_um, 2),
            }
        )

    diameters = np.array([c["diameter_um"] for c in crystals])
    percentiles = np.percentile(diameters, [10, 50, 90]) if diameters.size else [None] * 3
    artifacts = {kind: sum(o["kind"] == kind for o in objects) for kind in _imperfections.KINDS}
    truth = {
        "image": f"{profile.name}_s{seed}.png",
        "camera": profile.name,
        "pixel_size_um": ps,
        "width": width,
        "height": height,
        "seed": seed,
        "density_per_mm2": float(density_per_mm2),
        "count": len(crystals),
        "particles": len(particles),
        "agglomerates": agglomerates,
        "artifacts_removed": len(placed),
        "artifacts": artifacts,
        "csd_um": {
            name: None if v is None else round(float(v), 2)
            for name, v in zip(("d10", "d50", "d90"), percentiles, strict=True)
        },
        "method": "truth",
        "seconds": round(time.perf_counter() - started, 3),
        "objects": objects,
    }
    return SyntheticImage(image, clean, light, labels, truth)


def _defocused(log_t: np.ndarray, sigma_px: float) -> np.ndarray:
    """The slide's log-transmission seen through a lens `sigma_px` out of focus."""
    return cv2.GaussianBlur(log_t, (0, 0), sigma_px) if sigma_px > 0 else log_t


def _crystal_record(
    label: int, crystal: Crystal, pixel_size_um: float, in_focus: bool, agglomerate: int | None
) -> dict[str, Any]:
    area = polygon_area(crystal.vertices)
    return {
        "id": label,
        "kind": "crystal",
        "shape": crystal.shape,
        "centroid_xy": _rounded(polygon_centroid(crystal.vertices)),
        "diameter_um": round(float(np.sqrt(4 * area / np.pi) * pixel_size_um), 2),
        "in_focus": in_focus,
        "agglomerate": agglomerate,
    }
