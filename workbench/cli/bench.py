"""``workbench bench``: every counting method against ground truth, side by side.

Examples
--------
workbench bench --quick           # 2 legacy + 1 hires image per density, a minute or two
workbench bench --out bench/      # the full set; writes results.json and results.md
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("bench")
@click.option("--quick", is_flag=True, help="Two legacy and one hires image per density.")
@click.option("--out", "outdir", type=click.Path(path_type=Path), default=Path("bench"),
              show_default=True, help="Folder for results.json and results.md.")
@click.option("--method", "methods", multiple=True,
              help="Only these methods (repeatable; default: all registered).")
def bench(quick: bool, outdir: Path, methods: tuple[str, ...]) -> None:
    """Benchmark crystal counting methods on a fixed, seeded synthetic set."""
    import cv2

    from workbench.errors import WorkbenchError
    from workbench.imaging.pipeline import METHODS
    from workbench.lab.bench import format_markdown, run_bench, write_results

    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        known = ", ".join(METHODS)
        raise WorkbenchError(f"unknown method {unknown[0]!r}: choose from {known}")
    # Seconds per image are reported for one core, as a factory PC would give one job.
    cv2.setNumThreads(1)
    results = run_bench(quick=quick, methods=list(methods) or None)
    json_path, md_path = write_results(results, outdir)
    click.echo(format_markdown(results))
    click.echo(f"wrote {json_path} and {md_path}")
