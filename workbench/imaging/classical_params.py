"""Every tuned number of the classical counter, in one frozen dataclass.

:func:`workbench.imaging.segment.detect_crystals`,
:func:`~workbench.imaging.segment.segment_particles` and
:func:`workbench.imaging.denoise.remove_imperfections` take a :class:`ClassicalParams`
(scikit-image style: explicit, no module state); the defaults are the values the
method was tuned with on synthetic legacy frames at about 2 µm per pixel. Sizes are
in µm and converted with the pixel size; darkness is ``1 - value`` of the flattened
image (background 1.0).

Most values were set by hand on seeded frames. Five were fitted, and
``scripts/fit_classical_params.py`` fits them again (for example after the generator
changes): ``agglomerate_blend``, ``rim_reach_out_um``, ``blur_reach_um``,
``blur_agglomerate_ratio`` and ``blur_area_per_crystal``.

Examples
--------
>>> from dataclasses import replace
>>> from workbench.imaging.classical_params import ClassicalParams
>>> ClassicalParams().rim_darkness
0.12
>>> replace(ClassicalParams(), rim_reach_out_um=2.0).rim_reach_out_um
2.0
"""

from __future__ import annotations

from dataclasses import dataclass

# A view of an agglomerate's faces: (rim darkness, smallest face as a share of the
# typical single-crystal area, how many times larger than a lens both its neighbours are).
FaceView = tuple[float, float, float]


@dataclass(frozen=True)
class ClassicalParams:
    """Thresholds, sizes and fitted weights of the classical counter.

    Attributes
    ----------
    rim_darkness : float
        Crystal rims are 15-60 % dark and 1-2 px wide at 2 µm/px; pixels darker than
        this are strong rim.
    weak_rim_darkness : float
        Rims are traced on from their strong parts along anything this dark (some
        edges of a crystal bend less light).
    opaque_darkness, opaque_mean_darkness : float
        Opaque objects (debris, dark fibres) have a core darker than the first, on
        average darker than the second.
    opaque_min_area_um2 : float
        Smallest opaque core (and bubble ring).
    opaque_min_share : float
        An opaque core makes at least this share of the rim-dark region around it
        (where rims of an agglomerate cross, small dark spots form in a web of rims).
    debris_min_solidity : float
        Debris is dark throughout and compact: its core fills at least this share of
        the pixels of its convex hull (0.87-1.0 measured on both renderers' debris). A
        less solid dark core is a crystal's thick walls meeting at a corner, or an open
        ring (cores taken for debris on held-out crystals: 0.47-0.89 for nine in ten),
        left for the segmentation.
    debris_max_halo : float
        Debris absorbs light; a crystal bends it, so a bright line (a halo) borders it
        in brightfield. A dark core whose surroundings (a ring ``halo_reach_um`` wide,
        just outside it) are, at their 25th percentile, brighter than the background
        by more than this darkness is a dark crystal, left for the segmentation.
    halo_reach_um : float
        Width of that ring.
    debris_max_hole_share : float
        Debris is dark throughout: its core encloses no lighter pixels (none of 111 debris
        cores on both renderers did). A core whose lighter enclosed pixels are more than
        this share of its filled outline is a small thick-walled crystal around its clear
        face (a ring too thick for the bubble test), left for the segmentation.
    crystal_outline_min_solidity : float
        A thin dark component is a fibre only if it is not the closed outline of an
        elongated crystal: one that encloses a face (as above), is less than
        ``fibre_min_aspect`` times longer than wide once filled, and fills at least
        this share of its convex hull (crystals are convex).
    within_crystal_outline : bool
        Nor is an opaque core a fibre or debris when the rim-dark region around it is
        such an outline: the dark side wall or face of a thick prism, inside the prism's
        rims. False turns this test off.
    wall_min_faces : int
        Nor is a thin dark component a fibre when at least this many crystal faces,
        enclosed by the rim-dark region around it, border it: the thick walls of a
        chain of crystals (two or more faces), which is long and thin like a fibre.
        A fibre touching a crystal borders one face at most; a hollow fibre's light
        axis is no face (too long for its width). 0 turns this test off.
    face_max_aspect : float
        A crystal face is at most this many times longer than wide.
    bubble_min_diameter_um : float
        Smallest air bubble.
    bubble_ring_darkness : float
        A bubble's ring is at least this dark.
    bubble_min_centre_share : float
        A bubble's ring encloses a lighter centre of at least this share of its filled
        outline. A flattened bubble's ring can be thick (its centre 15-35 % of it, where
        0.375 counted such bubbles as crystals); the roundness tests below still tell it
        from a thick-walled crystal.
    bubble_min_roundness : float
        A bubble fills at least this share of its enclosing circle; where the frame's
        edge cuts it, of the part inside the frame of the circle fitted to its uncut
        outline (a cut bubble's smallest enclosing circle is too small).
    bubble_min_circularity : float
        Away from the frame's edge, a bubble's largest inscribed circle is at least this
        share of its enclosing one: a sphere's outline is a circle, while a crystal,
        even a rounded one, has corners or is elongated (a regular octagon: 0.92).
        Where the frame's edge cuts it, the uncut outline's distances from the fitted
        circle's centre (5th over 95th percentile) must be as even.
    fibre_min_length_um, fibre_min_aspect, fibre_max_width_um : float
        A fibre or dark scratch is at least this long, this many times longer than
        thick, and at most this thick.
    fibre_max_wide_um : float
        A wider translucent fibre, up to this thick, counts when it is twice as slender
        (crystals are at most about 3 times longer than wide, even chains of a few).
    fibre_band_um : float
        A translucent fibre touching crystals joins their particle, and is too wide for
        the rim opening that finds thin fibres there. The filled particles are also
        opened with a disk this wide: what it removes and is long and thin, as above,
        is a fibre (0 turns this search off).
    fibre_max_hull_share : float
        A fibre's convex hull is at most this share of its length squared (fibres
        are open curves, a crystal with a gap in its rim a compact loop).
    face_min_area_um2 : float
        Smallest crystal interior (face) that counts.
    crystal_min_diameter_um : float
        Smallest crystal (the smallest seed crystals are about 12 µm).
    sliver_share : float
        A crystal's interior is at least this share of its area (a region touching a
        removed line with less is where two lines cross).
    concavity_min_um : float
        A dent in the outline this deep makes a particle an agglomerate.
    shallow_concavity_um : float
        Dents this deep are counted towards an agglomerate's crystal number.
    speck_radius_um : float
        Specks stuck to an outline are opened away with a disc this wide before its
        dents are measured.
    face_views : tuple of (float, float, float)
        The faces of an agglomerate are counted in several views; one view misses a
        faint shared edge or takes a small crystal for a lens where another does not.
    agglomerate_blend : tuple of float
        Weights of the faces that are no lens (one per view), the shallow dents and 1,
        giving an agglomerate's crystal number (fitted by least squares).
    lens_neighbour_um : float
        Faces this close are neighbours across one rim.
    thin_rim_px : float
        Rims up to this wide (in pixels at working scale) are the thin rims that
        ``lens_neighbour_um`` was set for. Where a particle's rims are wider, the reach
        grows by the excess: the thick dark rims of crystals on the held-out renderer
        (2-7 px at 2 µm/px, median 3.7; 2 on ours) hid a lens's neighbours, and the lens
        was counted as a crystal. A large value turns this off.
    rim_reach_out_um : float
        A sharp particle's solid outline lies this far outside the crystal edge
        (fitted so that the median diameter is unbiased).
    faint_darkness : float
        Out-of-focus crystals are faint blobs at least this dark on the smoothed image.
    faint_sigma_um : float
        Gaussian smoothing of the image the faint blobs are found on.
    faint_min_area_um2 : float
        Smaller faint blobs are dust (3-10 µm specks, blurred) unless hollow.
    faint_crystal_min_area_um2 : float
        Smallest faint blob that can be a (hollow, ring-like) crystal.
    faint_crystal_min_darkness : float
        A faint blob is something only where its own pixels are dark: the 95th
        percentile of their darkness at least this (blurred crystals of the training
        renderer 0.055 and more). The smoothed blur of a dark rim spills past the
        keep-out over a crystal's bright halo; such blobs are not dark at all
        (below 0.025 for nine in ten of the held-out ones counted before). Nor is dust
        on the condenser, far out of focus: faint rings 1-4 % dark, as large as
        crystals (0.03 counted them).
    keep_out_um : float
        Faint blobs this close to a sharp particle or a removed line are not searched;
        a dent in a particle's outline this close to a removed line is the line's.
    dust_min_darkness : float
        A speck is clearly dark somewhere.
    hollow_share : float
        A ring-like faint blob's centre is at most this dark, relative to its darkest point.
    speck_centre_share : float
        A blurred speck's centre is at least this dark, relative to its darkest point.
    debris_centre_share : float
        A faint blob of any size whose centre is at least this dark, relative to its
        darkest point, is grey debris: a blurred crystal is darkest along its rim
        (at most 0.56 of it in the middle on the training renderer's frames, 0.90
        on the held-out renderer's), a grey particle flat or darkest in its middle
        (0.94-1.0).
    grey_debris_max_darkness : float
        Grey debris is at most this dark at its darkest. A darker blob is opaque, and
        the opaque tests (:mod:`workbench.imaging.denoise`) have judged it already: a
        dark crystal, left for the segmentation by its bright halo, is as dark in its
        middle as grey debris.
    faint_line_max_width_um : float
        A faint scratch is at most this thick.
    faint_line_min_solidity : float
        A faint scratch is straight; the faint arc of a crystal's rim bends.
    blur_reach_um : float
        A faint blob's outline lies this far outside the crystal edge.
    blur_agglomerate_ratio : float
        Faint blobs under this many typical crystal areas are single crystals.
    blur_area_per_crystal : float
        Above it, one crystal per this many typical areas (both fitted so that the
        total count is unbiased).
    typical_crystal_um : float
        Typical crystal diameter, used only when an image has too few single crystals
        to learn it from.
    """

    # Rims
    rim_darkness: float = 0.12
    weak_rim_darkness: float = 0.06
    # Imperfections removed before counting
    opaque_darkness: float = 0.40
    opaque_mean_darkness: float = 0.50
    opaque_min_area_um2: float = 120.0
    opaque_min_share: float = 0.25
    debris_min_solidity: float = 0.75
    debris_max_halo: float = -0.01
    debris_max_hole_share: float = 0.05
    crystal_outline_min_solidity: float = 0.85
    within_crystal_outline: bool = True
    wall_min_faces: int = 2
    face_max_aspect: float = 3.0
    halo_reach_um: float = 3.0
    bubble_min_diameter_um: float = 50.0
    bubble_ring_darkness: float = 0.25
    bubble_min_centre_share: float = 0.15
    bubble_min_roundness: float = 0.75
    bubble_min_circularity: float = 0.93
    fibre_min_length_um: float = 80.0
    fibre_max_hull_share: float = 0.25
    fibre_min_aspect: float = 5.0
    fibre_max_width_um: float = 16.0
    fibre_max_wide_um: float = 40.0
    fibre_band_um: float = 40.0
    # Sharp particles and agglomerates
    face_min_area_um2: float = 16.0
    crystal_min_diameter_um: float = 10.0
    sliver_share: float = 0.1
    concavity_min_um: float = 3.0
    shallow_concavity_um: float = 2.0
    speck_radius_um: float = 3.0
    face_views: tuple[FaceView, ...] = ((0.12, 0.05, 1.5), (0.12, 0.02, 3.0), (0.15, 0.05, 1.5))
    agglomerate_blend: tuple[float, ...] = (0.4, 0.15, 0.23, 0.2, 0.17)
    lens_neighbour_um: float = 4.0
    thin_rim_px: float = 2.0
    rim_reach_out_um: float = 2.2
    # Faint (out-of-focus) blobs: crystals, dust, faint scratches
    faint_darkness: float = 0.015
    faint_sigma_um: float = 6.0
    faint_min_area_um2: float = 800.0
    faint_crystal_min_area_um2: float = 300.0
    faint_crystal_min_darkness: float = 0.045
    keep_out_um: float = 8.0
    dust_min_darkness: float = 0.10
    hollow_share: float = 0.5
    speck_centre_share: float = 0.8
    debris_centre_share: float = 0.93
    grey_debris_max_darkness: float = 0.6
    faint_line_max_width_um: float = 32.0
    faint_line_min_solidity: float = 0.75
    blur_reach_um: float = 6.0
    blur_agglomerate_ratio: float = 2.8
    blur_area_per_crystal: float = 1.7
    typical_crystal_um: float = 40.0


DEFAULT_PARAMS = ClassicalParams()
