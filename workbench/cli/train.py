"""``workbench train``: train the learned crystal counter on synthetic images."""

from __future__ import annotations

from pathlib import Path

import click

from workbench.errors import WorkbenchError


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise WorkbenchError(f"{name} {value}: must be at least 1")


@click.command(
    help=(
        "Train the learned counter on synthetic tiles made on the fly; write OUT/checkpoint.pt, "
        "OUT/counter.pt (+ counter.json with its sha256) and OUT/train_log.jsonl."
    )
)
@click.option("--steps", type=int, default=7000, show_default=True, help="Total optimiser steps.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out/train"),
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Continue from this checkpoint (model, optimiser, step, random state, tile pool).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of everything.")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="auto uses a GPU when present.",
)
@click.option("--batch", type=int, default=8, show_default=True, help="Crops per step.")
@click.option("--pool", type=int, default=384, show_default=True, help="Tiles kept in memory.")
@click.option(
    "--val-images",
    type=int,
    default=3,
    show_default=True,
    help="Validation frames per camera (0: no validation).",
)
@click.option(
    "--domain",
    type=click.Choice(["default", "wide"]),
    default="wide",
    show_default=True,
    help="Synthetic domain of the tiles; wide also varies the pixel size 0.3-3 µm.",
)
@click.option(
    "--init",
    type=click.Path(path_type=Path),
    default=None,
    help="Start from these weights (fine-tuning) instead of a fresh network.",
)
@click.option("--lr", type=float, default=3e-3, show_default=True, help="Peak learning rate.")
def train(
    steps: int,
    out: Path,
    resume: Path | None,
    seed: int,
    device: str,
    batch: int,
    pool: int,
    val_images: int,
    domain: str,
    init: Path | None,
    lr: float,
) -> None:
    from workbench.lab.train import TrainConfig
    from workbench.lab.train import train as run_training

    for name, value in (("--steps", steps), ("--batch", batch), ("--pool", pool)):
        _positive(name, value)
    if val_images < 0:
        raise WorkbenchError(f"--val-images {val_images}: must be 0 or more")
    config = TrainConfig(
        steps=steps,
        batch=batch,
        pool_tiles=pool,
        validation_images=val_images,
        seed=seed,
        device=device,
        domain=domain,
        init=None if init is None else str(init),
        learning_rate=lr,
    )
    result = run_training(config, out, resume=resume)
    click.echo(
        f"step {result.step} in {result.seconds:.0f} s: checkpoint {result.checkpoint}, "
        f"weights {result.weights}"
    )
    for camera, scores in result.validation.items():
        click.echo(
            f"  {camera}: accuracy {scores['accuracy']:.4f}, "
            f"agglomerate F1 {scores['agglomerate_f1']:.3f}, "
            f"detection F1 {scores['detection_f1']:.3f}"
        )
