"""``workbench demo``: two factory datasites, one researcher, aggregates back, a floor page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from workbench.errors import WorkbenchError

MIN_IMAGES = 3  # the shipped factories' min_images rule


@click.command(help="Run the two-factory round trip on loopback, print the aggregates and "
               "start factory-a's floor page.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--legacy-images", default=12, show_default=True, help="Images for factory-a.")
@click.option("--hires-images", default=4, show_default=True, help="Images for factory-b.")
@click.option("--state", "state", default="out/demo", show_default=True,
              help="Folder for the demo factories' state (replaced on each run).")  # fmt: skip
@click.option("--no-floor", is_flag=True, help="Do not start the floor page at the end.")
@click.option("--postgres", is_flag=True,
              help="Run factory-a on a real PostgreSQL server instead of SQLite.")  # fmt: skip
def demo(
    as_json: bool, legacy_images: int, hires_images: int, state: str, no_floor: bool, postgres: bool
) -> None:
    from workbench.remote._syft_calls import quiet
    from workbench.remote.demo import run_demo

    for option, value in (("--legacy-images", legacy_images), ("--hires-images", hires_images)):
        if value < MIN_IMAGES:
            raise WorkbenchError(
                f"{option} {value}: the factories run requests on at least {MIN_IMAGES} images "
                "(their min_images rule)"
            )
    root = Path(state)
    _clear_previous_demo(root)
    with quiet():  # syft's banners go to stderr; stdout holds only the result
        summary = run_demo(
            legacy_images=legacy_images, hires_images=hires_images, root=root, postgres=postgres
        )
    if not no_floor:
        summary["floor"] = _start_floor(summary["state"]["factory-a"])
    if as_json:
        click.echo(json.dumps(summary))
        return
    import pandas as pd

    click.echo(pd.DataFrame(summary["factories"]).to_string(index=False))


def _start_floor(state_dir: str) -> dict:
    """Serve factory-a's floor page on the tool its admin adopted; say how to use it."""
    from workbench.floor.demo import start_demo_floor

    floor = start_demo_floor(state_dir, "factory-a")
    click.echo(
        f"floor page of factory-a: {floor.url}  (log in as {floor.user} / {floor.password}); "
        f"stop it with: workbench floor down {floor.config.path}",
        err=True,
    )
    return {"url": floor.url, "user": floor.user, "config": str(floor.config.path)}


def _clear_previous_demo(root: Path) -> None:
    """Stop the floor of a previous demo in `root` and remove its state."""
    if not root.exists():
        return
    if not (root / "factory-a.toml").is_file() or not (root / "state").is_dir():
        raise WorkbenchError(f"--state {root}: exists and is not a demo folder; choose another")
    from workbench.floor.config import load_floor_config
    from workbench.floor.service import stop_floor

    for floor_config in root.glob("state/*/floor.toml"):
        stop_floor(load_floor_config(floor_config))
    shutil.rmtree(root)
