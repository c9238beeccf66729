"""Microscope and camera: uneven illumination, colour tint, sensor noise, JPEG."""

from __future__ import annotations

import cv2
import numpy as np

FULL_SCALE = 255.0
# Luma weights (ITU-R BT.601), to keep the tinted background at the drawn level.
LUMA = np.array([0.299, 0.587, 0.114])


def illumination(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Brightfield background: vignetting plus a linear gradient, 10-25 % peak to peak.

    Examples
    --------
    >>> field = illumination(np.random.default_rng(0), (64, 80))
    >>> field.shape, field.dtype, bool(0.6 < field.mean() < 0.9)
    ((64, 80), dtype('float32'), True)
    """
    height, width = shape
    scale = max(height, width)
    x = (np.arange(width, dtype=np.float32) - width / 2) / scale
    y = (np.arange(height, dtype=np.float32) - height / 2) / scale
    centre = rng.uniform(-0.15, 0.15, 2)
    slope = rng.uniform(0.3, 1.0) * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
    field = (
        -rng.uniform(0.5, 1.0) * (((x - centre[0]) ** 2)[None, :] + ((y - centre[1]) ** 2)[:, None])
        + (slope[0] * x)[None, :]
        + (slope[1] * y)[:, None]
    )
    span = float(field.max() - field.min()) or 1.0
    relative = (field - field.mean()) * np.float32(rng.uniform(0.10, 0.25) / span)
    return (rng.uniform(0.75, 0.85) * (1 + relative)).astype(np.float32)


def channel_gains(rng: np.random.Generator, channels: int) -> np.ndarray:
    """Per-channel gains: 1 for gray; a slight warm (halogen) tint for RGB, luma kept at 1."""
    if channels == 1:
        return np.ones(1, np.float32)
    gains = np.array([1 + rng.uniform(0.02, 0.06), 1.0, 1 - rng.uniform(0.08, 0.15)])
    return (gains / (LUMA @ gains)).astype(np.float32)


def expose(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    """8-bit frame from a noise-free one in [0, 1]: Poisson-Gaussian noise, then quantisation.

    Shot noise comes from a full well of 5-12 ke- at full scale (about 2-3 DN at the
    background, as on a real 8-bit camera), read noise is 1-2 DN; every channel draws
    its own noise. At thousands of electrons Poisson is Gaussian to within rounding.
    """
    full_well = rng.uniform(5000.0, 12000.0)
    read_noise = rng.uniform(1.0, 2.0)
    variance = clean * np.float32(FULL_SCALE**2 / full_well) + np.float32(read_noise**2)
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    counts = clean * np.float32(FULL_SCALE) + noise * np.sqrt(variance)
    return np.clip(np.rint(counts), 0, FULL_SCALE).astype(np.uint8)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode `image` (gray or RGB) as JPEG at `quality`, as a camera would."""
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return decoded if image.ndim == 2 else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
