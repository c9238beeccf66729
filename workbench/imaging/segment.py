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
   lines (faint scratches) are removed; a faint ring is a small blurred crystal,
   unless its centre lies inside a particle or a removed imperfection (a bubble's
   diffraction ring): then it is that object's defocus halo.

High-resolution images are first area-averaged to about 2 µm per pixel (about
1280 x 960 for a 12 MP frame), where the method was tuned; results are reported in
the original pixels. Every threshold, size and fitted weight is a field of
:class:`~workbench.imaging.classical_params.ClassicalParams`, passed explicitly.

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

from workbench.camera import CameraProfile
from workbench.imaging._morphology import (
    depth,
    disk,
    extent,
    filled,
    label,
    label_sums,
    labelled_boxes,
    rims,
)
from workbench.imaging.classical_params import DEFAULT_PARAMS, ClassicalParams
from workbench.imaging.denoise import (
    ImperfectionRemoval,
    denoise,
    flatten_illumination,
    remove_imperfections,
)
from workbench.imaging.detections import Artifact, Detections, detections_from_labels
from workbench.imaging.working_scale import near_working_scale

NOISE = "noise"  # a faint blob that is no object at all
LINE_KINDS = ("fibre", "scratch")


def detect_crystals(
    image: np.ndarray, camera: CameraProfile, params: ClassicalParams = DEFAULT_PARAMS
) -> Detections:
    """The classical method: count crystals and agglomerates, remove imperfections.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Float gray image in [0, 1].
    camera : CameraProfile
        Gives the pixel size.
    params : ClassicalParams
        Thresholds, sizes and fitted weights (the tuned ones by default).

    Returns
    -------
    Detections
    """
    work, scale = near_working_scale(np.asarray(image, np.float32), camera.pixel_size_um)
    pixel_size_um = camera.pixel_size_um * scale
    flat, _ = flatten_illumination(work)
    removal = remove_imperfections(denoise(flat), pixel_size_um, params)
    labels, members, areas, faint_artifacts, faint_labels = segment_particles(
        removal.cleaned, pixel_size_um, removal, params
    )
    artifact_labels = removal.labels.copy()
    offset = len(removal.artifacts)
    artifact_labels[faint_labels > 0] = faint_labels[faint_labels > 0] + offset
    return detections_from_labels(
        labels, members, scale, removal.artifacts + faint_artifacts, artifact_labels, areas
    )


def segment_particles(
    flat: np.ndarray,
    pixel_size_um: float,
    removal: ImperfectionRemoval | None = None,
    params: ClassicalParams = DEFAULT_PARAMS,
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
    params : ClassicalParams
        Thresholds, sizes and fitted weights.

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
    near_lines = near_removed_lines(removal, flat.shape, px, params)
    labels, members, areas, solid = _sharp_particles(darkness, px, near_lines, params)
    singles = areas[members == 1]
    typical_area = float(np.median(singles)) if singles.size >= 5 else _typical_area(px, params)
    keep_out = cv2.dilate((labels > 0).astype(np.uint8), disk(params.keep_out_um * px)).astype(bool)
    if removal is not None:
        keep_out |= removal.mask
    smooth = cv2.GaussianBlur(darkness, (0, 0), params.faint_sigma_um * px)
    # Rim fragments without a face (blurred crystals, specks) join the faint blobs.
    faint = ((smooth > params.faint_darkness) | solid) & ~keep_out & (labels == 0)
    faint_labels, faint_count = label(faint)

    members_list, areas_list = list(members), list(areas)
    artifacts: list[Artifact] = []
    artifact_labels = np.zeros(flat.shape, np.int32)
    enclosing = labels > 0 if removal is None else (labels > 0) | removal.mask
    for _, box, component in labelled_boxes(
        faint_labels, ~_faint_noise(faint_labels, faint_count, darkness, near_lines, px, params)
    ):
        rows, cols = np.nonzero(component)
        centroid = (float(cols.mean() + box[1].start), float(rows.mean() + box[0].start))
        if enclosing[round(centroid[1]), round(centroid[0])]:
            continue  # a ring around a particle or a removed imperfection: its halo
        near_line = bool(near_lines[box][component].any())
        kind = _faint_kind(component, darkness[box], px, near_line, params)
        if kind == NOISE:
            continue
        if kind is not None:
            artifacts.append(Artifact(kind, centroid, float(rows.size)))
            artifact_labels[box][component] = len(artifacts)
            continue
        if np.percentile(darkness[box][component], 95) < params.faint_crystal_min_darkness:
            continue  # its own pixels are not dark: the blur of a dark rim spilling over
        area = shrunk_area(float(component.sum()), params.blur_reach_um * px)
        members_list.append(members_from_area(area, typical_area, params))
        areas_list.append(area)
        labels[box][component] = len(members_list)
    return (
        labels,
        np.asarray(members_list, int),
        np.asarray(areas_list, float),
        artifacts,
        artifact_labels,
    )


def near_removed_lines(
    removal: ImperfectionRemoval | None,
    shape: tuple[int, int],
    px: float,
    params: ClassicalParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Pixels within ``params.keep_out_um`` of a removed fibre or scratch.

    Parameters
    ----------
    removal : ImperfectionRemoval or None
        What was painted over; None gives an empty mask.
    shape : (rows, cols)
        Image shape.
    px : float
        Pixels per µm.
    params : ClassicalParams
        Gives ``keep_out_um``.

    Returns
    -------
    ndarray of bool, shape `shape`

    Examples
    --------
    >>> near_removed_lines(None, (4, 5), 0.5).shape
    (4, 5)
    """
    if removal is None:
        return np.zeros(shape, bool)
    lines = [i + 1 for i, a in enumerate(removal.artifacts) if a.kind in LINE_KINDS]
    return cv2.dilate(
        np.isin(removal.labels, lines).astype(np.uint8), disk(params.keep_out_um * px)
    ).astype(bool)


def _sharp_particles(
    darkness: np.ndarray, px: float, near_lines: np.ndarray, params: ClassicalParams
):
    """Particles outlined by sharp rims: labels, crystals per particle, corrected areas,
    and the solid (filled rims) mask, faceless fragments included."""
    features = sharp_particle_features(darkness, px, near_lines, params)
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
    weights = np.asarray(params.agglomerate_blend)
    members = np.where(concavities == 0, 1, np.maximum(2, np.rint(blend @ weights)).astype(int))
    areas = eroded_area(features["raw_areas"], features["perimeters"], params.rim_reach_out_um * px)
    return features["labels"], members.astype(int), areas, features["solid"]


def sharp_particle_features(
    darkness: np.ndarray,
    px: float,
    near_lines: np.ndarray | None = None,
    params: ClassicalParams = DEFAULT_PARAMS,
) -> dict[str, np.ndarray]:
    """Sharp particles and the features their crystal numbers are estimated from.

    A region touching `near_lines` (around removed fibres and scratches) whose interior
    is a sliver, such as where two fibres cross, is left out: it is part of the lines.

    Exposed for calibration (``scripts/fit_classical_params.py``): ``labels``,
    ``solid``, and per particle ``raw_areas`` (pixels), ``concavities`` (dents deeper
    than ``params.concavity_min_um``), ``shallow_concavities`` (deeper than
    ``params.shallow_concavity_um``), ``perimeters`` (pixels), ``exclusive_faces``
    (shape (N, len(params.face_views)), for particles with concavities); ``typical``
    is the median area of convex (single) particles.
    """
    strong, traced = rims(darkness, params.rim_darkness, params.weak_rim_darkness)
    solid = filled(traced)
    particle_labels, count = label(solid)
    # A crystal encloses an interior: inside its strong rims (a dark crystal), or inside
    # its traced rims (a light crystal with a faint edge). Specks and lines enclose none.
    enclosed = (filled(strong) & ~strong) | (solid & ~traced)
    interior = label_sums(enclosed, particle_labels, count)
    outline_areas = label_sums(solid, particle_labels, count)
    smallest = (
        np.pi / 4 * ((params.crystal_min_diameter_um + 2 * params.rim_reach_out_um) * px) ** 2
    )
    crystal_like = (interior >= params.face_min_area_um2 * px * px) & (outline_areas >= smallest)
    if near_lines is not None:
        touching = label_sums(near_lines, particle_labels, count) > 0
        sliver = interior < params.sliver_share * outline_areas
        crystal_like &= ~(touching & sliver)
    kept = np.flatnonzero(crystal_like) + 1
    lookup = np.zeros(count + 1, np.int32)
    lookup[kept] = np.arange(1, kept.size + 1)
    labels = lookup[particle_labels]
    raw_areas = label_sums(solid, labels, kept.size)
    concavities, shallow_concavities, perimeters = _outlines(labels, px, near_lines, params)
    singles = raw_areas[concavities == 0]
    typical = float(np.median(singles)) if singles.size >= 5 else _typical_area(px, params)
    agglomerated = concavities > 0
    exclusive_faces = np.column_stack(
        [
            _exclusive_faces(solid, darkness, labels, typical, px, agglomerated, view, params)
            for view in params.face_views
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


def _typical_area(px: float, params: ClassicalParams) -> float:
    """Area in pixels of a crystal of the typical diameter."""
    return np.pi * (params.typical_crystal_um * px / 2) ** 2


def _outlines(
    labels: np.ndarray, px: float, near_lines: np.ndarray | None, params: ClassicalParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per particle, the dents in its outline deeper than ``params.concavity_min_um``
    and than ``params.shallow_concavity_um``, and the outline's length in pixels.
    Dents whose deepest point lies in `near_lines` (around removed fibres and
    scratches) are not counted.

    A crystal is convex; where two crystals of an agglomerate meet, the outline dents.
    """
    count = int(labels.max())
    dents, shallow, perimeters = np.zeros(count, int), np.zeros(count, int), np.zeros(count)
    smoothing = disk(params.speck_radius_um * px)
    for index, box, region in labelled_boxes(labels):
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
            if near_lines is not None:
                # A fibre across a crystal, painted over, leaves dents where it
                # crossed the outline: those are the fibre's, not a second crystal's.
                deepest = contour[defects[:, 0, 2], 0]  # (x, y) in the padded box
                depths[np.pad(near_lines[box], 3)[deepest[:, 1], deepest[:, 0]]] = 0.0
            dents[index] = int((depths > params.concavity_min_um * px).sum())
            shallow[index] = int((depths > params.shallow_concavity_um * px).sum())
    return dents, shallow, perimeters


def _exclusive_faces(
    solid: np.ndarray,
    darkness: np.ndarray,
    labels: np.ndarray,
    typical: float,
    px: float,
    agglomerated: np.ndarray,
    view: tuple[float, float, float],
    params: ClassicalParams,
) -> np.ndarray:
    """Per agglomerated particle, its faces that are not the lens of an overlap.

    `view` is (rim darkness, min share, lens ratio). Faces are the regions between
    rims darker than the rim darkness, at least min share of a typical crystal. Where
    two crystals overlap, the lens between them is a face bordered by two faces lens
    ratio times larger (the rest of each crystal); every other face belongs to one
    crystal.
    """
    rim_darkness, min_share, lens_ratio = view
    face_labels, face_count = label(solid & ~(darkness > rim_darkness), connectivity=4)
    area = np.bincount(face_labels.ravel(), minlength=face_count + 1)
    large = area >= max(params.face_min_area_um2 * px * px, min_share * typical)
    large[0] = False
    least_reach = int(round(params.lens_neighbour_um * px))
    counts = np.zeros(int(labels.max()), int)
    for index, box, region in labelled_boxes(labels, agglomerated):
        faces = np.where(region, face_labels[box], 0)
        # Rims wider than thin ones push a lens's neighbours further away.
        thicker = _rim_width(region, faces) - params.thin_rim_px
        reach = least_reach + max(0, int(np.ceil(thicker)))
        across_rim = np.ones((2 * reach + 1, 2 * reach + 1), np.uint8)
        present = np.flatnonzero(np.bincount(faces.ravel()))  # np.unique, without a sort
        for face in present[large[present]]:
            around = cv2.dilate((faces == face).astype(np.uint8), across_rim).astype(bool)
            nearby = faces[around]
            larger = nearby[large[nearby] & (area[nearby] >= lens_ratio * area[face])]
            # A lens has two distinct larger neighbours; all pixels of one face is one.
            counts[index] += int(larger.size == 0 or bool((larger == larger[0]).all()))
    return counts


def _rim_width(region: np.ndarray, faces: np.ndarray) -> float:
    """About the width in pixels of the rims of a particle (its pixels in no face),
    from their median distance to the nearest pixel outside them.

    A band ``w`` pixels wide has distances 1 to ``w / 2``, median about ``(w + 2) / 4``.
    """
    rim = region & (faces == 0)
    if not rim.any():
        return 0.0
    return 4.0 * float(np.median(depth(rim, exact=True)[rim])) - 2.0


def _faint_noise(
    faint_labels: np.ndarray,
    count: int,
    darkness: np.ndarray,
    near_lines: np.ndarray,
    px: float,
    params: ClassicalParams,
) -> np.ndarray:
    """Per faint blob, whether :func:`_faint_kind` would call it NOISE for its size and
    darkness alone: too small for a crystal, too light for dust, away from any line.

    A frame has a thousand such specks of noise; deciding them all at once, with
    counts over masks, saves most of the per-blob work.
    """
    faint = faint_labels > 0
    area = label_sums(faint, faint_labels, count)
    dark = label_sums(faint & (darkness >= params.dust_min_darkness), faint_labels, count) > 0
    near_line = label_sums(near_lines, faint_labels, count) > 0
    smallest = min(params.faint_min_area_um2, params.faint_crystal_min_area_um2) * px * px
    return (area < smallest) & ~dark & ~near_line


def _faint_kind(
    component: np.ndarray,
    darkness: np.ndarray,
    px: float,
    near_line: bool,
    params: ClassicalParams,
) -> str | None:
    """What a faint blob is: None for an out-of-focus crystal, else ``dust``,
    ``debris``, ``fibre`` or ``scratch``, or NOISE for nothing at all.

    A small blob is a crystal when it is hollow (a ring: its centre is far lighter
    than its darkest part), dust when it is dark in the middle; a blob touching a
    removed fibre or scratch is the faint end of it; a long, thin and straight one
    is a scratch (a long, thin arc is the visible part of a light crystal's rim); a
    larger blob as dark in its middle as anywhere is grey debris.
    """
    area = component.sum()
    if near_line:
        return "fibre"
    peak = float(darkness[component].max())
    rows, cols = np.nonzero(component)
    row, col = int(round(rows.mean())), int(round(cols.mean()))
    centre = float(darkness[max(row - 1, 0) : row + 2, max(col - 1, 0) : col + 2].mean())
    if area < params.faint_min_area_um2 * px * px:
        hollow = centre < params.hollow_share * peak
        if hollow and area >= params.faint_crystal_min_area_um2 * px * px:
            return None
        return "dust" if peak >= params.dust_min_darkness else NOISE
    # A blurred speck is darkest in its middle; a blurred crystal, along its rim.
    if (
        area < 2 * params.faint_min_area_um2 * px * px
        and peak >= params.dust_min_darkness
        and centre >= params.speck_centre_share * peak
    ):
        return "dust"
    if centre >= params.debris_centre_share * peak and peak <= params.grey_debris_max_darkness:
        return "debris"  # flat or darkest in its middle: no blurred rim
    thickness = 2.0 * depth(component).max()
    if (
        thickness <= params.faint_line_max_width_um * px
        and extent(component)[0] >= 4 * thickness
        and _solidity(component) >= params.faint_line_min_solidity
    ):
        return "scratch"
    return None


def _solidity(component: np.ndarray) -> float:
    """Share of its convex hull that a component fills."""
    points = np.column_stack(np.nonzero(component)[::-1]).astype(np.int32)
    return float(component.sum()) / max(cv2.contourArea(cv2.convexHull(points)), 1.0)


def eroded_area(area: np.ndarray, perimeter: np.ndarray, reach_px: float) -> np.ndarray:
    """Area of a sharp outline moved `reach_px` inwards, at least a quarter of `area`.

    Steiner's formula, exact for convex outlines: ``area - perimeter * reach +
    pi * reach**2``. The rim makes a sharp particle's solid outline lie
    ``rim_reach_out_um`` outside the crystal's edge.

    Examples
    --------
    >>> eroded_area(np.array([100.0]), np.array([40.0]), 1.0).round(2)  # a 10 x 10 square
    array([63.14])
    """
    eroded = area - perimeter * reach_px + np.pi * reach_px**2
    return np.maximum(eroded, 0.25 * area)


def shrunk_area(area, reach_px: float):
    """Area of a blurred outline moved `reach_px` inwards (equivalent-disc approximation).

    Examples
    --------
    >>> round(float(shrunk_area(np.pi * 10**2, 4.0)), 2)  # a disc of radius 10 -> 6
    113.1
    """
    diameter = 2.0 * np.sqrt(np.asarray(area) / np.pi)
    return np.pi / 4 * np.maximum(diameter - 2 * reach_px, 1.0) ** 2


def members_from_area(
    area: float, typical_area: float, params: ClassicalParams = DEFAULT_PARAMS
) -> int:
    """Crystals in a blurred particle, from its area over the typical crystal area.

    Biased to 1, as most particles are single: under ``params.blur_agglomerate_ratio``
    typical areas it is one crystal, above it one per ``params.blur_area_per_crystal``
    typical areas (both fitted to leave the total count unbiased).

    Examples
    --------
    >>> members_from_area(250.0, 100.0), members_from_area(600.0, 100.0)
    (1, 4)
    """
    ratio = area / typical_area
    if ratio < params.blur_agglomerate_ratio:
        return 1
    return max(2, int(round(ratio / params.blur_area_per_crystal)))
