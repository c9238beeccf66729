"""Faults a factory datasite survives: a real loopback datasite, killed for real.

One hardened datasite (``release = "review"``) is shared by the module. Each kill is
SIGKILL to its whole process group (launcher, server child, job worker, sandbox): a
power cut or ``kill -9``. It is started again and the test checks what must hold: no
partial dataset, no lost approval, the run recoverable without a new approval, the
held result delivered once, the audit chain whole, and the researcher's client (the
same object throughout) working on. Then a full disk during an upload, damaged or
missing state files at start, and a backup taken while a run is going, restored into
an empty folder after the original is moved away.

The tests build on each other in file order (the run killed in one is released in
the next); the datasite's images are tiny, the functions sleep a few seconds at most.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.privacy import audit
from workbench.remote import _recovery, client, held, launch, review
from workbench.remote._scratch import free_port
from workbench.remote._syft_calls import code_inputs, quiet
from workbench.remote.admin import add_researcher, admin_login
from workbench.remote.backup import backup_datasite, restore_datasite
from workbench.remote.config import load_config
from workbench.remote.identity import load_or_create_identity
from workbench.remote.launch import datasite_pid, start_datasite, stop_datasite
from workbench.remote.upload import image_batch, upload_batches

pytestmark = pytest.mark.slow

DATASET = "line-1"  # three tiny images, kept in the database
BLOBBED = "line-2"  # three noise frames over 1 MB: kept as a blob file
RESEARCHER = "ana@uni.example"
TIMEOUT = 180
PRIVATE = [np.random.default_rng(i).integers(0, 256, (48, 64), np.uint8) for i in range(3)]
PRIVATE_MEAN = float(np.mean([np.mean(frame) for frame in PRIVATE]))
RESTARTS: list[float] = []  # seconds from kill to a datasite that answers again


# -- functions researchers submit (module level: syft ships their source) -----------
def approved_before_kill(images):
    return {"images": len(images["images"])}


def slow_fault_run(images):
    import time

    import numpy as np

    time.sleep(6)
    return {
        "mean": float(np.mean([np.mean(frame) for frame in images["images"]])),
        "nonce": int(np.random.default_rng().integers(1 << 30)),
    }


def queued_fault_run(images):
    return {"images": len(images["images"])}


def backup_time_run(images):
    import time

    import numpy as np

    time.sleep(6)
    return {"mean": float(np.mean([np.mean(frame) for frame in images["images"]]))}


# -- the datasite and what is done to it ------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    (root / "factory-f.toml").write_text(
        f'name = "factory-f"\nport = {steady_port()}\nstate = "state/factory-f"\n'
        'password_env = ""\nrelease = "review"\n'
    )
    config = load_config(root / "factory-f.toml")
    start_datasite(config)
    try:
        admin = admin_login(config)
        password = add_researcher(admin, RESEARCHER, "Ana")
        batch = image_batch(PRIVATE, ["a.png", "b.png", "c.png"], "legacy", 2.0)
        upload_batches(admin.client, DATASET, [batch], mock_shape=(48, 64), progress=False)
        researcher = client.login([config], RESEARCHER, password)
        yield {"config": config, "admin": admin, "r": researcher, "password": password}
    finally:
        stop_datasite(config)


def steady_port() -> int:
    """A free port below the system's ephemeral range.

    While a datasite is down, any outgoing connection on the machine may take an
    ephemeral port as its own, and the restart would find its port in use.
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(20000, low), 500):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


def kill(config) -> None:
    """SIGKILL the datasite's whole process group; return once none of it runs."""
    leader = int(config.state_file(launch.PID_FILE).read_text())
    launch._signal_group(leader, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while launch._group_alive(leader) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not launch._group_alive(leader)


def restart(site, killed_at: float) -> None:
    """Start the killed datasite again; the admin logs in anew, the researcher does not."""
    start_datasite(site["config"])
    RESTARTS.append(time.monotonic() - killed_at)
    site["admin"] = admin_login(site["config"])
    assert audit.verify(site["config"].state_dir) is None  # the audit chain is whole


def request_for(admin, function_name):
    return next(r for r in review.list_requests(admin) if r.code.service_func_name == function_name)


def submit_and_approve(site, function, dataset=DATASET):
    client.submit(site["r"], function, dataset)
    review.approve(request_for(site["admin"], function.__name__))


def status(site, function_name) -> dict:
    return client.status_table(site["r"], function_name).iloc[0].to_dict()


def wait_until(condition, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def sandboxes_running(function_name: str) -> list[int]:
    """Live sandbox processes running `function_name` (a sandbox takes its run's name)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            name = (entry / "comm").read_text().strip() if entry.name.isdigit() else ""
            zombie = name and (entry / "stat").read_text().rsplit(") ", 1)[-1][0] == "Z"
        except OSError:
            continue
        if name and name == function_name[:15] and not zombie:
            found.append(int(entry.name))
    return found


def blob_folder(config) -> Path:
    return config.state_dir / load_or_create_identity(config.state_dir).server_uid_hex / "blob"


def noise_batches(count: int, shape=(1024, 1280)) -> list[dict]:
    frames = [
        np.random.default_rng(100 + i).integers(0, 256, shape, np.uint8) for i in range(count)
    ]
    return [image_batch([frame], [f"n{i}.png"], "legacy", 2.0) for i, frame in enumerate(frames)]


def dataset_names(datasite_client) -> list[str]:
    with quiet():
        return sorted(dataset.name for dataset in datasite_client.datasets.get_all())


# -- kills -------------------------------------------------------------------------------
def test_kill_during_an_upload_and_between_approval_and_run(site):
    config = site["config"]
    submit_and_approve(site, approved_before_kill)
    blob = blob_folder(config)
    before = set(blob.iterdir())
    failures: list[str] = []

    def upload() -> None:
        try:
            upload_batches(
                site["admin"].client, "big", noise_batches(12), mock_shape=(48, 64), progress=False
            )
        except WorkbenchError as error:
            failures.append(str(error))

    uploading = threading.Thread(target=upload)
    uploading.start()
    wait_until(lambda: len(set(blob.iterdir()) - before) >= 2, "the upload to store a batch")
    killed_at = time.monotonic()
    kill(config)
    uploading.join(TIMEOUT)
    assert len(failures) == 1 and "stopped answering" in failures[0]  # the admin is told
    restart(site, killed_at)

    # No partial dataset: neither the admin nor the researcher sees any of it.
    assert "big" not in dataset_names(site["admin"].client)
    assert "big" not in set(client.datasets_table(site["r"])["dataset"])
    # No lost approval: the approved request runs, with no new review.
    assert status(site, "approved_before_kill")["request"] == "approved"
    assert any(
        tag.startswith(held.APPROVED_CODE_TAG)
        for tag in request_for(site["admin"], "approved_before_kill").tags
    )
    assert list(client.start_runs(site["r"], "approved_before_kill")) == ["factory-f"]
    row = client.wait_for_results(site["r"], "approved_before_kill", timeout=TIMEOUT).iloc[0]
    assert "held for release review" in row["error"]
    # The name is free again; this dataset (over 1 MB) is stored as a blob file.
    noise = noise_batches(3, shape=(640, 800))
    frames = [batch["images"][0] for batch in noise]
    upload_batches(
        site["admin"].client,
        BLOBBED,
        [image_batch(frames, ["x.png", "y.png", "z.png"], "legacy", 2.0)],
        mock_shape=(48, 64),
        progress=False,
    )
    assert BLOBBED in dataset_names(site["admin"].client)


def test_kill_during_a_run_interrupts_it_and_queued_work_runs_after_restart(site):
    config = site["config"]
    submit_and_approve(site, slow_fault_run)
    submit_and_approve(site, queued_fault_run)
    client.start_runs(site["r"], "slow_fault_run")
    wait_until(lambda: status(site, "slow_fault_run")["job"] == "processing", "the run")
    wait_until(lambda: sandboxes_running("slow_fault_run"), "the sandbox")
    client.start_runs(site["r"], "queued_fault_run")  # behind it: the datasite has one worker
    said: list[str] = []
    waited: list = []
    waiting = threading.Thread(
        target=lambda: waited.append(
            client.wait_for_results(
                site["r"],
                "slow_fault_run",
                timeout=TIMEOUT,
                notify=said.append,
                restart_interrupted=False,
            )
        )
    )
    waiting.start()
    time.sleep(1.0)
    assert status(site, "queued_fault_run")["job"] == "created"  # queued, never started

    killed_at = time.monotonic()
    kill(config)
    wait_until(lambda: said, "the researcher to hear of it", timeout=10)
    noticed = time.monotonic() - killed_at
    assert "factory-f stopped answering" in said[0] and noticed < 5
    assert sandboxes_running("slow_fault_run") == []  # no private code runs on
    row = client.status_table(site["r"], "slow_fault_run").iloc[0]
    assert row["request"] == "unreachable" and "does not answer" in row["reason"]
    skipped: list[str] = []
    assert client.start_runs(site["r"], "approved_before_kill", notify=skipped.append) == {}
    assert len(skipped) == 1 and "datasite factory-f does not answer" in skipped[0]
    restart(site, killed_at)

    waiting.join(TIMEOUT)
    assert any("answers again" in line for line in said)
    assert _recovery.INTERRUPTED_REASON in waited[0].iloc[0]["error"]
    interrupted = status(site, "slow_fault_run")
    assert interrupted["job"] == "interrupted"
    assert _recovery.INTERRUPTED_REASON in interrupted["reason"]
    with quiet():
        runs = _recovery.interrupted_runs(site["admin"].client)
    assert [(run["function"], run["researcher"]) for run in runs] == [
        ("slow_fault_run", RESEARCHER)
    ]
    # Queued work that never started runs after the restart, started by nobody.
    wait_until(lambda: status(site, "queued_fault_run")["release"] == "held", "the queued run")
    # The interrupted run starts again on its standing approval: the wait does it.
    table = client.wait_for_results(
        site["r"], "slow_fault_run", timeout=TIMEOUT, notify=said.append
    )
    assert "held for release review" in table.iloc[0]["error"]
    assert any("interrupted by a restart; started again" in line for line in said)
    waiting_results = [h for h in review.held(site["admin"]) if h.function == "slow_fault_run"]
    assert len(waiting_results) == 1 and waiting_results[0].value["mean"] == pytest.approx(
        PRIVATE_MEAN
    )


def test_kill_during_a_release_delivers_the_held_value_exactly_once(site):
    config = site["config"]
    (result,) = [h for h in review.held(site["admin"]) if h.function == "slow_fault_run"]
    review.release(site["admin"], result)
    client.start_runs(site["r"], "slow_fault_run")  # the run that fetches the released value
    # Kill it while that run is going (or, on a slow poll, just after it ended).
    wait_until(
        lambda: status(site, "slow_fault_run")["job"] in ("processing", "completed"), "the fetch"
    )
    killed_at = time.monotonic()
    kill(config)
    restart(site, killed_at)

    row = client.wait_for_results(site["r"], "slow_fault_run", timeout=TIMEOUT).iloc[0]
    assert row["nonce"] == result.value["nonce"]  # the held value, not a new run
    assert row["mean"] == pytest.approx(PRIVATE_MEAN)
    records = [
        h
        for h in held.held_results(config.state_dir, delivered=True)
        if h.function == "slow_fault_run"
    ]
    assert [(h.token, h.delivered) for h in records] == [(result.token, True)]  # no duplicate
    assert not [h for h in review.held(site["admin"]) if h.function == "slow_fault_run"]
    datasite_client = next(iter(site["r"].values()))
    code = client._latest_code(datasite_client, "slow_fault_run")
    with quiet():
        again = datasite_client.code.slow_fault_run(**code_inputs(code), blocking=False)
        again.wait(timeout=TIMEOUT)
    value = client._job_value(again)
    assert isinstance(value, Exception) or value["nonce"] == result.value["nonce"]


# -- a full disk ---------------------------------------------------------------------------
def test_a_full_disk_during_an_upload_ends_in_one_clear_error_with_nothing_stored(
    site, tmp_path, capsys
):
    admin = site["admin"].client
    blob = blob_folder(site["config"])
    with quiet():
        entries = len(admin.api.services.blob_storage.get_all())
    datasets = dataset_names(admin)
    folder = tmp_path / "images"
    folder.mkdir()
    for index, batch in enumerate(noise_batches(3)):
        cv2.imwrite(str(folder / f"frame-{index}.png"), batch["images"][0])
    # The blob disk: room for two of the three 1.3 MB batches.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(blob)], check=True)
    try:
        with pytest.raises(WorkbenchError) as failed:
            upload_batches(
                admin, "full-disk", noise_batches(3), mock_shape=(48, 64), progress=False
            )
        left_by_library = sorted(blob.iterdir())
        from workbench.cli import main

        with pytest.raises(SystemExit) as exited:
            main(["datasite", "upload", str(site["config"].path), str(folder), "--name", "full"])
        left_by_cli = sorted(blob.iterdir())
    finally:
        subprocess.run(["umount", str(blob)], check=True)

    message = str(failed.value)
    assert "disk is full" in message and "nothing of it was kept" in message
    assert left_by_library == [] and left_by_cli == []  # not one half-written blob
    assert exited.value.code != 0
    printed = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in printed if line.startswith("error:")]
    assert len(errors) == 1 and "disk is full" in errors[0] and "Traceback" not in "".join(printed)
    assert dataset_names(admin) == datasets
    with quiet():
        assert len(admin.api.services.blob_storage.get_all()) == entries


# -- damaged state at start ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda state: (state / "identity.json").write_text('{"signing_key": 1'), "identity"),
        (lambda state: (state / "identity.json").unlink(), "identity.json is missing"),
        (
            lambda state: (state / "datasite.sqlite").write_bytes(os.urandom(8192)),
            "damaged database",
        ),
    ],
)
def test_a_damaged_state_file_gives_one_line_and_no_server(site, tmp_path, request, damage, named):
    copy = backup_datasite(site["config"], tmp_path / "backup").folder
    config_path = tmp_path / "factory-f.toml"
    config_path.write_text(f'name = "factory-f"\nport = {free_port()}\nstate = "state"\n')
    restore_datasite(copy, config_path, start=False)
    config = load_config(config_path)
    damage(config.state_dir)
    request.addfinalizer(lambda: stop_datasite(config))  # should a check let it start
    done = subprocess.run(
        [sys.executable, "-m", "workbench", "datasite", "up", str(config_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and named in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert datasite_pid(config) is None and not launch.is_answering(config)
    assert not config.state_file(launch.READY_FILE).exists()


# -- backup while running, restore into an empty folder -------------------------------------
def snapshot(admin_session, researcher) -> dict:
    """What a restore must bring back: datasets, accounts, requests and approvals, results."""
    admin = admin_session.client
    with quiet():
        users = sorted(user.email for user in admin.users.get_all())
    return {
        "datasets": dataset_names(admin),
        "users": users,
        "requests": sorted(
            (r.code.service_func_name, str(r.status), tuple(sorted(r.tags)))
            for r in review.list_requests(admin_session)
        ),
        "held": sorted(
            (h.token, h.delivered)
            for h in held.held_results(admin_session.config.state_dir, delivered=True)
        ),
        "released": client.collect(researcher, "slow_fault_run").iloc[0]["nonce"],
    }


def test_a_backup_taken_while_running_restores_into_an_empty_folder(site, tmp_path, capsys):
    config = site["config"]
    submit_and_approve(site, backup_time_run, BLOBBED)
    client.start_runs(site["r"], "backup_time_run")
    wait_until(lambda: status(site, "backup_time_run")["job"] == "processing", "the run")
    before = snapshot(site["admin"], site["r"])
    from workbench.cli import main

    main(["datasite", "backup", str(config.path), str(tmp_path / "backup")])  # while it runs
    said = capsys.readouterr().out
    assert said.startswith("factory-f backed up to")
    backup = tmp_path / "backup"
    manifest = json.loads((backup / "manifest.json").read_text())
    assert any("/blob/" in name for name in manifest["files"])  # the private images too
    for path in [backup, *backup.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert (backup / "state" / "identity.json").is_file()

    stop_datasite(config)  # the old machine goes: its folder is no longer there
    config.state_dir.rename(config.state_dir.with_name("gone"))
    machine = tmp_path / "new-machine"
    machine.mkdir()
    restored_path = machine / "factory-f.toml"
    try:
        main(["datasite", "restore", str(backup), str(restored_path)])
        said = capsys.readouterr().out
        restored = load_config(restored_path)
        assert restored.state_dir == machine / "state" / "factory-f"
        assert "checksums verified" in said and "factory-f is up" in said

        # The researcher's client from before works on (same address, same identity) ...
        assert client.collect(site["r"], "slow_fault_run").iloc[0]["nonce"] == before["released"]
        # ... and a fresh login finds every dataset, request, approval and result.
        fresh = client.login([restored], RESEARCHER, site["password"])
        admin = admin_login(restored)
        assert snapshot(admin, fresh) == before
        # The run going during the backup is interrupted in the copy; its approval stands,
        # and it runs again on the private blob, read from the new folder.
        assert status({"r": fresh}, "backup_time_run")["job"] == "interrupted"
        assert list(client.start_runs(fresh, "backup_time_run")) == ["factory-f"]
        row = client.wait_for_results(fresh, "backup_time_run", timeout=TIMEOUT).iloc[0]
        assert "held for release review" in row["error"]
        (result,) = [h for h in review.held(admin) if h.function == "backup_time_run"]
        expected = np.mean([np.mean(b["images"][0]) for b in noise_batches(3, shape=(640, 800))])
        assert result.value["mean"] == pytest.approx(expected)
        assert audit.verify(restored.state_dir) is None
    finally:
        if restored_path.exists():
            stop_datasite(load_config(restored_path))
