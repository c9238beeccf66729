"""Back up a factory datasite while it runs; restore it into another folder or machine.

A backup is a folder (mode 0700, every file 0600: it holds the private images and the
factory's secrets)::

    DEST/manifest.json    factory, server id, when, and every file's size and SHA-256
    DEST/config.toml      the factory's TOML file
    DEST/state/...        the state folder: database, blobs, identity, admin password,
                          held results, kept files (fine-tuned weights), and whatever
                          else lives there (tools, keys, logs of decisions)

Every SQLite database in the state folder (``datasite.sqlite``, but also any other a
component keeps there) is copied with SQLite's online backup API: one consistent
snapshot, taken while the datasite keeps writing. The database goes first, then the
other files: a blob or a held result the snapshot refers to was written before it,
so the copy has it; a run that finishes during the backup is, in the copy, a run that
was going, which the restored datasite ends as interrupted (the researcher starts it
again). Runtime files (pid, ready, log, SQLite's ``-wal``/``-shm`` files) are left
out. The backup is written under a temporary name and renamed at the end: a folder
called DEST is always a whole backup.

Restoring checks every file against the manifest before writing anything, writes the
state folder under a temporary name next to its final place, renames it, and starts
the datasite: the same identity (signing key and server id), so researchers log in to
it as before and find every dataset, request, approval and result.

Examples
--------
>>> from workbench.remote.config import load_config
>>> config = load_config("datasites/factory-a.toml")  # doctest: +SKIP
>>> backup_datasite(config, "/backups/factory-a-monday")  # doctest: +SKIP
BackupSummary(factory='factory-a', folder=PosixPath('/backups/factory-a-monday'), files=9, ...)
>>> restore_datasite("/backups/factory-a-monday", "/srv/factory-a.toml")  # doctest: +SKIP
RestoreSummary(factory='factory-a', state_dir=PosixPath('/srv/state/factory-a'), ...)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.remote.config import DatasiteConfig, config_from_dict, load_config
from workbench.remote.identity import IDENTITY_FILE, load_or_create_identity

MANIFEST = "manifest.json"
CONFIG = "config.toml"
STATE = "state"
FORMAT = 1
_SQLITE_HEADER = b"SQLite format 3\x00"
_RUNTIME_SUFFIXES = (".pid", ".ready", ".log", ".tmp", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class BackupSummary:
    """What :func:`backup_datasite` wrote.

    Attributes
    ----------
    factory : str
    folder : Path
        The backup.
    files, databases, blobs : int
        Files in all; of them, SQLite snapshots and blob files.
    megabytes : float
        Size of the backup.
    seconds : float
        Time taken.
    """

    factory: str
    folder: Path
    files: int
    databases: int
    blobs: int
    megabytes: float
    seconds: float


@dataclass(frozen=True)
class RestoreSummary:
    """What :func:`restore_datasite` did.

    Attributes
    ----------
    factory : str
    config : Path
        The TOML file the datasite runs from.
    state_dir : Path
        Where the state folder now is.
    server_uid : str
        The factory's identity (the same as the backed-up one).
    files : int
    megabytes : float
    seconds : float
        Time taken to check and write the files.
    pid : int or None
        The started datasite's launcher, or None if it was not started.
    """

    factory: str
    config: Path
    state_dir: Path
    server_uid: str
    files: int
    megabytes: float
    seconds: float
    pid: int | None


def backup_datasite(config: DatasiteConfig, dest: str | Path) -> BackupSummary:
    """Write a consistent backup of the factory of `config` into the new folder `dest`.

    The datasite may be running (nothing stops or waits) or down.

    Parameters
    ----------
    config : DatasiteConfig
        The factory (its TOML file is part of the backup).
    dest : str or Path
        A folder that does not exist yet (or is empty).

    Returns
    -------
    BackupSummary

    Raises
    ------
    WorkbenchError
        If the factory has no state to back up, keeps its data in PostgreSQL, `dest`
        is not empty, or a disk error stops the copy (then no `dest` is left).
    """
    started = time.perf_counter()
    state = config.state_dir
    _check_backup_source(config)
    dest = Path(dest).resolve()
    if dest.is_relative_to(state):
        raise WorkbenchError(f"{dest} is inside the state folder it would back up")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise WorkbenchError(f"{dest} exists and is not an empty folder: choose a new one")
    partial = dest.with_name(f".{dest.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _private_dir(partial / STATE)
        databases = [path for path in _state_files(state) if _is_sqlite(path)]
        for path in databases:  # first: whatever the snapshot refers to exists by now
            _snapshot_sqlite(path, partial / STATE / path.relative_to(state))
        for path in _state_files(state):
            if path not in databases:
                _copy_private(path, partial / STATE / path.relative_to(state))
        if config.path is not None:
            _copy_private(Path(config.path), partial / CONFIG)
        files = _checksums(partial)
        manifest = {
            "format": FORMAT,
            "factory": config.name,
            "server_uid": load_or_create_identity(state).server_uid_hex,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
        }
        _write_private(partial / MANIFEST, json.dumps(manifest, indent=1) + "\n")
        if dest.exists():
            dest.rmdir()
        partial.rename(dest)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise WorkbenchError(f"backup of {config.name} to {dest} failed: {error}") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return BackupSummary(
        factory=config.name,
        folder=dest,
        files=len(files) + 1,
        databases=len(databases),
        blobs=sum(1 for name in files if "/blob/" in name),
        megabytes=sum(entry["bytes"] for entry in files.values()) / 1e6,
        seconds=time.perf_counter() - started,
    )


def read_manifest(backup: str | Path) -> dict:
    """The manifest of the backup folder `backup`, checked against every file in it.

    Raises
    ------
    WorkbenchError
        If `backup` is not a backup, or a file is missing or differs from the manifest
        (the message names the first such file).

    Examples
    --------
    >>> read_manifest("/tmp")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: /tmp is not a datasite backup (no manifest.json)
    """
    backup = Path(backup)
    try:
        manifest = json.loads((backup / MANIFEST).read_text())
    except FileNotFoundError:
        raise WorkbenchError(f"{backup} is not a datasite backup (no {MANIFEST})") from None
    except (OSError, ValueError) as error:
        raise WorkbenchError(f"{backup / MANIFEST}: damaged backup manifest ({error})") from None
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("files"), dict):
        raise WorkbenchError(f"{backup / MANIFEST}: not a backup this workbench can read")
    for name, expected in manifest["files"].items():
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise WorkbenchError(f"{backup / MANIFEST}: names a file outside the backup: {name}")
        path = backup / name
        if not path.is_file():
            raise WorkbenchError(f"backup {backup} is incomplete: {name} is missing")
        if _sha256(path) != expected["sha256"]:
            raise WorkbenchError(f"backup {backup} is damaged: {name} differs from its checksum")
    return manifest


def restore_datasite(
    backup: str | Path, config_path: str | Path, *, start: bool = True, timeout: float = 120.0
) -> RestoreSummary:
    """Restore the backup folder `backup` as the datasite of `config_path`, then start it.

    Parameters
    ----------
    backup : str or Path
        A folder written by :func:`backup_datasite`.
    config_path : str or Path
        The factory's TOML file on this machine. If it does not exist, the backed-up
        one is written there (a relative ``state`` then resolves next to it). It must
        name the same factory; its state folder must not exist or be empty.
    start : bool
        Start the datasite once restored.
    timeout : float
        Seconds to wait for it to answer.

    Returns
    -------
    RestoreSummary

    Raises
    ------
    WorkbenchError
        A damaged or incomplete backup, another factory's config, a state folder that
        holds data, or a datasite already running there. Nothing is written then.
    """
    started = time.perf_counter()
    backup = Path(backup).resolve()
    manifest = read_manifest(backup)
    config_path = Path(config_path).resolve()
    new_config = not config_path.exists()
    if new_config and not (backup / CONFIG).is_file():
        raise WorkbenchError(f"{config_path} does not exist and {backup} holds no config")
    config = _restored_config(backup, config_path) if new_config else load_config(config_path)
    _check_restore_target(config, manifest)
    state = config.state_dir
    partial = state.with_name(f".{state.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _private_dir(partial)
        for name in manifest["files"]:
            if Path(name).parts[0] == STATE:
                _copy_private(backup / name, partial / Path(name).relative_to(STATE))
        if state.exists():
            state.rmdir()  # checked empty above
        partial.rename(state)
        if new_config:
            shutil.copyfile(backup / CONFIG, config_path)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise WorkbenchError(f"restore of {config.name} into {state} failed: {error}") from None
    seconds = time.perf_counter() - started
    pid = None
    if start:
        from workbench.remote.launch import start_datasite

        pid = start_datasite(config, timeout=timeout)
    files = manifest["files"]
    return RestoreSummary(
        factory=config.name,
        config=config_path.resolve(),
        state_dir=state,
        server_uid=manifest["server_uid"],
        files=len(files),
        megabytes=sum(entry["bytes"] for entry in files.values()) / 1e6,
        seconds=seconds,
        pid=pid,
    )


def _check_backup_source(config: DatasiteConfig) -> None:
    if config.db_url:
        raise WorkbenchError(
            f"{config.name} keeps its data in {config.db_url.split(':', 1)[0]}: back it up "
            "with that database's own tools (pg_dump), and this state folder with them"
        )
    for name in (IDENTITY_FILE, "datasite.sqlite"):
        if not (config.state_dir / name).is_file():
            raise WorkbenchError(
                f"{config.name} has nothing to back up: {config.state_dir / name} is missing"
            )


def _restored_config(backup: Path, config_path: Path) -> DatasiteConfig:
    """The backed-up config as it will read at `config_path` (relative paths move along)."""
    try:
        raw = tomllib.loads((backup / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise WorkbenchError(f"{backup / CONFIG}: damaged config in the backup ({error})") from None
    return config_from_dict(raw, config_path)


def _check_restore_target(config: DatasiteConfig, manifest: dict) -> None:
    from workbench.remote.launch import datasite_pid

    if config.name != manifest.get("factory"):
        raise WorkbenchError(
            f"{config.path} is factory {config.name}, the backup is of {manifest.get('factory')}"
        )
    if config.db_url:
        raise WorkbenchError(f"{config.path}: a backup restores into SQLite only (db_url is set)")
    if datasite_pid(config) is not None:
        raise WorkbenchError(f"datasite {config.name} is running from {config.state_dir}")
    state = config.state_dir
    if state.exists() and (not state.is_dir() or any(state.iterdir())):
        raise WorkbenchError(
            f"{state} is not empty: restore into a new state folder (or move this one away)"
        )


def _state_files(folder: Path) -> list[Path]:
    """Files of a state folder worth keeping: no runtime files, no SQLite side files."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and not path.name.endswith(_RUNTIME_SUFFIXES)
    )


def _is_sqlite(path: Path) -> bool:
    with contextlib.suppress(OSError), open(path, "rb") as handle:
        return handle.read(len(_SQLITE_HEADER)) == _SQLITE_HEADER
    return False


def _snapshot_sqlite(source: Path, target: Path) -> None:
    """One consistent copy of a live SQLite database (its WAL included)."""
    _private_dir(target.parent)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(descriptor)
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as live,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        live.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
    os.chmod(target, 0o600)


def _copy_private(source: Path, target: Path) -> None:
    _private_dir(target.parent)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as reader, os.fdopen(descriptor, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as writer:
        writer.write(text)


def _private_dir(folder: Path) -> None:
    """Create `folder`, and each missing folder above it, readable by the owner only."""
    if folder.is_dir():
        return
    _private_dir(folder.parent)
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)


def _checksums(folder: Path) -> dict[str, dict]:
    return {
        str(path.relative_to(folder)): {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
