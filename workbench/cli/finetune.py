"""``workbench finetune``: teach the learned counter on frames labelled at the factory.

Examples
--------
workbench finetune --labels labels/ --images frames/ --out out/finetuned
workbench count frames/ --method model --weights out/finetuned/counter.pt
"""

from __future__ import annotations

from pathlib import Path

import click

from workbench.errors import WorkbenchError


@click.command("finetune")
@click.option(
    "--labels",
    "labels_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder of <stem>.labels.json files (the annotation widget writes them).",
)
@click.option(
    "--images",
    "images_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder holding the labelled images [default: the labels folder].",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("out/finetuned"),
    show_default=True,
    help="Folder for counter.pt + counter.json and the log.",
)
@click.option("--steps", type=int, default=300, show_default=True, help="Optimiser steps.")
@click.option(
    "--init",
    type=click.Path(path_type=Path),
    default=None,
    help="Weights to start from [default: the shipped ones].",
)
@click.option(
    "--check",
    "check_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Frames with <stem>.json truth: print the model's accuracy on them before and after.",
)
def finetune(labels_dir, images_dir, out, steps, init, check_dir) -> None:
    """Fine-tune the learned counter's weights on hand-labelled frames; nothing leaves
    this machine."""
    from workbench.lab.finetune import finetune as run_finetune
    from workbench.lab.finetune import labelled_frames, model_accuracy, truth_frames

    if steps < 1:
        raise WorkbenchError(f"--steps {steps}: must be at least 1")
    frames = labelled_frames(labels_dir, images_dir or labels_dir)
    check = truth_frames(check_dir) if check_dir is not None else []
    before = model_accuracy(init, check) if check else None
    result = run_finetune(frames, out, init=init, steps=steps)
    click.echo(
        f"fine-tuned on {len(frames)} labelled frame(s), {steps} steps in "
        f"{result.seconds:.0f} s: weights {result.weights}"
    )
    if check:
        after = model_accuracy(result.weights, check)
        click.echo(
            f"model accuracy on {len(check)} check frame(s): {100 * before:.1f} % before, "
            f"{100 * after:.1f} % after"
        )
