"""Write held-out frames with their truth: ``<stem>.png`` beside ``<stem>.json``.

The files have the layout of ``workbench synth OUTDIR``, so ``workbench count --json
--pixel-size-um X`` runs on them and its output compares with the ``.json`` beside.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.lab.heldout.render import RENDERER, render_heldout
from workbench.synth.write import write_sample


def write_heldout_set(
    outdir: str | os.PathLike,
    camera: str = "legacy",
    n: int = 10,
    seed: int = 0,
    density_per_mm2: float | None = None,
    *,
    pixel_size_um: float | None = None,
    labels: bool = False,
    progress: bool = True,
    jpeg_quality: int | None = None,
) -> list[Path]:
    """Write `n` held-out frames with truth, named ``heldout_{camera}_s{seed}_{i:04d}``.

    Frame `i` is drawn from a seed derived from ``(seed, i)`` by
    :class:`numpy.random.SeedSequence`; its truth records that seed and the pixel size,
    so ``render_heldout(camera, truth["seed"], ..., pixel_size_um=...)`` redraws it alone.

    Examples
    --------
    >>> import tempfile
    >>> paths = write_heldout_set(tempfile.mkdtemp(), n=1, pixel_size_um=3.0, progress=False)
    >>> paths[0].name
    'heldout_legacy_s0_0000.png'
    """
    profile = get_camera(camera, pixel_size_um)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WorkbenchError(f"seed {seed!r}: must be a non-negative integer")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise WorkbenchError(f"number of images {n!r}: must be an integer of at least 1")
    paths = []
    for i in tqdm(
        range(n), desc=f"{RENDERER} {camera}", unit="image", file=sys.stderr, disable=not progress
    ):
        frame_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        frame = render_heldout(
            camera,
            frame_seed,
            density_per_mm2,
            pixel_size_um=profile.pixel_size_um,
            jpeg_quality=jpeg_quality,
        )
        stem = f"{RENDERER}_{camera}_s{seed}_{i:04d}"
        paths.append(write_sample(frame, outdir, stem, labels=labels))
    return paths
