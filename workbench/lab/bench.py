"""Benchmark every counting method side by side on fixed, seeded frames of two renderers.

The frames are generated in memory (nothing downloaded, nothing written but the
results) by two independently designed renderers: ``synth`` (:mod:`workbench.synth`,
the one the methods are tuned and trained on) and ``heldout``
(:mod:`workbench.lab.heldout`, evaluation only). Both cameras, each at its profile's
pixel size and at a finer one, three crystal densities, every imperfection kind drawn
at its usual rate. Each method in :data:`workbench.imaging.pipeline.METHODS` (the
classical pipeline, the baselines, the learned model) and ``auto`` counts every frame,
and :mod:`workbench.lab.evaluate` scores it. The denoisers are compared by PSNR and
SSIM against the noise-free frame (synth legacy frames).

Examples
--------
>>> from workbench.lab.bench import bench_plan
>>> list(bench_plan(quick=True))[:2]
[('legacy', 2.0, 10.0, 1), ('legacy', 2.0, 25.0, 1)]
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from time import process_time
from types import SimpleNamespace

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from tqdm import tqdm

from workbench.camera import get_camera
from workbench.imaging.denoise import DEFAULT_DENOISER, DENOISERS, denoise
from workbench.imaging.io import to_gray_float
from workbench.imaging.pipeline import AUTO_FALLBACK, METHODS, analyze, resolve_method
from workbench.lab.evaluate import ImageScore, score_image, summarize

DENSITIES_PER_MM2 = (10.0, 25.0, 50.0)
# Each camera at its profile's pixel size and at a finer one (the sizes the issue's
# independent frames were taken at); legacy also at 3 µm/px, the coarse end of the
# wide domain (frames coarser than the working scale are enlarged to it).
PIXEL_SIZES_UM = {"legacy": (2.0, 0.8, 3.0), "hires": (0.64, 0.3)}
IMAGES_PER_CELL = {"legacy": 20, "hires": 5}
QUICK_IMAGES_PER_CELL = {"legacy": 1, "hires": 1}
QUICK_HIRES_DENSITY = 25.0  # --quick renders hires frames at this density only
SEED_BASE = 7000  # disjoint from the seeds the tests and examples use


def bench_plan(
    quick: bool = False, images_per_cell: int | None = None
) -> Iterator[tuple[str, float, float, int]]:
    """(camera, pixel size µm, density per mm², number of images) for every cell.

    `images_per_cell`, when given, replaces the number of images of every cell.

    Examples
    --------
    >>> len(list(bench_plan())), len(list(bench_plan(quick=True)))
    (15, 11)
    >>> {n for *_, n in bench_plan(images_per_cell=3)}
    {3}
    """
    per_cell = _images_per_cell(quick, images_per_cell)
    for camera, pixel_sizes in PIXEL_SIZES_UM.items():
        for pixel_size in pixel_sizes:
            for density in DENSITIES_PER_MM2:
                if quick and camera == "hires" and density != QUICK_HIRES_DENSITY:
                    continue
                yield camera, pixel_size, density, per_cell[camera]


def _images_per_cell(quick: bool, images_per_cell: int | None) -> dict[str, int]:
    if images_per_cell is not None:
        return dict.fromkeys(PIXEL_SIZES_UM, images_per_cell)
    return QUICK_IMAGES_PER_CELL if quick else IMAGES_PER_CELL


def default_renderers() -> dict[str, Callable]:
    """Renderer name -> ``render(camera, seed, density, pixel_size_um=...)``: both renderers.

    Examples
    --------
    >>> sorted(default_renderers())
    ['heldout', 'synth']
    """
    from workbench.lab.heldout import render_heldout
    from workbench.synth import synthesize

    return {"synth": synthesize, "heldout": render_heldout}


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
    renderers: Mapping[str, Callable] | None = None,
    progress: bool = True,
    images_per_cell: int | None = None,
) -> dict:
    """Count, score and time every method on the frames of every renderer.

    Parameters
    ----------
    quick : bool
        One frame per cell, hires at one density only (see :func:`bench_plan`).
    methods : list of str, optional
        ``auto`` and names from :data:`METHODS` (default: all of them and ``auto``).
    renderers : mapping, optional
        Name -> ``render(camera, seed, density, pixel_size_um=...)`` returning a frame
        with ``image``, ``clean``, ``labels`` and ``truth``; the first is the renderer
        the methods were tuned on. Default: :func:`default_renderers`.
    progress : bool
        Show a progress bar on stderr.
    images_per_cell : int, optional
        Images in every cell instead of the plan's numbers.

    Returns
    -------
    dict
        ``set`` (what was generated); ``cells`` (renderer -> method -> camera -> pixel
        size -> density, or ``all`` -> summary, see
        :func:`workbench.lab.evaluate.summarize`); ``by_renderer`` (renderer -> method
        -> camera -> summary over all its frames); ``methods`` (method -> camera ->
        density -> summary) and ``overall`` (method -> camera -> summary), both on the
        first renderer at the camera's profile pixel size; ``denoising`` (denoiser ->
        mean PSNR/SSIM on those legacy frames), ``chosen_denoiser`` and ``refused``
        ("renderer method camera pixel-size" -> frames the quality gate refused; they
        are scored as frames where nothing was found).
    """
    renderers = dict(default_renderers() if renderers is None else renderers)
    methods = [*METHODS, "auto"] if methods is None else methods
    plan = list(bench_plan(quick, images_per_cell))
    scores: dict = {}  # renderer -> method -> camera -> pixel size -> density -> scores
    refused: dict[str, int] = {}  # "renderer method camera pixel-size" -> frames refused
    denoising: dict[str, dict[str, list[float]]] = {}
    total = len(renderers) * sum(n for *_, n in plan)
    with tqdm(
        total=total, desc="bench", unit="image", file=sys.stderr, disable=not progress
    ) as bar:
        for renderer, render in renderers.items():
            for camera, pixel_size, density, count in plan:
                profile = get_camera(camera, pixel_size)
                for index in range(count):
                    seed = bench_seed(camera, density, index)
                    sample = render(camera, seed, density, pixel_size_um=pixel_size)
                    by_name: dict[str, ImageScore] = {}
                    unfit: set[str] = set()  # methods whose run the quality gate refused
                    for method in methods:
                        resolved = resolve_method(method, profile)
                        if resolved == AUTO_FALLBACK != method and resolved in by_name:
                            # auto is exactly the fallback here (legacy), already run;
                            # elsewhere it also runs the fallback as a check, so it runs.
                            score = by_name[resolved]
                            was_refused = resolved in unfit
                        else:
                            started = process_time()
                            report = analyze(sample.image, profile, method=method)
                            cpu_seconds = process_time() - started
                            was_refused = report.count is None
                            if was_refused:
                                report = _nothing_counted(report.seconds)
                            score = score_image(report, sample.truth, sample.labels)
                            score.cpu_seconds = cpu_seconds
                        if was_refused:
                            unfit.add(method)
                            key = f"{renderer} {method} {camera} {_key(pixel_size)}"
                            refused[key] = refused.get(key, 0) + 1
                        by_name[method] = score
                        cell = scores.setdefault(renderer, {}).setdefault(method, {})
                        cell = cell.setdefault(camera, {}).setdefault(pixel_size, {})
                        cell.setdefault(density, []).append(score)
                    first = renderer == next(iter(renderers))
                    if first and camera == "legacy" and pixel_size == PIXEL_SIZES_UM[camera][0]:
                        gray_clean = (
                            sample.clean if sample.clean.ndim == 2 else to_gray_float(sample.clean)
                        )
                        for name, values in denoising_scores(
                            to_gray_float(sample.image), gray_clean
                        ).items():
                            for metric, value in values.items():
                                denoising.setdefault(name, {}).setdefault(metric, []).append(value)
                    bar.update(1)
    trained_on = scores[next(iter(renderers))]
    return {
        "set": {
            "quick": quick,
            "renderers": list(renderers),
            "densities_per_mm2": list(DENSITIES_PER_MM2),
            "pixel_sizes_um": {c: list(sizes) for c, sizes in PIXEL_SIZES_UM.items()},
            "images_per_cell": _images_per_cell(quick, images_per_cell),
            "seed_base": SEED_BASE,
            "imperfections": "all kinds, drawn at their usual rates",
            "timing": (
                f"one thread, {platform.processor() or platform.machine()}; wall clock "
                "includes waiting for other jobs, CPU time does not"
            ),
        },
        "cells": {
            r: {
                m: {
                    c: {
                        _key(ps): {
                            **{_key(d): summarize(s) for d, s in by_density.items()},
                            "all": summarize(_pooled(by_density)),
                        }
                        for ps, by_density in by_size.items()
                    }
                    for c, by_size in by_camera.items()
                }
                for m, by_camera in by_method.items()
            }
            for r, by_method in scores.items()
        },
        "by_renderer": {
            r: {
                m: {
                    c: summarize([x for cells in by_size.values() for x in _pooled(cells)])
                    for c, by_size in by_camera.items()
                }
                for m, by_camera in by_method.items()
            }
            for r, by_method in scores.items()
        },
        "methods": {
            m: {
                c: {_key(d): summarize(s) for d, s in by_size[PIXEL_SIZES_UM[c][0]].items()}
                for c, by_size in by_camera.items()
            }
            for m, by_camera in trained_on.items()
        },
        "overall": {
            m: {c: summarize(_pooled(by_size[PIXEL_SIZES_UM[c][0]])) for c, by_size in bc.items()}
            for m, bc in trained_on.items()
        },
        "refused": refused,
        "denoising": {
            name: {metric: round(float(np.mean(v)), 4) for metric, v in metrics.items()}
            for name, metrics in denoising.items()
        },
        "chosen_denoiser": DEFAULT_DENOISER,
    }


def _nothing_counted(seconds: float) -> SimpleNamespace:
    """A report that found nothing: how a frame the quality gate refused is scored."""
    return SimpleNamespace(count=0, objects=[], csd_um={"d50": 0.0}, seconds=seconds)


def _pooled(cells: dict[float, list[ImageScore]]) -> list[ImageScore]:
    return [score for scores in cells.values() for score in scores]


def _key(value: float) -> str:
    return f"{value:g}"


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
    """The benchmark as markdown: accuracy per renderer side by side, every cell, denoising.

    Examples
    --------
    >>> summary = {"images": 1, "accuracy": 0.99, "mae": 1.0, "detection_f1": 0.98,
    ...            "agglomerate_f1": 0.9, "imperfections_pct": 0.0, "d50_error_pct": 1.0,
    ...            "seconds_per_image": 0.2, "cpu_seconds_per_image": 0.2}
    >>> held = {**summary, "accuracy": 0.95}
    >>> md = format_markdown({"cells": {
    ...     "synth": {"classical": {"legacy": {"2": {"10": summary, "all": summary}}}},
    ...     "heldout": {"classical": {"legacy": {"2": {"10": held, "all": held}}}}},
    ...     "denoising": {}, "chosen_denoiser": "bilateral"})
    >>> "| classical | legacy | 2 | 1 | 99.0 | 95.0 | -4.0 |" in md
    True
    >>> "| heldout | classical | legacy | 2 | 10 | 1 | 95.0 |" in md
    True
    """
    cells = results["cells"]
    names = list(cells)
    trained_on = names[0]
    head = ["method", "camera", "µm/px", "images", *(f"{r} %" for r in names)]
    head += [f"{r} - {trained_on}" for r in names[1:]]
    lines = [
        f"## Counting accuracy per renderer (mean over densities; gap to {trained_on})",
        "",
        _row(head),
        _row(["---"] * len(head)),
    ]
    for method, by_camera in cells[trained_on].items():
        for camera, by_size in by_camera.items():
            for size, by_density in by_size.items():
                accuracy = [_pooled_accuracy(cells[r], method, camera, size) for r in names]
                shown = ["-" if a is None else f"{100 * a:.1f}" for a in accuracy]
                gaps = [
                    "-" if a is None or accuracy[0] is None else f"{100 * (a - accuracy[0]):+.1f}"
                    for a in accuracy[1:]
                ]
                images = str(by_density["all"]["images"])
                lines.append(_row([method, camera, size, images, *shown, *gaps]))
    head = ["renderer", "method", "camera", "µm/px", "density /mm²", "images"]
    head += [title for _, title, _ in COLUMNS]
    lines += ["", "## Counting, every cell", "", _row(head), _row(["---"] * len(head))]
    for renderer, by_method in cells.items():
        for method, by_camera in by_method.items():
            for camera, by_size in by_camera.items():
                for size, by_density in by_size.items():
                    for density, summary in by_density.items():
                        where = [renderer, method, camera, size, density, str(summary["images"])]
                        values = [_format(summary[key] * factor) for key, _, factor in COLUMNS]
                        lines.append(_row(where + values))
    if results.get("refused"):
        lines += ["", "## Frames refused by the quality gate (scored as nothing found)", ""]
        lines += [f"- {where}: {n}" for where, n in results["refused"].items()]
    lines += [
        "",
        f"## Denoising ({trained_on} legacy frames, against the noise-free frame; "
        f"chosen: {results['chosen_denoiser']})",
        "",
        _row(["image", "PSNR dB", "SSIM"]),
        _row(["---"] * 3),
    ]
    for name, metrics in results["denoising"].items():
        lines.append(_row([name, f"{metrics['psnr_db']:.2f}", f"{metrics['ssim']:.4f}"]))
    return "\n".join(lines) + "\n"


def _pooled_accuracy(cells: dict, method: str, camera: str, size: str) -> float | None:
    """Mean accuracy of `method` over all densities of one camera and pixel size, if run."""
    return cells.get(method, {}).get(camera, {}).get(size, {}).get("all", {}).get("accuracy")


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
