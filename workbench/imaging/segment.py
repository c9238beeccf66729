"""The classical crystal counter for brightfield images (tuned for the legacy camera).

Translucent crystals are almost as bright as the background inside; what shows is a
thin dark refraction rim along their edges. So the counter works on edges:

1. flatten the illumination and denoise (:mod:`workbench.imaging.denoise`), and paint
   over bubbles, debris, fibres and scratches;
2. *rims* are pixels more than 12 % darker than the background, traced on along
   anything more than 6 % dark (some edges bend little light); closing them and
   filling holes gives one solid region per particle. A region that encloses some
   interior is a crystal or an agglomerate (specks and lines enclose none). Separate
   particles do not touch in the sample, so each region is one particle;
3. a convex particle is one crystal. An outline with dents is an agglomerate; inside
   it the rims split it into *faces*: each crystal owns one, and where two overlap
   the lens between them is one more, smaller than both its neighbours. The number
   of primary crystals is a blend, fitted on synthetic frames, of the faces that are
   no lens (counted in a few views: rim darkness, smallest face, lens ratio) and the
   dents;
4. out-of-focus crystals have blurred rims and no clear face; they show as faint
   dark blobs, found on a smoothed image. Their crystal number comes from their area
   over the typical single-crystal area of the same image. Among the faint blobs,
   specks darkest in their middle (dust), faint ends of removed fibres and long thin
   lines (faint scratches) are removed; a faint ring is a small blurred crystal.

High-resolution images are first area-averaged to about 2 µm per pixel (about
1280 x 960 for a 12 MP frame), where the method was tuned; results are reported in
the original pixels.

Examples
--------
>>> import numpy as np, cv2
>>> from workbench.camera import get_camera
>>> from workbench.imaging.segment import detect_crystals
>>> image = np.full((256, 256), 0.8, np.float32)
>>> _ = cv2.polylines(image, [np.array([[60, 60], [90, 62], [88, 90], [58, 88]])], True, 0.45)
>>> detect_crystals(image, get_camera("legacy")).members.tolist()
[1]
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage as ndi

from workbench.camera import CameraProfile
from workbench.imaging._morphology import (
    RIM_DARKNESS,
    depth,
    disk,
    extent,
    filled,
    label_sums,
    labelled_boxes,
    rims,
)
from workbench.imaging.denoise import (
    ImperfectionRemoval,
    denoise,
    flatten_illumination,
    remove_imperfections,
)
from workbench.imaging.detections import Artifact, Detections, detections_from_labels
from workbench.imaging.working_scale import reduce_to_working_scale

FACE_MIN_AREA_UM2 = 16.0  # smallest crystal interior (face) that counts
FAINT_DARKNESS = 0.015
FAINT_SIGMA_UM = 6.0
FAINT_MIN_AREA_UM2 = 800.0  # smaller faint blobs are dust (3-10 µm specks, blurred)
KEEP_OUT_UM = 8.0
DUST_MIN_DARKNESS = 0.10  # a speck is clearly dark somewhere
HOLLOW_SHARE = 0.5  # a ring-like faint blob's centre is at most this dark, relative
SPECK_CENTRE_SHARE = 0.8  # a blurred speck's centre is nearly its darkest point
CRYSTAL_MIN_DIAMETER_UM = 10.0  # the smallest seed crystals are about 12 µm
FAINT_CRYSTAL_MIN_AREA_UM2 = 300.0
NOISE = "noise"  # a faint blob that is no object at all
LINE_KINDS = ("fibre", "scratch")
SLIVER_SHARE = 0.1  # a crystal's interior is a fair part of its area
CONCAVITY_MIN_UM = 3.0  # a dent this deep makes a particle an agglomerate
SHALLOW_CONCAVITY_UM = 2.0  # dents counted towards an agglomerate's crystal number
SPECK_RADIUS_UM = 3.0
# Faces of an agglomerate are counted in several views, each a rim darkness, the
# smallest face (share of the typical single-crystal area) and how much smaller than
# both its neighbours a lens is. One view misses a faint shared edge or takes a small
# crystal for a lens where another does not; their blend has a smaller error.
FACE_VIEWS = ((RIM_DARKNESS, 0.05, 1.5), (RIM_DARKNESS, 0.02, 3.0), (0.15, 0.05, 1.5))
# Weights of the exclusive faces in each view, the shallow dents and 1, fitted by least
# squares on synthetic legacy frames (seeds 100-200, 10-50 crystals/mm²).
AGGLOMERATE_BLEND = np.array([0.4, 0.15, 0.23, 0.2, 0.17])
LENS_NEIGHBOUR_UM = 4.0  # faces this close are neighbours across one rim
RIM_REACH_OUT_UM = 2.2  # the solid outline lies this far outside the crystal edge (d50 unbiased)
BLUR_REACH_UM = 6.0  # a faint blob's outline lies this far outside the crystal edge
FAINT_LINE_MAX_WIDTH_UM = 32.0
FAINT_LINE_MIN_SOLIDITY = 0.75  # a scratch is straight; the faint arc of a crystal's rim bends
BLUR_AGGLOMERATE_RATIO = 2.8  # faint blobs under this many typical crystal areas are single
BLUR_AREA_PER_CRYSTAL = 1.7  # ... above it, one crystal per this many typical areas
TYPICAL_CRYSTAL_UM = 40.0  # used only when an image has too few single crystals to learn it


def detect_crystals(image: np.ndarray, camera: CameraProfile) -> Detections:
    """The classical method: count crystals and agglomerates, remove imperfections.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Float gray image in [0, 1].
    camera : CameraProfile
        Gives the pixel size.

    Returns
    -------
    Detections
    """
    work, scale = reduce_to_working_scale(np.asarray(image, np.float32), camera.pixel_size_um)
    pixel_size_um = camera.pixel_size_um * scale
    flat, _ = flatten_illumination(work)
    removal = remove_imperfections(denoise(flat), pixel_size_um)
    labels, members, areas, faint_artifacts, faint_labels = segment_particles(
        removal.cleaned, pixel_size_um, removal
    )
    artifact_labels = removal.labels.copy()
    offset = len(removal.artifacts)
    artifact_labels[faint_labels > 0] = faint_labels[faint_labels > 0] + offset
    return detections_from_labels(
        labels, members, scale, removal.artifacts + faint_artifacts, artifact_labels, areas
    )


def segment_particles(
    flat: np.ndarray, pixel_size_um: float, removal: ImperfectionRemoval | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Artifact], np.ndarray]:
    """Particles, their crystal numbers and areas on a flattened, cleaned image.

    Parameters
    ----------
    flat : ndarray, shape (H, W)
        Background 1.0, imperfections painted over.
    pixel_size_um : float
        Pixel side in µm (about 2 for the tuned parameters).
    removal : ImperfectionRemoval, optional
        What was painted over (not searched again; faint continuations of removed
        fibres and scratches are not crystals).

    Returns
    -------
    labels : ndarray of int32
        ``i + 1`` on particle ``i``.
    members : ndarray of int
        Primary crystals per particle.
    areas : ndarray of float
        Particle areas in pixels, corrected for the rim (sharp particles) or the
        blur (faint ones) that makes the outline look larger than the crystal.
    artifacts : list of Artifact
        Dust and faint lines found among the faint blobs.
    artifact_labels : ndarray of int32
        ``j + 1`` on ``artifacts[j]``.

    Examples
    --------
    >>> flat = np.ones((128, 128), np.float32)
    >>> _ = cv2.rectangle(flat, (40, 40), (70, 64), 0.5, 1)
    >>> labels, members, areas, artifacts, _ = segment_particles(flat, 2.0)
    >>> members.tolist(), len(artifacts)
    ([1], 0)
    """
    px = 1.0 / pixel_size_um
    darkness = 1.0 - np.asarray(flat, np.float32)
    near_lines = np.zeros(flat.shape, bool)
    if removal is not None:
        lines = [i + 1 for i, a in enumerate(removal.artifacts) if a.kind in LINE_KINDS]
        near_lines = cv2.dilate(
            np.isin(removal.labels, lines).astype(np.uint8), disk(KEEP_OUT_UM * px)
        ).astype(bool)
    labels, members, areas, solid = _sharp_particles(darkness, px, near_lines)
    singles = areas[members == 1]
    typical_area = (
        float(np.median(singles))
        if singles.size >= 5
        else np.pi * (TYPICAL_CRYSTAL_UM * px / 2) ** 2
    )
    keep_out = cv2.dilate((labels > 0).astype(np.uint8), disk(KEEP_OUT_UM * px)).astype(bool)
    if removal is not None:
        keep_out |= removal.mask
    smooth = cv2.GaussianBlur(darkness, (0, 0), FAINT_SIGMA_UM * px)
    # Rim fragments without a face (blurred crystals, specks) join the faint blobs.
    faint = ((smooth > FAINT_DARKNESS) | solid) & ~keep_out & (labels == 0)
    faint_labels, _ = ndi.label(faint, structure=np.ones((3, 3), bool))

    members_list, areas_list = list(members), list(areas)
    artifacts: list[Artifact] = []
    artifact_labels = np.zeros(flat.shape, np.int32)
    for box, component in labelled_boxes(faint_labels):
        kind = _faint_kind(component, darkness[box], px, bool(near_lines[box][component].any()))
        if kind == NOISE:
            continue
        if kind is not None:
            rows, cols = np.nonzero(component)
            centroid = (float(cols.mean() + box[1].start), float(rows.mean() + box[0].start))
            artifacts.append(Artifact(kind, centroid, float(rows.size)))
            artifact_labels[box][component] = len(artifacts)
            continue
        area = _shrunk_area(float(component.sum()), BLUR_REACH_UM * px)
        members_list.append(_members_from_area(area, typical_area))
        areas_list.append(area)
        labels[box][component] = len(members_list)
    return (
        labels,
        np.asarray(members_list, int),
        np.asarray(areas_list, float),
        artifacts,
        artifact_labels,
    )


def _sharp_particles(darkness: np.ndarray, px: float, near_lines: np.ndarray):
    """Particles outlined by sharp rims: labels, crystals per particle, corrected areas,
    and the solid (filled rims) mask, faceless fragments included."""
    features = sharp_particle_features(darkness, px, near_lines)
    # A convex outline is one crystal. Otherwise the number of crystals is a linear
    # blend of the faces that are no overlap lens (in each view) and the dents (faces
    # alone miss crystals whose shared edges are faint; dents alone miss junctions
    # hidden inside the outline).
    concavities = features["concavities"]
    blend = np.column_stack(
        [
            features["exclusive_faces"],
            features["shallow_concavities"],
            np.ones(concavities.size),
        ]
    )
    members = np.where(
        concavities == 0, 1, np.maximum(2, np.rint(blend @ AGGLOMERATE_BLEND)).astype(int)
    )
    areas = _eroded_area(features["raw_areas"], features["perimeters"], RIM_REACH_OUT_UM * px)
    return features["labels"], members.astype(int), areas, features["solid"]


def sharp_particle_features(
    darkness: np.ndarray, px: float, near_lines: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Sharp particles and the features their crystal numbers are estimated from.

    A region touching `near_lines` (around removed fibres and scratches) whose interior
    is a sliver, such as where two fibres cross, is left out: it is part of the lines.

    Exposed for calibration: ``labels``, ``solid``, and per particle ``raw_areas``
    (pixels), ``concavities`` (dents deeper than CONCAVITY_MIN_UM),
    ``shallow_concavities`` (deeper than SHALLOW_CONCAVITY_UM), ``perimeters``
    (pixels), ``exclusive_faces`` (shape (N, len(FACE_VIEWS)), for particles with
    concavities); ``typical`` is the median area of convex (single) particles.
    """
    strong, traced = rims(darkness)
    solid = filled(traced)
    particle_labels, count = ndi.label(solid, structure=np.ones((3, 3), bool))
    # A crystal encloses an interior: inside its strong rims (a dark crystal), or inside
    # its traced rims (a light crystal with a faint edge). Specks and lines enclose none.
    enclosed = (filled(strong) & ~strong) | (solid & ~traced)
    interior = label_sums(enclosed, particle_labels, count)
    outline_areas = label_sums(solid, particle_labels, count)
    smallest = np.pi / 4 * ((CRYSTAL_MIN_DIAMETER_UM + 2 * RIM_REACH_OUT_UM) * px) ** 2
    crystal_like = (interior >= FACE_MIN_AREA_UM2 * px * px) & (outline_areas >= smallest)
    if near_lines is not None:
        touching = label_sums(near_lines, particle_labels, count) > 0
        sliver = interior < SLIVER_SHARE * outline_areas
        crystal_like &= ~(touching & sliver)
    kept = np.flatnonzero(crystal_like) + 1
    lookup = np.zeros(count + 1, np.int32)
    lookup[kept] = np.arange(1, kept.size + 1)
    labels = lookup[particle_labels]
    raw_areas = label_sums(solid, labels, kept.size)
    concavities, shallow_concavities, perimeters = _outlines(labels, px)
    singles = raw_areas[concavities == 0]
    typical = float(np.median(singles)) if singles.size >= 5 else _typical_area(px)
    exclusive_faces = np.column_stack(
        [
            _exclusive_faces(
                solid, darkness > rim, labels, typical, px, concavities > 0, share, ratio
            )
            for rim, share, ratio in FACE_VIEWS
        ]
    )
    return {
        "labels": labels,
        "solid": solid,
        "raw_areas": raw_areas,
        "concavities": concavities,
        "shallow_concavities": shallow_concavities,
        "perimeters": perimeters,
        "exclusive_faces": exclusive_faces,
        "typical": np.float64(typical),
    }


def _typical_area(px: float) -> float:
    return np.pi * (TYPICAL_CRYSTAL_UM * px / 2) ** 2


def _outlines(labels: np.ndarray, px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per particle, the dents in its outline deeper than CONCAVITY_MIN_UM and than
    SHALLOW_CONCAVITY_UM, and the outline's length in pixels.

    A crystal is convex; where two crystals of an agglomerate meet, the outline dents.
    """
    count = int(labels.max())
    dents, shallow, perimeters = np.zeros(count, int), np.zeros(count, int), np.zeros(count)
    smoothing = disk(SPECK_RADIUS_UM * px)
    for index, (_, region) in enumerate(labelled_boxes(labels)):
        outline = np.pad(region, 3).astype(np.uint8)
        contours, _ = cv2.findContours(outline, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        perimeters[index] = cv2.arcLength(max(contours, key=len), True)
        # A speck stuck to a crystal dents its outline too: open it away first.
        opened = cv2.morphologyEx(outline, cv2.MORPH_OPEN, smoothing)
        contours, _ = cv2.findContours(opened, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        if not contours:
            continue
        contour = max(contours, key=len)
        if len(contour) < 4:
            continue
        hull = cv2.convexHull(contour, returnPoints=False)
        try:
            defects = cv2.convexityDefects(contour, hull)
        except cv2.error:  # self-touching outlines of one-pixel-wide parts
            continue
        if defects is not None:
            depths = defects[:, 0, 3] / 256.0
            dents[index] = int((depths > CONCAVITY_MIN_UM * px).sum())
            shallow[index] = int((depths > SHALLOW_CONCAVITY_UM * px).sum())
    return dents, shallow, perimeters


def _exclusive_faces(
    solid: np.ndarray,
    strong: np.ndarray,
    labels: np.ndarray,
    typical: float,
    px: float,
    agglomerated: np.ndarray,
    min_share: float,
    lens_ratio: float,
) -> np.ndarray:
    """Per agglomerated particle, its faces that are not the lens of an overlap.

    Faces are the regions between `strong` rims, at least `min_share` of a typical
    crystal. Where two crystals overlap, the lens between them is a face bordered by
    two faces `lens_ratio` times larger (the rest of each crystal); every other face
    belongs to one crystal.
    """
    face_labels, face_count = ndi.label(solid & ~strong)
    area = np.bincount(face_labels.ravel(), minlength=face_count + 1)
    large = area >= max(FACE_MIN_AREA_UM2 * px * px, min_share * typical)
    large[0] = False
    reach = int(round(LENS_NEIGHBOUR_UM * px))
    across_rim = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
    counts = np.zeros(int(labels.max()), int)
    for index, (box, region) in enumerate(labelled_boxes(labels)):
        if not agglomerated[index]:
            continue
        faces = np.where(region, face_labels[box], 0)
        for face in np.unique(faces):
            if not large[face]:
                continue
            around = cv2.dilate((faces == face).astype(np.uint8), across_rim).astype(bool)
            neighbours = np.unique(faces[around])
            larger = large[neighbours] & (area[neighbours] >= lens_ratio * area[face])
            counts[index] += int(larger.sum() < 2)
    return counts


def _faint_kind(
    component: np.ndarray, darkness: np.ndarray, px: float, near_line: bool
) -> str | None:
    """What a faint blob is: None for an out-of-focus crystal, else ``dust``, ``fibre``
    or ``scratch``, or NOISE for nothing at all.

    A small blob is a crystal when it is hollow (a ring: its centre is far lighter
    than its darkest part), dust when it is dark in the middle; a blob touching a
    removed fibre or scratch is the faint end of it; a long, thin and straight one
    is a scratch (a long, thin arc is the visible part of a light crystal's rim).
    """
    area = component.sum()
    if near_line:
        return "fibre"
    peak = float(darkness[component].max())
    rows, cols = np.nonzero(component)
    row, col = int(round(rows.mean())), int(round(cols.mean()))
    centre = float(darkness[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].mean())
    if area < FAINT_MIN_AREA_UM2 * px * px:
        if centre < HOLLOW_SHARE * peak and area >= FAINT_CRYSTAL_MIN_AREA_UM2 * px * px:
            return None
        return "dust" if peak >= DUST_MIN_DARKNESS else NOISE
    # A blurred speck is darkest in its middle; a blurred crystal, along its rim.
    if (
        area < 2 * FAINT_MIN_AREA_UM2 * px * px
        and peak >= DUST_MIN_DARKNESS
        and (centre >= SPECK_CENTRE_SHARE * peak)
    ):
        return "dust"
    thickness = 2.0 * depth(component).max()
    if (
        thickness <= FAINT_LINE_MAX_WIDTH_UM * px
        and extent(component)[0] >= 4 * thickness
        and _solidity(component) >= FAINT_LINE_MIN_SOLIDITY
    ):
        return "scratch"
    return None


def _solidity(component: np.ndarray) -> float:
    """Share of its convex hull that a component fills."""
    points = np.column_stack(np.nonzero(component)[::-1]).astype(np.int32)
    return float(component.sum()) / max(cv2.contourArea(cv2.convexHull(points)), 1.0)


def _eroded_area(area: np.ndarray, perimeter: np.ndarray, reach_px: float) -> np.ndarray:
    """Area of the outline moved `reach_px` inwards (Steiner's formula, exact for convex
    outlines): ``area - perimeter * reach + pi * reach**2``."""
    eroded = area - perimeter * reach_px + np.pi * reach_px**2
    return np.maximum(eroded, 0.25 * area)


def _shrunk_area(area, reach_px: float):
    """Area of the outline moved `reach_px` inwards (equivalent-disc approximation)."""
    diameter = 2.0 * np.sqrt(np.asarray(area) / np.pi)
    return np.pi / 4 * np.maximum(diameter - 2 * reach_px, 1.0) ** 2


def _members_from_area(area: float, typical_area: float) -> int:
    """Crystals in a blurred particle, from its area; biased to 1 as most particles are
    single (calibrated on synthetic frames to leave the total count unbiased)."""
    ratio = area / typical_area
    if ratio < BLUR_AGGLOMERATE_RATIO:
        return 1
    return max(2, int(round(ratio / BLUR_AREA_PER_CRYSTAL)))
