"""Write synthetic frames with their ground truth: ``<stem>.png`` beside ``<stem>.json``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.files import write_atomically
from workbench.synth.generate import (
    SyntheticImage,
    check_density,
    check_jpeg_quality,
    check_seed,
    synthesize,
)


def _png(image: np.ndarray) -> bytes:
    pixels = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, encoded = cv2.imencode(".png", pixels)
    return encoded.tobytes()


def _prepare(outdir: Path) -> Path:
    """Create `outdir` if needed; WorkbenchError if it cannot hold new files."""
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe, name = tempfile.mkstemp(dir=outdir, prefix=".probe.")
        os.close(probe)
        os.unlink(name)
    except OSError as error:
        reason = error.strerror or str(error)
        raise WorkbenchError(f"output folder {str(outdir)!r} cannot be written: {reason}") from None
    return outdir


def write_sample(
    sample: SyntheticImage, outdir: str | os.PathLike, stem: str, *, labels: bool = False
) -> Path:
    """Write ``<stem>.png`` and ``<stem>.json`` (and ``<stem>.labels.png``, uint16) atomically.

    The JSON is written before the image, so any image found has its truth beside it.

    Returns
    -------
    pathlib.Path
        The image file.

    Examples
    --------
    >>> import tempfile
    >>> from workbench.synth import synthesize
    >>> path = write_sample(synthesize(shape=(64, 64)), tempfile.mkdtemp(), "tiny")
    >>> path.name, path.with_suffix(".json").exists()
    ('tiny.png', True)
    """
    outdir = _prepare(Path(outdir))
    image_path = outdir / f"{stem}.png"
    truth = {**sample.truth, "image": image_path.name}
    try:
        write_atomically(outdir / f"{stem}.json", json.dumps(truth, indent=1).encode())
        if labels:
            if sample.labels.max() > np.iinfo(np.uint16).max:
                raise WorkbenchError(
                    f"{stem}: more than 65535 objects do not fit a 16-bit label image"
                )
            write_atomically(outdir / f"{stem}.labels.png", _png(sample.labels.astype(np.uint16)))
        write_atomically(image_path, _png(sample.image))
    except OSError as error:
        raise WorkbenchError(
            f"cannot write {stem!r} into {str(outdir)!r}: {error.strerror or error}"
        ) from None
    return image_path


def generate_set(
    outdir: str | os.PathLike,
    camera: str = "legacy",
    n: int = 10,
    seed: int = 0,
    density_per_mm2: float | None = None,
    *,
    labels: bool = False,
    progress: bool = True,
    jpeg_quality: int | None = None,
) -> list[Path]:
    """Write `n` synthetic frames with truth, named ``{camera}_s{seed}_{i:04d}``.

    Frame `i` is drawn from a seed derived from ``(seed, i)`` by
    :class:`numpy.random.SeedSequence`; its truth records that seed, so
    ``synthesize(camera, truth["seed"], ...)`` redraws it alone.

    Examples
    --------
    >>> import tempfile
    >>> paths = generate_set(tempfile.mkdtemp(), n=1, progress=False)
    >>> paths[0].name
    'legacy_s0_0000.png'
    """
    get_camera(camera)
    seed = check_seed(seed)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise WorkbenchError(f"number of images {n!r}: must be an integer of at least 1")
    check_density(density_per_mm2)
    check_jpeg_quality(jpeg_quality)
    outdir = _prepare(Path(outdir))
    paths = []
    for i in tqdm(
        range(n), desc=f"synth {camera}", unit="image", file=sys.stderr, disable=not progress
    ):
        image_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        sample = synthesize(camera, image_seed, density_per_mm2, jpeg_quality=jpeg_quality)
        paths.append(write_sample(sample, outdir, f"{camera}_s{seed}_{i:04d}", labels=labels))
    return paths
