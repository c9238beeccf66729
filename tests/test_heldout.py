"""The held-out renderer: truth that matches its pixels, seeds, pixel sizes, independence from
synth, the files it writes, and an accuracy floor of the classical method on its frames."""

from __future__ import annotations

import ast
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from workbench.camera import get_camera
from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.imaging.classical_params import DEFAULT_PARAMS
from workbench.imaging.io import to_gray_float
from workbench.imaging.pipeline import analyze
from workbench.imaging.segment import detect_crystals
from workbench.lab.evaluate import score_image
from workbench.lab.heldout import render_heldout

HELDOUT = Path(__file__).resolve().parents[1] / "workbench" / "lab" / "heldout"
IMPERFECTIONS = {"bubble", "debris", "fibre", "scratch", "dust"}


@pytest.mark.parametrize(
    ("camera", "pixel_size_um", "shape", "density"),
    [
        ("legacy", None, (320, 400), 60.0),
        ("legacy", 3.0, (256, 320), 40.0),
        ("legacy", 0.5, (512, 640), 80.0),
        ("hires", None, (384, 512), 60.0),
    ],
)
def test_truth_matches_objects_and_labels(camera, pixel_size_um, shape, density):
    frame = render_heldout(
        camera,
        seed=11,
        density_per_mm2=density,
        pixel_size_um=pixel_size_um,
        shape=shape,
        imperfections={"bubble": 1, "debris": 2, "fibre": 1, "scratch": 1, "dust": 2},
    )
    truth, objects = frame.truth, frame.truth["objects"]
    crystals = [o for o in objects if o["kind"] == "crystal"]
    agglomerates = [o for o in objects if o["kind"] == "agglomerate"]
    singles = [o for o in crystals if o["agglomerate"] is None]
    assert truth["count"] == len(crystals) > 0
    assert truth["agglomerates"] == len(agglomerates)
    assert truth["particles"] == len(singles) + len(agglomerates)
    for group in agglomerates:
        members = [o for o in crystals if o["id"] in group["members"]]
        assert len(members) == len(group["members"]) >= 2
        assert all(o["agglomerate"] == group["id"] for o in members)
    assert sum(len(g["members"]) for g in agglomerates) + len(singles) == len(crystals)
    kinds = [o["kind"] for o in objects]
    assert truth["artifacts"] == {k: kinds.count(k) for k in IMPERFECTIONS}
    assert truth["artifacts_removed"] == sum(k in IMPERFECTIONS for k in kinds)
    # Every object but the agglomerates (their members are) shows in the label image.
    shown = set(np.unique(frame.labels).tolist()) - {0}
    assert shown == {o["id"] for o in objects if o["kind"] != "agglomerate"}
    diameters = [o["diameter_um"] for o in crystals]
    assert truth["csd_um"]["d50"] == pytest.approx(np.percentile(diameters, 50), abs=0.01)
    channels = () if camera == "legacy" else (3,)
    assert frame.image.shape == shape + channels and frame.image.dtype == np.uint8
    assert frame.labels.shape == shape and frame.clean.shape == frame.image.shape


def test_pixel_size_sets_the_scale_of_every_crystal():
    for pixel_size in (0.4, 1.0, 2.5):
        frame = render_heldout(
            "legacy",
            seed=5,
            density_per_mm2=30.0,
            pixel_size_um=pixel_size,
            shape=(400, 480),
            imperfections=False,
        )
        assert frame.truth["pixel_size_um"] == pixel_size
        area_px = np.bincount(frame.labels.ravel())
        for o in frame.truth["objects"]:
            if o["kind"] == "crystal" and o["agglomerate"] is None:
                true_area_px = np.pi * (o["diameter_um"] / 2) ** 2 / pixel_size**2
                assert area_px[o["id"]] == pytest.approx(true_area_px, rel=0.1, abs=6)
                x, y = o["centroid_xy"]
                rows, cols = np.nonzero(frame.labels == o["id"])
                assert abs(cols.mean() - x) < 1.0 and abs(rows.mean() - y) < 1.0


def test_same_seed_same_bytes_other_seed_other_frame():
    a = render_heldout("legacy", seed=3, shape=(200, 240))
    b = render_heldout("legacy", seed=3, shape=(200, 240))
    c = render_heldout("legacy", seed=4, shape=(200, 240))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.labels, b.labels)
    assert a.truth["objects"] == b.truth["objects"]
    assert not np.array_equal(a.image, c.image)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"seed": -1}, "seed"),
        ({"density_per_mm2": 0}, "density"),
        ({"jpeg_quality": 0}, "JPEG"),
        ({"camera": "webcam"}, "camera"),
    ],
)
def test_bad_arguments_raise_one_clear_error(kwargs, reason):
    with pytest.raises(WorkbenchError, match=reason):
        render_heldout(**{"shape": (64, 64), **kwargs})


def test_shares_no_rendering_code_with_synth():
    imported = set()
    for path in HELDOUT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    from_synth = {name for name in imported if name.startswith("workbench.synth")}
    assert from_synth <= {"workbench.synth.write"}  # the file writer, not the renderer


def test_synth_cli_writes_heldout_frames_with_truth(tmp_path, capsys):
    argv = [
        "synth",
        str(tmp_path),
        "--renderer",
        "heldout",
        "--n",
        "1",
        "--pixel-size-um",
        "3",
        "--density",
        "4",
    ]
    with pytest.raises(SystemExit) as done:
        main(argv)
        raise SystemExit(0)
    assert done.value.code == 0
    truth = json.loads((tmp_path / "heldout_legacy_s0_0000.json").read_text())
    assert truth["renderer"] == "heldout" and truth["pixel_size_um"] == 3.0
    assert (tmp_path / "heldout_legacy_s0_0000.png").is_file()
    assert "1 images" in capsys.readouterr().out


def test_classical_accuracy_floor_on_heldout_legacy_frames():
    # Measured 99.0 % (seeds 0-5; 97.5 % before debris had to lack a halo and a clear
    # face and elongated crystals' outlines stopped being fibres, 98.0 % before faint
    # blobs had to be dark themselves,
    # 92.4 % before debris had to be compact, 86.4 % before
    # bubbles had to be circles and open rings, short dark bars and wide fibres were told
    # apart; 80.3 % before thick-walled crystals stopped being taken for bubbles and
    # debris). Below the floor is a regression.
    accuracy = []
    for seed in range(6):
        frame = render_heldout("legacy", seed=seed, density_per_mm2=25.0, shape=(512, 640))
        report = analyze(frame.image, "legacy", method="classical")
        accuracy.append(score_image(report, frame.truth, frame.labels).accuracy)
    assert np.mean(accuracy) >= 0.98


def test_model_and_auto_floors_on_heldout_frames():
    # Shipped weights: model 74.2 % on these legacy frames, auto (the classical method
    # there) 99.0 %; auto on hires crops 98.3 % (95.0 % before the halo, hole and
    # outline rules, 91.7 % before debris had to be compact,
    # 86.7 % before the classical method's bubble, wall and fibre changes), keeping the
    # classical count on the crops where the model disagreed. Below the floors is a
    # regression.
    def mean_accuracy(camera: str, method: str, seeds: range, shape: tuple[int, int]) -> float:
        scores = []
        for seed in seeds:
            frame = render_heldout(camera, seed=seed, density_per_mm2=25.0, shape=shape)
            report = analyze(frame.image, camera, method=method)
            scores.append(score_image(report, frame.truth, frame.labels).accuracy)
        return float(np.mean(scores))

    assert mean_accuracy("legacy", "model", range(6), (512, 640)) >= 0.70
    assert mean_accuracy("hires", "auto", range(3), (1200, 1600)) >= 0.96


def test_the_blur_of_a_dark_neighbour_is_not_a_faint_crystal():
    # Held-out crystals have bright halos; smoothed, a dark rim's blur spills over them
    # past the keep-out and made faint "blobs" whose own pixels are not dark at all.
    frame = render_heldout("legacy", seed=700, density_per_mm2=25.0, shape=(512, 640))
    gray, camera = to_gray_float(frame.image), get_camera("legacy", 2.0)
    counts = {
        floor: int(
            detect_crystals(
                gray, camera, replace(DEFAULT_PARAMS, faint_crystal_min_darkness=floor)
            ).members.sum()
        )
        for floor in (0.0, DEFAULT_PARAMS.faint_crystal_min_darkness)
    }
    truth = frame.truth["count"]
    error = {floor: abs(count - truth) for floor, count in counts.items()}
    assert error[DEFAULT_PARAMS.faint_crystal_min_darkness] < error[0.0], (counts, truth)
