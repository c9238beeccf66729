"""Make the figures of the held-out renderer in docs/.

Writes docs/heldout_vs_synth.png (the same camera, seed and density drawn by both
renderers: legacy crops on top, hires crops at native resolution below) and
docs/heldout_classical_failure.png (the classical method's overlay on a held-out frame
where it removes most crystals as imperfections).

Usage: python scripts/make_heldout_figure.py [OUTDIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from workbench.imaging.overlay import draw_overlay
from workbench.imaging.pipeline import analyze
from workbench.lab.evaluate import score_image
from workbench.lab.heldout import render_heldout
from workbench.synth import synthesize

CROP = (600, 800)  # rows, cols
CAPTION_PX = 40
GAP_PX = 12


def panel(pixels: np.ndarray, text: str) -> Image.Image:
    """`pixels` under a one-line caption."""
    image = Image.fromarray(pixels).convert("RGB")
    out = Image.new("RGB", (image.width, image.height + CAPTION_PX), "white")
    out.paste(image, (0, CAPTION_PX))
    ImageDraw.Draw(out).text((8, 8), text, fill="black", font=ImageFont.load_default(size=20))
    return out


def grid(panels: list[list[Image.Image]]) -> Image.Image:
    """Panels in rows, `GAP_PX` apart."""
    width = max(sum(p.width for p in row) + GAP_PX * (len(row) - 1) for row in panels)
    height = sum(max(p.height for p in row) for row in panels) + GAP_PX * (len(panels) - 1)
    out = Image.new("RGB", (width, height), "white")
    top = 0
    for row in panels:
        left = 0
        for p in row:
            out.paste(p, (left, top))
            left += p.width + GAP_PX
        top += max(p.height for p in row) + GAP_PX
    return out


def main(outdir: Path) -> None:
    rows, cols = CROP
    panels = []
    for camera, seed in (("legacy", 21), ("hires", 22)):
        row = []
        for name, render in (("synth", synthesize), ("heldout", render_heldout)):
            frame = render(camera, seed, 40.0)
            truth = frame.truth
            text = f"{name}: {camera}, {truth['pixel_size_um']} um/px, {truth['count']} crystals"
            row.append(panel(frame.image[200 : 200 + rows, 300 : 300 + cols], text))
        panels.append(row)
    grid(panels).save(outdir / "heldout_vs_synth.png")

    frame = render_heldout("legacy", seed=25, density_per_mm2=25.0, shape=(512, 640))
    report = analyze(frame.image, "legacy", method="classical")
    score = score_image(report, frame.truth, frame.labels)
    text = (
        f"classical: {score.predicted_count} of {score.true_count} crystals, "
        f"{report.artifacts_removed} imperfections removed"
    )
    grid(
        [
            [
                panel(frame.image, "heldout legacy, 2 um/px"),
                panel(draw_overlay(frame.image, report), text),
            ]
        ]
    ).save(outdir / "heldout_classical_failure.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
