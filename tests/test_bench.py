"""workbench.lab.bench on small frames (the full benchmark is `workbench bench`)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np

from workbench.lab.bench import bench_plan, format_markdown, run_bench, write_results
from workbench.lab.heldout import render_heldout
from workbench.synth import synthesize


def _small(camera: str, seed: int, density: float, pixel_size_um: float):
    # Small legacy-like frames at 2 µm/px keep the test fast, whatever the cell's pixel size.
    return synthesize("legacy", seed=seed, density_per_mm2=density, shape=(320, 400))


def _small_heldout(camera: str, seed: int, density: float, pixel_size_um: float):
    return render_heldout("legacy", seed=seed, density_per_mm2=density, shape=(320, 400))


def test_quick_bench_on_small_frames(tmp_path):
    results = run_bench(quick=True, methods=["classical", "otsu", "auto"],
                        renderers={"synth": _small, "heldout": _small_heldout}, progress=False)
    cells = list(bench_plan(quick=True))
    assert len(cells) == 11
    for renderer in ("synth", "heldout"):
        for method in ("classical", "otsu", "auto"):
            for camera, pixel_size, density, count in cells:
                by_density = results["cells"][renderer][method][camera][f"{pixel_size:g}"]
                summary = by_density[f"{density:g}"]
                assert summary["images"] == count
                assert 0.0 <= summary["accuracy"] <= 1.0
                assert summary["seconds_per_image"] > 0
            assert results["by_renderer"][renderer][method]["legacy"]["images"] == 9
    classical = results["overall"]["classical"]["legacy"]["accuracy"]
    otsu = results["overall"]["otsu"]["legacy"]["accuracy"]
    assert classical > otsu  # the pipeline beats the ImageJ-style baseline
    assert set(results["denoising"]) == {"noisy", "bilateral", "nlm", "gaussian"}
    assert results["denoising"]["bilateral"]["psnr_db"] > results["denoising"]["noisy"]["psnr_db"]

    markdown = format_markdown(results)
    assert "| synth | classical | legacy | 2 | 10 |" in markdown
    assert "| heldout | otsu | hires | 0.3 | all |" in markdown
    assert "| auto | legacy | 0.8 | 3 |" in markdown
    assert "| heldout | classical | legacy | 3 | all |" in markdown
    json_path, md_path = write_results(results, tmp_path / "bench")
    assert json.loads(json_path.read_text())["chosen_denoiser"] == "bilateral"
    assert md_path.read_text().startswith("# Crystal counting benchmark")


def test_bench_cli_rejects_unknown_method(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "workbench", "bench", "--method", "magic", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "unknown method 'magic'" in result.stderr


def test_blank_frames_score_as_nothing_found():
    # A frame the quality gate refuses has no count; the bench scores it as nothing found.
    def blank(camera: str, seed: int, density: float, pixel_size_um: float):
        sample = _small(camera, seed, density, pixel_size_um)
        return dataclasses.replace(sample, image=np.full_like(sample.image, 128))

    results = run_bench(quick=True, methods=["classical"], renderers={"blank": blank},
                        progress=False)
    assert results["by_renderer"]["blank"]["classical"]["legacy"]["accuracy"] == 0.0
    assert sum(results["refused"].values()) == len(list(bench_plan(quick=True)))  # all refused
