"""``workbench synth``: write synthetic micrographs with ground truth beside them."""

from __future__ import annotations

import json
from pathlib import Path

import click

from workbench.errors import WorkbenchError


class Number(click.ParamType):
    """An int or float option whose bad values become one ``error:`` line, not a usage dump."""

    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.name = kind.__name__

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | float:
        if isinstance(value, self.kind):
            return value
        try:
            return self.kind(value)
        except (TypeError, ValueError):
            option = param.opts[0] if param is not None else "value"
            raise WorkbenchError(f"{option} {value!r}: not a number ({self.name})") from None


@click.command(help="Write N synthetic micrographs into OUTDIR, each with <stem>.json truth.")
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option(
    "--camera", default="legacy", show_default=True, help="Camera profile: legacy | hires."
)
@click.option("--n", "n", type=Number(int), default=10, show_default=True, help="Number of images.")
@click.option("--seed", type=Number(int), default=0, show_default=True, help="Seed of the set.")
@click.option(
    "--density", type=Number(float), default=None, help="Crystals per mm² [default: drawn, 8-40]."
)
@click.option("--labels", is_flag=True, help="Also write <stem>.labels.png (uint16 object ids).")
@click.option("--jpeg-quality", type=Number(int), default=None, help="Pass images through JPEG.")
@click.option(
    "--renderer",
    type=click.Choice(["synth", "heldout"]),
    default="synth",
    show_default=True,
    help="synth: the training renderer; heldout: the one kept apart for evaluation.",
)
@click.option(
    "--pixel-size-um",
    type=Number(float),
    default=None,
    help="Pixel size in µm (heldout only) [default: the camera's].",
)
def synth(
    outdir: Path,
    camera: str,
    n: int,
    seed: int,
    density: float | None,
    labels: bool,
    jpeg_quality: int | None,
    renderer: str,
    pixel_size_um: float | None,
) -> None:
    if renderer == "heldout":
        from workbench.lab.heldout import write_heldout_set

        paths = write_heldout_set(
            outdir, camera, n, seed, density, pixel_size_um=pixel_size_um, labels=labels,
            jpeg_quality=jpeg_quality,
        )
    elif pixel_size_um is not None:
        raise WorkbenchError("--pixel-size-um: only with --renderer heldout")
    else:
        from workbench.synth import generate_set

        paths = generate_set(
            outdir, camera, n, seed, density, labels=labels, jpeg_quality=jpeg_quality
        )
    totals = {"count": 0, "particles": 0, "agglomerates": 0, "artifacts_removed": 0}
    for path in paths:
        truth = json.loads(path.with_suffix(".json").read_text())
        totals = {key: value + truth[key] for key, value in totals.items()}
    click.echo(
        f"{len(paths)} images in {outdir}: {totals['count']} crystals, "
        f"{totals['particles']} particles, {totals['agglomerates']} agglomerates, "
        f"{totals['artifacts_removed']} imperfections"
    )
