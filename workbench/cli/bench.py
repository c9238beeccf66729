"""``workbench bench``: every counting method against ground truth, on two renderers.

``synth`` is the renderer the methods are tuned and trained on; ``heldout`` was designed
apart from it and is used for evaluation only.

Examples
--------
workbench bench --quick                    # one frame per cell, a few minutes
workbench bench --out bench/               # the full set; writes results.json and results.md
workbench bench --renderer heldout --quick # one renderer only
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("bench")
@click.option("--quick", is_flag=True, help="One frame per cell; hires at one density.")
@click.option("--out", "outdir", type=click.Path(path_type=Path), default=Path("bench"),
              show_default=True, help="Folder for results.json and results.md.")
@click.option("--method", "methods", multiple=True,
              help="Only these methods (repeatable; default: all registered and auto).")
@click.option("--images", "images_per_cell", type=click.IntRange(min=1), default=None,
              help="Images per cell instead of the plan's (20 legacy, 5 hires; quick: 1).")
@click.option("--renderer", "renderers", multiple=True, type=click.Choice(["synth", "heldout"]),
              help="Only these renderers (repeatable; default: both).")
def bench(
    quick: bool,
    outdir: Path,
    methods: tuple[str, ...],
    images_per_cell: int | None,
    renderers: tuple[str, ...],
) -> None:
    """Benchmark crystal counting methods on fixed, seeded frames of two renderers."""
    import cv2

    from workbench.errors import WorkbenchError
    from workbench.imaging.pipeline import METHODS
    from workbench.lab.bench import default_renderers, format_markdown, run_bench, write_results

    unknown = [m for m in methods if m not in METHODS and m != "auto"]
    if unknown:
        known = ", ".join(["auto", *METHODS])
        raise WorkbenchError(f"unknown method {unknown[0]!r}: choose from {known}")
    # Seconds per image are reported for one core, as a factory PC would give one job.
    cv2.setNumThreads(1)
    every = default_renderers()
    chosen = {name: every[name] for name in every if not renderers or name in renderers}
    results = run_bench(
        quick=quick,
        methods=list(methods) or None,
        renderers=chosen,
        images_per_cell=images_per_cell,
    )
    json_path, md_path = write_results(results, outdir)
    click.echo(format_markdown(results))
    click.echo(f"wrote {json_path} and {md_path}")
