"""`workbench finetune` end to end: label files in, fine-tuned weights out, used by count."""

import json
import subprocess
import sys

import numpy as np
import pytest

from workbench.imaging._model_decode import heat_peaks
from workbench.imaging._model_network import CLASSES
from workbench.imaging.annotations import Annotation, marks_from_truth, save_annotation
from workbench.imaging.model import load_counter
from workbench.lab.finetune import labelled_tile
from workbench.lab.heldout import render_heldout
from workbench.synth import write_sample


def _workbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """Two small held-out frames with label files (their truth, as a careful person
    would mark them) and one frame with truth to check on."""
    root = tmp_path_factory.mktemp("finetune")
    frames, labels, check = root / "frames", root / "labels", root / "check"
    for index, folder in enumerate((frames, frames, check)):
        sample = render_heldout("legacy", seed=40 + index, density_per_mm2=40.0, shape=(300, 360))
        path = write_sample(sample, folder, f"frame{index}")
        if folder is frames:
            truth = sample.truth
            save_annotation(
                Annotation(
                    path.name, "legacy", truth["pixel_size_um"], tuple(marks_from_truth(truth))
                ),
                labels,
            )
    return frames, labels, check


def test_marks_become_heat_peaks_and_unmarked_particles_background():
    sample = render_heldout("legacy", seed=7, density_per_mm2=30.0, shape=(256, 256))
    objects = marks_from_truth(sample.truth)
    tile = labelled_tile(sample.image / 255.0, 2.0, objects, load_counter())
    crystals = sum(o["kind"] == "crystal" for o in objects)
    peaks = heat_peaks(tile.heat.astype(np.float32))
    assert crystals > 0 and abs(len(peaks) - crystals) <= 1
    empty = labelled_tile(sample.image / 255.0, 2.0, [], load_counter())
    particle_classes = [CLASSES.index("crystal"), CLASSES.index("agglomerate")]
    assert float(empty.heat.max()) == 0.0
    assert not np.isin(empty.classes, particle_classes).any()


def test_finetune_writes_weights_that_count_uses(labelled, tmp_path):
    frames, labels, check = labelled
    out = tmp_path / "tuned"
    result = _workbench(
        "finetune",
        "--labels",
        str(labels),
        "--images",
        str(frames),
        "--out",
        str(out),
        "--steps",
        "4",
        "--check",
        str(check),
    )
    assert result.returncode == 0, result.stderr
    assert "fine-tuned on 2 labelled frame(s)" in result.stdout
    assert "before" in result.stdout and "after" in result.stdout
    weights = out / "counter.pt"
    assert load_counter(weights).sha256 == json.loads((out / "counter.json").read_text())["sha256"]
    counted = _workbench(
        "count", str(check), "--method", "model", "--weights", str(weights), "--json"
    )
    assert counted.returncode == 0, counted.stderr
    assert json.loads(counted.stdout.splitlines()[0])["method"] == "model"


@pytest.mark.parametrize("case", ["no labels", "missing image", "bad weights"])
def test_bad_input_is_one_line(labelled, tmp_path, case):
    frames, labels, _ = labelled
    args = {
        "no labels": ["--labels", str(tmp_path)],
        "missing image": ["--labels", str(labels), "--images", str(tmp_path)],
        "bad weights": [
            "--labels",
            str(labels),
            "--images",
            str(frames),
            "--init",
            str(tmp_path / "nothing.pt"),
        ],
    }[case]
    result = _workbench("finetune", *args, "--out", str(tmp_path / "out"), "--steps", "1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("error:")
    assert not (tmp_path / "out" / "counter.pt").exists()
