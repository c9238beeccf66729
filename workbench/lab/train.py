"""Training the learned crystal counter on synthetic images made on the fly.

Tiles come from :func:`workbench.synth.synthesize` (both cameras, 5-60 crystals per
mm², every kind of imperfection, some written as JPEG), rendered at the camera's own
pixel size with ``shape=`` and reduced to the 2 µm working scale exactly as
:func:`workbench.imaging.model.predict_maps` reduces a real image. A pool of tiles
is kept in memory (generating is slower than a training step on a CPU) and a
fraction of it is replaced every few hundred steps. Batches are random crops with
flips / 90° rotations, gain, offset, blur and noise.

Everything is drawn from one seed; a checkpoint holds the model, the optimiser, the
step, the random states and the seeds of the tiles in the pool, so ``--resume``
continues the same run.

Examples
--------
>>> from workbench.lab.train import TrainConfig, train
>>> config = TrainConfig(steps=2, pool_tiles=2, batch=2, validation_images=0)
>>> result = train(config, out="/tmp/wb-train-doctest", progress=False)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional
from tqdm import tqdm

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.imaging._model_input import prepare_input
from workbench.imaging._model_network import CounterNet
from workbench.imaging.detections import IMPERFECTION_KINDS
from workbench.imaging.io import to_gray_float
from workbench.imaging.model import (
    detect_with_counter,
    load_counter,
    load_network,
    resolve_device,
    save_weights,
)
from workbench.imaging.pipeline import report_from_detections
from workbench.imaging.working_scale import pixels_per_working_pixel
from workbench.lab._model_targets import target_maps
from workbench.lab.evaluate import score_image, summarize
from workbench.synth import synthesize

CAMERAS = ("legacy", "hires")
DENSITY_RANGE_PER_MM2 = (5.0, 60.0)
# The wide domain also spans microscopes: 0.3-3 µm per pixel (drawn log-uniform), and
# denser slides.
WIDE_PIXEL_SIZE_UM = (0.3, 3.0)
WIDE_DENSITY_RANGE_PER_MM2 = (5.0, 80.0)
VALIDATION_DENSITIES = (10.0, 30.0, 55.0)
CHECKPOINT_NAME = "checkpoint.pt"
WEIGHTS_NAME = "counter.pt"
LOG_NAME = "train_log.jsonl"
# Class weights for the cross-entropy (background, crystal, agglomerate, imperfections):
# background is most pixels and easy.
_CLASS_WEIGHTS = (0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0, 2.0)
# Heat map pixels near a centroid weigh this much more in the squared error.
_PEAK_WEIGHT = 20.0
_HEAT_LOSS_GAIN = 10.0
_WARMUP_STEPS = 200


@dataclass
class TrainConfig:
    """Everything that defines a training run (stored in every checkpoint).

    Attributes
    ----------
    steps : int
        Total optimiser steps (a resumed run continues up to this number).
    batch : int
        Crops per step.
    crop : int
        Crop side in working pixels (2 µm); a multiple of 8.
    tile : int
        Side of the generated tiles in working pixels.
    pool_tiles : int
        Tiles kept in memory.
    refresh_every, refresh_fraction :
        Every ``refresh_every`` steps, this fraction of the pool is replaced by new tiles.
    learning_rate : float
        Peak AdamW learning rate (linear warm-up, cosine decay).
    validation_every : int
        Steps between validations (and weight exports).
    validation_images : int
        Full frames per camera in the fixed validation set (0: no validation).
    checkpoint_every : int
        Steps between checkpoints.
    seed : int
        Seed of everything.
    device : str
        ``auto``, ``cpu`` or ``cuda``.
    domain : {"default", "wide"}
        The synthetic domain tiles are drawn from (:mod:`workbench.synth.domain`);
        "wide" also draws each tile's pixel size from ``WIDE_PIXEL_SIZE_UM``.
    init : str, optional
        Weights to start from (fine-tuning) instead of a fresh network.
    """

    steps: int = 7000
    batch: int = 8
    crop: int = 128
    tile: int = 256
    pool_tiles: int = 384
    refresh_every: int = 200
    refresh_fraction: float = 0.1
    learning_rate: float = 3e-3
    validation_every: int = 500
    validation_images: int = 3
    checkpoint_every: int = 250
    seed: int = 0
    device: str = "auto"
    domain: str = "default"
    init: str | None = None


@dataclass
class Tile:
    """One generated training tile at the working scale."""

    image: np.ndarray  # float16, normalised input
    heat: np.ndarray  # float16, target heat map
    classes: np.ndarray  # uint8, target class map


@dataclass
class TrainResult:
    """Where a run left its files and how it scored last."""

    step: int
    checkpoint: Path
    weights: Path
    validation: dict
    seconds: float


def make_tile(seed: int, tile: int = 256, domain: str = "default") -> Tile:
    """Generate one training tile (camera, density, imperfections, JPEG drawn from `seed`).

    Examples
    --------
    >>> t = make_tile(0, tile=64)
    >>> t.image.shape, t.heat.shape, t.classes.dtype
    ((64, 64), (64, 64), dtype('uint8'))
    >>> make_tile(0, tile=64, domain="wide").image.shape
    (64, 64)
    """
    rng = np.random.default_rng(seed)
    camera = get_camera(CAMERAS[int(rng.integers(len(CAMERAS)))])
    densities = DENSITY_RANGE_PER_MM2
    if domain != "default":
        low, high = np.log(WIDE_PIXEL_SIZE_UM)
        camera = get_camera(camera.name, float(np.exp(rng.uniform(low, high))))
        densities = WIDE_DENSITY_RANGE_PER_MM2
    scale = pixels_per_working_pixel(camera.pixel_size_um)
    side = round(tile * scale)
    # Half the tiles get extra imperfections of every kind: a tile is small, and the
    # Poisson rates of a full frame would leave most tiles without any.
    if rng.random() < 0.5:
        imperfections: bool | dict[str, int] = {
            kind: int(rng.poisson(1.0)) for kind in IMPERFECTION_KINDS
        }
    else:
        imperfections = True
    sample = synthesize(
        camera.name,
        seed=int(rng.integers(2**31)),
        density_per_mm2=float(rng.uniform(*densities)),
        pixel_size_um=camera.pixel_size_um,
        shape=(side, side),
        jpeg_quality=int(rng.integers(55, 96)) if rng.random() < 0.3 else None,
        imperfections=imperfections,
        domain=domain,
    )
    image = prepare_input(to_gray_float(sample.image), camera.pixel_size_um)
    heat, classes = target_maps(sample.labels, sample.truth["objects"], image.shape, scale)
    return Tile(image.astype(np.float16), heat.astype(np.float16), classes)


def validation_set(n_per_camera: int, seed: int) -> list[tuple[str, np.ndarray, dict]]:
    """Fixed full frames: (camera, gray float image, truth), densities cycling low to high."""
    frames = []
    for camera in CAMERAS:
        for index in range(n_per_camera):
            density = VALIDATION_DENSITIES[index % len(VALIDATION_DENSITIES)]
            sample = synthesize(camera, seed=10_000 + 97 * seed + index, density_per_mm2=density)
            frames.append((camera, to_gray_float(sample.image), sample.truth))
    return frames


def validate(weights: Path, frames: list[tuple[str, np.ndarray, dict]]) -> dict:
    """Score exported weights on the validation frames, per camera.

    Returns
    -------
    dict
        ``{camera: summarize(...)}`` (accuracy, agglomerate F1, ...).
    """
    counter = load_counter(weights)
    scores: dict[str, list] = {}
    for camera_name, gray, truth in frames:
        camera = get_camera(camera_name)
        started = time.perf_counter()
        detections = detect_with_counter(counter, gray, camera)
        report = report_from_detections(detections, camera, "model", time.perf_counter() - started)
        scores.setdefault(camera_name, []).append(score_image(report, truth))
    return {name: summarize(found) for name, found in scores.items()}


def train(
    config: TrainConfig,
    out: str | Path,
    resume: str | Path | None = None,
    progress: bool = True,
    tiles: list[Tile] | None = None,
) -> TrainResult:
    """Train (or continue training) the counter; write checkpoints, weights and a log.

    Parameters
    ----------
    config : TrainConfig
    out : str or Path
        Folder for ``checkpoint.pt`` (full state), ``counter.pt`` + ``counter.json``
        (weights for :func:`~workbench.imaging.model.load_counter`) and
        ``train_log.jsonl``.
    resume : str or Path, optional
        A checkpoint to continue from (its model, optimiser, step, random states and
        tile pool); ``config.steps`` is the new total.
    progress : bool
        Show a tqdm bar on stderr.
    tiles : list of Tile, optional
        A fixed pool instead of synthetic tiles (fine-tuning on labelled frames, see
        :mod:`workbench.lab.finetune`): used as given and never refreshed; such a run
        cannot be resumed.

    Returns
    -------
    TrainResult
    """
    started = time.perf_counter()
    out = Path(out)
    _prepare_folder(out)
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    # channels_last: about 1.5x faster convolutions on CPU for these few channels.
    net = CounterNet() if config.init is None else load_network(config.init)[0]
    net = net.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config.steps))
    rng = np.random.default_rng(config.seed)
    run = _Progress(step=0, pool_seeds=list(range(config.pool_tiles)), next_seed=config.pool_tiles)
    if resume is not None:
        state = _load_checkpoint(Path(resume))
        net.load_state_dict(state["net"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
        run = _Progress(state["step"], state["pool_seeds"], state["next_seed"])
    seed_base = np.random.SeedSequence(config.seed)
    if tiles is not None and resume is not None:
        raise WorkbenchError("a run on a fixed set of tiles cannot be resumed; start it again")
    pool = tiles if tiles is not None else [
        make_tile(_tile_seed(seed_base, s), config.tile, config.domain)
        for s in tqdm(run.pool_seeds, desc="tiles", disable=not progress, leave=False)
    ]
    frames = validation_set(config.validation_images, config.seed)
    log = (out / LOG_NAME).open("a")
    weights = out / WEIGHTS_NAME
    validation: dict = {}
    class_weights = torch.tensor(_CLASS_WEIGHTS, device=device)
    bar = tqdm(total=config.steps, initial=run.step, desc="train", disable=not progress)
    net.train()
    while run.step < config.steps:
        images, heats, classes = _batch(pool, rng, config)
        output = net(images.to(device, memory_format=torch.channels_last))
        loss_heat, loss_class = _losses(output, heats.to(device), classes.to(device), class_weights)
        optimizer.zero_grad(set_to_none=True)
        (loss_heat + loss_class).backward()
        optimizer.step()
        scheduler.step()
        run.step += 1
        step = run.step
        bar.update(1)
        bar.set_postfix(heat=f"{loss_heat.item():.4f}", cls=f"{loss_class.item():.3f}")
        record = {"step": step, "loss_heat": loss_heat.item(), "loss_class": loss_class.item()}
        if tiles is None and step % config.refresh_every == 0 and step < config.steps:
            _refresh_pool(pool, run, rng, seed_base, config)
        done = step == config.steps
        if done or step % config.validation_every == 0:
            save_weights(net, weights, {"step": step, "config": asdict(config)})
            net.train()
            if frames:
                validation = validate(weights, frames)
                record["validation"] = validation
                bar.write(f"step {step}: {_describe(validation)}")
        if done or step % config.checkpoint_every == 0:
            _save_checkpoint(out / CHECKPOINT_NAME, net, optimizer, scheduler, rng, run, config)
        if step % 50 == 0 or "validation" in record or done:
            log.write(json.dumps(record) + "\n")
            log.flush()
    bar.close()
    log.close()
    return TrainResult(
        step=run.step,
        checkpoint=out / CHECKPOINT_NAME,
        weights=weights,
        validation=validation,
        seconds=time.perf_counter() - started,
    )


@dataclass
class _Progress:
    """Where a run is: its step and which tiles its pool holds (by seed index)."""

    step: int
    pool_seeds: list[int]
    next_seed: int


def _losses(
    output: torch.Tensor, heat: torch.Tensor, classes: torch.Tensor, class_weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Peak-weighted squared error of the heat map and weighted cross-entropy of the classes."""
    heat_error = (output[:, 0] - heat) ** 2 * (1.0 + _PEAK_WEIGHT * heat)
    loss_class = functional.cross_entropy(output[:, 1:], classes, weight=class_weights)
    return _HEAT_LOSS_GAIN * heat_error.mean(), loss_class


def _refresh_pool(
    pool: list[Tile],
    run: _Progress,
    rng: np.random.Generator,
    seed_base: np.random.SeedSequence,
    config: TrainConfig,
) -> None:
    """Replace ``config.refresh_fraction`` of the pool with new tiles."""
    n_new = max(1, round(config.refresh_fraction * len(pool)))
    for index in rng.choice(len(pool), size=n_new, replace=False):
        run.pool_seeds[index] = run.next_seed
        pool[index] = make_tile(_tile_seed(seed_base, run.next_seed), config.tile, config.domain)
        run.next_seed += 1


def _batch(
    pool: list[Tile], rng: np.random.Generator, config: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    crop = config.crop
    images, heats, classes = [], [], []
    for index in rng.integers(len(pool), size=config.batch):
        tile = pool[index]
        rows, cols = tile.image.shape
        r0 = int(rng.integers(rows - crop + 1))
        c0 = int(rng.integers(cols - crop + 1))
        window = (slice(r0, r0 + crop), slice(c0, c0 + crop))
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        image = _augment_intensity(tile.image[window].astype(np.float32), rng)
        parts = [image, tile.heat[window].astype(np.float32), tile.classes[window]]
        parts = [np.rot90(p, turns) for p in parts]
        if flip:
            parts = [p[:, ::-1] for p in parts]
        images.append(np.ascontiguousarray(parts[0]))
        heats.append(np.ascontiguousarray(parts[1]))
        classes.append(np.ascontiguousarray(parts[2]))
    return (
        torch.from_numpy(np.stack(images))[:, None],
        torch.from_numpy(np.stack(heats)),
        torch.from_numpy(np.stack(classes).astype(np.int64)),
    )


def _augment_intensity(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Contrast, offset, blur and noise: cameras and preparations differ in all four."""
    image = image * rng.uniform(0.7, 1.4) + rng.uniform(-0.1, 0.1)
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.3, 0.9))
    if rng.random() < 0.3:
        image = image + rng.normal(0.0, rng.uniform(0.02, 0.12), image.shape).astype(np.float32)
    return image.astype(np.float32)


def _schedule(total_steps: int):
    def factor(step: int) -> float:
        if step < _WARMUP_STEPS:
            return (step + 1) / _WARMUP_STEPS
        progress = (step - _WARMUP_STEPS) / max(1, total_steps - _WARMUP_STEPS)
        return 0.03 + 0.97 * 0.5 * (1.0 + np.cos(np.pi * min(1.0, progress)))

    return factor


def _tile_seed(base: np.random.SeedSequence, index: int) -> int:
    return int(np.random.SeedSequence(base.entropy, spawn_key=(index,)).generate_state(1)[0])


def _save_checkpoint(
    path: Path,
    net: CounterNet,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    rng: np.random.Generator,
    run: _Progress,
    config: TrainConfig,
) -> None:
    state = {
        "step": run.step,
        "net": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "numpy_rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "pool_seeds": list(run.pool_seeds),
        "next_seed": run.next_seed,
        "config": asdict(config),
    }
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    # Rename last, so an interrupted save never leaves a half-written checkpoint.
    partial.replace(path)


def _load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise WorkbenchError(f"{path}: checkpoint file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises many types for a file that is not ours
        raise WorkbenchError(f"{path}: not a training checkpoint ({error})") from None


def _prepare_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WorkbenchError(f"{out}: cannot create the output folder ({error.strerror})") from None


def _describe(validation: dict) -> str:
    return "; ".join(
        f"{camera} acc {s['accuracy']:.4f} agg-F1 {s['agglomerate_f1']:.3f} "
        f"det-F1 {s['detection_f1']:.3f} imp {s['imperfections_pct']:.2f}%"
        for camera, s in validation.items()
    )
