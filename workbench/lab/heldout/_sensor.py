"""From light on the sample to the bytes a camera writes: illumination, sensor, tone, JPEG.

Illumination: vignetting about an off-centre point, a linear gradient, a few soft blotches
of condenser dirt and faint out-of-focus dust rings. Sensor: photon shot noise at the
camera's full well, read noise, fixed-pattern noise (per-pixel gain and per-column
offset, the same for every frame of one camera unit), a Bayer mosaic demosaiced by the
camera on colour sensors, a tone curve, 8-bit quantisation and optionally JPEG.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

# Blue is absorbed most by brownish stains (debris, fibres).
STAIN_ABSORPTION_RGB = np.array([0.55, 0.8, 1.0], np.float32)
CAMERA_UNITS = 4  # fixed-pattern noise is one of this many per camera profile


@dataclass(frozen=True)
class Sensor:
    """How one camera turns light into 8-bit values.

    Attributes
    ----------
    full_well_e : float
        Electrons collected at the white level (sets shot noise).
    read_noise_e : float
        Read noise, electrons rms.
    pixel_gain_spread : float
        Per-pixel gain non-uniformity (relative, rms).
    column_offset_e : float
        Per-column offset, electrons rms.
    gamma : float
        Output = linear ** (1 / gamma); 1 for a linear camera.
    exposure : float
        Background brightness at the centre of the field, fraction of white.
    channel_gains : tuple of float
        Residual colour balance (R, G, B) after the camera's white balance.
    unit : int
        Which camera unit: frames of one unit share their fixed-pattern noise.
    """

    full_well_e: float
    read_noise_e: float
    pixel_gain_spread: float
    column_offset_e: float
    gamma: float
    exposure: float
    channel_gains: tuple[float, float, float]
    unit: int


def draw_sensor(rng: np.random.Generator) -> Sensor:
    """Random camera settings for one frame.

    Examples
    --------
    >>> s = draw_sensor(np.random.default_rng(0))
    >>> 0.5 <= s.exposure <= 0.9 and s.gamma in (1.0, 1.8, 2.2)
    True
    """
    warmth = rng.uniform(-0.08, 0.08)
    return Sensor(
        full_well_e=float(rng.uniform(2500, 20000)),
        read_noise_e=float(rng.uniform(3, 25)),
        pixel_gain_spread=float(rng.uniform(0.002, 0.015)),
        column_offset_e=float(rng.uniform(0.0, 12.0)),
        gamma=float(rng.choice([1.0, 1.8, 2.2])),
        exposure=float(rng.uniform(0.5, 0.9)),
        channel_gains=(1.0 + warmth, 1.0, 1.0 - warmth),
        unit=int(rng.integers(CAMERA_UNITS)),
    )


def illumination(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Relative illumination over the field, float32 ``(H, W)``, about 1 at the centre.

    Drawn on a coarse grid and resized (it is smooth), so a 12 MP field costs little.

    Examples
    --------
    >>> light = illumination(np.random.default_rng(0), (300, 400))
    >>> light.shape, 0.5 < float(light.mean()) < 1.2
    ((300, 400), True)
    """
    height, width = shape
    ch, cw = 96, int(round(96 * width / height))
    y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
    y, x = y / (ch - 1) - 0.5, x / (cw - 1) - 0.5
    x *= cw / ch
    cx, cy = rng.uniform(-0.15, 0.15, 2)
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    light = (1.0 - rng.uniform(0.05, 0.4) * r2) ** 2
    gx, gy = rng.normal(0, 0.08, 2)
    light *= 1.0 + gx * x + gy * y
    for _ in range(int(rng.integers(0, 5))):
        bx, by = rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.5)
        spread = rng.uniform(0.04, 0.2)
        light *= 1.0 - rng.uniform(0.01, 0.05) * np.exp(
            -((x - bx) ** 2 + (y - by) ** 2) / spread**2
        )
    for _ in range(int(rng.integers(0, 4))):  # dust on the optics, far out of focus: rings
        bx, by = rng.uniform(-0.6, 0.6), rng.uniform(-0.5, 0.5)
        radius, width_ = rng.uniform(0.02, 0.06), rng.uniform(0.004, 0.01)
        ring = np.exp(-((np.sqrt((x - bx) ** 2 + (y - by) ** 2) - radius) ** 2) / width_**2)
        light *= 1.0 - rng.uniform(0.01, 0.04) * ring
    return cv2.resize(light.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


@lru_cache(maxsize=2)
def _fixed_pattern(
    unit: int, spread: float, column_e: float, shape: tuple[int, int], name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel gain and per-column offset (electrons) of one camera unit (cached: fixed)."""
    rng = np.random.default_rng([unit, *map(ord, name), *shape])
    gain = rng.standard_normal(shape, np.float32)
    gain *= np.float32(spread)
    gain += np.float32(1.0)
    return gain, column_e * rng.standard_normal(shape[1], np.float32)


@lru_cache(maxsize=4)
def _tone_table(gamma: float) -> np.ndarray:
    """uint8 output for each 16-bit linear value."""
    return np.rint((np.arange(65536) / 65535.0) ** (1.0 / gamma) * 255.0).astype(np.uint8)


def clean_frame(
    log_transmission: np.ndarray, light: np.ndarray, sensor: Sensor, channels: int
) -> np.ndarray:
    """The noise-free frame in [0, 1] (same tone curve and colour balance as the camera).

    Examples
    --------
    >>> s = draw_sensor(np.random.default_rng(0))
    >>> clean_frame(np.zeros((4, 5), np.float32), np.ones((4, 5), np.float32), s, 3).shape
    (4, 5, 3)
    """
    linear = cv2.multiply(cv2.exp(log_transmission), light, scale=sensor.exposure)
    np.clip(linear, 0.0, 1.0, out=linear)
    toned = linear if sensor.gamma == 1.0 else cv2.pow(linear, 1.0 / sensor.gamma)
    if channels == 1:
        return toned
    gains = np.float32(sensor.channel_gains) ** np.float32(1.0 / sensor.gamma)
    rgb = toned[..., None] * gains
    return np.minimum(rgb, 1.0, out=rgb)


def expose(
    rng: np.random.Generator,
    log_transmission: np.ndarray,
    stain: np.ndarray,
    light: np.ndarray,
    sensor: Sensor,
    channels: int,
    name: str,
) -> np.ndarray:
    """What the camera writes: uint8 ``(H, W)`` or, through a Bayer mosaic, ``(H, W, 3)``.

    Parameters
    ----------
    log_transmission, stain : np.ndarray
        float32 ``(H, W)``: log of the light passing the sample; blue-weighted stain density.
    light : np.ndarray
        float32 ``(H, W)``: relative illumination.
    sensor : Sensor
    channels : int
        1 (gray sensor) or 3 (colour sensor with an RGGB mosaic).
    name : str
        Camera profile name; with ``sensor.unit`` it selects the fixed-pattern noise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> zero = np.zeros((8, 10), np.float32)
    >>> expose(rng, zero, zero, zero + 1, draw_sensor(rng), 3, "hires").shape
    (8, 10, 3)
    """
    shape = log_transmission.shape
    optical = log_transmission.copy()
    gains = np.ones(shape, np.float32)
    if channels == 1:
        optical -= np.float32(STAIN_ABSORPTION_RGB.mean()) * stain
    else:  # RGGB mosaic: each pixel sees one colour
        sites = {0: [(0, 0)], 1: [(0, 1), (1, 0)], 2: [(1, 1)]}
        for channel, offsets in sites.items():
            for r, c in offsets:
                optical[r::2, c::2] -= STAIN_ABSORPTION_RGB[channel] * stain[r::2, c::2]
                gains[r::2, c::2] = sensor.channel_gains[channel]
    electrons = cv2.exp(optical)
    electrons *= light
    electrons *= gains
    pixel_gain, column_offset = _fixed_pattern(
        sensor.unit, sensor.pixel_gain_spread, sensor.column_offset_e, shape, name
    )
    electrons *= pixel_gain
    electrons *= np.float32(sensor.exposure * sensor.full_well_e)
    spread = cv2.sqrt(np.maximum(electrons, 0.0) + np.float32(sensor.read_noise_e**2))
    electrons += spread * rng.standard_normal(shape, np.float32)
    electrons += column_offset
    electrons *= np.float32(65535.0 / sensor.full_well_e)
    raw = np.clip(electrons, 0, 65535).astype(np.uint16)
    if channels == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BayerRG2RGB)
    return _tone_table(sensor.gamma)[raw]


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """`image` encoded as JPEG at `quality` and decoded again.

    Examples
    --------
    >>> img = np.full((16, 16), 128, np.uint8)
    >>> jpeg_roundtrip(img, 50).shape
    (16, 16)
    """
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
