"""Crash recovery, piece by piece, without a running datasite.

The recovery patches (``workbench/remote/_recovery.py``) on a real in-process syft
server (its own SQLite database, no network, no job queue), and the state checks the
launcher makes before it starts anything. The end-to-end proof, with real datasites
killed by SIGKILL, is ``tests/test_faults.py``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import types
from pathlib import Path

import pytest
from syft.server.server import Server
from syft.server.worker_settings import WorkerSettings
from syft.service.code.user_code import UserCode
from syft.service.code.user_code_service import UserCodeService
from syft.service.job.job_stash import Job, JobStatus
from syft.service.log.log import SyftLog
from syft.service.output.output_service import ExecutionOutput
from syft.service.queue.queue_stash import QueueItem, Status
from syft.service.worker.worker_pool_service import SyftWorkerPoolService
from syft.store.blob_storage.on_disk import OnDiskBlobStorageConnection
from syft.store.linked_obj import LinkedObject
from syft.types.blob_storage import SecureFilePathLocation
from syft.types.uid import UID

from workbench.errors import WorkbenchError
from workbench.remote import _recovery, held
from workbench.remote.config import config_from_dict
from workbench.remote.launch import check_state


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real syft server in this process: stores only, no producer, no workers."""
    folder = tmp_path_factory.mktemp("server")
    os.environ.setdefault("SYFT_TEMP_ROOT", str(folder))
    return Server(
        name="unit",
        db_url=f"sqlite:///{folder / 'datasite.sqlite'}",
        reset=True,
        n_consumers=0,
        create_producer=False,
        in_memory_workers=False,
    )


def stored_job(server, status: JobStatus) -> Job:
    log = SyftLog(job_id=UID())
    server.services.log.stash.set(server.verify_key, log).unwrap()
    job = Job(id=log.job_id, server_uid=server.id, status=status, log_id=log.id)
    return server.job_stash.set(server.verify_key, job).unwrap()


def stored_item(server, job: Job, status: Status, settings=None) -> QueueItem:
    pool = server.get_default_worker_pool().unwrap()
    item = QueueItem(
        id=UID(),
        server_uid=server.id,
        syft_client_verify_key=server.verify_key,
        syft_server_location=server.id,
        job_id=job.id,
        worker_settings=settings or WorkerSettings.from_server(server),
        args=[],
        kwargs={},
        has_execute_permissions=False,
        worker_pool=LinkedObject.from_obj(
            pool, service_type=SyftWorkerPoolService, server_uid=server.id
        ),
        status=status,
        method="call",
        service="user_code",
    )
    return server.queue_stash.set(server.verify_key, item).unwrap()


def reread(server, thing):
    stash = server.job_stash if isinstance(thing, Job) else server.queue_stash
    return stash.get_by_uid(server.verify_key, thing.id).unwrap()


# -- the patches -------------------------------------------------------------------------
def test_every_recovery_patch_names_an_attribute_of_the_installed_syft():
    for patch in _recovery.patches(config_from_dict({"name": "factory-x"})):
        assert hasattr(patch.owner, patch.name), patch.where


def test_plan_interrupts_going_runs_and_requeues_taken_items_that_never_started():
    job = types.SimpleNamespace
    jobs = [
        job(id="going", status=JobStatus.PROCESSING),
        job(id="stopping", status=JobStatus.TERMINATING),
        job(id="waiting", status=JobStatus.CREATED),
        job(id="done", status=JobStatus.COMPLETED),
    ]
    taken = [job(job_id=name, status=Status.PROCESSING) for name in ("going", "waiting", "done")]
    plan = _recovery.plan_recovery(jobs, taken)
    assert [j.id for j in plan.interrupt] == ["going", "stopping"]
    assert [i.job_id for i in plan.requeue] == ["waiting"]
    assert [i.job_id for i in plan.close] == ["going", "done"]


def test_recover_ends_a_going_run_as_interrupted_with_the_reason(server, tmp_path):
    going = stored_job(server, JobStatus.PROCESSING)
    taken = stored_item(server, going, Status.PROCESSING)
    finished = stored_job(server, JobStatus.COMPLETED)
    report = _recovery.recover(server, tmp_path)

    job = reread(server, going)
    assert job.status == JobStatus.INTERRUPTED and job.resolved
    assert _recovery.INTERRUPTED_REASON in job.result.message
    log = server.services.log.stash.get_by_uid(server.verify_key, job.log_id).unwrap()
    assert _recovery.INTERRUPTED_REASON in log.stderr  # the admin reads it in the job log
    assert reread(server, taken).status == Status.INTERRUPTED and reread(server, taken).resolved
    assert reread(server, finished).status == JobStatus.COMPLETED
    assert f"job {going.id}" in report.lines()[0]
    assert _recovery.recover(server, tmp_path).interrupted == []  # a second start: nothing


def test_recover_requeues_work_that_never_started_with_this_starts_settings(server, tmp_path):
    waiting = stored_job(server, JobStatus.CREATED)
    taken = stored_item(server, waiting, Status.PROCESSING)
    old = WorkerSettings.from_server(server)
    old.db_config = type(old.db_config)(path=Path("/old/factory"), filename="datasite.sqlite")
    queued = stored_item(server, stored_job(server, JobStatus.CREATED), Status.CREATED, old)
    report = _recovery.recover(server, tmp_path)

    assert report.requeued == 1
    assert reread(server, taken).status == Status.CREATED
    assert reread(server, waiting).status == JobStatus.CREATED
    moved = reread(server, queued).worker_settings.db_config
    assert str(moved.path) == str(server.db_config.path)  # not the old factory's folder


def test_a_held_result_marked_delivered_without_a_stored_output_is_delivered_again(
    server, tmp_path
):
    lost = held.hold(tmp_path, code_id=UID().no_dash, function="f", researcher="r@x", value=1)
    held.mark_delivered(tmp_path, lost)
    code_id = UID()
    received = held.hold(tmp_path, code_id=code_id.no_dash, function="g", researcher="r@x", value=2)
    held.mark_delivered(tmp_path, received)
    link = LinkedObject(
        server_uid=server.id,
        service_type=UserCodeService,
        object_type=UserCode,
        object_uid=code_id,
    )
    output = ExecutionOutput(executing_user_verify_key=server.verify_key, user_code_link=link)
    server.output_stash.set(server.verify_key, output).unwrap()

    report = _recovery.recover(server, tmp_path)
    assert report.undelivered == [f"f (ref {lost.token})"]
    assert held.pending_for_code(tmp_path, lost.code_id).token == lost.token
    assert held.pending_for_code(tmp_path, received.code_id) is None


def test_not_received_keeps_results_whose_run_stored_the_value():
    sent = held.HeldResult("t1", "c1", "f", "r@x", "2024", {}, 2, delivered=True)
    waiting = held.HeldResult("t2", "c2", "f", "r@x", "2024", {}, 2, delivered=False)
    assert _recovery.not_received([sent, waiting], set()) == [sent]
    assert _recovery.not_received([sent, waiting], {"c1"}) == []


def test_recovery_runs_in_the_server_only_and_never_stops_it_from_starting(tmp_path, capsys):
    calls = []
    wrapped = _recovery._recover_first(lambda self, config: calls.append(config), tmp_path)
    wrapped(types.SimpleNamespace(is_subprocess=True), "worker")  # a job's worker: no stores
    assert calls == ["worker"] and capsys.readouterr().err == ""
    wrapped(types.SimpleNamespace(is_subprocess=False), "server")  # stores it cannot read
    assert calls == ["worker", "server"]
    assert capsys.readouterr().err.startswith("recovery: failed (")


def test_blobs_are_read_and_deleted_in_this_starts_folder(tmp_path):
    blob = tmp_path / "new" / "blob"
    blob.mkdir(parents=True)
    (blob / "abc.bytes").write_bytes(b"pixels")
    stored = SecureFilePathLocation(path=str(tmp_path / "old" / "blob" / "abc.bytes"))
    connection = OnDiskBlobStorageConnection(blob)
    with pytest.raises(FileNotFoundError):  # syft alone looks in the old folder
        connection.read(stored, bytes)
    read = _recovery._in_this_blob_folder(OnDiskBlobStorageConnection.read)
    assert read(connection, stored, bytes).syft_object == b"pixels"
    delete = _recovery._in_this_blob_folder(OnDiskBlobStorageConnection.delete)
    delete(connection, stored)
    assert not (blob / "abc.bytes").exists()


def test_interrupted_runs_are_described_for_the_admin():
    runs = [{"function": "f", "researcher": "r@x", "job": "1", "reason": "..."}]
    assert _recovery.describe(runs).startswith("1 (f of r@x)")
    assert _recovery.describe([]) == "none"


# -- state checks before start -------------------------------------------------------------
def factory_state(tmp_path) -> tuple:
    """A stopped factory's state folder: identity, password, database, a blob, a held result."""
    config = config_from_dict({"name": "factory-x", "state": str(tmp_path / "state")})
    state = config.state_dir
    state.mkdir()
    from workbench.remote.identity import admin_password, load_or_create_identity

    uid = load_or_create_identity(state).server_uid_hex
    admin_password(state, "")
    with sqlite3.connect(state / "datasite.sqlite") as database:
        database.execute("create table t (x)")
    (state / uid / "blob").mkdir(parents=True)
    (state / uid / "blob" / "b.bytes").write_bytes(b"pixels")
    held.hold(state, code_id="c", function="f", researcher="r@x", value=1)
    return config, state


def test_a_whole_state_folder_and_a_new_one_pass(tmp_path):
    config, _ = factory_state(tmp_path)
    check_state(config)
    check_state(config_from_dict({"name": "factory-y", "state": str(tmp_path / "new")}))


@pytest.mark.parametrize(
    ("damage", "named", "says"),
    [
        (lambda s: (s / "identity.json").write_text("{garbage"), "identity.json", "damaged"),
        (lambda s: (s / "identity.json").unlink(), "identity.json", "is missing"),
        (lambda s: (s / "datasite.sqlite").write_bytes(b"x" * 4096), "datasite.sqlite", "damaged"),
        (lambda s: (s / "datasite.sqlite").unlink(), "datasite.sqlite", "is missing"),
        (lambda s: (s / "admin-password").unlink(), "admin-password", "is missing"),
        (lambda s: next((s / "held").glob("*.json")).write_text("{"), "held/", "damaged"),
    ],
)
def test_a_damaged_or_missing_state_file_is_named_in_one_line(tmp_path, damage, named, says):
    config, state = factory_state(tmp_path)
    damage(state)
    with pytest.raises(WorkbenchError) as refused:
        check_state(config)
    message = str(refused.value)
    assert named in message and says in message and "\n" not in message
    assert "workbench datasite restore" in message or named == "identity.json"


def test_a_truncated_database_is_refused(tmp_path):
    config, state = factory_state(tmp_path)
    with sqlite3.connect(state / "datasite.sqlite") as database:
        database.executemany("insert into t values (?)", [("x" * 500,)] * 200)
    size = (state / "datasite.sqlite").stat().st_size
    os.truncate(state / "datasite.sqlite", size // 2)
    with pytest.raises(WorkbenchError, match="datasite.sqlite: damaged database"):
        check_state(config)


def test_the_password_may_come_from_the_environment_instead_of_the_file(tmp_path, monkeypatch):
    config, state = factory_state(tmp_path)
    (state / "admin-password").unlink()
    monkeypatch.setenv(config.password_env, "from the environment")
    check_state(config)
    assert json.loads((state / "identity.json").read_text())["server_uid"]
