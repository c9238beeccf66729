"""The learned crystal counter for translucent, overlapping, agglomerated crystals.

A compact U-Net (:mod:`workbench.imaging._model_network`) reads the gray image at a
fixed working scale of 2 µm per pixel (a 12 MP ``hires`` frame shrinks 3.125x to
1280 x 960, which is what makes it fast on a CPU) after dividing out a robust
background estimate. It predicts two maps:

- a centroid *heat map*: a Gaussian peak at every primary crystal, also inside
  agglomerates; the crystal count is the number of peaks;
- a *class map*: background, single crystal, agglomerate, and one class per
  imperfection kind (bubble, debris, fibre, scratch, dust). Connected crystal /
  agglomerate regions are the particles (their areas give the CSD); the peaks inside
  an agglomerate region are its primary crystals (:mod:`workbench.imaging._model_decode`).

``analyze(image, "hires")`` uses it by default; ``method="model"`` selects it for any
camera. Training: :mod:`workbench.lab.train` (``workbench train``); what the
shipped weights were trained on and how they score: ``weights/MODEL_CARD.md``.

The shipped weights (``weights/counter.pt``) are checked against the sha256 recorded
beside them (``weights/counter.json``) every time they are loaded.

On a CPU that computes bfloat16 natively (AVX512-BF16 or AMX), the network runs in
bfloat16 (``precision="auto"``): 2.5x faster for a whole 12 MP frame, and the same
count within a crystal or two on the frames measured (``precision="float32"`` gives
the exact float result everywhere).

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.model import load_counter, predict_maps
>>> counter = load_counter()
>>> maps = predict_maps(counter, np.full((300, 400), 0.8, np.float32), pixel_size_um=2.0)
>>> maps.heat.shape, maps.probabilities.shape
((300, 400), (8, 300, 400))
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from workbench.camera import CameraProfile
from workbench.errors import WorkbenchError
from workbench.imaging._model_decode import decode_maps
from workbench.imaging._model_input import prepare_input
from workbench.imaging._model_network import (
    CLASSES,
    SIZE_MULTIPLE,
    CounterNet,
    fused_for_inference,
)
from workbench.imaging.detections import Detections, detections_from_labels

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_WEIGHTS = WEIGHTS_DIR / "counter.pt"
PRECISIONS = {"auto": None, "float32": torch.float32, "bfloat16": torch.bfloat16}
# One tile holds a whole working-scale frame of either camera (hires: 1280 x 960);
# larger images are cut into tiles so that memory stays bounded.
DEFAULT_TILE = 1280
DEFAULT_OVERLAP = 128


@dataclass
class CrystalCounter:
    """A loaded, inference-ready network.

    Attributes
    ----------
    net : CounterNet
        Eval mode, BatchNorm folded into the convolutions.
    device : torch.device
        ``cuda`` when a GPU is present, else ``cpu``.
    path : Path
        Weights file it was loaded from.
    sha256 : str
        Checksum of that file (verified).
    precision : torch.dtype
        ``torch.bfloat16`` or ``torch.float32``: what the convolutions compute in.
    """

    net: CounterNet
    device: torch.device
    path: Path
    sha256: str
    precision: torch.dtype = torch.float32


@dataclass
class ModelMaps:
    """The network's output for one image, on the working grid.

    Attributes
    ----------
    heat : ndarray of float32, shape (h, w)
        Centroid heat map (a peak of about 1 per primary crystal).
    probabilities : ndarray of float32, shape (len(CLASSES), h, w)
        Class probabilities: background, crystal, agglomerate, then one per
        imperfection kind (:data:`~workbench.imaging._model_network.CLASSES`).
    scale : float
        Image pixels per working pixel (3.125 for ``hires``).
    """

    heat: np.ndarray
    probabilities: np.ndarray
    scale: float


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sidecar_path(weights: Path) -> Path:
    """The JSON beside a weights file recording its sha256 (``counter.pt`` -> ``counter.json``)."""
    return weights.with_suffix(".json")


def save_weights(net: CounterNet, path: str | Path, card: dict | None = None) -> Path:
    """Write `net`'s weights and the sidecar JSON with their sha256 (and `card`).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from workbench.imaging._model_network import CounterNet
    >>> path = save_weights(CounterNet(), pathlib.Path(tempfile.mkdtemp()) / "c.pt")
    >>> load_counter(path).sha256 == sha256_of(path)
    True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"channels": list(net.channels), "state_dict": state}, path)
    record = {"file": path.name, "sha256": sha256_of(path), **(card or {})}
    sidecar_path(path).write_text(json.dumps(record, indent=2) + "\n")
    return path


def load_counter(
    path: str | Path | None = None, device: str = "auto", precision: str = "auto"
) -> CrystalCounter:
    """Load weights (the shipped ones by default) after checking their sha256.

    Parameters
    ----------
    path : str or Path, optional
        A weights file written by :func:`save_weights` (``workbench train`` writes
        one); its sidecar ``<stem>.json`` must record its sha256.
    device : {"auto", "cpu", "cuda"}
        ``auto`` uses a GPU when one is present.
    precision : {"auto", "float32", "bfloat16"}
        See :func:`resolve_precision`.

    Raises
    ------
    WorkbenchError
        If the file or its sidecar is missing, or the file's sha256 does not match
        (corrupt or replaced), or it does not hold counter weights.

    Examples
    --------
    >>> counter = load_counter()
    >>> counter.path.name, len(counter.sha256)
    ('counter.pt', 64)
    """
    path = Path(path) if path is not None else SHIPPED_WEIGHTS
    net, actual = load_network(path)
    target = resolve_device(device)
    dtype = resolve_precision(precision, target)
    net = fused_for_inference(net).to(target, memory_format=torch.channels_last)
    if "OMP_NUM_THREADS" not in os.environ:  # an explicit thread count wins
        torch.set_num_threads(_available_cpus())
    return CrystalCounter(net=net, device=target, path=path, sha256=actual, precision=dtype)


def load_network(path: str | Path) -> tuple[CounterNet, str]:
    """The trainable network stored in a weights file (BatchNorm not folded) and its sha256,
    after checking the sha256 against the sidecar; the start of a fine-tuning run.

    Raises
    ------
    WorkbenchError
        As :func:`load_counter`.

    Examples
    --------
    >>> net, sha256 = load_network(SHIPPED_WEIGHTS)
    >>> net.training, len(sha256)
    (True, 64)
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: model weights file not found")
    sidecar = sidecar_path(path)
    try:
        expected = json.loads(sidecar.read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        raise WorkbenchError(
            f"{sidecar}: missing or unreadable checksum record for the weights {path.name}"
        ) from None
    actual = sha256_of(path)
    if actual != expected:
        raise WorkbenchError(
            f"{path}: model weights are corrupt (sha256 {actual[:12]}... does not match "
            f"the recorded {str(expected)[:12]}...)"
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net = CounterNet(tuple(saved["channels"]))
        net.load_state_dict(saved["state_dict"])
    except Exception as error:  # torch raises many types for a file that is not ours
        raise WorkbenchError(f"{path}: not crystal counter weights ({error})") from None
    return net, actual


def predict_maps(
    counter: CrystalCounter,
    gray: np.ndarray,
    pixel_size_um: float,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
) -> ModelMaps:
    """Run the network over a gray image, tile by tile.

    Parameters
    ----------
    counter : CrystalCounter
        From :func:`load_counter`.
    gray : ndarray, shape (H, W)
        Gray image, float in [0, 1] (or any dtype; only ratios to the background matter).
    pixel_size_um : float
        Pixel side of `gray` in µm.
    tile, overlap : int
        Tile side and overlap between neighbouring tiles, in working pixels
        (2 µm). Each tile keeps only its centre, so memory stays bounded and the
        seams do not show in the maps.

    Returns
    -------
    ModelMaps

    Examples
    --------
    >>> import numpy as np
    >>> counter = load_counter()
    >>> maps = predict_maps(counter, np.full((64, 96), 0.8, np.float32), 2.0, tile=64, overlap=32)
    >>> maps.heat.shape, round(maps.scale, 2)
    ((64, 96), 1.0)
    """
    if tile <= overlap or tile % SIZE_MULTIPLE or overlap % (2 * SIZE_MULTIPLE):
        raise WorkbenchError(
            f"tile {tile}, overlap {overlap}: the tile must be larger than the overlap and "
            f"both multiples of {SIZE_MULTIPLE} (the overlap of {2 * SIZE_MULTIPLE})"
        )
    working = prepare_input(gray, pixel_size_um)
    rows, cols = working.shape
    heat = np.empty((rows, cols), np.float32)
    probabilities = np.empty((len(CLASSES), rows, cols), np.float32)
    margin = overlap // 2
    with torch.inference_mode():
        for r0, r1, keep_r0, keep_r1 in _spans(rows, tile, margin):
            for c0, c1, keep_c0, keep_c1 in _spans(cols, tile, margin):
                out = _forward(counter, working[r0:r1, c0:c1])
                inner = (slice(keep_r0 - r0, keep_r1 - r0), slice(keep_c0 - c0, keep_c1 - c0))
                heat[keep_r0:keep_r1, keep_c0:keep_c1] = out[0][inner]
                probabilities[:, keep_r0:keep_r1, keep_c0:keep_c1] = out[1:][(slice(None), *inner)]
    # The actual ratio, not the nominal one: sizes are rounded to whole pixels.
    return ModelMaps(heat=heat, probabilities=probabilities, scale=gray.shape[1] / cols)


def detections_from_maps(maps: ModelMaps) -> Detections:
    """Particles and imperfections of `maps`, in the input image's pixels.

    Examples
    --------
    >>> import numpy as np
    >>> maps = ModelMaps(np.zeros((8, 8), np.float32), np.eye(len(CLASSES))[:, :1, None]
    ...                  * np.ones((1, 8, 8)), scale=1.0)
    >>> detections_from_maps(maps).members.tolist()
    []
    """
    decoded = decode_maps(maps.heat, maps.probabilities)
    return detections_from_labels(
        decoded.labels, decoded.members, maps.scale, decoded.artifacts, decoded.artifact_labels
    )


def detect_with_counter(
    counter: CrystalCounter, gray: np.ndarray, camera: CameraProfile
) -> Detections:
    """Detections of `counter` on one gray image (see :func:`detect_with_model`).

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.camera import get_camera
    >>> found = detect_with_counter(load_counter(), np.full((256, 256), 0.8, np.float32),
    ...                             get_camera("legacy"))
    >>> int(found.members.sum())
    0
    """
    return detections_from_maps(predict_maps(counter, gray, camera.pixel_size_um))


def detect_with_model(
    gray: np.ndarray, camera: CameraProfile, weights: str | Path | None = None
) -> Detections:
    """Find crystals, agglomerates and imperfections in one image with the learned model.

    This is the ``model`` method of :func:`workbench.imaging.pipeline.analyze`.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        Gray image, float in [0, 1].
    camera : CameraProfile
        Gives the pixel size.
    weights : str or Path, optional
        Weights file (e.g. fine-tuned at a factory by ``workbench finetune``); the
        shipped weights by default. Loaded once per process and file.

    Examples
    --------
    >>> import numpy as np
    >>> from workbench.camera import get_camera
    >>> found = detect_with_model(np.full((256, 256), 0.8, np.float32), get_camera("legacy"))
    >>> int(found.members.sum())
    0
    """
    counter = _cached_counter(None if weights is None else str(weights))
    return detect_with_counter(counter, gray, camera)


@lru_cache(maxsize=4)
def _cached_counter(weights: str | None) -> CrystalCounter:
    # Loaded once per process and file: the pipeline calls this for every image.
    return load_counter(weights)


def _forward(counter: CrystalCounter, window: np.ndarray) -> np.ndarray:
    rows, cols = window.shape
    padded_rows = -(-rows // SIZE_MULTIPLE) * SIZE_MULTIPLE
    padded_cols = -(-cols // SIZE_MULTIPLE) * SIZE_MULTIPLE
    # 0 is the background level of the normalised input, so padding looks like empty field.
    x = torch.zeros((1, 1, padded_rows, padded_cols))
    x[0, 0, :rows, :cols] = torch.from_numpy(window)
    x = x.to(counter.device, memory_format=torch.channels_last)
    reduced = counter.precision != torch.float32
    with torch.autocast(counter.device.type, dtype=counter.precision, enabled=reduced):
        out = counter.net(x)[0].float()
    heat = out[:1].clamp_(min=0.0)
    probabilities = torch.softmax(out[1:], dim=0)
    return torch.cat([heat, probabilities])[:, :rows, :cols].cpu().numpy()


def _spans(length: int, tile: int, margin: int) -> list[tuple[int, int, int, int]]:
    """(read_start, read_stop, keep_start, keep_stop) per tile along one axis."""
    if length <= tile:
        return [(0, length, 0, length)]
    n = -(-length // (tile - 2 * margin))
    # Tile starts on multiples of SIZE_MULTIPLE keep the pooling grid of every tile
    # aligned with that of a single pass, so kept centres match it.
    bounds = np.linspace(0, length, n + 1) / SIZE_MULTIPLE
    bounds = bounds.round().astype(int) * SIZE_MULTIPLE
    bounds[-1] = length
    return [
        (max(0, a - margin), min(length, b + margin), int(a), int(b))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; checks the name."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise WorkbenchError("device 'cuda': no GPU is available on this machine")
    if device not in ("cpu", "cuda"):
        raise WorkbenchError(f"device {device!r}: choose auto, cpu or cuda")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """The dtype the network computes in: ``auto`` -> bfloat16 on a CPU that computes it
    natively (AVX512-BF16 or AMX tiles; elsewhere bfloat16 is emulated and slower),
    else float32; checks the name.

    Examples
    --------
    >>> resolve_precision("float32", torch.device("cpu"))
    torch.float32
    >>> resolve_precision("auto", torch.device("cuda"))
    torch.float32
    """
    if precision not in PRECISIONS:
        raise WorkbenchError(f"precision {precision!r}: choose auto, float32 or bfloat16")
    if precision == "auto":
        native = device.type == "cpu" and any(
            # Private probes (torch 2.13) that say what the CPU computes natively.
            getattr(torch.cpu, probe, lambda: False)()
            for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        )
        return torch.bfloat16 if native else torch.float32
    return PRECISIONS[precision]


def _available_cpus() -> int:
    # sched_getaffinity honours taskset / container CPU sets; cpu_count does not.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
