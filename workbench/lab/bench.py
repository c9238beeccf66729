"""Benchmark every counting method side by side on a fixed, seeded synthetic set.

The set is generated in memory (nothing downloaded, nothing written but the
results): both cameras, three crystal densities, every imperfection kind drawn at its
usual rate. Each method in :data:`workbench.imaging.pipeline.METHODS` (the classical
pipeline, the baselines and, once registered, the learned model) counts every image,
and :mod:`workbench.lab.evaluate` scores it. The denoisers are compared by PSNR
and SSIM against the noise-free frame.

Examples
--------
>>> from workbench.lab.bench import bench_plan
>>> [(c, d, n) for c, d, n in bench_plan(quick=True)][:2]
[('legacy', 10.0, 2), ('legacy', 25.0, 2)]
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from time import process_time

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from workbench.imaging.denoise import DEFAULT_DENOISER, DENOISERS, denoise
from workbench.imaging.io import to_gray_float
from workbench.imaging.pipeline import METHODS, analyze
from workbench.lab.evaluate import ImageScore, score_image, summarize

DENSITIES_PER_MM2 = (10.0, 25.0, 50.0)
IMAGES_PER_CELL = {"legacy": 20, "hires": 5}
QUICK_IMAGES_PER_CELL = {"legacy": 2, "hires": 1}
SEED_BASE = 7000  # disjoint from the seeds the tests and examples use


def bench_plan(quick: bool = False) -> Iterator[tuple[str, float, int]]:
    """(camera, density per mm², number of images) for every cell of the benchmark."""
    per_cell = QUICK_IMAGES_PER_CELL if quick else IMAGES_PER_CELL
    for camera in ("legacy", "hires"):
        for density in DENSITIES_PER_MM2:
            yield camera, density, per_cell[camera]


def bench_seed(camera: str, density: float, index: int) -> int:
    """Seed of image `index` of a cell: fixed, different for every image of the set.

    Examples
    --------
    >>> bench_seed("legacy", 10.0, 0), bench_seed("hires", 50.0, 2)
    (7100, 17502)
    """
    return SEED_BASE + (10000 if camera == "hires" else 0) + int(density) * 10 + index


def denoising_scores(noisy: np.ndarray, clean: np.ndarray) -> dict[str, dict[str, float]]:
    """PSNR (dB) and SSIM against `clean` of the noisy image and of each denoiser.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = np.full((64, 64), 0.8, np.float32)
    >>> noisy = clean + 0.02 * rng.standard_normal(clean.shape).astype(np.float32)
    >>> s = denoising_scores(noisy, clean)
    >>> s["bilateral"]["psnr_db"] > s["noisy"]["psnr_db"]
    True
    """
    candidates = {"noisy": noisy, **{name: denoise(noisy, name) for name in DENOISERS}}
    return {
        name: {
            "psnr_db": float(peak_signal_noise_ratio(clean, image, data_range=1.0)),
            "ssim": float(structural_similarity(clean, image, data_range=1.0)),
        }
        for name, image in candidates.items()
    }


def run_bench(
    quick: bool = False,
    methods: list[str] | None = None,
    synthesize: Callable | None = None,
    progress: bool = True,
) -> dict:
    """Count, score and time every method on the benchmark set.

    Parameters
    ----------
    quick : bool
        Two legacy and one hires image per density instead of eight and three.
    methods : list of str, optional
        Names from :data:`METHODS` (default: all of them).
    synthesize : callable, optional
        ``synthesize(camera, seed, density)`` -> sample with ``image``, ``clean``,
        ``labels`` and ``truth``; defaults to :func:`workbench.synth.synthesize`.
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    dict
        ``set`` (what was generated), ``methods`` (method -> camera -> density ->
        summary, see :func:`workbench.lab.evaluate.summarize`), ``overall``
        (method -> camera -> summary over all densities), ``denoising`` (denoiser ->
        mean PSNR/SSIM on the legacy frames) and ``chosen_denoiser``.
    """
    if synthesize is None:
        from workbench.synth import synthesize
    methods = list(METHODS) if methods is None else methods
    plan = list(bench_plan(quick))
    scores: dict[str, dict[str, dict[float, list[ImageScore]]]] = {
        m: {c: {} for c, _, _ in plan} for m in methods
    }
    denoising: dict[str, dict[str, list[float]]] = {}
    total = sum(n for _, _, n in plan)
    with tqdm(
        total=total, desc="bench", unit="image", file=sys.stderr, disable=not progress
    ) as bar:
        for camera, density, count in plan:
            for index in range(count):
                sample = synthesize(camera, bench_seed(camera, density, index), density)
                for method in methods:
                    started = process_time()
                    report = analyze(sample.image, camera, method=method)
                    cpu_seconds = process_time() - started
                    score = score_image(report, sample.truth, sample.labels)
                    score.cpu_seconds = cpu_seconds
                    scores[method][camera].setdefault(density, []).append(score)
                if camera == "legacy":
                    gray_clean = (
                        sample.clean if sample.clean.ndim == 2 else to_gray_float(sample.clean)
                    )
                    for name, values in denoising_scores(
                        to_gray_float(sample.image), gray_clean
                    ).items():
                        for metric, value in values.items():
                            denoising.setdefault(name, {}).setdefault(metric, []).append(value)
                bar.update(1)
    return {
        "set": {
            "quick": quick,
            "densities_per_mm2": list(DENSITIES_PER_MM2),
            "images_per_cell": QUICK_IMAGES_PER_CELL if quick else IMAGES_PER_CELL,
            "seed_base": SEED_BASE,
            "imperfections": "all kinds, drawn at their usual rates",
            "timing": (
                f"one thread, {platform.processor() or platform.machine()}; wall clock "
                "includes waiting for other jobs, CPU time does not"
            ),
        },
        "methods": {
            m: {c: {_key(d): summarize(s) for d, s in cells.items()} for c, cells in by_cam.items()}
            for m, by_cam in scores.items()
        },
        "overall": {
            m: {c: summarize(_pooled(cells)) for c, cells in by_cam.items()}
            for m, by_cam in scores.items()
        },
        "denoising": {
            name: {metric: round(float(np.mean(v)), 4) for metric, v in metrics.items()}
            for name, metrics in denoising.items()
        },
        "chosen_denoiser": DEFAULT_DENOISER,
    }


def _pooled(cells: dict[float, list[ImageScore]]) -> list[ImageScore]:
    return [score for scores in cells.values() for score in scores]


def _key(density: float) -> str:
    return f"{density:g}"


COLUMNS = (
    ("accuracy", "accuracy %", 100.0),
    ("mae", "MAE", 1.0),
    ("detection_f1", "detection F1", 1.0),
    ("agglomerate_f1", "agglomerate F1", 1.0),
    ("imperfections_pct", "imperfections counted %", 1.0),
    ("d50_error_pct", "d50 error %", 1.0),
    ("seconds_per_image", "wall s / image", 1.0),
    ("cpu_seconds_per_image", "CPU s / image", 1.0),
)


def format_markdown(results: dict) -> str:
    """The benchmark as markdown tables (counting per method, camera, density; denoising).

    Examples
    --------
    >>> summary = {"images": 1, "accuracy": 0.99, "mae": 1.0, "detection_f1": 0.98,
    ...            "agglomerate_f1": 0.9, "imperfections_pct": 0.0, "d50_error_pct": 1.0,
    ...            "seconds_per_image": 0.2, "cpu_seconds_per_image": 0.2}
    >>> md = format_markdown({"methods": {"classical": {"legacy": {"10": summary}}},
    ...                       "overall": {}, "denoising": {}, "chosen_denoiser": "bilateral"})
    >>> "| classical | legacy | 10 | 1 | 99.0 |" in md
    True
    """
    head = ["method", "camera", "density /mm²", "images", *(title for _, title, _ in COLUMNS)]
    lines = ["## Counting", "", _row(head), _row(["---"] * len(head))]
    for method, by_camera in results["methods"].items():
        for camera, by_density in by_camera.items():
            cells = list(by_density.items())
            overall = results["overall"].get(method, {}).get(camera)
            if overall:
                cells.append(("all", overall))
            for density, summary in cells:
                values = [_format(summary[key] * factor) for key, _, factor in COLUMNS]
                lines.append(_row([method, camera, density, str(summary["images"]), *values]))
    lines += [
        "",
        f"## Denoising (legacy frames, against the noise-free frame; "
        f"chosen: {results['chosen_denoiser']})",
        "",
        _row(["image", "PSNR dB", "SSIM"]),
        _row(["---"] * 3),
    ]
    for name, metrics in results["denoising"].items():
        lines.append(_row([name, f"{metrics['psnr_db']:.2f}", f"{metrics['ssim']:.4f}"]))
    return "\n".join(lines) + "\n"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _format(value: float) -> str:
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def write_results(results: dict, outdir: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` into `outdir` (created if needed)."""
    from workbench.errors import WorkbenchError

    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        json_path, md_path = outdir / "results.json", outdir / "results.md"
        json_path.write_text(json.dumps(results, indent=2) + "\n")
        md_path.write_text("# Crystal counting benchmark\n\n" + format_markdown(results))
    except OSError as error:
        raise WorkbenchError(f"benchmark output {outdir}: cannot be written ({error})") from None
    return json_path, md_path
