"""``workbench demo``: two factory datasites, one researcher, aggregates back."""

from __future__ import annotations

import json

import click


@click.command(help="Run the two-factory round trip on loopback and print the aggregates.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--legacy-images", default=12, show_default=True, help="Images for factory-a.")
@click.option("--hires-images", default=4, show_default=True, help="Images for factory-b.")
def demo(as_json: bool, legacy_images: int, hires_images: int) -> None:
    from workbench.remote._syft_calls import quiet
    from workbench.remote.demo import run_demo

    with quiet():  # syft's banners go to stderr; stdout holds only the result
        summary = run_demo(legacy_images=legacy_images, hires_images=hires_images)
    if as_json:
        click.echo(json.dumps(summary))
        return
    import pandas as pd

    click.echo(pd.DataFrame(summary["factories"]).to_string(index=False))
