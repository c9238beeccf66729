"""The ``workbench`` command.

One module per subcommand (papermill-style); each is imported only when its
command runs, so ``workbench count`` never pays for importing syft or torch.
User errors (:class:`~workbench.errors.WorkbenchError`) become one line on stderr
and exit status 2, never a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

import click

from workbench import __version__
from workbench._allocator import keep_freed_memory
from workbench._exit import exit_code, exit_now
from workbench.errors import WorkbenchError

# name -> ("module:attribute" of a click command, one-line help shown by --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": (
        "workbench.cli.audit:audit",
        "Show, verify and export a factory's hash-chained audit log.",
    ),
    "privacy": (
        "workbench.cli.privacy:privacy",
        "A factory's pooling key and its researchers' privacy budgets.",
    ),
    "bench-remote": (
        "workbench.cli.bench_remote:bench_remote",
        "Measure datasite launch, upload speed and the remote round-trip overhead.",
    ),
    "datasite": (
        "workbench.cli.datasite:datasite",
        "Run a factory datasite (up, down, status), upload images, add researchers.",
    ),
    "bench": ("workbench.cli.bench:bench", "Benchmark counting methods on synthetic images."),
    "count": ("workbench.cli.count:count", "Count crystals, agglomerates and CSD on images."),
    "demo": (
        "workbench.cli.demo:demo",
        "Two factory datasites, one researcher: the private-data round trip end to end.",
    ),
    "floor": (
        "workbench.cli.floor:floor",
        "The factory floor page (up, down, status), its accounts and its benchmark.",
    ),
    "report": ("workbench.cli.report:report", "Run a QC report notebook and publish it as HTML."),
    "synth": ("workbench.cli.synth:synth", "Write synthetic micrographs with ground truth."),
    "tool": (
        "workbench.cli.tool:tool",
        "Publish counting tools to factories; review and adopt them for the floor.",
    ),
    "train": ("workbench.cli.train:train", "Train the learned crystal counter on synthetic data."),
    "finetune": (
        "workbench.cli.finetune:finetune",
        "Fine-tune the learned counter on frames labelled at the factory.",
    ),
}


class LazyGroup(click.Group):
    """A click group that imports each subcommand's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[cmd_name][0].split(":")
        return getattr(importlib.import_module(module_name), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every command (syft and torch take seconds).
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in sorted(COMMANDS)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workbench")
def cli() -> None:
    """Crystal Workbench: count crystals on private microscope images, safely."""


def run() -> NoReturn:
    """The ``workbench`` console script and ``python -m workbench``: :func:`main`, then
    an immediate end (``workbench._exit``: saves the 3 s of teardown after syft)."""
    try:
        main()
    except SystemExit as done:
        exit_now(exit_code(done.code))
    exit_now(0)


def main(argv: list[str] | None = None) -> None:
    """Run the ``workbench`` command line with `argv`; ends with ``SystemExit`` on errors."""
    keep_freed_memory()  # counting many frames: reuse freed image memory
    try:
        cli.main(args=argv, prog_name="workbench", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as usage:
        usage.show()
        sys.exit(usage.exit_code)
    except click.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except WorkbenchError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
