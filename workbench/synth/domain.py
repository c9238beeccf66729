"""Domains: the ranges a synthetic frame's geometry, optics and camera are drawn from.

``DEFAULT`` is the look the benchmark has always used (every frame it rendered before
domains existed renders to the same bytes). ``WIDE`` is domain randomisation for
training: real factory images will differ from any one generator, so the counter is
taught on a much wider spread of crystal habits, agglomerate layouts, rim optics,
focus, illumination and sensor noise than any single microscope shows.

Examples
--------
>>> from workbench.synth.domain import get_domain
>>> get_domain("wide").bright_rim > get_domain("default").bright_rim
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from workbench.errors import WorkbenchError


def _frozen(mapping: dict) -> MappingProxyType:
    return MappingProxyType(mapping)


@dataclass(frozen=True)
class Domain:
    """Ranges (low, high) that one frame's look is drawn from.

    Attributes
    ----------
    name : str
    habits : mapping of str to float
        Probability of each crystal habit (see ``workbench.synth._shapes.HABITS``).
    elongation : (float, float)
        Extra stretch of a crystal along its long axis (1: the habit as drawn).
    member_probabilities : tuple of float
        Probability of 2, 3, ... crystals in an agglomerate.
    max_overlap : float
        Largest share of the smaller crystal two touching crystals may share.
    chain : float
        Chance that an agglomerate grows as a chain (each crystal on the last one).
    agglomerate_fraction : (float, float)
        Share of particles that are agglomerates.
    rim_sigma_px : (float, float)
        Width of a crystal's refraction rim at 1 µm per pixel (scaled by pixel size).
    rim_depth : (float, float)
        Darkness of the rim.
    bright_rim : float
        Chance that a crystal shows a bright rim and dark halo (the other focus side).
    band_depth : (float, float)
        Darkness of the band inside a crystal's edges (a thick crystal bends light
        out of the objective there; thick seed crystals look dark-walled).
    band_width : (float, float)
        Width of that band, as a share of the crystal's radius.
    inclusions : float
        Chance that a crystal holds 1-4 small dark specks (trapped liquor or air).
    out_of_focus : float
        Share of crystals out of the focal plane.
    defocus_um : (float, float)
        Blur of the whole frame (Gaussian sigma, µm): the slide not quite in focus.
    light_level : (float, float)
        Background brightness (1 = full scale).
    light_spread : (float, float)
        Vignetting plus gradient, peak to peak, relative to the level.
    full_well : (float, float)
        Electrons at full scale: fewer means more shot noise.
    read_noise_dn : (float, float)
        Read noise, in 8-bit levels.
    fixed_pattern_dn : (float, float)
        Column and row offsets of the sensor (fixed-pattern noise), in 8-bit levels.
    keep_clear : mapping of str to float
        Chance that an imperfection of each kind keeps clear of every crystal.
    """

    name: str = "default"
    habits: MappingProxyType = field(
        default_factory=lambda: _frozen(
            {"rectangle": 0.2, "rhombus": 0.2, "hexagon": 0.25, "prism": 0.35}
        )
    )
    elongation: tuple[float, float] = (1.0, 1.0)
    member_probabilities: tuple[float, ...] = (0.36, 0.26, 0.18, 0.11, 0.09)
    max_overlap: float = 0.30
    chain: float = 0.0
    agglomerate_fraction: tuple[float, float] = (0.15, 0.25)
    rim_sigma_px: tuple[float, float] = (0.7, 1.3)
    rim_depth: tuple[float, float] = (0.35, 0.65)
    bright_rim: float = 0.0
    band_depth: tuple[float, float] = (0.0, 0.12)
    band_width: tuple[float, float] = (0.05, 0.15)
    inclusions: float = 0.0
    out_of_focus: float = 0.10
    defocus_um: tuple[float, float] = (0.0, 0.0)
    light_level: tuple[float, float] = (0.75, 0.85)
    light_spread: tuple[float, float] = (0.10, 0.25)
    full_well: tuple[float, float] = (5000.0, 12000.0)
    read_noise_dn: tuple[float, float] = (1.0, 2.0)
    fixed_pattern_dn: tuple[float, float] = (0.0, 0.0)
    keep_clear: MappingProxyType = field(
        default_factory=lambda: _frozen(
            {"bubble": 0.85, "debris": 0.85, "fibre": 0.5, "scratch": 0.0, "dust": 0.85}
        )
    )


DEFAULT = Domain()
WIDE = Domain(
    name="wide",
    habits=_frozen(
        {
            "rectangle": 0.14,
            "rhombus": 0.12,
            "hexagon": 0.16,
            "prism": 0.2,
            "needle": 0.08,
            "irregular": 0.14,
            "rounded": 0.1,
            "triangle": 0.06,
        }
    ),
    elongation=(1.0, 1.6),
    # Up to 9 crystals: large clusters are where counts go wrong.
    member_probabilities=(0.3, 0.22, 0.15, 0.1, 0.08, 0.06, 0.05, 0.04),
    max_overlap=0.45,
    chain=0.3,
    agglomerate_fraction=(0.1, 0.45),
    rim_sigma_px=(0.5, 2.2),
    rim_depth=(0.2, 0.8),
    bright_rim=0.25,
    band_depth=(0.0, 0.75),
    band_width=(0.05, 0.45),
    inclusions=0.3,
    out_of_focus=0.2,
    defocus_um=(0.0, 1.5),
    light_level=(0.45, 0.92),
    light_spread=(0.05, 0.45),
    full_well=(1500.0, 15000.0),
    read_noise_dn=(0.5, 4.0),
    fixed_pattern_dn=(0.0, 2.5),
    keep_clear=_frozen({"bubble": 0.6, "debris": 0.5, "fibre": 0.25, "scratch": 0.0, "dust": 0.6}),
)
DOMAINS = {domain.name: domain for domain in (DEFAULT, WIDE)}


def get_domain(domain: str | Domain) -> Domain:
    """The domain called `domain` (or `domain` itself), or WorkbenchError naming the choices."""
    if isinstance(domain, Domain):
        return domain
    try:
        return DOMAINS[domain]
    except KeyError:
        known = ", ".join(DOMAINS)
        raise WorkbenchError(f"unknown domain {domain!r}: choose one of {known}") from None
