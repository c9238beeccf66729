"""``workbench floor``: the factory floor page (up, down, status), its accounts, its benchmark.

Examples
--------
workbench floor up datasites/floor/factory-a.toml
workbench floor add-user datasites/floor/factory-a.toml olga --password-env OLGA_PASSWORD
workbench floor status datasites/floor/factory-a.toml
workbench floor down datasites/floor/factory-a.toml
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from workbench.errors import WorkbenchError

CONFIG = click.argument("config", type=click.Path(path_type=Path))


@click.group("floor")
def floor() -> None:
    """Serve the factory floor page: operators count crystals with adopted tools."""


@floor.command("up")
@CONFIG
def up(config: Path) -> None:
    """Start the floor page in the background; print its address."""
    from workbench.floor.config import load_floor_config
    from workbench.floor.service import start_floor

    click.echo(f"floor up at {start_floor(load_floor_config(config))}")


@floor.command("down")
@CONFIG
def down(config: Path) -> None:
    """Stop the floor page and its counting workers."""
    from workbench.floor.config import load_floor_config
    from workbench.floor.service import stop_floor

    settings = load_floor_config(config)
    was_up = stop_floor(settings)
    click.echo(f"floor {settings.factory} {'stopped' if was_up else 'was not running'}")


@floor.command("status")
@CONFIG
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def status(config: Path, as_json: bool) -> None:
    """Whether the floor page runs and answers."""
    from workbench.floor.config import load_floor_config
    from workbench.floor.service import floor_status

    found = floor_status(load_floor_config(config))
    if as_json:
        click.echo(json.dumps(found))
    elif found["state"] == "down":
        raise WorkbenchError(f"floor {found['factory']} is down; start it with: "
                             f"workbench floor up {config}")
    else:
        click.echo(f"floor {found['factory']}: {found['state']} at {found['url']} "
                   f"(pid {found['pid']})")


@floor.command("add-user")
@CONFIG
@click.argument("name")
@click.option("--role", type=click.Choice(["operator", "admin"]), default="operator",
              show_default=True)
@click.option("--password-env", required=True, metavar="VARIABLE",
              help="Environment variable holding the new password (never on the command line).")
def add_user(config: Path, name: str, role: str, password_env: str) -> None:
    """Create a floor account (or reset its password and role)."""
    from workbench.floor.accounts import add_user as create
    from workbench.floor.config import load_floor_config

    password = os.environ.get(password_env)
    if not password:
        raise WorkbenchError(f"environment variable {password_env} is not set")
    create(load_floor_config(config).database, name, role, password)
    click.echo(f"{role} {name} can log in")


@floor.command("remove-user")
@CONFIG
@click.argument("name")
def remove_user(config: Path, name: str) -> None:
    """Delete a floor account and end its sessions."""
    from workbench.floor.accounts import remove_user as delete
    from workbench.floor.config import load_floor_config

    delete(load_floor_config(config).database, name)
    click.echo(f"{name} removed")


@floor.command("bench")
@click.option("--frames", default=50, show_default=True, help="Frames in the batch run.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def bench(frames: int, as_json: bool) -> None:
    """One legacy frame through the page vs `workbench count`, and a batch of FRAMES."""
    from workbench.floor.bench import run_bench

    result = run_bench(frames)
    if as_json:
        click.echo(json.dumps(result))
        return
    for key, value in result.items():
        click.echo(f"{key:32s} {value}")
