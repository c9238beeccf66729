"""``workbench report``: run a parameterised report notebook and publish it as HTML."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from workbench.errors import WorkbenchError


@click.command(
    help=(
        "Execute report TEMPLATE (a notebook in reports/templates/) with papermill and write "
        "it as HTML, without input cells, into reports/out/. Example: workbench report "
        "crystal_qc -p factory factory-a -p batch B-0042"
    )
)
@click.argument("template", required=False)
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="NAME VALUE",
    help="Set a template parameter (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Output folder [default: reports/out/].",
)
@click.option("--list", "list_only", is_flag=True, help="List templates and their parameters.")
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Longest time one cell may run (s).",
)
def report(
    template: str | None,
    parameters: tuple[tuple[str, str], ...],
    out: Path | None,
    list_only: bool,
    timeout: float,
) -> None:
    from workbench.reports import find_template, list_templates, run_report, template_defaults

    if list_only:
        for name in list_templates():
            defaults = template_defaults(find_template(name))
            listed = ", ".join(f"{key}={value!r}" for key, value in defaults.items())
            click.echo(f"{name}: {listed}")
        return
    if template is None:
        known = ", ".join(list_templates()) or "none"
        raise WorkbenchError(f"no report template given: choose one of {known}")
    names = [name for name, _ in parameters]
    for name in names:
        if names.count(name) > 1:
            raise WorkbenchError(f"report parameter {name!r} given more than once")
    path = run_report(
        template, dict(parameters), out_dir=out, timeout_s=timeout, progress=sys.stderr.isatty()
    )
    click.echo(str(path))
