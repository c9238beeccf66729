"""Small inline SVG charts for the floor pages: control charts and the CSD.

Drawn as text on the server, so a page needs no chart library, no JavaScript and no
network, and a chart costs microseconds.

Examples
--------
>>> from workbench.floor.spc import control_limits
>>> svg = control_chart_svg(["B-1", "B-2", "B-3"], [10.0, 12.0, 11.0],
...                         control_limits([10.0, 12.0, 11.0]), "mean count", "crystals")
>>> svg.startswith("<svg") and svg.count('class="point') == 3
True
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from workbench.floor.spc import ControlLimits
from workbench.imaging.measure import csd_histogram

WIDTH, HEIGHT = 640, 230
LEFT, RIGHT, TOP, BOTTOM = 56, 70, 28, 34
OK_COLOUR, ALARM_COLOUR, LIMIT_COLOUR = "#1f6fb2", "#d1242f", "#8a8a8a"


def _frame(title: str, css_class: str, extra: str = "") -> str:
    return (f'<svg class="{css_class}" {extra}xmlns="http://www.w3.org/2000/svg" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
            f'<text x="{LEFT}" y="18" font-size="14" font-weight="600">{escape(title)}</text>')


def _scale(low: float, high: float):
    """Map a value in [low, high] to a y pixel inside the plot area."""
    span = (high - low) or 1.0
    return lambda value: TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - low) / span)


def _y_axis(low: float, high: float, y) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}" stroke="#444"/>']
    for tick in np.linspace(low, high, 5):
        parts.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{tick:.4g}</text>')
    return parts


def control_chart_svg(
    labels: list[str], values: list[float], limits: ControlLimits, title: str, unit: str
) -> str:
    """A control chart: one point per batch, centre line, ±3σ limits, alarms in red.

    Parameters
    ----------
    labels : list of str
        Batch names (tooltips and the first/last x labels).
    values : list of float
        One value per batch, oldest first.
    limits : ControlLimits
        From :func:`workbench.floor.spc.control_limits` on `values`.
    title, unit : str
        Chart title and the unit shown in tooltips.
    """
    alarms = len(limits.out_of_control)
    svg = [_frame(title, "control-chart", f'data-points="{len(values)}" data-alarms="{alarms}" ')]
    if not values:
        svg.append(f'<text x="{LEFT}" y="{HEIGHT / 2}" font-size="13">no batch yet</text></svg>')
        return "".join(svg)
    bounds = [*values, *(v for v in (limits.lower, limits.upper) if not math.isnan(v))]
    pad = 0.08 * ((max(bounds) - min(bounds)) or abs(max(bounds)) or 1.0)
    y = _scale(min(bounds) - pad, max(bounds) + pad)
    step = (WIDTH - LEFT - RIGHT) / max(len(values) - 1, 1)
    x = [LEFT + 10 + step * index * (len(values) > 1) for index in range(len(values))]
    svg += _y_axis(min(bounds) - pad, max(bounds) + pad, y)
    for name, level, dash in (("UCL", limits.upper, "6 4"), ("CL", limits.center, ""),
                              ("LCL", limits.lower, "6 4")):
        if math.isnan(level):
            continue
        svg.append(f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(level):.1f}" '
                   f'y2="{y(level):.1f}" stroke="{LIMIT_COLOUR}" stroke-dasharray="{dash}"/>'
                   f'<text x="{WIDTH - RIGHT + 4}" y="{y(level) + 4:.1f}" font-size="11" '
                   f'fill="#555">{name} {level:.4g}</text>')
    points = " ".join(f"{px:.1f},{y(value):.1f}" for px, value in zip(x, values, strict=True))
    svg.append(f'<polyline points="{points}" fill="none" stroke="{OK_COLOUR}" stroke-width="1.5"/>')
    for index, (px, value, label) in enumerate(zip(x, values, labels, strict=True)):
        alarm = index in limits.out_of_control
        svg.append(f'<circle class="point{" ooc" if alarm else ""}" cx="{px:.1f}" '
                   f'cy="{y(value):.1f}" r="{6 if alarm else 4}" '
                   f'fill="{ALARM_COLOUR if alarm else OK_COLOUR}"><title>{escape(label)}: '
                   f'{value:.4g} {escape(unit)}{" — out of control" if alarm else ""}'
                   f'</title></circle>')
    for px, label, anchor in ((x[0], labels[0], "start"), (x[-1], labels[-1], "end")):
        svg.append(f'<text x="{px:.1f}" y="{HEIGHT - 12}" font-size="11" '
                   f'text-anchor="{anchor}">{escape(label)}</text>')
    svg.append("</svg>")
    return "".join(svg)


def csd_svg(diameters_um: np.ndarray, csd_um: dict[str, float], bins: int = 24) -> str:
    """Histogram of primary crystal diameters with d10, d50 and d90 marked.

    Examples
    --------
    >>> svg = csd_svg(np.array([30.0, 40.0, 41.0, 55.0]), {"d10": 33, "d50": 40.5, "d90": 50})
    >>> svg.count('class="bar"')
    24
    """
    title = "Crystal size distribution (primary crystals)"
    svg = [_frame(title, "csd-chart")]
    diameters = np.asarray(diameters_um, dtype=float)
    if diameters.size == 0:
        svg.append(f'<text x="{LEFT}" y="{HEIGHT / 2}" font-size="13">no crystal</text></svg>')
        return "".join(svg)
    counts, edges = csd_histogram(diameters, bins)
    y = _scale(0.0, float(counts.max()))

    def to_x(diameter: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * diameter / edges[-1]

    svg += _y_axis(0.0, float(counts.max()), y)
    for count, low, high in zip(counts, edges[:-1], edges[1:], strict=True):
        svg.append(f'<rect class="bar" x="{to_x(low):.1f}" y="{y(count):.1f}" '
                   f'width="{max(to_x(high) - to_x(low) - 1, 1):.1f}" '
                   f'height="{y(0) - y(count):.1f}" fill="#7fb3d9"/>')
    for key, colour in (("d10", "#555"), ("d50", ALARM_COLOUR), ("d90", "#555")):
        px = to_x(csd_um[key])
        svg.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{TOP}" y2="{HEIGHT - BOTTOM}" '
                   f'stroke="{colour}" stroke-dasharray="4 3"/><text x="{px + 3:.1f}" '
                   f'y="{TOP + 10}" font-size="11" fill="{colour}">{key} {csd_um[key]:.1f}</text>')
    for tick in np.linspace(0, edges[-1], 6):
        svg.append(f'<text x="{to_x(tick):.1f}" y="{HEIGHT - 16}" font-size="11" '
                   f'text-anchor="middle">{tick:.0f}</text>')
    svg.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 2}" font-size="11" '
               'text-anchor="end">diameter (µm)</text></svg>')
    return "".join(svg)
