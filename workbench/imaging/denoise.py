"""Uneven illumination, sensor noise and sample-preparation imperfections.

Three steps, each a plain function over float gray images:

1. :func:`flatten_illumination` divides by a smooth background (vignetting, gradient
   and slow blotches from dirt on the condenser), so the background is 1.0
   everywhere and an object's darkness is ``1 - value`` wherever it lies.
2. :func:`denoise` smooths sensor noise while keeping the thin crystal rims. The
   default, ``bilateral``, was chosen by measured PSNR/SSIM against the noise-free
   synthetic frames (``workbench bench`` reports all three candidates): non-local
   means scores about 0.2 dB and 0.01 SSIM higher but takes about 1 s a frame, twice
   the whole budget of 0.5 s; a Gaussian blurs the rims and gains almost nothing.
3. :func:`remove_imperfections` finds air bubbles, debris, fibres and dark scratches
   by shape and intensity and paints them over with background, so they are never
   counted. Dust and faint scratches are told apart from out-of-focus crystals later,
   among the faint blobs (:func:`workbench.imaging.segment.segment_particles`).

All sizes are given in µm and converted with the pixel size; the classical pipeline
calls these at about 2 µm per pixel.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.denoise import flatten_illumination, denoise
>>> ramp = np.tile(np.linspace(0.6, 0.9, 256, dtype=np.float32), (200, 1))
>>> flat, background = flatten_illumination(ramp)
>>> bool(np.allclose(flat, 1.0, atol=0.01))
True
>>> denoise(flat).shape
(200, 256)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import cv2
import numpy as np
from scipy import ndimage as ndi

from workbench.imaging._morphology import (
    components,
    depth,
    disk,
    extent,
    fill_holes,
    filled,
    grown,
    label,
    label_maxima,
    labelled_boxes,
    rims,
    within,
)
from workbench.imaging.classical_params import DEFAULT_PARAMS, ClassicalParams
from workbench.imaging.detections import Artifact, count_by_kind

DEFAULT_DENOISER = "bilateral"


@dataclass
class ImperfectionRemoval:
    """Result of :func:`remove_imperfections`.

    Attributes
    ----------
    cleaned : ndarray of float32
        The flattened image with every imperfection painted over with background (1.0).
    labels : ndarray of int32
        ``i + 1`` on the pixels of ``artifacts[i]``, 0 elsewhere.
    artifacts : list of Artifact
    """

    cleaned: np.ndarray
    labels: np.ndarray
    artifacts: list[Artifact] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray:
        """Pixels painted over."""
        return self.labels > 0

    @property
    def removed(self) -> dict[str, int]:
        """Number removed per kind (every kind listed, zeros included)."""
        return count_by_kind(self.artifacts)


def estimate_background(image: np.ndarray, cell: int = 16, degree: int = 3) -> np.ndarray:
    """Smooth illumination field under the objects.

    The median of each ``cell`` x ``cell`` block ignores thin rims and small objects; a
    polynomial surface of `degree` fitted to the block medians with iterative outlier
    rejection ignores large objects (bubbles, dense clusters) and follows vignetting
    and gradients; the median-filtered residual of the blocks adds slow blotches.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Float gray image.
    cell : int
        Block side in pixels.
    degree : int
        Total degree of the polynomial surface (vignetting is about quadratic).

    Returns
    -------
    ndarray of float32, shape (H, W)

    Examples
    --------
    >>> yy, xx = np.mgrid[0:128, 0:160].astype(np.float32)
    >>> field = 0.8 - 1e-5 * ((xx - 80) ** 2 + (yy - 64) ** 2)
    >>> float(np.abs(estimate_background(field) - field).max()) < 0.01
    True
    """
    height, width = image.shape
    rows, cols = max(height // cell, 1), max(width // cell, 1)
    cell_h, cell_w = height // rows, width // cols
    blocks = image[: rows * cell_h, : cols * cell_w].reshape(rows, cell_h, cols, cell_w)
    medians = np.median(blocks.transpose(0, 2, 1, 3).reshape(rows, cols, -1), axis=2)

    powers = [(i, j) for i in range(degree + 1) for j in range(degree + 1 - i)]
    y, x = np.mgrid[0:rows, 0:cols]
    x = (x.ravel() + 0.5) / cols * 2 - 1
    y = (y.ravel() + 0.5) / rows * 2 - 1
    design = np.stack([x**i * y**j for i, j in powers], axis=1)
    values = medians.ravel()
    keep = np.ones(values.size, bool)
    for _ in range(5):
        coefficients, *_ = np.linalg.lstsq(design[keep], values[keep], rcond=None)
        residual = values - design @ coefficients
        spread = 1.4826 * np.median(np.abs(residual[keep])) + 1e-6
        keep = np.abs(residual) < 3.0 * spread
    # Slow blotches (dirt on the condenser) are left in the residual of the cells; a
    # median over 5 x 5 cells keeps them and drops what objects left in single cells.
    trend = (design @ coefficients).reshape(rows, cols).astype(np.float32)
    residual = (medians - trend).astype(np.float32)
    residual = cv2.GaussianBlur(ndi.median_filter(residual, size=5, mode="nearest"), (0, 0), 1.0)
    # The trend is evaluated at every pixel (separable products, so fast); only the slow
    # residual is interpolated from the cells.
    fy = ((np.arange(height) + 0.5) / (rows * cell_h) * 2 - 1).astype(np.float32)
    fx = ((np.arange(width) + 0.5) / (cols * cell_w) * 2 - 1).astype(np.float32)
    surface = cv2.resize(residual, (width, height), interpolation=cv2.INTER_CUBIC)
    for c, (i, j) in zip(coefficients.astype(np.float32), powers, strict=True):
        surface += c * np.outer(fy**j, fx**i)
    return np.maximum(surface, 1e-3)


def flatten_illumination(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Divide by the estimated background: background becomes 1.0.

    Returns
    -------
    flat : ndarray of float32
    background : ndarray of float32

    Examples
    --------
    >>> flat, bg = flatten_illumination(np.full((64, 64), 0.5, np.float32))
    >>> float(flat.mean())
    1.0
    """
    image = np.asarray(image, dtype=np.float32)
    background = estimate_background(image)
    return image / background, background


def _gaussian(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), 0.8)


def _bilateral(image: np.ndarray) -> np.ndarray:
    # Range sigma in units of the image: a few noise levels (noise is 1-2 % of the
    # background), far below the 25-60 % contrast of a rim, which stays sharp.
    level = float(np.median(image))
    return cv2.bilateralFilter(image, 5, 0.08 * level, 2.0)


def _nlm(image: np.ndarray) -> np.ndarray:
    top = float(image.max()) or 1.0
    as_bytes = np.clip(image / top * 255.0, 0, 255).astype(np.uint8)
    denoised = cv2.fastNlMeansDenoising(
        as_bytes, None, h=8, templateWindowSize=5, searchWindowSize=11
    )
    return denoised.astype(np.float32) * np.float32(top / 255.0)


DENOISERS = {"gaussian": _gaussian, "bilateral": _bilateral, "nlm": _nlm}


def denoise(image: np.ndarray, method: str = DEFAULT_DENOISER) -> np.ndarray:
    """Reduce sensor noise, keeping edges.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Float gray image (any scale).
    method : {"bilateral", "nlm", "gaussian"}
        Edge-preserving bilateral filter (default), non-local means, or a Gaussian blur.

    Returns
    -------
    ndarray of float32, same shape.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noisy = (0.8 + 0.02 * rng.standard_normal((64, 64))).astype(np.float32)
    >>> bool(denoise(noisy).std() < noisy.std())
    True
    """
    try:
        function = DENOISERS[method]
    except KeyError:
        from workbench.errors import WorkbenchError

        raise WorkbenchError(
            f"unknown denoiser {method!r}: choose one of {', '.join(DENOISERS)}"
        ) from None
    return function(np.asarray(image, dtype=np.float32))


def remove_imperfections(
    flat: np.ndarray, pixel_size_um: float = 2.0, params: ClassicalParams = DEFAULT_PARAMS
) -> ImperfectionRemoval:
    """Find bubbles, debris, fibres and scratches and paint them over with background.

    Parameters
    ----------
    flat : ndarray, shape (H, W)
        Flattened (background 1.0), denoised image.
    pixel_size_um : float
        Pixel side in µm.
    params : ClassicalParams
        Thresholds and sizes (the ``opaque_*``, ``bubble_*``, ``fibre_*`` and rim ones).

    Returns
    -------
    ImperfectionRemoval

    Notes
    -----
    Classification by shape and intensity (the numbers are the default parameters):

    - **bubbles**: a ring more than 25 % dark and at least 4 px thick (a crystal rim
      is thinner), round, at least 50 µm across, around a lighter centre.
    - *opaque* objects are more than 40 % dark over a core at least 3 px thick and
      make most of the dark region around them (where rims of an agglomerate cross,
      small dark spots form, but within a web of rims): **debris**, or **fibres**
      when long (>= 80 µm) and thin; a shorter dark bar is a crystal's steep side
      wall, and a hollow or open ring a crystal's thick wall, left for the segmentation
      (bubbles missed above when hollow and round), as is any dark core whose
      surrounding rims close into a convex crystal outline around a clear face.
    - dark structures whose filled shape is long (>= 80 µm, 5 times its width) and
      thin (<= 16 µm; a translucent fibre up to 40 µm wide when 10 times longer) and
      not a compact loop are **fibres** (or dark **scratches** when straight).
    - faint long straight lines and tiny specks are found later, with the faint
      crystals (:func:`workbench.imaging.segment.detect_crystals`), since they are
      told apart from out-of-focus crystals by the same features.

    Examples
    --------
    >>> flat = np.ones((128, 128), np.float32)
    >>> _ = cv2.circle(flat, (64, 64), 8, 0.2, -1)  # an opaque blob
    >>> removal = remove_imperfections(flat)
    >>> removal.removed["debris"], float(removal.cleaned.min())
    (1, 1.0)
    """
    flat = np.asarray(flat, dtype=np.float32)
    darkness = 1.0 - flat
    labels = np.zeros(flat.shape, np.int32)
    artifacts: list[Artifact] = []

    def add(kind: str, region: np.ndarray) -> None:
        rows, cols = np.nonzero(region)
        if rows.size == 0:
            return
        artifacts.append(Artifact(kind, (float(cols.mean()), float(rows.mean())), float(rows.size)))
        labels[region & (labels == 0)] = len(artifacts)

    px_per_um = 1.0 / pixel_size_um
    for region in _bubbles(darkness, px_per_um, params):
        add("bubble", region)
    for kind, region in _opaque_objects(np.where(labels > 0, 0.0, darkness), px_per_um, params):
        add(kind, region)
    _, traced = rims(
        np.where(labels > 0, 0.0, darkness), params.rim_darkness, params.weak_rim_darkness
    )
    for kind, region in _dark_lines(traced, px_per_um, params):
        add(kind, region)
    cleaned = flat.copy()
    cleaned[labels > 0] = 1.0
    return ImperfectionRemoval(cleaned, labels, artifacts)


def _bubbles(darkness: np.ndarray, px_per_um: float, params: ClassicalParams):
    """Air bubbles: a thick dark ring, round, at least 50 µm across, around a bright
    centre. Some rings are only 40 % dark, lighter than debris; their thickness and
    shape tell them from crystals, whose rims are thin."""
    ring = cv2.morphologyEx(
        (darkness > params.bubble_ring_darkness).astype(np.uint8), cv2.MORPH_OPEN, disk(1.5)
    ).astype(bool)
    shape = darkness.shape
    min_diameter = params.bubble_min_diameter_um * px_per_um
    for box, component in components(ring):
        if component.sum() < params.opaque_min_area_um2 * px_per_um**2:
            continue
        filled = _filled(component, box, shape)
        area = float(filled.sum())
        diameter = 2.0 * np.sqrt(area / np.pi)
        if diameter < min_diameter or not _encloses_a_centre(component, filled, params):
            continue
        if not _bubble_shaped(filled, box, shape, params):
            continue
        margin = 2 + int(0.15 * diameter)  # the bright halo just outside the ring
        region = np.zeros(shape, bool)
        region[box] = filled
        outer = grown(box, shape, margin + 1)
        region[outer] = cv2.dilate(region[outer].astype(np.uint8), disk(margin)).astype(bool)
        yield region


def _opaque_objects(darkness: np.ndarray, px_per_um: float, params: ClassicalParams):
    """Bubbles, debris and dark fibres: (kind, full-frame mask) for each."""
    core = cv2.morphologyEx(
        (darkness > params.opaque_darkness).astype(np.uint8), cv2.MORPH_OPEN, disk(1)
    ).astype(bool)
    shape = darkness.shape
    min_area = params.opaque_min_area_um2 * px_per_um**2
    # Where rims of overlapping crystals cross, dark spots survive the opening; but they
    # are a small part of the web of rims they sit in, while an opaque object is most
    # of the dark region around it.
    dark_labels, _ = label(darkness > params.rim_darkness)
    dark_areas = np.bincount(dark_labels.ravel())
    dark_boxes = ndi.find_objects(dark_labels)
    for box, component in components(core):
        area = component.sum()
        if area < min_area or darkness[box][component].mean() < params.opaque_mean_darkness:
            continue
        region = dark_labels[box][component][0]
        if area < params.opaque_min_share * dark_areas[region]:
            continue
        around = dark_boxes[region - 1]
        surrounding = dark_labels[around] == region
        kind, margin = _opaque_kind(
            component, box, darkness, px_per_um, params, surrounding, around
        )
        if kind is None:
            continue
        outer = grown(box, shape, margin + 1)
        region = np.zeros(shape, bool)
        region[box] = component if kind == "fibre" else _filled(component, box, shape)
        region[outer] = cv2.dilate(region[outer].astype(np.uint8), disk(margin)).astype(bool)
        yield kind, region


def _opaque_kind(
    component: np.ndarray,
    box,
    darkness: np.ndarray,
    px_per_um: float,
    params: ClassicalParams,
    surrounding: np.ndarray,
    surrounding_box: tuple[slice, slice],
) -> tuple[str | None, int]:
    """Classify one opaque component; also return the margin to grow it by (px).

    A dark ring around a lighter interior is a bubble only when round and large; any
    other ring is a thick crystal whose steep faces bend light out of the objective
    (dark walls around a clear face): None, it is left for the crystal segmentation.
    Debris is dark throughout, compact, and without the bright halo of a crystal.
    A dark component is no fibre or debris when it, or the rim-dark region
    `surrounding` it (a mask over that region's box, `surrounding_box`), is the outline
    of a crystal: the dark side wall or face of a thick prism lies within the prism's
    rims. Nor is it a fibre when it borders the faces of several crystals: the walls of
    a chain of them.
    """
    shape = darkness.shape
    filled = _filled(component, box, shape)
    length, width = extent(component)

    @cache  # asked at most twice, and only of cores that might be fibres or debris
    def within_outline() -> bool:
        return params.within_crystal_outline and _crystal_outline(
            surrounding, fill_holes(surrounding), params
        )

    if (
        length >= 2.5 * width
        and 2.0 * depth(component).max() <= params.fibre_max_width_um * px_per_um
        and not _crystal_outline(component, filled, params)
        and not within_outline()
        and not _walls_of_crystals(component, box, surrounding, surrounding_box, px_per_um, params)
    ):
        # Shorter dark bars are the steep side walls of crystals, not fibres.
        return ("fibre", 2) if length >= params.fibre_min_length_um * px_per_um else (None, 0)
    diameter_px = 2.0 * np.sqrt(filled.sum() / np.pi)
    if _encloses_a_centre(component, filled, params):
        if (
            _bubble_shaped(filled, box, shape, params)
            and diameter_px >= params.bubble_min_diameter_um * px_per_um
        ):
            # Grow over the bright halo just outside the ring (about 15 % of the radius).
            return "bubble", 2 + int(0.15 * diameter_px)
        return None, 0
    if _encloses_a_face(component, filled, params) or within_outline():
        return None, 0  # a thick ring around a clear face, or a wall inside one
    if component.sum() < params.debris_min_solidity * _hull_pixels(component):
        # An open ring (a thick wall with a gap), a crescent or a crystal's dark walls:
        # not dark throughout.
        return None, 0
    if _halo_darkness(component, box, darkness, px_per_um, params) < params.debris_max_halo:
        return None, 0  # a dark crystal: it bends light into a bright line around it
    return "debris", 2


def _walls_of_crystals(
    component: np.ndarray,
    box: tuple[slice, slice],
    surrounding: np.ndarray,
    surrounding_box: tuple[slice, slice],
    px_per_um: float,
    params: ClassicalParams,
) -> bool:
    """Whether at least ``params.wall_min_faces`` crystal faces border a dark component:
    lighter regions enclosed by the rim-dark region `surrounding` it (which holds the
    component), each at least a smallest crystal in area and compact."""
    if params.wall_min_faces <= 0:
        return False
    near = np.zeros(surrounding.shape, np.uint8)
    near[within(box, surrounding_box)] = component
    near = cv2.dilate(near, disk(2)).astype(bool)
    smallest = np.pi / 4 * (params.crystal_min_diameter_um * px_per_um) ** 2
    faces = 0
    holes, _ = label(fill_holes(surrounding) & ~surrounding, connectivity=4)
    for _, face_box, face in labelled_boxes(holes):
        if face.sum() < smallest or not near[face_box][face].any():
            continue
        length, width = extent(face)
        faces += int(length < params.face_max_aspect * width)
        if faces >= params.wall_min_faces:
            return True
    return False


def _halo_darkness(
    component: np.ndarray, box, darkness: np.ndarray, px_per_um: float, params: ClassicalParams
) -> float:
    """25th percentile of the darkness in a ring ``params.halo_reach_um`` wide, two
    pixels outside a component (negative: brighter than the background)."""
    reach = max(1, int(round(params.halo_reach_um * px_per_um)))
    outer = grown(box, darkness.shape, reach + 3)
    inside = np.zeros(darkness[outer].shape, np.uint8)
    inside[within(box, outer)] = component
    near = cv2.dilate(inside, disk(2)).astype(bool)
    ring = cv2.dilate(near.astype(np.uint8), disk(reach)).astype(bool) & ~near
    return float(np.percentile(darkness[outer][ring], 25)) if ring.any() else 0.0


def _crystal_outline(component: np.ndarray, filled: np.ndarray, params: ClassicalParams) -> bool:
    """Whether a thin dark component is the closed outline of an elongated crystal: it
    encloses a face (see ``debris_max_hole_share``), and the outline is convex and less
    than ``params.fibre_min_aspect`` times longer than wide (a hollow fibre is longer)."""
    if not _encloses_a_face(component, filled, params):
        return False
    if extent(filled)[0] >= params.fibre_min_aspect * 2.0 * depth(filled).max():
        return False
    return filled.sum() >= params.crystal_outline_min_solidity * _hull_pixels(filled)


def _enclosed_share(component: np.ndarray, filled: np.ndarray) -> float:
    """Share of a dark component's filled outline that is lighter pixels it encloses."""
    return float(filled.sum() - component.sum()) / max(float(filled.sum()), 1.0)


def _encloses_a_face(component: np.ndarray, filled: np.ndarray, params: ClassicalParams) -> bool:
    """Whether the lighter pixels a dark component encloses are more than
    ``params.debris_max_hole_share`` of its filled outline."""
    return _enclosed_share(component, filled) > params.debris_max_hole_share


def _encloses_a_centre(component: np.ndarray, filled: np.ndarray, params: ClassicalParams) -> bool:
    """Whether a dark ring's lighter centre is at least ``params.bubble_min_centre_share``
    of its filled outline (a bubble's, when the ring is round and large enough)."""
    return _enclosed_share(component, filled) >= params.bubble_min_centre_share


def _hull_area(component: np.ndarray) -> float:
    """Area in pixels of the convex hull of a component's pixels."""
    points = np.column_stack(np.nonzero(component)[::-1]).astype(np.float32)
    return float(cv2.contourArea(cv2.convexHull(points)))


def _hull_pixels(component: np.ndarray) -> int:
    """Pixels inside the convex hull of a component (itself included)."""
    points = np.column_stack(np.nonzero(component)[::-1]).astype(np.int32)
    hull = np.zeros(component.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(points), 1)
    return int(hull.sum())


def _bubble_shaped(filled: np.ndarray, box, shape, params: ClassicalParams) -> bool:
    """Whether a filled shape is round like a bubble (see ``bubble_min_roundness`` and
    ``bubble_min_circularity``). A bubble cut by the frame's edge is judged against the
    circle through its outline's uncut part (:func:`_cut_bubble_shaped`): the cut makes
    any shape's inscribed circle and its smallest enclosing circle small."""
    if any(_touches_edge(box, shape)):
        return _cut_bubble_shaped(filled, box, shape, params)
    points = np.column_stack(np.nonzero(filled)[::-1]).astype(np.float32)
    _, radius = cv2.minEnclosingCircle(points)
    if float(filled.sum()) < params.bubble_min_roundness * np.pi * radius**2:
        return False
    inscribed = cv2.distanceTransform(np.pad(filled, 1).astype(np.uint8), cv2.DIST_L2, 5).max()
    return float(inscribed) >= params.bubble_min_circularity * radius


def _cut_bubble_shaped(filled: np.ndarray, box, shape, params: ClassicalParams) -> bool:
    """Whether a shape cut by the frame's edge is round like a bubble, judged against the
    circle fitted (least squares) to its outline's uncut part: the shape fills at least
    ``bubble_min_roundness`` of that circle's part inside the frame, and the uncut
    outline's distances from the centre vary no more than an inscribed and enclosing
    circle may (``bubble_min_circularity``; a hexagon's vary by 13 %)."""
    contours, _ = cv2.findContours(
        filled.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE
    )
    outline = np.concatenate(contours)[:, 0, :] + (box[1].start, box[0].start)
    inside = (outline > 0).all(axis=1) & (outline < np.array(shape[::-1]) - 1).all(axis=1)
    uncut = outline[inside].astype(float)
    if len(uncut) < 8:
        return False
    # x² + y² = a x + b y + c is linear in a, b, c (Kasa's circle fit).
    design = np.column_stack([uncut, np.ones(len(uncut))])
    (a, b, c), *_ = np.linalg.lstsq(design, (uncut**2).sum(axis=1), rcond=None)
    centre = np.array([a / 2, b / 2])
    distances = np.linalg.norm(uncut - centre, axis=1)
    low, high = np.percentile(distances, [5, 95])
    if low < params.bubble_min_circularity * high:
        return False
    radius = float(np.sqrt(max(c + centre @ centre, 0.0)))
    # The circle's pixels inside the frame, counted over its bounding box only.
    top, left = (max(int(v - radius), 0) for v in centre[::-1])
    bottom, right = (min(int(v + radius) + 2, n) for v, n in zip(centre[::-1], shape, strict=True))
    rows, cols = np.ogrid[top:bottom, left:right]
    inside_frame = int(((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2 <= radius**2).sum())
    return inside_frame > 0 and float(filled.sum()) >= params.bubble_min_roundness * inside_frame


def _touches_edge(box, shape) -> list[bool]:
    """Which sides of the frame (top, right, bottom, left) the box `box` reaches."""
    return [box[0].start == 0, box[1].stop == shape[1], box[0].stop == shape[0], box[1].start == 0]


def _filled(component: np.ndarray, box, shape) -> np.ndarray:
    """Fill holes, counting the frame's edge as closing a ring cut by it (bubbles at the edge)."""
    padded = np.pad(component, 1)
    for side, touching in enumerate(_touches_edge(box, shape)):
        if touching:
            rotated = np.rot90(padded, side)
            rotated[0, :] = True
    return fill_holes(padded)[1:-1, 1:-1]


def _dark_lines(traced: np.ndarray, px_per_um: float, params: ClassicalParams):
    """Fibres and dark scratches: long, thin, open dark structures.

    Either a whole rim component is slender (a wide translucent fibre encloses its
    lighter axis, so enclosing is no test), or, for a fibre touching a crystal, the
    part that an opening removes from the filled component is long: a small opening
    for thin fibres, one ``params.fibre_band_um`` wide for wide ones.
    """
    solid = filled(traced)
    max_width = params.fibre_max_width_um * px_per_um
    labelled, count = label(solid)
    if count == 0:
        return
    thickness = 2.0 * label_maxima(depth(solid), labelled, count)
    slender = np.concatenate([[False], thickness <= params.fibre_max_wide_um * px_per_um])[labelled]
    bodies = cv2.morphologyEx(solid.astype(np.uint8), cv2.MORPH_OPEN, disk(2.5)).astype(bool)
    thin = traced & ~cv2.dilate(bodies.astype(np.uint8), disk(1.5)).astype(bool)
    shape = traced.shape
    min_length = params.fibre_min_length_um * px_per_um
    candidates = [slender | thin]
    if params.fibre_band_um > 0:
        wide = cv2.morphologyEx(
            solid.astype(np.uint8), cv2.MORPH_OPEN, disk(0.5 * params.fibre_band_um * px_per_um)
        )
        candidates.append(solid & ~cv2.dilate(wide, disk(1.5)).astype(bool))
    found = np.zeros(shape, bool)
    # Lazily, so that each later mask is searched only where no earlier one found a line.
    for box, component in (c for mask in candidates for c in components(mask & ~found)):
        if np.hypot(box[0].stop - box[0].start, box[1].stop - box[1].start) < min_length:
            continue  # shorter than its box's diagonal, so shorter than a line's minimum
        length, width = extent(component)
        thick = 2.0 * depth(component).max()
        # Crystals are at most about 3 times longer than wide; fibres far more.
        aspect = params.fibre_min_aspect * (1 if thick <= max_width else 2)
        if length < max(min_length, aspect * thick):
            continue
        # A crystal whose rim has a gap is a thin open loop too, but a compact one.
        if _hull_area(component) > params.fibre_max_hull_share * length**2:
            continue
        region = np.zeros(shape, bool)
        region[box] = component
        outer = grown(box, shape, 3)
        region[outer] = cv2.dilate(region[outer].astype(np.uint8), disk(2)).astype(bool)
        found |= region
        # Scratches are straight: their bounding rectangle is as thin as they are.
        yield ("scratch" if width <= max_width else "fibre"), region
