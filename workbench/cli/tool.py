"""``workbench tool``: publish a counting tool to factories, review and adopt it there.

Examples
--------
workbench tool list
workbench tool publish classical-pipeline --to datasites/factory-a.toml \\
    --to datasites/factory-b.toml --email ana@uni.example --password-env ANA_PASSWORD
workbench tool inbox datasites/factory-a.toml            # the factory admin
workbench tool adopt datasites/factory-a.toml classical-pipeline 0.1.0
workbench tool decline datasites/factory-b.toml classical-pipeline 0.1.0 --reason "hires camera"
workbench tool adopted datasites/factory-a.toml
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from workbench.errors import WorkbenchError

SITE = click.argument("config", type=click.Path(path_type=Path))


@click.group("tool")
def tool() -> None:
    """Publish counting tools to factories; review and adopt them for the floor."""


def _echo_rows(rows: list[dict], as_json: bool, columns: tuple[str, ...]) -> None:
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    for row in rows:
        click.echo("  ".join(str(row[column]) for column in columns))


@tool.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per tool.")
def list_tools(as_json: bool) -> None:
    """The tools this installation can publish, with their hashes."""
    from workbench.remote.tools import SHIPPED_TOOLS, build_manifest

    rows = []
    for name in SHIPPED_TOOLS:
        manifest = build_manifest(name)
        rows.append({"tool": name, "version": manifest.version, "method": manifest.method,
                     "hash": manifest.tool_hash, "files": len(manifest.files)})
    _echo_rows(rows, as_json, ("tool", "version", "method", "files", "hash"))


@tool.command("publish")
@click.argument("name")
@click.option("--to", "sites", multiple=True, required=True, metavar="CONFIG_OR_URL",
              help="A factory datasite (repeatable).")
@click.option("--email", required=True, help="Your researcher account on those datasites.")
@click.option("--password-env", required=True, metavar="VARIABLE",
              help="Environment variable holding your password.")
@click.option("--version", "version", default=None, help="Version to publish [installed].")
def publish(name: str, sites: tuple[str, ...], email: str, password_env: str,
            version: str | None) -> None:
    """Publish tool NAME to every factory's admin for review."""
    from workbench.remote import client, tools

    password = os.environ.get(password_env)
    if not password:
        raise WorkbenchError(f"environment variable {password_env} is not set")
    manifest = tools.build_manifest(name, version)
    outcome = tools.publish(client.login(sites, email, password), manifest)
    for factory, state in outcome.items():
        click.echo(f"{factory}: {manifest.label} {state} (hash {manifest.tool_hash})")


@tool.command("inbox")
@SITE
@click.option("--json", "as_json", is_flag=True, help="One JSON object per publication.")
def inbox(config: Path, as_json: bool) -> None:
    """Tool publications waiting at this factory (as its admin)."""
    from workbench.remote import tools
    from workbench.remote.admin import admin_login
    from workbench.remote.config import load_config

    rows = tools.inbox_rows(tools.inbox(admin_login(load_config(config))))
    if not rows and not as_json:
        click.echo("no tool publication")
    _echo_rows(rows, as_json, ("tool", "version", "status", "researcher", "hash", "benchmark"))


@tool.command("adopt")
@SITE
@click.argument("name")
@click.argument("version")
def adopt(config: Path, name: str, version: str) -> None:
    """Adopt a published tool for this factory's floor (as its admin)."""
    from workbench.remote import tools
    from workbench.remote.config import load_config

    record = tools.adopt(load_config(config), name, version)
    click.echo(f"adopted {name} {version} (hash {record['tool_hash']}) by {record['by']} "
               f"at {record['at']}")


@tool.command("decline")
@SITE
@click.argument("name")
@click.argument("version")
@click.option("--reason", required=True, help="Why (the researcher sees it).")
def decline(config: Path, name: str, version: str, reason: str) -> None:
    """Decline a published tool with a reason (as the factory's admin)."""
    from workbench.remote import tools
    from workbench.remote.config import load_config

    tools.decline(load_config(config), name, version, reason)
    click.echo(f"declined {name} {version}")


@tool.command("adopted")
@SITE
@click.option("--json", "as_json", is_flag=True, help="One JSON object per tool.")
def adopted(config: Path, as_json: bool) -> None:
    """Tools adopted at this factory, and whether their files still match."""
    from workbench.remote import tools
    from workbench.remote.config import load_config

    rows = []
    for key, (manifest, record) in tools.adopted_tools(load_config(config).state_dir).items():
        try:
            tools.verify_tool(manifest)
            check = "ok"
        except WorkbenchError as refused:
            check = str(refused)
        rows.append({"tool": key, "hash": manifest.tool_hash, "by": record["by"],
                     "at": record["at"], "check": check})
    if not rows and not as_json:
        click.echo("no tool adopted")
    _echo_rows(rows, as_json, ("tool", "by", "at", "hash", "check"))
