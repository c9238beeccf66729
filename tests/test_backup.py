"""Backup and restore of a factory's state folder, without a running datasite.

A real state folder (SQLite in WAL mode with a writer busy during the backup, blobs,
identity, password, held results, runtime files) is backed up and restored; damaged
backups and wrong targets are refused before anything is written. The end-to-end
proof (a backup taken while a run is going, restored into an empty folder, the
researcher logging in) is the last test of ``tests/test_faults.py``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
import subprocess
import threading
from pathlib import Path

import pytest
from test_recovery_units import factory_state

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.remote import held
from workbench.remote.backup import backup_datasite, read_manifest, restore_datasite
from workbench.remote.config import load_config
from workbench.remote.identity import load_or_create_identity


@pytest.fixture
def factory(tmp_path):
    """A stopped factory: its TOML file and a whole state folder, runtime files included."""
    _, state = factory_state(tmp_path)
    path = tmp_path / "factory-x.toml"
    path.write_text('name = "factory-x"\nport = 8099\nstate = "state"\n')
    for runtime in ("datasite.pid", "datasite.ready", "datasite.log"):
        (state / runtime).write_text("1\n")
    with sqlite3.connect(state / "datasite.sqlite") as database:
        database.execute("pragma journal_mode=wal")
        database.execute("create table rows (n integer)")
    return load_config(path)


def test_a_backup_holds_the_state_and_config_and_only_the_owner_reads_it(factory, tmp_path):
    summary = backup_datasite(factory, tmp_path / "backup")
    backup = summary.folder
    names = set(read_manifest(backup)["files"])
    assert names >= {
        "config.toml",
        "state/identity.json",
        "state/admin-password",
        "state/datasite.sqlite",
    }
    assert any("/blob/" in name for name in names) and any("/held/" in name for name in names)
    assert not [name for name in names if name.endswith((".pid", ".ready", ".log", "-wal"))]
    assert (summary.databases, summary.blobs) == (1, 1)
    for path in [backup, *backup.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert not list(tmp_path.glob(".backup.partial*"))


def test_the_database_snapshot_is_consistent_while_a_writer_commits(factory, tmp_path):
    database = factory.state_dir / "datasite.sqlite"
    stop, committed = threading.Event(), threading.Event()

    def write() -> None:  # the datasite, committing pairs of rows as fast as it can
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as writer:
            while not stop.is_set():
                with writer:
                    writer.executemany("insert into rows values (?)", [(1,), (2,)])
                committed.set()

    writing = threading.Thread(target=write)
    writing.start()
    try:
        assert committed.wait(30)
        backup = backup_datasite(factory, tmp_path / "backup").folder
    finally:
        stop.set()
        writing.join()
    with contextlib.closing(sqlite3.connect(backup / "state" / "datasite.sqlite")) as copy:
        assert copy.execute("pragma integrity_check").fetchone() == ("ok",)
        ones, twos = copy.execute("select sum(n = 1), sum(n = 2) from rows").fetchone()
    assert ones == twos and ones > 0  # whole transactions only
    assert not (backup / "state" / "datasite.sqlite-wal").exists()


def test_restore_into_an_empty_machine_writes_the_config_and_the_same_identity(factory, tmp_path):
    backup = backup_datasite(factory, tmp_path / "backup").folder
    machine = tmp_path / "machine"
    restored = restore_datasite(backup, machine / "site" / "factory-x.toml", start=False)
    config = load_config(restored.config)
    assert restored.pid is None and config.state_dir == machine / "site" / "state"
    other = tmp_path / "other.toml"
    other.write_text('name = "factory-x"\nport = 8098\nstate = "moved/factory-x"\n')
    moved = restore_datasite(backup, other, start=False)
    assert moved.state_dir == tmp_path / "moved" / "factory-x"
    assert load_or_create_identity(moved.state_dir) == load_or_create_identity(factory.state_dir)
    assert [h.token for h in held.held_results(moved.state_dir)] == [
        h.token for h in held.held_results(factory.state_dir)
    ]
    assert stat.S_IMODE((moved.state_dir / "identity.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(moved.state_dir.stat().st_mode) == 0o700
    assert not (moved.state_dir / "datasite.pid").exists()


def restore_target(tmp_path, name="factory-x", state="restored") -> Path:
    path = tmp_path / f"{name}-target.toml"
    path.write_text(f'name = "{name}"\nport = 8097\nstate = "{state}"\n')
    return path


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (lambda b: (b / "state" / "identity.json").write_text("{}"), "identity.json differs"),
        (lambda b: (b / "state" / "datasite.sqlite").unlink(), "datasite.sqlite is missing"),
        (lambda b: (b / "manifest.json").unlink(), "is not a datasite backup"),
        (lambda b: (b / "manifest.json").write_text("{"), "damaged backup manifest"),
    ],
)
def test_a_damaged_backup_is_refused_before_anything_is_written(factory, tmp_path, spoil, says):
    backup = backup_datasite(factory, tmp_path / "backup").folder
    spoil(backup)
    target = tmp_path / "new" / "factory-x.toml"
    with pytest.raises(WorkbenchError, match=says):
        restore_datasite(backup, target, start=False)
    assert not (tmp_path / "new").exists()


def test_restore_refuses_another_factory_and_a_state_folder_with_data(factory, tmp_path):
    backup = backup_datasite(factory, tmp_path / "backup").folder
    with pytest.raises(WorkbenchError, match="is factory factory-y, the backup is of factory-x"):
        restore_datasite(backup, restore_target(tmp_path, "factory-y"), start=False)
    with pytest.raises(WorkbenchError, match="is not empty"):
        restore_datasite(backup, factory.path, start=False)  # onto the live state folder
    assert not (tmp_path / "restored").exists()


def test_backup_refuses_a_used_destination_and_a_database_it_cannot_snapshot(factory, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "something").write_text("x")
    with pytest.raises(WorkbenchError, match="is not an empty folder"):
        backup_datasite(factory, used)
    with pytest.raises(WorkbenchError, match="inside the state folder"):
        backup_datasite(factory, factory.state_dir / "backup")
    postgres = factory.path.with_name("pg.toml")
    postgres.write_text('name = "factory-x"\nport = 8096\ndb_url = "postgresql://wb@127.0.0.1:5432/y"\n')
    with pytest.raises(WorkbenchError, match="pg_dump"):
        backup_datasite(load_config(postgres), tmp_path / "pg")
    (factory.state_dir / "identity.json").unlink()
    with pytest.raises(WorkbenchError, match="nothing to back up"):
        backup_datasite(factory, tmp_path / "empty")
    assert not (tmp_path / "pg").exists() and not (tmp_path / "empty").exists()


def test_a_full_backup_disk_ends_in_one_clear_error_and_no_half_backup(factory, tmp_path):
    (factory.state_dir / "big.bin").write_bytes(bytes(2 << 20))  # more than the disk holds
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    try:
        with pytest.raises(WorkbenchError) as failed:
            backup_datasite(factory, disk / "backup")
        left = list(disk.iterdir())
    finally:
        subprocess.run(["umount", str(disk)], check=True)
    assert "backup of factory-x" in str(failed.value) and "No space left" in str(failed.value)
    assert left == []  # neither the backup nor its temporary folder


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["datasite", "backup", "no-such.toml", "dest"], "no such datasite config file"),
        (["datasite", "restore", ".", "x.toml", "--no-start"], "is not a datasite backup"),
    ],
)
def test_cli_bad_input_is_one_line_and_a_nonzero_exit(tmp_path, monkeypatch, capsys, argv, says):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    printed = capsys.readouterr()
    assert exited.value.code == 2 and printed.out == ""
    assert (
        printed.err.count("\n") == 1 and printed.err.startswith("error: ") and says in printed.err
    )


def test_cli_backup_and_restore_say_what_they_did(factory, tmp_path, capsys):
    main(["datasite", "backup", str(factory.path), str(tmp_path / "backup")])
    said = capsys.readouterr().out
    assert said.startswith(f"factory-x backed up to {tmp_path / 'backup'}: ")
    assert "1 database snapshot(s), 1 blob(s)" in said
    target = restore_target(tmp_path)
    main(["datasite", "restore", str(tmp_path / "backup"), str(target), "--no-start"])
    said = capsys.readouterr().out.splitlines()
    assert said[0].startswith(f"factory-x restored into {tmp_path / 'restored'}: ")
    assert "checksums verified" in said[0]
    assert said[1] == f"start it with: workbench datasite up {target}"
    assert json.loads((tmp_path / "backup" / "manifest.json").read_text())["factory"] == "factory-x"
