"""The learned counter: network shapes, tiling, weight checks, an accuracy floor, training."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from workbench.camera import get_camera
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.imaging._model_network import CLASSES, CounterNet
from workbench.imaging.io import to_gray_float
from workbench.imaging.model import (
    SHIPPED_WEIGHTS,
    detections_from_maps,
    load_counter,
    predict_maps,
    sidecar_path,
)
from workbench.imaging.pipeline import analyze
from workbench.lab.evaluate import counting_accuracy
from workbench.lab.train import CHECKPOINT_NAME, WEIGHTS_NAME
from workbench.synth import synthesize


@pytest.fixture(scope="module")
def counter():
    return load_counter()


def test_forward_pass_gives_a_heat_map_and_class_logits_per_pixel():
    net = CounterNet().eval()
    with torch.no_grad():
        out = net(torch.zeros(2, 1, 40, 56))
    assert out.shape == (2, 1 + len(CLASSES), 40, 56)


def test_predict_maps_returns_working_scale_maps(counter):
    gray = np.full((300, 450), 0.8, np.float32)  # hires pixels: shrinks 3.125x
    maps = predict_maps(counter, gray, pixel_size_um=0.64)
    assert maps.heat.shape == (96, 144)
    assert maps.probabilities.shape == (len(CLASSES), 96, 144)
    np.testing.assert_allclose(maps.probabilities.sum(axis=0), 1.0, atol=1e-4)
    assert maps.scale == pytest.approx(3.125)


def test_tiles_count_the_same_as_one_pass(counter):
    sample = synthesize("legacy", seed=3, density_per_mm2=40.0, shape=(320, 480))
    gray = to_gray_float(sample.image)
    whole = predict_maps(counter, gray, 2.0, tile=512, overlap=128)
    tiled = predict_maps(counter, gray, 2.0, tile=256, overlap=128)
    np.testing.assert_allclose(tiled.heat, whole.heat, atol=1e-3)
    count_whole = int(detections_from_maps(whole).members.sum())
    assert count_whole == int(detections_from_maps(tiled).members.sum())
    assert abs(count_whole - sample.truth["count"]) <= 2


def test_corrupt_weights_are_refused_naming_the_file(tmp_path):
    copy = tmp_path / "counter.pt"
    shutil.copy(SHIPPED_WEIGHTS, copy)
    shutil.copy(sidecar_path(SHIPPED_WEIGHTS), sidecar_path(copy))
    assert load_counter(copy).sha256 == json.loads(sidecar_path(copy).read_text())["sha256"]
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(WorkbenchError, match="corrupt") as error:
        load_counter(copy)
    assert str(copy) in str(error.value)


def test_missing_weights_or_checksum_give_a_clear_error(tmp_path):
    with pytest.raises(WorkbenchError, match="not found"):
        load_counter(tmp_path / "nothing.pt")
    lone = tmp_path / "lone.pt"
    shutil.copy(SHIPPED_WEIGHTS, lone)
    with pytest.raises(WorkbenchError, match="checksum"):
        load_counter(lone)


def test_shipped_weights_count_hires_crops_accurately():
    accuracies = []
    for seed, density in ((11, 25.0), (12, 50.0)):
        sample = synthesize("hires", seed=seed, density_per_mm2=density, shape=(1500, 1500))
        report = analyze(sample.image, camera="hires", method="model")
        accuracies.append(counting_accuracy(report.count, sample.truth["count"]))
    assert np.mean(accuracies) >= 0.95, accuracies


def test_auto_method_uses_the_model_on_hires():
    sample = synthesize("hires", seed=2, density_per_mm2=20.0, shape=(600, 800))
    assert analyze(sample.image, camera=get_camera("hires"), method="auto").method == "model"


@pytest.mark.slow
def test_train_command_writes_a_checkpoint_and_resumes_from_it(tmp_path):
    common = ["--pool", "2", "--batch", "2", "--val-images", "0", "--out", str(tmp_path)]
    main(["train", "--steps", "2", *common])
    checkpoint = tmp_path / CHECKPOINT_NAME
    assert torch.load(checkpoint, weights_only=False)["step"] == 2
    load_counter(tmp_path / WEIGHTS_NAME)  # exported weights pass their own hash check
    main(["train", "--steps", "4", "--resume", str(checkpoint), *common])
    state = torch.load(checkpoint, weights_only=False)
    assert state["step"] == 4
    steps_logged = [json.loads(line)["step"] for line in (tmp_path / "train_log.jsonl").open()]
    assert steps_logged[-1] == 4


def test_bfloat16_counts_as_float32_and_unknown_precisions_are_refused():
    # bfloat16 is what `precision="auto"` picks on CPUs that compute it natively; it
    # must give the float count (emulated here where the CPU lacks it: slower, same).
    sample = synthesize("legacy", seed=5, density_per_mm2=40.0, shape=(320, 480))
    gray = to_gray_float(sample.image)
    counts = {
        precision: int(
            detections_from_maps(
                predict_maps(load_counter(precision=precision), gray, 2.0)
            ).members.sum()
        )
        for precision in ("float32", "bfloat16")
    }
    assert abs(counts["bfloat16"] - counts["float32"]) <= 1, counts
    with pytest.raises(WorkbenchError, match="precision 'half'"):
        load_counter(precision="half")
