"""``workbench privacy``: a factory's pooling key and its researchers' privacy budgets."""

from __future__ import annotations

import click


@click.group(help="Pooling key (for secure aggregation) and differential-privacy budgets.")
def privacy() -> None:
    """The ``workbench privacy`` group."""


@privacy.command(
    "pool-key",
    help="Print CONFIG's public pooling key (created on first use); "
    "the other factories' admins put it in their [privacy.peers].",
)
@click.argument("config")
def pool_key(config: str) -> None:
    from workbench.privacy.secure_sum import load_or_create_key, public_key_hex
    from workbench.remote.config import load_config

    site = load_config(config)
    site.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    click.echo(f'{site.name} = "{public_key_hex(load_or_create_key(site.state_dir))}"')


@privacy.command(help="Privacy loss spent and left per researcher at CONFIG's factory.")
@click.argument("config")
def budget(config: str) -> None:
    from workbench.privacy.audit import entries
    from workbench.privacy.budget import spent
    from workbench.remote.config import load_config

    site = load_config(config)
    researchers = sorted({e["actor"] for e in entries(site.state_dir, kind="budget")})
    total = site.privacy.epsilon_budget
    click.echo(f"{'researcher':<32} {'spent ε':>8} {'left ε':>8}   (budget ε = {total:g} each)")
    for researcher in researchers:
        used = spent(site.state_dir, researcher)
        click.echo(f"{researcher:<32} {used:>8.3g} {total - used:>8.3g}")
