"""``workbench count``: the JSON contract, bad files skipped, overlays written."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from workbench.synth import synthesize, write_sample

CONTRACT_KEYS = {"image", "count", "particles", "agglomerates", "artifacts_removed", "csd_um",
                 "method", "seconds", "uncertainty", "quality"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench", "count", *args],
        capture_output=True, text=True, timeout=120,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    for seed in (1, 2):
        write_sample(synthesize("legacy", seed=seed, density_per_mm2=20), folder, f"frame{seed}")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return folder


def test_json_contract_one_object_per_image_bad_file_skipped(folder):
    result = _run(str(folder), "--json")
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        report = json.loads(line)
        assert set(report) == CONTRACT_KEYS
        assert set(report["csd_um"]) == {"d10", "d50", "d90"}
        assert isinstance(report["image"], str) and report["image"].endswith(".png")
        for key in ("count", "particles", "agglomerates", "artifacts_removed"):
            assert isinstance(report[key], int) and report[key] >= 0
        assert all(isinstance(v, float) for v in report["csd_um"].values())
        assert report["method"] == "classical"
        assert isinstance(report["seconds"], float)
        assert report["count"] >= report["particles"] >= report["agglomerates"] > 0
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "broken.png" in error_lines[0]


def test_table_and_overlay(folder, tmp_path):
    overlays = tmp_path / "overlays"
    image = folder / "frame1.png"
    result = _run(str(image), "--overlay", str(overlays), "--camera", "legacy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:4] == ["image", "count", "range", "particles"]
    assert "frame1.png" in result.stdout
    written = cv2.imread(str(overlays / "frame1.overlay.png"))
    assert written.shape == (1024, 1280, 3)
    # Coloured outlines were drawn on the gray frame.
    assert (written.std(axis=2) > 20).sum() > 1000


def test_missing_file_reported_and_exit_1(folder, tmp_path):
    result = _run(str(tmp_path / "nope.png"), str(folder / "frame2.png"), "--json")
    assert result.returncode == 1
    assert "nope.png" in result.stderr and "no such file" in result.stderr
    assert len(result.stdout.strip().splitlines()) == 1


def test_unknown_method_is_a_user_error(folder):
    result = _run(str(folder / "frame1.png"), "--method", "magic")
    assert result.returncode == 2
    assert "unknown method 'magic'" in result.stderr
    assert "Traceback" not in result.stderr
