"""Make docs/synthetic_wide.png: six frames of the wide training domain, 500 µm a side.

Each tile is rendered at its own pixel size (0.3-3 µm) and shown reduced to 400 px, with
its camera, pixel size and true count.

Usage: python scripts/make_wide_figure.py [OUT]
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from workbench.imaging.io import to_gray_float
from workbench.synth import synthesize

FIELD_UM = 500
TILE_PX = 400
TILES = (
    ("legacy", 2.0),
    ("legacy", 0.8),
    ("hires", 0.3),
    ("legacy", 3.0),
    ("hires", 1.2),
    ("legacy", 1.5),
)


def tile(camera: str, pixel_size_um: float, seed: int) -> np.ndarray:
    side = round(FIELD_UM / pixel_size_um)
    sample = synthesize(
        camera,
        seed=seed,
        density_per_mm2=35.0,
        pixel_size_um=pixel_size_um,
        shape=(side, side),
        domain="wide",
    )
    gray = (to_gray_float(sample.image) * 255).astype(np.uint8)
    small = cv2.resize(gray, (TILE_PX, TILE_PX), interpolation=cv2.INTER_AREA)
    caption = f"{camera} {pixel_size_um} um/px: {sample.truth['count']} crystals"
    cv2.putText(small, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 2, cv2.LINE_AA)
    cv2.putText(small, caption, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
    return small


def main(out: str = "docs/synthetic_wide.png") -> None:
    tiles = [tile(camera, size, 100 + index) for index, (camera, size) in enumerate(TILES)]
    grid = np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])])
    cv2.imwrite(out, grid)


if __name__ == "__main__":
    main(*sys.argv[1:])
