"""Synthetic micrographs: truth agrees with its own label image, determinism, profiles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.synth import generate_set, synthesize, write_sample
from workbench.synth._imperfections import KINDS

CONTRACT_KEYS = {
    "image", "camera", "pixel_size_um", "width", "height", "seed", "density_per_mm2", "count",
    "particles", "agglomerates", "artifacts_removed", "artifacts", "csd_um", "method",
    "seconds", "objects",
}  # fmt: skip
EVERY_KIND = dict.fromkeys(KINDS, 2)


@pytest.fixture(scope="module")
def legacy():
    return synthesize("legacy", seed=3, density_per_mm2=30.0)


@pytest.fixture(scope="module")
def hires():
    return synthesize("hires", seed=3, density_per_mm2=20.0)


@pytest.fixture(scope="module")
def cluttered():
    """A small frame with every kind of imperfection forced."""
    return synthesize(
        "legacy", seed=5, density_per_mm2=40.0, shape=(400, 500), imperfections=EVERY_KIND
    )


def check_truth_against_labels(sample):
    truth, labels = sample.truth, sample.labels
    by_id = {o["id"]: o for o in truth["objects"]}
    assert len(by_id) == len(truth["objects"]), "ids are unique"
    crystals = [o for o in truth["objects"] if o["kind"] == "crystal"]
    groups = [o for o in truth["objects"] if o["kind"] == "agglomerate"]
    assert truth["count"] == len(crystals) > 0
    assert truth["agglomerates"] == len(groups)
    singles = sum(c["agglomerate"] is None for c in crystals)
    assert truth["particles"] == singles + len(groups)
    for group in groups:
        assert len(group["members"]) >= 2
        for member in group["members"]:
            assert by_id[member]["kind"] == "crystal"
            assert by_id[member]["agglomerate"] == group["id"]
    for crystal in crystals:
        if crystal["agglomerate"] is not None:
            assert crystal["id"] in by_id[crystal["agglomerate"]]["members"]
    # Every crystal is visible at (next to) its centroid in the label image.
    for crystal in crystals:
        x, y = np.rint(crystal["centroid_xy"]).astype(int)
        assert np.any(labels[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] == crystal["id"])
    ids = set(np.unique(labels)) - {0}
    assert ids <= set(by_id), "every labelled id is in the truth"
    assert not any(by_id[i]["kind"] == "agglomerate" for i in ids)
    artifacts = [o for o in truth["objects"] if o["kind"] in KINDS]
    assert truth["artifacts_removed"] == len(artifacts) == sum(truth["artifacts"].values())
    for kind in KINDS:
        assert truth["artifacts"][kind] == sum(o["kind"] == kind for o in artifacts)
    for o in truth["objects"]:
        x, y = o["centroid_xy"]
        assert 0 <= x < truth["width"] and 0 <= y < truth["height"]
        assert o["diameter_um"] > 0
    diameters = [c["diameter_um"] for c in crystals]
    assert truth["csd_um"]["d10"] <= truth["csd_um"]["d50"] <= truth["csd_um"]["d90"]
    assert truth["csd_um"]["d50"] == pytest.approx(np.percentile(diameters, 50), abs=0.01)


def test_truth_matches_labels_legacy(legacy):
    check_truth_against_labels(legacy)
    assert legacy.truth["agglomerates"] > 0


def test_truth_matches_labels_hires(hires):
    check_truth_against_labels(hires)


def test_truth_matches_labels_with_every_imperfection(cluttered):
    check_truth_against_labels(cluttered)
    assert cluttered.truth["artifacts"] == EVERY_KIND
    labelled = set(np.unique(cluttered.labels))
    for o in cluttered.truth["objects"]:
        if o["kind"] in KINDS:
            assert o["id"] in labelled or o["kind"] == "scratch"


def test_crystals_do_not_touch_unless_agglomerated(legacy):
    """Distinct particles keep a gap: their dilated label regions never meet."""
    import cv2

    owner = np.zeros(legacy.labels.max() + 1, np.int32)  # label id -> particle id
    for o in legacy.truth["objects"]:
        if o["id"] < owner.size:
            owner[o["id"]] = o.get("agglomerate") or o["id"]
    particle = owner[legacy.labels]
    grown = cv2.dilate(particle.astype(np.float32), np.ones((3, 3), np.uint8))
    touching = (particle > 0) & (grown != particle)
    assert not np.any(touching)


def test_profiles_shape_dtype_and_pixel_size(legacy, hires):
    assert legacy.image.shape == (1024, 1280) and legacy.image.dtype == np.uint8
    assert hires.image.shape == (3000, 4000, 3) and hires.image.dtype == np.uint8
    for sample, ps in ((legacy, 2.0), (hires, 0.64)):
        assert sample.clean.shape == sample.image.shape and sample.clean.dtype == np.float32
        assert sample.illumination.shape == sample.labels.shape == sample.image.shape[:2]
        assert sample.labels.dtype == np.int32
        assert sample.truth["pixel_size_um"] == ps
        assert (sample.truth["height"], sample.truth["width"]) == sample.image.shape[:2]
    red, green, blue = (hires.image[..., c].astype(float).mean() for c in range(3))
    assert red > green > blue, "hires has a warm tint"


def test_background_level_and_uneven_illumination(legacy):
    light = legacy.illumination
    assert 0.65 < light.mean() < 0.9
    assert 0.08 < (light.max() - light.min()) / light.mean() < 0.3


def test_pixel_size_and_shape_overrides_are_recorded():
    sample = synthesize("legacy", seed=1, pixel_size_um=1.0, shape=(200, 300))
    assert sample.truth["pixel_size_um"] == 1.0
    assert sample.image.shape == (200, 300)
    assert (sample.truth["width"], sample.truth["height"]) == (300, 200)


def test_same_seed_same_bytes_other_seed_differs():
    a = synthesize("hires", seed=11, shape=(300, 400))
    b = synthesize("hires", seed=11, shape=(300, 400))
    c = synthesize("hires", seed=12, shape=(300, 400))
    for name in ("image", "clean", "illumination", "labels"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    strip = lambda t: {k: v for k, v in t.items() if k != "seconds"}  # noqa: E731
    assert strip(a.truth) == strip(b.truth)
    assert not np.array_equal(a.image, c.image)
    assert strip(a.truth) != strip(c.truth)


def test_clean_has_no_noise_and_no_imperfections(cluttered):
    noisy = cluttered.image.astype(np.float32) / 255
    background = cluttered.labels == 0
    # Same scene without noise: the residual is noise, far above the clean frame's own wiggle.
    residual = noisy - cluttered.clean
    assert residual[background].std() > 0.005
    smooth = np.abs(np.diff(cluttered.clean, axis=1))[:, :-1][background[:, 1:-1]]
    assert np.median(smooth) < 0.1 * np.median(np.abs(np.diff(noisy, axis=1)))
    # Imperfections are missing from clean: dark bubbles and debris show only in the image.
    for o in cluttered.truth["objects"]:
        if o["kind"] in ("bubble", "debris"):
            where = cluttered.labels == o["id"]
            assert noisy[where].mean() < cluttered.clean[where].mean() - 0.05


def test_clean_matches_illumination_on_background(legacy):
    background = legacy.labels == 0
    ratio = legacy.clean[background] / legacy.illumination[background]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.01)


def test_no_imperfections_when_disabled():
    sample = synthesize("legacy", seed=2, shape=(300, 300), imperfections=False)
    assert sample.truth["artifacts_removed"] == 0
    assert set(np.unique(sample.labels)) - {0} <= {o["id"] for o in sample.truth["objects"]}


def test_density_scales_count_and_none_draws_one():
    sparse = synthesize("legacy", seed=4, density_per_mm2=10.0, imperfections=False)
    dense = synthesize("legacy", seed=4, density_per_mm2=40.0, imperfections=False)
    assert sparse.truth["count"] == pytest.approx(10.0 * 5.24288, abs=2)
    assert dense.truth["count"] > 3 * sparse.truth["count"]
    drawn = synthesize("legacy", seed=4, density_per_mm2=None, shape=(256, 256))
    assert 8 <= drawn.truth["density_per_mm2"] <= 40


def test_jpeg_changes_pixels_but_not_truth():
    plain = synthesize("legacy", seed=6, shape=(256, 256))
    jpeg = synthesize("legacy", seed=6, shape=(256, 256), jpeg_quality=30)
    assert not np.array_equal(plain.image, jpeg.image)
    assert np.abs(plain.image.astype(int) - jpeg.image.astype(int)).mean() < 6
    assert plain.truth["objects"] == jpeg.truth["objects"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"camera": "webcam"},
        {"density_per_mm2": 0.0},
        {"density_per_mm2": -1.0},
        {"seed": -1},
        {"jpeg_quality": 101},
        {"pixel_size_um": 0.0},
        {"shape": (8, 8)},
        {"imperfections": {"ghost": 1}},
        {"imperfections": {"bubble": -1}},
    ],
)
def test_bad_arguments_raise_workbench_error(kwargs):
    with pytest.raises(WorkbenchError):
        synthesize(**{"shape": (64, 64), **kwargs})


def test_write_sample_and_generate_set(tmp_path, cluttered):
    png = write_sample(cluttered, tmp_path / "one", "tile", labels=True)
    import cv2

    assert np.array_equal(cv2.imread(str(png), cv2.IMREAD_UNCHANGED), cluttered.image)
    stored = cv2.imread(str(tmp_path / "one" / "tile.labels.png"), cv2.IMREAD_UNCHANGED)
    assert stored.dtype == np.uint16 and np.array_equal(stored, cluttered.labels)
    truth = json.loads(png.with_suffix(".json").read_text())
    assert set(truth) == CONTRACT_KEYS and truth["image"] == "tile.png"
    assert not [p for p in (tmp_path / "one").iterdir() if p.name.startswith(".")]

    paths = generate_set(tmp_path / "set", "legacy", n=2, seed=7, progress=False)
    assert [p.name for p in paths] == ["legacy_s7_0000.png", "legacy_s7_0001.png"]
    first = json.loads(paths[0].with_suffix(".json").read_text())
    again = synthesize("legacy", first["seed"], first["density_per_mm2"])
    assert np.array_equal(cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED), again.image)
    with pytest.raises(WorkbenchError):
        generate_set(tmp_path / "none", n=0, progress=False)
