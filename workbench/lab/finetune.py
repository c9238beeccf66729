"""Fine-tuning the learned counter on frames a factory labelled by hand.

A person marks crystals on a few of the factory's own frames (the annotation widget
pre-fills the counter's answer, so they only correct it). Marks are points, not
outlines, so the training targets are built from the points and from the counter
itself:

- the heat map (what the count is read from) has a peak at every marked crystal and
  nowhere else, with a width from the size of the particle the mark lies in; inside
  an agglomerate whose crystal number was set without marking its crystals, the
  counter's own heat map is kept (the labels say how many, not where);
- the class map is the counter's own, corrected where the labels disagree: a
  particle without any mark becomes background (or the imperfection marked on it),
  a mark outside every particle gets a small disc of crystal.

Training then runs as :func:`workbench.lab.train.train` on this fixed pool of
frames, from the shipped (or given) weights, with a small learning rate.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.model import load_counter
>>> frame = np.full((256, 256), 0.8, np.float32)
>>> objects = [{"id": 1, "kind": "crystal", "centroid_xy": [100.0, 120.0]}]
>>> tile = labelled_tile(frame, 2.0, objects, load_counter())
>>> tile.image.shape, float(tile.heat.max()) == 1.0
((256, 256), True)
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.imaging._model_input import prepare_input
from workbench.imaging._model_network import CLASSES
from workbench.imaging.annotations import (
    LABELS_SUFFIX,
    crystals_in,
    load_annotations,
    marks_from_truth,
)
from workbench.imaging.io import list_images, load_image, to_gray_float
from workbench.imaging.model import (
    CrystalCounter,
    detect_with_counter,
    load_counter,
    predict_maps,
)
from workbench.imaging.pipeline import report_from_detections
from workbench.lab._model_targets import PEAK_SIGMA_FRACTION, PEAK_SIGMA_PX, heat_map
from workbench.lab.evaluate import counting_accuracy
from workbench.lab.heldout import render_heldout
from workbench.lab.train import Tile, TrainConfig, TrainResult, train

FINETUNE_STEPS = 300
FINETUNE_LEARNING_RATE = 5e-4
CHECK_FRACTION = 0.25  # of a datasite's labelled frames, kept out of training to score it
TYPICAL_RADIUS_PX = 10.0  # a 40 µm crystal at the 2 µm working scale, for marks in no particle
_CLASS = {name: index for index, name in enumerate(CLASSES)}


@dataclass(frozen=True)
class LabelledFrame:
    """A gray frame, its pixel size and its marks (truth-format object records)."""

    name: str
    gray: np.ndarray
    pixel_size_um: float
    objects: list[dict]


def labelled_tile(
    gray: np.ndarray, pixel_size_um: float, objects: list[dict], counter: CrystalCounter
) -> Tile:
    """Training targets for one hand-labelled frame at the working scale.

    Parameters
    ----------
    gray : ndarray, shape (H, W)
        The frame, gray float.
    pixel_size_um : float
    objects : list of dict
        Marks in the format of the synthetic ground truth: ``kind`` (crystal,
        agglomerate or an imperfection kind), ``centroid_xy`` in image pixels, and for
        an agglomerate either its crystals' marks (``agglomerate`` on each crystal)
        or ``crystals``: their number.
    counter : CrystalCounter
        The weights being fine-tuned: where labels say nothing, they are the target.

    Returns
    -------
    Tile
    """
    maps = predict_maps(counter, gray, pixel_size_um)
    image = prepare_input(gray, pixel_size_um)
    shape = image.shape
    classes = maps.probabilities.argmax(axis=0).astype(np.uint8)
    particles = (classes == _CLASS["crystal"]) | (classes == _CLASS["agglomerate"])
    n_regions, regions = cv2.connectedComponents(particles.astype(np.uint8), connectivity=4)
    area = np.bincount(regions.ravel(), minlength=n_regions).astype(float)

    def region_at(record: dict) -> int:
        x, y = _working_xy(record, maps.scale)
        row, col = int(np.clip(round(y), 0, shape[0] - 1)), int(np.clip(round(x), 0, shape[1] - 1))
        return int(regions[row, col])

    crystals = [o for o in objects if o["kind"] == "crystal"]
    count_only = [o for o in objects if o["kind"] == "agglomerate" and o.get("crystals")]
    imperfections = [
        o for o in objects if o["kind"] in _CLASS and o["kind"] not in ("crystal", "agglomerate")
    ]
    crystal_regions = np.array([region_at(o) for o in crystals], int)
    marks_per_region = np.bincount(crystal_regions, minlength=n_regions)
    kept_by_counter = np.zeros(n_regions, bool)
    for record in count_only:
        kept_by_counter[region_at(record)] = True
    kept_by_counter[0] = False

    radius = np.full(len(crystals), TYPICAL_RADIUS_PX)
    inside = crystal_regions > 0
    marked = crystal_regions[inside]
    radius[inside] = np.sqrt(area[marked] / np.maximum(marks_per_region[marked], 1) / np.pi)
    xy = np.array([_working_xy(o, maps.scale) for o in crystals], float).reshape(-1, 2)
    heat = heat_map(xy, np.maximum(PEAK_SIGMA_FRACTION * radius, PEAK_SIGMA_PX), shape)
    keep = kept_by_counter[regions]
    heat[keep] = maps.heat[keep]

    unmarked = (marks_per_region == 0) & ~kept_by_counter
    unmarked[0] = False
    classes[unmarked[regions]] = _CLASS["background"]
    for record in imperfections:
        region = region_at(record)
        if region and unmarked[region]:
            classes[regions == region] = _CLASS[record["kind"]]
    members = marks_per_region >= 2
    members[0] = False
    classes[members[regions]] = _CLASS["agglomerate"]
    for (x, y), r, region in zip(xy, radius, crystal_regions, strict=True):
        if region == 0:
            cv2.circle(classes, (round(x), round(y)), max(2, round(0.7 * r)), _CLASS["crystal"], -1)
    return Tile(image.astype(np.float16), heat.astype(np.float16), classes)


def finetune(
    frames: list[LabelledFrame],
    out: str | Path,
    init: str | Path | None = None,
    steps: int = FINETUNE_STEPS,
    learning_rate: float = FINETUNE_LEARNING_RATE,
    seed: int = 0,
    progress: bool = True,
) -> TrainResult:
    """Fine-tune the counter's weights (`init`, default the shipped ones) on `frames`.

    Writes ``OUT/counter.pt`` + ``counter.json`` (usable with ``--weights``) and
    ``OUT/train_log.jsonl``; the frames never leave the machine this runs on.

    Raises
    ------
    WorkbenchError
        Without frames, or when `init` is not counter weights.
    """
    if not frames:
        raise WorkbenchError("no labelled frames: label a few frames with the annotation widget")
    counter = load_counter(init, device="cpu")
    tiles = [labelled_tile(f.gray, f.pixel_size_um, f.objects, counter) for f in frames]
    crop = min(128, *(min(t.image.shape) // 8 * 8 for t in tiles))
    if crop < 32:
        raise WorkbenchError("labelled frames are too small: each needs at least 64 µm a side")
    config = TrainConfig(
        steps=steps,
        crop=crop,
        learning_rate=learning_rate,
        validation_images=0,
        validation_every=steps,
        checkpoint_every=steps,
        seed=seed,
        init=str(counter.path),
        domain="labelled",
    )
    return train(config, out, progress=progress, tiles=tiles)


def finetune_batch(
    batch: dict,
    out: str | Path,
    steps: int = FINETUNE_STEPS,
    check_fraction: float = CHECK_FRACTION,
) -> dict:
    """Fine-tune on the labelled frames of an image batch; return aggregates only.

    What a factory's datasite runs for a fine-tuning code request
    (:func:`workbench.remote.counting.finetune_counter`): `out` is the run's keep
    folder, so the weights stay at the factory. The last `check_fraction` of the
    labelled frames (one at least, once there are four) is kept out of training and
    scores the counter before and after against the count its marks give.

    Parameters
    ----------
    batch : dict
        An image batch (:mod:`workbench.remote.upload`) whose ``labels`` holds, per
        image, its marks (truth-format object records) or None.
    out : str or Path
        Where ``counter.pt`` and ``counter.json`` are written (nothing else).
    steps : int
    check_fraction : float

    Returns
    -------
    dict
        ``labelled``, ``trained_on``, ``checked_on`` (frames), ``steps``, ``seconds``,
        ``accuracy_before`` and ``accuracy_after`` (mean counting accuracy on the check
        frames, None without any), ``weights_sha256``.

    Raises
    ------
    WorkbenchError
        When no image of the batch is labelled.
    """
    started = time.perf_counter()
    labels = batch.get("labels") or [None] * len(batch["images"])
    frames = [
        (
            LabelledFrame(name, to_gray_float(image), float(batch["pixel_size_um"]), objects),
            {"camera": batch["camera"], "count": sum(crystals_in(o) for o in objects)},
        )
        for image, name, objects in zip(batch["images"], batch["files"], labels, strict=True)
        if objects is not None
    ]
    if not frames:
        raise WorkbenchError("no labelled frames in this batch: upload labels with the images")
    n_check = max(1, round(check_fraction * len(frames))) if len(frames) >= 4 else 0
    train_on, check = frames[: len(frames) - n_check], frames[len(frames) - n_check :]
    before = model_accuracy(None, check) if check else None
    with tempfile.TemporaryDirectory() as scratch:
        result = finetune([f for f, _ in train_on], scratch, steps=steps, progress=False)
        after = model_accuracy(result.weights, check) if check else None
        Path(out).mkdir(parents=True, exist_ok=True)
        for made in (result.weights, result.weights.with_suffix(".json")):
            shutil.copyfile(made, Path(out) / made.name)
    return {
        "labelled": len(frames),
        "trained_on": len(train_on),
        "checked_on": len(check),
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 1),
        "accuracy_before": None if before is None else round(before, 4),
        "accuracy_after": None if after is None else round(after, 4),
        "weights_sha256": hashlib.sha256(
            (Path(out) / result.weights.name).read_bytes()
        ).hexdigest(),
    }


def labelled_frames(labels_dir: str | Path, images_dir: str | Path) -> list[LabelledFrame]:
    """The frames of every label file in `labels_dir`, read from `images_dir`.

    Raises
    ------
    WorkbenchError
        Without label files, for a malformed one, or when a labelled image is missing
        or unreadable (one line naming the file).
    """
    annotations = load_annotations(labels_dir)
    if not annotations:
        raise WorkbenchError(f"{labels_dir}: no label files (<stem>{LABELS_SUFFIX}) to learn from")
    frames = []
    for annotation in annotations:
        path = Path(images_dir) / annotation.image
        if not path.is_file():
            raise WorkbenchError(
                f"{path}: labelled image not found (labels name {annotation.image})"
            )
        image = load_image(path)
        frames.append(
            LabelledFrame(
                annotation.image, image.pixels, annotation.pixel_size_um, list(annotation.objects)
            )
        )
    return frames


def truth_frames(folder: str | Path) -> list[tuple[LabelledFrame, dict]]:
    """Images of `folder` that have ``<stem>.json`` truth beside them (``workbench synth``
    writes such folders), with their perfect marks and truth.

    Raises
    ------
    WorkbenchError
        When no image in `folder` has truth beside it.
    """
    frames = []
    for path in list_images(folder):
        truth_path = path.with_suffix(".json")
        if not truth_path.is_file():
            continue
        try:
            truth = json.loads(truth_path.read_text())
            pixel_size_um = float(truth["pixel_size_um"])
        except (ValueError, KeyError, TypeError):
            raise WorkbenchError(
                f"{truth_path}: not a truth file (unreadable JSON or no pixel_size_um)"
            ) from None
        gray = load_image(path).pixels
        frames.append(
            (
                LabelledFrame(path.name, gray, pixel_size_um, marks_from_truth(truth)),
                truth,
            )
        )
    if not frames:
        raise WorkbenchError(f"{folder}: no images with <stem>.json truth beside them to check on")
    return frames


def _working_xy(record: dict, scale: float) -> tuple[float, float]:
    x, y = record["centroid_xy"]
    # Pixel centres sit at integer coordinates on both grids.
    return (x + 0.5) / scale - 0.5, (y + 0.5) / scale - 0.5


@dataclass(frozen=True)
class FinetuneGain:
    """Mean counting accuracy on the test frames before and after fine-tuning."""

    labelled: int
    test: int
    before: float
    after: float
    seconds: float


def heldout_frames(
    camera: str, pixel_size_um: float, seeds: range, density_per_mm2: float | None = None
) -> list[tuple[LabelledFrame, dict]]:
    """Frames of the held-out renderer with their perfect marks and their truth."""
    frames = []
    for seed in seeds:
        sample = render_heldout(
            camera, seed=seed, density_per_mm2=density_per_mm2, pixel_size_um=pixel_size_um
        )
        gray = to_gray_float(sample.image)
        name = f"heldout_{camera}_s{seed}"
        frames.append(
            (
                LabelledFrame(name, gray, pixel_size_um, marks_from_truth(sample.truth)),
                sample.truth,
            )
        )
    return frames


def model_accuracy(weights: str | Path | None, frames: list[tuple[LabelledFrame, dict]]) -> float:
    """Mean counting accuracy of the learned model with `weights` on `frames`."""
    counter = load_counter(weights)
    scores = []
    for frame, truth in frames:
        camera = get_camera(truth["camera"], frame.pixel_size_um)
        report = report_from_detections(
            detect_with_counter(counter, frame.gray, camera), camera, "model", 0.0
        )
        scores.append(counting_accuracy(report.count, truth["count"]))
    return float(np.mean(scores))


def measure_gain(
    frames: list[tuple[LabelledFrame, dict]],
    n_labelled: int,
    out: str | Path,
    steps: int = FINETUNE_STEPS,
    progress: bool = False,
) -> FinetuneGain:
    """Fine-tune on the first `n_labelled` frames; score the model on the rest, before and after.

    The marks are the frames' truth (a careful annotator); the test frames are never
    used for training.
    """
    started = time.perf_counter()
    labelled, test = frames[:n_labelled], frames[n_labelled:]
    before = model_accuracy(None, test)
    result = finetune([f for f, _ in labelled], out, steps=steps, progress=progress)
    after = model_accuracy(result.weights, test)
    return FinetuneGain(n_labelled, len(test), before, after, time.perf_counter() - started)
