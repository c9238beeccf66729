"""workbench.imaging.pipeline: accuracy floors on synthetic frames, inputs, the contract."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.imaging.classical_params import DEFAULT_PARAMS
from workbench.imaging.denoise import denoise, flatten_illumination, remove_imperfections
from workbench.imaging.io import load_image
from workbench.imaging.measure import agglomeration_pct, csd_histogram, primary_diameters_um
from workbench.imaging.pipeline import METHODS, analyze, guess_camera, resolve_method
from workbench.imaging.segment import (
    detect_crystals,
    near_removed_lines,
    sharp_particle_features,
)
from workbench.lab.evaluate import counting_accuracy, score_image, summarize
from workbench.synth import synthesize

CONTRACT_KEYS = {"image", "count", "particles", "agglomerates", "artifacts_removed", "csd_um",
                 "method", "seconds", "uncertainty", "quality"}
# Floors, not targets: the benchmark measures the targets (>= 98.5 %) on a larger set.
# These catch a regression on three seeded frames per density.
ACCURACY_FLOOR = 0.97


@pytest.mark.parametrize("density", [10.0, 25.0, 50.0])
def test_accuracy_floor_per_density(density):
    scores = []
    for seed in (401, 402, 403):
        sample = synthesize("legacy", seed=seed, density_per_mm2=density)
        report = analyze(sample.image, "legacy")
        scores.append(score_image(report, sample.truth, sample.labels))
    summary = summarize(scores)
    assert summary["accuracy"] >= ACCURACY_FLOOR, summary
    assert summary["detection_f1"] >= 0.97, summary
    assert summary["imperfections_pct"] <= 1.0, summary
    assert summary["d50_error_pct"] <= 8.0, summary


def test_imperfections_are_not_counted():
    sample = synthesize(
        "legacy", seed=77, density_per_mm2=15,
        imperfections={"bubble": 4, "debris": 6, "fibre": 4, "scratch": 2, "dust": 20},
    )
    report = analyze(sample.image, "legacy")
    score = score_image(report, sample.truth, sample.labels)
    assert score.imperfection_crystals <= 1
    assert abs(report.count - sample.truth["count"]) <= 0.05 * sample.truth["count"]
    assert report.artifacts_removed >= 10
    assert report.removed["bubble"] >= 3


def test_input_types_give_the_same_count(tmp_path):
    sample = synthesize("legacy", seed=9, density_per_mm2=20, shape=(512, 640))
    as_uint8 = analyze(sample.image).count
    assert analyze(sample.image.astype(np.uint16) * 257).count == as_uint8
    assert analyze(sample.image.astype(np.float32) / 255).count == as_uint8
    assert analyze(np.dstack([sample.image] * 3)).count == as_uint8
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), sample.image)
    report = analyze(load_image(path))
    assert report.count == as_uint8 and report.image == "frame.png"


def test_report_contract_and_consistency():
    sample = synthesize("legacy", seed=12, density_per_mm2=30, shape=(512, 640))
    report = analyze(sample.image, "legacy")
    contract = report.to_json()
    assert set(contract) == CONTRACT_KEYS
    assert set(contract["csd_um"]) == {"d10", "d50", "d90"}
    assert contract["csd_um"]["d10"] <= contract["csd_um"]["d50"] <= contract["csd_um"]["d90"]
    particles = [o for o in report.objects if o["kind"] in ("crystal", "agglomerate")]
    assert len(particles) == report.particles
    assert sum(o["members"] for o in particles) == report.count
    assert sum(o["kind"] == "agglomerate" for o in particles) == report.agglomerates
    assert sum(report.removed.values()) == report.artifacts_removed
    assert 0.0 <= report.agglomeration_pct <= 100.0


def test_hires_frames_are_counted_at_working_scale():
    # A quarter of a 12 MP frame keeps the test fast; the pixel size is the hires one.
    sample = synthesize("hires", seed=21, density_per_mm2=25, shape=(1500, 2000))
    assert guess_camera(sample.image) == "legacy"  # 3 MP: too small to be called hires
    report = analyze(sample.image, "hires")
    truth = sample.truth["count"]
    assert abs(report.count - truth) <= 0.08 * truth
    assert report.csd_um["d50"] == pytest.approx(sample.truth["csd_um"]["d50"], rel=0.12)


def test_coarse_frames_are_enlarged_to_working_scale(monkeypatch):
    # At 3 µm/px, rims and faces are 1.5x smaller in pixels than the sizes the method
    # was tuned on; counted as they are, agglomerates are over-split.
    samples = [
        synthesize("legacy", seed=seed, density_per_mm2=25, shape=(512, 640), pixel_size_um=3.0)
        for seed in range(1, 9)
    ]

    def accuracy_and_bias():
        counts = [analyze(s.image, "legacy", 3.0, method="classical").count for s in samples]
        truths = [s.truth["count"] for s in samples]
        accuracy = np.mean([counting_accuracy(c, t) for c, t in zip(counts, truths, strict=True)])
        return accuracy, (sum(counts) - sum(truths)) / sum(truths)

    accuracy, bias = accuracy_and_bias()
    assert accuracy >= 0.96 and abs(bias) <= 0.03
    monkeypatch.setattr("workbench.imaging.working_scale.MAX_ENLARGED_PIXELS", 1)  # no enlarging
    accuracy, bias = accuracy_and_bias()
    assert accuracy < 0.96 and bias > 0.03


def test_methods_and_auto():
    legacy = SimpleNamespace(name="legacy")
    hires = SimpleNamespace(name="hires")
    assert resolve_method("auto", legacy) == "classical"
    expected = "model" if "model" in METHODS else "classical"
    assert resolve_method("auto", hires) == expected
    with pytest.raises(WorkbenchError, match="unknown method"):
        analyze(np.zeros((100, 100), np.uint8), method="magic")
    assert guess_camera(np.zeros((3000, 4000, 3), np.uint8)) == "hires"


@pytest.mark.parametrize("method", ["otsu", "blob_log"])
def test_baselines_run_and_count_something(method):
    sample = synthesize("legacy", seed=3, density_per_mm2=25, shape=(512, 640))
    report = analyze(sample.image, "legacy", method=method)
    assert report.method == method and report.count > 0
    assert report.agglomerates == 0  # baselines call every particle one crystal


def test_perfect_prediction_scores_perfectly():
    sample = synthesize("legacy", seed=4, density_per_mm2=20, shape=(512, 640))
    truth = sample.truth
    by_id = {o["id"]: o for o in truth["objects"]}
    particles = [
        {"kind": o["kind"], "centroid_xy": o["centroid_xy"],
         "members": len(o["members"]) if o["kind"] == "agglomerate" else 1}
        for o in truth["objects"]
        if o["kind"] == "agglomerate" or (o["kind"] == "crystal" and o["agglomerate"] is None)
    ]
    assert sum(p["members"] for p in particles) == truth["count"]
    report = SimpleNamespace(count=truth["count"], csd_um=truth["csd_um"], seconds=0.0,
                             objects=particles)
    score = score_image(report, truth, sample.labels)
    assert score.accuracy == 1.0 and score.fp == 0 and score.fn == 0
    assert score.agg_fp == 0 and score.agg_fn == 0 and score.imperfection_crystals == 0
    assert len(by_id) == len(truth["objects"])


def test_measure_helpers():
    diameters = primary_diameters_um(np.array([100.0, 400.0]), np.array([1, 4]), 2.0)
    assert diameters.size == 5
    assert np.allclose(diameters, diameters[0])
    counts, edges = csd_histogram(diameters, bins=4)
    assert counts.sum() == 5 and edges.size == 5
    assert agglomeration_pct(np.array([1, 4])) == 80.0


def _crystal_and_blurred_ring(
    width: int, crystal_x: int, ring_xy: tuple[int, int], radius: int, thickness: int
) -> tuple[np.ndarray, np.ndarray]:
    """A 36 px crystal outline on a 0.8 background, and a blurred ring (peak about 1)."""
    image = np.full((256, width), 0.8, np.float32)
    crystal = np.array([[0, 110], [36, 112], [34, 146], [-2, 144]]) + [crystal_x, 0]
    cv2.polylines(image, [crystal], True, 0.45, 1)
    ring = np.zeros_like(image)
    cv2.circle(ring, ring_xy, radius, 1.0, thickness)
    return image, cv2.GaussianBlur(ring, (0, 0), 2.0)


def test_dust_on_the_condenser_is_not_a_faint_crystal():
    # Dust on the optics, far out of focus, shows as a faint smooth ring, 4 % dark and
    # as large as a crystal; a crystal out of focus is darker (5.5 % and more on the
    # training renderer). With the old 3 % floor the ring was counted.
    image, ring = _crystal_and_blurred_ring(384, 60, (270, 128), 26, 6)
    image *= 1.0 - 0.04 * ring
    report = analyze(image, "legacy", method="classical")
    assert report.count == 1, report
    old_floor = replace(DEFAULT_PARAMS, faint_crystal_min_darkness=0.03)
    assert detect_crystals(image, get_camera("legacy"), old_floor).members.size == 2


def test_a_faint_ring_around_a_crystal_is_its_halo_not_more_crystals():
    # A crystal out of the focal plane shows a faint defocus ring around its rim; the
    # ring's centre lies inside the crystal. Counted as a blurred crystal of its own
    # before (5 crystals from the ring's area), it is now part of the crystal.
    image, ring = _crystal_and_blurred_ring(256, 110, (127, 128), 34, 4)
    image -= 0.12 * ring
    report = analyze(image, "legacy", method="classical")
    assert report.count == 1 and report.particles == 1, report


def test_grey_debris_is_not_a_blurred_crystal():
    # Beside a sharp crystal: a lobed grey particle (35 % dark, flat, soft edges) and a
    # crystal out of focus (a blurred outline, darkest along its rim). The grey particle
    # is as dark in its middle as anywhere: debris. Without the rule it was counted as
    # three blurred crystals from its area.
    image = np.full((256, 384), 0.8, np.float32)
    cv2.polylines(image, [np.array([[60, 110], [96, 112], [94, 146], [58, 144]])], True, 0.45, 1)
    grey, blurred = np.zeros_like(image), np.zeros_like(image)
    for centre in ((200, 120), (214, 132), (204, 142)):
        cv2.circle(grey, centre, 13, 1.0, -1)
    cv2.rectangle(blurred, (290, 110), (326, 140), 1.0, 3)
    image *= 1.0 - 0.35 * cv2.GaussianBlur(grey, (0, 0), 2.0)
    image *= 1.0 - 0.3 * cv2.GaussianBlur(blurred, (0, 0), 3.0)
    report = analyze(image, "legacy", method="classical")
    assert (report.count, report.removed["debris"]) == (2, 1), report
    without = replace(DEFAULT_PARAMS, debris_centre_share=2.0)
    assert detect_crystals(image, get_camera("legacy"), without).members.sum() == 5


def test_a_lens_between_thick_rims_is_no_crystal_of_its_own():
    # Two crystals overlap at a corner; their rims are 4 px (8 µm) wide, as thick
    # crystals' rims are on the held-out renderer. The overlap is a lens between two
    # larger faces, but those lay beyond the fixed 4 µm reach across a rim: the lens
    # was counted as a third crystal. The reach now grows with the rims' width.
    image = np.full((200, 260), 0.8, np.float32)
    cv2.rectangle(image, (60, 60), (100, 100), 0.55, 4)
    cv2.rectangle(image, (88, 88), (128, 128), 0.55, 4)
    image = cv2.GaussianBlur(image, (0, 0), 0.7)
    report = analyze(image, "legacy", method="classical")
    assert (report.count, report.particles) == (2, 1), report
    fixed_reach = replace(DEFAULT_PARAMS, thin_rim_px=100.0)
    assert detect_crystals(image, get_camera("legacy"), fixed_reach).members.sum() == 3


def test_a_fibre_across_a_crystal_leaves_it_one_crystal():
    # The fibre is painted over, but where it crossed the crystal's outline it leaves
    # dents: read as an agglomerate, the crystal split into three along the fibre.
    image = np.full((400, 500), 0.8, np.float32)
    crystal = np.array([[200, 170], [260, 160], [270, 220], [210, 232]])
    cv2.polylines(image, [crystal], True, 0.45, 2)
    fibre = np.array([[40, 300], [150, 240], [330, 150], [460, 60]])
    cv2.polylines(image, [fibre], False, 0.6, 5)
    detections = detect_crystals(image, get_camera("legacy"))
    assert detections.members.tolist() == [1]
    assert "fibre" in {a.kind for a in detections.artifacts}
    # The same particle with the fibre's surroundings not passed: its dents count.
    removal = remove_imperfections(denoise(flatten_illumination(image)[0]), 2.0)
    darkness = 1.0 - removal.cleaned
    near = near_removed_lines(removal, darkness.shape, 0.5)
    assert sharp_particle_features(darkness, 0.5, near)["concavities"].tolist() == [0]
    assert sharp_particle_features(darkness, 0.5, None)["concavities"][0] > 0
