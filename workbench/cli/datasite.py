"""``workbench datasite``: run a factory datasite and manage its data and accounts.

Every subcommand takes the factory's TOML file (``datasites/factory-a.toml``).
syft is imported only by the subcommands that talk to a running datasite.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from workbench.errors import WorkbenchError

MAX_BATCH_MB = 100.0  # as workbench.remote.upload.MAX_BATCH_BYTES (syft is imported lazily)


def _config(path: str):
    from workbench.remote.config import load_config

    return load_config(path)


def _running_admin(config):
    from workbench.remote.admin import admin_login
    from workbench.remote.launch import datasite_pid

    if datasite_pid(config) is None:
        raise WorkbenchError(
            f"datasite {config.name} is down (port {config.port}); "
            f"start it with: workbench datasite up {config.path}"
        )
    return admin_login(config)


@click.group(help="Start, stop and inspect a factory datasite; upload images; add researchers.")
def datasite() -> None:
    """The ``workbench datasite`` group."""


@datasite.command(help="Start the datasite of CONFIG in the background; return once it answers.")
@click.argument("config")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for it.")
def up(config: str, timeout: float) -> None:
    from workbench.remote.launch import datasite_pid, start_datasite

    site = _config(config)
    running = datasite_pid(site)
    if running is not None:
        click.echo(f"{site.name} is already up on {site.url} (pid {running})")
        return
    pid = start_datasite(site, timeout=timeout)
    click.echo(f"{site.name} is up on {site.url} (pid {pid}, state in {site.state_dir})")


@datasite.command(help="Stop the datasite of CONFIG and every process it started.")
@click.argument("config")
def down(config: str) -> None:
    from workbench.remote.launch import stop_datasite

    site = _config(config)
    if stop_datasite(site):
        click.echo(f"{site.name} stopped")
    else:
        click.echo(f"{site.name} was not running")


@datasite.command(help="Print up/down, port, datasets and pending requests of CONFIG.")
@click.argument("config")
def status(config: str) -> None:
    from workbench.remote.admin import datasite_summary
    from workbench.remote.launch import datasite_pid

    site = _config(config)
    admin = _running_admin(site)
    summary = datasite_summary(admin)
    click.echo(f"{site.name}: up on {site.url} (pid {datasite_pid(site)})")
    click.echo(f"  datasets: {', '.join(summary['datasets']) or '(none)'}")
    click.echo(f"  accounts: {summary['users']}")
    click.echo(f"  pending requests: {summary['pending_requests']}")
    from workbench.remote._recovery import describe, interrupted_runs

    click.echo(f"  runs interrupted by a restart: {describe(interrupted_runs(admin.client))}")


@datasite.command(
    help="Upload the images in FOLDER to CONFIG's datasite as dataset NAME. An upload that "
    "was cut off resumes: run the same command again and only the missing batches are sent."
)
@click.argument("config")
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--name", "name", required=True, help="Dataset name.")
@click.option("--camera", default=None, help="Camera profile [default: the factory's].")
@click.option("--pixel-size-um", type=float, default=None, help="Override the pixel size.")
@click.option("--skip-bad", is_flag=True, help="Leave unreadable files out instead of refusing.")
@click.option(
    "--batch-mb",
    type=float,
    default=MAX_BATCH_MB,
    show_default=True,
    help="Largest batch (one asset; every run loads whole assets).",
)
@click.option(
    "--labels",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of <stem>.labels.json files (the annotation widget's): the marks go with "
    "their images, for fine-tuning at the factory.",
)
@click.option("--quiet", "no_progress", is_flag=True, help="No progress bar.")
def upload(
    config: str,
    folder: Path,
    name: str,
    camera: str | None,
    pixel_size_um: float | None,
    skip_bad: bool,
    batch_mb: float,
    labels: Path | None,
    no_progress: bool,
) -> None:
    from workbench.remote.upload import UPLOAD_JOURNALS, local_blob_folder, upload_folder

    if batch_mb <= 0:
        raise WorkbenchError(f"--batch-mb {batch_mb:g}: a batch must hold more than 0 MB")
    site = _config(config)
    admin = _running_admin(site)
    try:
        summary = upload_folder(
            admin.client,
            folder,
            name,
            camera or site.camera,
            pixel_size_um,
            skip_bad=skip_bad,
            progress=not no_progress,
            max_batch_bytes=int(batch_mb * 1e6),
            journal=site.state_dir / UPLOAD_JOURNALS / f"{name}.json",
            blob_folder=local_blob_folder(site),
            labels=labels,
        )
    except KeyboardInterrupt:
        raise WorkbenchError(
            f"upload of {name!r} interrupted: no dataset is visible yet; run the same command "
            "again to send the rest"
        ) from None
    for skipped in summary.skipped:
        click.echo(f"skipped {skipped}", err=True)
    if summary.sent_assets == 0:
        click.echo(
            f"{summary.dataset}: already on {site.name} ({summary.images} images); nothing sent"
        )
        return
    resumed = summary.assets - summary.sent_assets
    again = f", {resumed} stored by the interrupted upload" if resumed else ""
    click.echo(
        f"{summary.dataset}: {summary.images} images ({summary.megabytes:.1f} MB) in "
        f"{summary.assets} asset(s) on {site.name}: sent {summary.sent_assets}{again}, "
        f"{summary.megabytes_sent:.1f} MB in {summary.seconds:.1f} s "
        f"({summary.megabytes_per_second:.1f} MB/s)"
    )


@datasite.command("add-researcher", help="Create a researcher account on CONFIG's datasite.")
@click.argument("config")
@click.option("--email", required=True, help="The researcher's e-mail (login).")
@click.option("--name", "name", required=True, help="Display name.")
@click.option("--institution", default="", help="Shown to the admin with each request.")
@click.option(
    "--password-env",
    default=None,
    help="Take the password from this environment variable [default: generate one].",
)
def add_researcher(
    config: str, email: str, name: str, institution: str, password_env: str | None
) -> None:
    from workbench.remote.admin import add_researcher as create

    site = _config(config)
    password = None
    if password_env:
        password = os.environ.get(password_env)
        if not password:
            raise WorkbenchError(f"environment variable {password_env} is not set")
    created = create(_running_admin(site), email, name, password, institution)
    click.echo(f"researcher {email} added to {site.name}")
    if password is None:
        click.echo(f"password (shown once): {created}")


@datasite.command(
    help="Back up CONFIG's datasite (database, blobs, identity, config, held results) into "
    "the new folder DEST, also while it runs."
)
@click.argument("config")
@click.argument("dest", type=click.Path(path_type=Path))
def backup(config: str, dest: Path) -> None:
    from workbench.remote.backup import backup_datasite

    done = backup_datasite(_config(config), dest)
    click.echo(
        f"{done.factory} backed up to {done.folder}: {done.files} files, {done.megabytes:.1f} MB "
        f"({done.databases} database snapshot(s), {done.blobs} blob(s)) in {done.seconds:.2f} s"
    )


@datasite.command(
    help="Restore the backup folder BACKUP as the datasite of CONFIG (written from the backup "
    "if it does not exist) and start it: same identity, same data."
)
@click.argument("backup", type=click.Path(path_type=Path))
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--start/--no-start", default=True, show_default=True, help="Start it once restored.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for it.")
def restore(backup: Path, config: Path, start: bool, timeout: float) -> None:
    from workbench.remote.backup import restore_datasite

    done = restore_datasite(backup, config, start=start, timeout=timeout)
    click.echo(
        f"{done.factory} restored into {done.state_dir}: {done.files} files, "
        f"{done.megabytes:.1f} MB, checksums verified, in {done.seconds:.2f} s"
    )
    site = _config(str(done.config))
    if done.pid is None:
        click.echo(f"start it with: workbench datasite up {done.config}")
    else:
        click.echo(
            f"{site.name} is up on {site.url} (pid {done.pid}) with identity "
            f"{done.server_uid[:12]}...: researchers log in as before"
        )


@datasite.command(
    help="List the files researchers' runs left at CONFIG's factory (fine-tuned weights); "
    "with --release, copy one run's files out: the admin's release decision, audited."
)
@click.argument("config")
@click.option("--release", "token", default=None, help="The kept output to release (its token).")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="New folder to copy the released files into (with --release).",
)
def kept(config: str, token: str | None, out: Path | None) -> None:
    from workbench.remote.kept import export_kept, kept_folder, kept_output, kept_outputs

    site = _config(config)
    if token is None:
        if out is not None:
            raise WorkbenchError("--out goes with --release TOKEN")
        records = kept_outputs(site.state_dir)
        if not records:
            click.echo(f"{site.name} keeps no files of researchers' runs")
        for record in records:
            click.echo(
                f"{record.token}  {record.kept_at}  {record.function} by {record.researcher}: "
                f"{record.describe_files()}  [{kept_folder(site.state_dir, record.token)}]"
            )
        return
    if out is None:
        raise WorkbenchError("--release needs --out: a new folder to copy the files into")
    record = kept_output(site.state_dir, token)
    written = export_kept(site.state_dir, token, out, by=site.admin_email)
    click.echo(f"released {len(written)} file(s) of {record.function} ({token}) into {out}")
