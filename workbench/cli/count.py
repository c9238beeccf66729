"""``workbench count``: count crystals on microscope images.

Examples
--------
workbench count frame.png                 # a readable table
workbench count images/ --json            # one JSON object per image (the contract)
workbench count a.png b.tif --overlay out/ --camera legacy --pixel-size-um 2.0

``--camera`` defaults to a guess per image: colour images of at least 8 megapixels
are ``hires``, everything else ``legacy``. A file that cannot be read is reported on
stderr (one line naming it and why) and skipped; the exit status is then 1. A frame
the quality gate refuses (too dark or bright, clipped, noisy, washed out, out of
focus, nothing crystal-like; :mod:`workbench.imaging.quality`) is not counted: its
JSON object has ``"count": null`` and ``quality`` the reason, the table shows the
reason, stderr names it, the other frames are counted, and the exit status is 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from workbench.errors import WorkbenchError

TABLE_COLUMNS = ("image", "count", "range", "particles", "agglomerates", "artifacts_removed",
                 "d10", "d50", "d90", "method", "seconds", "check", "quality")


def _method_choices() -> list[str]:
    from workbench.imaging.pipeline import METHODS

    return ["auto", *METHODS]


@click.command("count")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--camera", type=click.Choice(["legacy", "hires"]), default=None,
              help="Camera profile (default: guessed per image; RGB >= 8 MP is hires).")
@click.option("--pixel-size-um", type=float, default=None,
              help="Pixel size in µm, overriding the camera profile's.")
@click.option("--method", default="auto", show_default=True,
              help="auto (classical on legacy; on hires the learned model, checked against "
                   "the classical method), classical, model, or a baseline (otsu, blob_log).")
@click.option("--weights", type=click.Path(path_type=Path), default=None,
              help="Weights for the learned model (e.g. from workbench finetune); "
                   "default: the shipped ones.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object per image (the documented contract).")
@click.option("--overlay", "overlay_dir", type=click.Path(path_type=Path), default=None,
              help="Write <stem>.overlay.png per image into this folder.")
def count(images, camera, pixel_size_um, method, weights, as_json, overlay_dir) -> None:
    """Count crystals, agglomerates and removed imperfections on IMAGE files or folders."""
    from workbench.imaging.io import list_images, load_image
    from workbench.imaging.pipeline import analyze, guess_camera

    if method not in _method_choices():
        known = ", ".join(_method_choices())
        raise WorkbenchError(f"unknown method {method!r}: choose one of {known}")
    paths = _expand(images, list_images)
    if overlay_dir is not None:
        _prepare_folder(overlay_dir)
    failed = unfit = 0
    rows = []
    overlay_names: set[str] = set()
    progress = tqdm(paths, desc="counting", unit="image", file=sys.stderr,
                    disable=len(paths) < 2, leave=False)
    for path in progress:
        try:
            image = load_image(path)
            report = analyze(image, camera or guess_camera(image), pixel_size_um, method, weights)
            if overlay_dir is not None and report.count is not None:
                # Two inputs may share a stem (a.png, a.jpg): keep both overlays.
                stem = path.stem if path.stem not in overlay_names else path.name
                overlay_names.add(stem)
                _write_overlay(overlay_dir / f"{stem}.overlay.png", image, report)
        except WorkbenchError as error:
            failed += 1
            progress.clear()
            click.echo(f"error: {error}", err=True)
            continue
        if report.count is None:
            unfit += 1
            progress.clear()
            click.echo(f"unfit: {path}: {report.quality}; not counted", err=True)
        if as_json:
            progress.clear()
            click.echo(json.dumps(report.to_json()))
        else:
            rows.append(report.to_json())
    progress.close()
    if not as_json and rows:
        click.echo(_table(rows))
    if failed or unfit:
        sys.exit(1)


def _expand(arguments, list_images) -> list[Path]:
    """Files as given; folders replaced by the images inside them (sorted)."""
    paths: list[Path] = []
    for argument in arguments:
        paths.extend(list_images(argument) if argument.is_dir() else [argument])
    return paths


def _prepare_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise WorkbenchError(f"overlay folder {folder}: cannot be created ({reason})") from None


def _write_overlay(path: Path, image, report) -> None:
    import cv2

    from workbench.imaging.overlay import draw_overlay

    picture = draw_overlay(image, report)
    if not cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise WorkbenchError(f"overlay {path}: cannot be written")


def _count_range(uncertainty: dict | None) -> str:
    return "" if uncertainty is None else f"{uncertainty['low']}-{uncertainty['high']}"


def _cell(value, template: str = "{}") -> str:
    """A table cell; ``-`` where an unfit frame has no value."""
    return "-" if value is None else template.format(value)


def _table(rows: list[dict]) -> str:
    cells = [
        [str(row["image"]), _cell(row["count"]), _count_range(row["uncertainty"]),
         _cell(row["particles"]), _cell(row["agglomerates"]), _cell(row["artifacts_removed"]),
         *(_cell(row["csd_um"][k], "{:.1f}") for k in ("d10", "d50", "d90")),
         row["method"], f"{row['seconds']:.2f}", (row["uncertainty"] or {}).get("flag") or "",
         row["quality"]]
        for row in rows
    ]
    header = [c if c not in ("d10", "d50", "d90") else f"{c} µm" for c in TABLE_COLUMNS]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
