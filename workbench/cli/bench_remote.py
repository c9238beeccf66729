"""``workbench bench-remote``: launch time, upload speed and round-trip overhead."""

from __future__ import annotations

import json

import click


@click.command(
    help="Measure datasite launch, upload MB/s, remote-run overhead and a load test "
    "(10 researchers x 3 requests); prints the machine's load average too."
)
@click.option(
    "--images",
    "n_images",
    type=click.IntRange(min=3),  # the bench factory's min_images rule
    default=20,
    show_default=True,
    help="Legacy images.",
)
@click.option(
    "--upload-mb",
    type=click.FloatRange(min=1.0),
    default=100.0,
    show_default=True,
    help="MB of 12 MP frames to upload.",
)
@click.option(
    "--large-images",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also measure the overhead at this many images (200 for the issue's target; "
    "several minutes).",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Remote runs of the --images (and --large-images) figures, each between two "
    "local runs (medians).",
)
@click.option("--no-load-test", is_flag=True, help="Skip the load test.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option(
    "--pooled",
    is_flag=True,
    help="Instead: what a pooled request (secure, secure + DP) costs over the plain one "
    "on three factories.",
)
def bench_remote(
    n_images: int,
    upload_mb: float,
    large_images: int,
    repeats: int,
    no_load_test: bool,
    as_json: bool,
    pooled: bool,
) -> None:
    from workbench.remote._syft_calls import quiet
    from workbench.remote.bench import bench_pooled
    from workbench.remote.bench import bench_remote as measure

    with quiet():
        if pooled:
            numbers = bench_pooled(n_images=n_images)
        else:
            numbers = measure(
                n_images=n_images,
                upload_mb=upload_mb,
                large_images=large_images,
                with_load_test=not no_load_test,
                repeats=repeats,
            )
    if as_json:
        click.echo(json.dumps(numbers))
        return
    for key, value in numbers.items():
        click.echo(f"{key:>20}: {value}")
