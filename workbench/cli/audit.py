"""``workbench audit``: read, check and export a factory's hash-chained audit log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from workbench.errors import WorkbenchError


def _state(config: str) -> Path:
    from workbench.remote.config import load_config

    return load_config(config).state_dir


@click.group(
    help="Read, verify and export a factory's audit log (requests, decisions, runs, "
    "releases, adoptions, privacy spend)."
)
def audit() -> None:
    """The ``workbench audit`` group."""


@audit.command(help="Show the log of CONFIG's factory, oldest first.")
@click.argument("config")
@click.option("--researcher", default=None, help="Only entries by or about this e-mail.")
@click.option("--request", default=None, help="Only entries of this request id.")
@click.option("--since", default=None, help="Only entries from this ISO date on (2026-11-30).")
@click.option("--kind", default=None, help="Only entries of this kind (run, release, ...).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def show(
    config: str,
    researcher: str | None,
    request: str | None,
    since: str | None,
    kind: str | None,
    as_json: bool,
) -> None:
    from workbench.privacy.audit import KINDS, entries

    if kind is not None and kind not in KINDS:
        raise WorkbenchError(f"--kind {kind}: not a kind of entry; use one of {', '.join(KINDS)}")
    found = entries(_state(config), request=request, since=since, kind=kind)
    if researcher is not None:
        found = [e for e in found if researcher in (e["actor"], e["details"].get("researcher"))]
    for entry in found:
        if as_json:
            click.echo(json.dumps(entry, sort_keys=True))
            continue
        details = ", ".join(f"{k}={v}" for k, v in entry["details"].items())
        click.echo(
            f"{entry['seq']:>5}  {entry['time'][:19]}  {entry['kind']:<9} {entry['actor']:<28} "
            f"{entry['request'][:12]:<12}  {details}"
        )


@audit.command(help="Check the hash chain of CONFIG's log; exit 1 naming the first broken entry.")
@click.argument("config")
def verify(config: str) -> None:
    from workbench.privacy.audit import entries
    from workbench.privacy.audit import verify as check

    state = _state(config)
    broken = check(state)
    if broken is not None:
        click.echo(f"audit log of {state.name} is broken: {broken}", err=True)
        sys.exit(1)
    found = entries(state)
    head = found[-1]["hash"] if found else "(empty)"
    click.echo(f"audit log of {state.name}: {len(found)} entries, chain whole; head {head}")


@audit.command(help="Write CONFIG's log to OUT as JSON lines (after checking the chain).")
@click.argument("config")
@click.argument("out")
def export(config: str, out: str) -> None:
    from workbench.privacy.audit import entries
    from workbench.privacy.audit import verify as check

    state = _state(config)
    broken = check(state)
    if broken is not None:
        raise WorkbenchError(f"audit log of {state.name} is broken: {broken}; not exported")
    target = Path(out)
    if target.exists():
        raise WorkbenchError(f"{target}: exists already; choose a new file")
    found = entries(state)
    try:
        target.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in found))
    except OSError as error:
        raise WorkbenchError(f"{target}: cannot write ({error.strerror})") from None
    click.echo(f"{len(found)} entries written to {target}")
