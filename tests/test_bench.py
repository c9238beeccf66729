"""workbench.lab.bench on small frames (the full benchmark is `workbench bench`)."""

from __future__ import annotations

import json
import subprocess
import sys

from workbench.lab.bench import bench_plan, format_markdown, run_bench, write_results
from workbench.synth import synthesize


def _small(camera: str, seed: int, density: float):
    # Small legacy-like frames keep the test fast; both "cameras" share the pixel size.
    return synthesize("legacy", seed=seed, density_per_mm2=density, shape=(320, 400))


def test_quick_bench_on_small_frames(tmp_path):
    results = run_bench(quick=True, methods=["classical", "otsu"], synthesize=_small,
                        progress=False)
    cells = list(bench_plan(quick=True))
    assert len(cells) == 6
    for method in ("classical", "otsu"):
        for camera, density, count in cells:
            summary = results["methods"][method][camera][f"{density:g}"]
            assert summary["images"] == count
            assert 0.0 <= summary["accuracy"] <= 1.0
            assert summary["seconds_per_image"] > 0
    classical = results["overall"]["classical"]["legacy"]["accuracy"]
    otsu = results["overall"]["otsu"]["legacy"]["accuracy"]
    assert classical > otsu  # the pipeline beats the ImageJ-style baseline
    assert set(results["denoising"]) == {"noisy", "bilateral", "nlm", "gaussian"}
    assert results["denoising"]["bilateral"]["psnr_db"] > results["denoising"]["noisy"]["psnr_db"]

    markdown = format_markdown(results)
    assert "| classical | legacy | 10 |" in markdown and "| otsu | hires | all |" in markdown
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
