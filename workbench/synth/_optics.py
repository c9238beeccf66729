"""Microscope and camera: uneven illumination, colour tint, sensor noise, JPEG."""

from __future__ import annotations

import cv2
import numpy as np

from workbench.synth.domain import DEFAULT, Domain

FULL_SCALE = 255.0
# Luma weights (ITU-R BT.601), to keep the tinted background at the drawn level.
LUMA = np.array([0.299, 0.587, 0.114])


def illumination(
    rng: np.random.Generator, shape: tuple[int, int], domain: Domain = DEFAULT
) -> np.ndarray:
    """Brightfield background: vignetting plus a linear gradient (10-25 % peak to peak in
    the default domain).

    A faint (about 1 %) blotchy texture on top stands for dirt on the condenser, far out
    of focus: it is part of the light, so flat-field correction should remove it.

    Examples
    --------
    >>> field = illumination(np.random.default_rng(0), (64, 80))
    >>> field.shape, field.dtype, bool(0.6 < field.mean() < 0.9)
    ((64, 80), dtype('float32'), True)
    """
    height, width = shape
    scale = max(height, width)
    centre = rng.uniform(-0.15, 0.15, 2)
    x = ((np.arange(width) - width / 2) / scale).astype(np.float32)
    y = ((np.arange(height) - height / 2) / scale).astype(np.float32)
    curvature = np.float32(rng.uniform(0.5, 1.0))
    angle = rng.uniform(0, 2 * np.pi)
    slope = np.float32(rng.uniform(0.3, 1.0)) * np.array([np.cos(angle), np.sin(angle)], np.float32)
    # Separable: vignetting and gradient split into a row term plus a column term.
    across = slope[0] * x - curvature * (x - np.float32(centre[0])) ** 2
    down = slope[1] * y - curvature * (y - np.float32(centre[1])) ** 2
    low, high = across.min() + down.min(), across.max() + down.max()
    mean = across.mean() + down.mean()
    gain = np.float32(rng.uniform(*domain.light_spread) / max(high - low, 1e-6))
    level = np.float32(rng.uniform(*domain.light_level))
    blotches = rng.normal(0.0, rng.uniform(0.004, 0.01), (6, 8)).astype(np.float32)
    blotches = cv2.resize(blotches, (width, height), interpolation=cv2.INTER_CUBIC)
    return level * (1 + gain * ((down - mean)[:, None] + across[None, :]) + blotches)


def channel_gains(rng: np.random.Generator, channels: int) -> np.ndarray:
    """Per-channel gains: 1 for gray; a slight warm (halogen) tint for RGB, luma kept at 1."""
    if channels == 1:
        return np.ones(1, np.float32)
    gains = np.array([1 + rng.uniform(0.01, 0.03), 1.0, 1 - rng.uniform(0.03, 0.07)])
    return (gains / (LUMA @ gains)).astype(np.float32)


def tinted(frame: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """A gray frame as the camera's channels: itself, or RGB with per-channel `gains`."""
    if gains.size == 1:
        return frame
    return cv2.merge([frame * gain for gain in gains])


def expose(
    rng: np.random.Generator, frame: np.ndarray, gains: np.ndarray, domain: Domain = DEFAULT
) -> np.ndarray:
    """8-bit image of a noise-free gray `frame` in [0, 1]: tint, Poisson-Gaussian noise, rounding.

    Shot noise comes from a full well of 5-12 ke- at full scale in the default domain
    (about 2-3 DN at the background, as on a real 8-bit camera), read noise is 1-2 DN;
    every channel draws its own noise. At thousands of electrons Poisson is Gaussian to
    within rounding. A domain with fixed-pattern noise adds column and row offsets,
    the same in every channel (they come from the sensor's readout). One channel at a
    time, so a 12 MP RGB frame needs no 3-channel float buffers.
    """
    full_well = rng.uniform(*domain.full_well)
    read_noise = rng.uniform(*domain.read_noise_dn)
    pattern = _fixed_pattern(rng, frame.shape, domain)
    noise = np.empty(frame.shape, np.float32)
    channels = []
    for gain in gains:
        level = cv2.multiply(frame, float(gain))
        # OpenCV's arithmetic is faster than numpy's here, and its conversion to 8 bits
        # rounds and saturates in one go.
        variance = cv2.addWeighted(level, FULL_SCALE**2 / full_well, level, 0.0, read_noise**2)
        rng.standard_normal(dtype=np.float32, out=noise)
        cv2.multiply(noise, cv2.sqrt(variance), dst=noise)
        if pattern is not None:
            noise += pattern
        channels.append(cv2.addWeighted(level, FULL_SCALE, noise, 1.0, 0.0, dtype=cv2.CV_8U))
    return channels[0] if len(channels) == 1 else cv2.merge(channels)


def _fixed_pattern(
    rng: np.random.Generator, shape: tuple[int, int], domain: Domain
) -> np.ndarray | None:
    """Column plus row offsets in DN, or None when the domain has no fixed-pattern noise."""
    if domain.fixed_pattern_dn[1] <= 0:
        return None
    sd = rng.uniform(*domain.fixed_pattern_dn)
    columns = rng.normal(0.0, sd, shape[1]).astype(np.float32)
    rows = rng.normal(0.0, 0.5 * sd, shape[0]).astype(np.float32)
    return rows[:, None] + columns[None, :]


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode and decode `image` (gray or RGB) as JPEG at `quality`, as a camera would."""
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    return decoded if image.ndim == 2 else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
