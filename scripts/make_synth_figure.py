"""Make the example figures of synthetic micrographs in docs/.

Writes docs/synthetic_legacy.png (a full legacy frame), docs/synthetic_hires_crop.png
(a 1000x750 crop of a hires frame at native resolution) and
docs/synthetic_examples.png (both side by side, captioned).

Usage: python scripts/make_synth_figure.py [OUTDIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from workbench.synth import SyntheticImage, synthesize

CROP = (750, 1000)  # rows, cols
CAPTION_PX = 64
GAP_PX = 16
# Every kind of imperfection, so that the figure shows what must not be counted.
SHOWCASE = {"bubble": 2, "debris": 3, "fibre": 2, "scratch": 1, "dust": 8}


def busiest_window(sample: SyntheticImage, size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner of the `size` window holding the most objects and kinds."""
    rows, cols = size
    height, width = sample.labels.shape
    best, corner = -1.0, (0, 0)
    for top in range(0, height - rows + 1, 125):
        for left in range(0, width - cols + 1, 125):
            inside = [
                o["kind"]
                for o in sample.truth["objects"]
                if left <= o["centroid_xy"][0] < left + cols
                and top <= o["centroid_xy"][1] < top + rows
            ]
            score = len(inside) + 10 * len(set(inside))
            if score > best:
                best, corner = score, (top, left)
    return corner


def caption(sample: SyntheticImage, what: str) -> str:
    truth = sample.truth
    return (
        f"{truth['camera']}, {truth['pixel_size_um']} um/px, {what}\n"
        f"{truth['count']} crystals, {truth['agglomerates']} agglomerates, "
        f"{truth['artifacts_removed']} imperfections (whole frame)"
    )


def captioned(pixels: Image.Image, text: str) -> Image.Image:
    panel = Image.new("RGB", (pixels.width, pixels.height + CAPTION_PX), "white")
    panel.paste(pixels.convert("RGB"), (0, CAPTION_PX))
    font = ImageFont.load_default(size=20)
    ImageDraw.Draw(panel).multiline_text((8, 6), text, fill="black", font=font, spacing=6)
    return panel


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    legacy = synthesize("legacy", seed=1, density_per_mm2=25.0, imperfections=SHOWCASE)
    hires = synthesize("hires", seed=2, density_per_mm2=25.0, imperfections=SHOWCASE)
    top, left = busiest_window(hires, CROP)
    crop = hires.image[top : top + CROP[0], left : left + CROP[1]]

    full = Image.fromarray(legacy.image)
    full.save(outdir / "synthetic_legacy.png", optimize=True)
    Image.fromarray(crop).save(outdir / "synthetic_hires_crop.png", optimize=True)

    shrunk = full.resize((round(full.width * CROP[0] / full.height), CROP[0]), Image.LANCZOS)
    left_panel = captioned(shrunk, caption(legacy, "full frame 1280x1024, shown downscaled"))
    right_panel = captioned(
        Image.fromarray(crop), caption(hires, "1000x750 crop at native resolution of 4000x3000")
    )
    figure = Image.new(
        "RGB", (left_panel.width + GAP_PX + right_panel.width, left_panel.height), "white"
    )
    figure.paste(left_panel, (0, 0))
    figure.paste(right_panel, (left_panel.width + GAP_PX, 0))
    figure.save(outdir / "synthetic_examples.png", optimize=True)
    print(f"wrote {outdir}/synthetic_examples.png, synthetic_legacy.png, synthetic_hires_crop.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs")
