"""The syft patch registry and each patch's own logic, without a running datasite.

The end-to-end proof that each patch closes its gap on a real datasite (and that the
gap is open without it) is in ``tests/test_remote_datasite.py`` and ``tests/security``.
"""

from __future__ import annotations

import types

import pytest
import syft

from workbench.errors import WorkbenchError
from workbench.remote import _hardening, _patches, _syft_fixes
from workbench.remote._patches import SYFT_VERSION, Patch, install
from workbench.remote.config import config_from_dict


def test_installed_syft_is_the_version_the_patches_are_written_for():
    assert syft.__version__ == SYFT_VERSION


def test_every_patched_name_exists_in_the_installed_syft():
    config = config_from_dict({"name": "factory-x"})
    every = _syft_fixes.patches() + _syft_fixes.upload_patches() + _hardening.patches(config)
    for patch in every:
        assert hasattr(patch.owner, patch.name), patch.where


def test_another_syft_version_is_refused_before_anything_changes():
    target = types.SimpleNamespace(call=lambda: "original")
    with pytest.raises(WorkbenchError, match="syft 0.10.0 is installed"):
        install(
            [Patch(target, "call", lambda original: lambda: "patched", "x")], syft_version="0.10.0"
        )
    assert target.call() == "original"


def test_a_missing_name_is_refused_before_anything_changes():
    target = types.SimpleNamespace(call=lambda: "original")
    patches = [
        Patch(target, "call", lambda original: lambda: "patched", "x"),
        Patch(target, "gone", lambda original: original, "y"),
    ]
    with pytest.raises(WorkbenchError, match="has no .*gone to patch"):
        install(patches, syft_version=SYFT_VERSION)
    assert target.call() == "original"


def test_installing_twice_wraps_once():
    target = types.SimpleNamespace(count=lambda: 1)
    patch = Patch(target, "count", lambda original: lambda: original() + 1, "add one")
    install([patch], syft_version=SYFT_VERSION)
    install([patch], syft_version=SYFT_VERSION)
    assert target.count() == 2 and _patches.installed(target, "count")


def test_run_limit_patch_turns_an_invalid_policy_into_a_refusal():
    allowed = _hardening.IsExecutionAllowedEnum.ALLOWED
    wrapped = _hardening._enforce_run_limits(lambda self, code, context, policy: allowed)
    spent = types.SimpleNamespace(is_valid=lambda context: False)
    fresh = types.SimpleNamespace(is_valid=lambda context: True)
    assert wrapped(None, None, None, fresh) is allowed
    assert (
        wrapped(None, None, None, spent) is _hardening.IsExecutionAllowedEnum.INVALID_OUTPUT_POLICY
    )


def test_log_patch_withholds_output_from_everyone_but_the_admin():
    role = _hardening.ServiceRole
    wrapped = _hardening._withhold_log(
        lambda self, context, uid: types.SimpleNamespace(stdout="SECRET", stderr="trace")
    )
    researcher = wrapped(None, types.SimpleNamespace(role=role.DATA_SCIENTIST), 1)
    admin = wrapped(None, types.SimpleNamespace(role=role.ADMIN), 1)
    assert "SECRET" not in researcher.stdout and researcher.stderr == ""
    assert admin.stdout == "SECRET"


def test_guest_patch_refuses_every_call_of_a_guest():
    role = _hardening.ServiceRole
    server = types.SimpleNamespace(
        get_role_for_credentials=lambda credentials: {"guest": role.GUEST}.get(
            credentials, role.DATA_SCIENTIST
        )
    )
    wrapped = _hardening._refuse_guests(lambda self, api_call, *a, **k: "answer")
    with pytest.raises(Exception, match="shares nothing with guests"):
        wrapped(server, types.SimpleNamespace(credentials="guest"))
    assert wrapped(server, types.SimpleNamespace(credentials="ana")) == "answer"


def test_queue_patch_binds_to_loopback():
    bound = []
    wrapped = _hardening._bind_to_loopback(lambda self, endpoint: bound.append(endpoint))
    wrapped(None, "tcp://*:5555")
    assert bound == ["tcp://127.0.0.1:5555"]


def test_twin_patch_records_which_data_the_run_sees():
    twin = _hardening.TwinMode
    wrapped = _hardening._record_twin_mode(lambda kwargs, twin_mode, allow_python_types: kwargs)
    wrapped({}, twin_mode=twin.MOCK, allow_python_types=True)
    assert _hardening._twin_mode.get() is twin.MOCK
    wrapped({}, twin.PRIVATE)
    assert _hardening._twin_mode.get() is twin.PRIVATE


def test_images_of_a_run_are_counted_once_per_private_asset():
    two, one = {"images": [0, 1]}, {"images": [2]}
    refs = {"images_000": "asset-2", "images_001": "asset-1"}
    assets = {"asset-1", "asset-2"}
    assert _hardening.count_images({"images_000": two, "images_001": one}, refs, assets) == 3
    # Padding: the same asset twice, a constant batch, an object that is no dataset asset.
    padded = {"images_000": two, "images_001": two, "pad": {"images": [0, 0, 0]}, "own": one}
    refs = {
        "images_000": "asset-2",
        "images_001": "asset-2",
        "pad": {"images": [0, 0, 0]},
        "own": "uploaded-by-researcher",
    }
    assert _hardening.count_images(padded, refs, assets) == 2


def test_policy_patch_refuses_a_request_that_brings_its_own_policy_code():
    from syft.service.policy.policy import SubmitUserPolicy, UserPolicy

    wrapped = _hardening._refuse_policy_code_at_submission(lambda self, context, code: "stored")
    builtin = types.SimpleNamespace(input_policy_type=type, output_policy_type=type)
    own = types.SimpleNamespace(
        input_policy_type=type, output_policy_type=SubmitUserPolicy.model_construct()
    )
    assert wrapped(None, None, builtin) == "stored"
    with pytest.raises(Exception, match="only syft's own input and output policies"):
        wrapped(None, None, own)
    stored = types.SimpleNamespace(
        input_policy_type=UserPolicy.model_construct(), output_policy_type=type
    )
    loader = _hardening._refuse_policy_code(lambda self: "policy object")
    assert loader(builtin) == "policy object"
    with pytest.raises(Exception, match="outside the sandbox"):
        loader(stored)


def test_a_queued_job_wakes_the_producer_at_once():
    import threading
    import time

    stored = []
    _syft_fixes._job_queued.clear()  # no wake left over from another test in this process
    set_placeholder = _syft_fixes._wake_producer_after(lambda self, item: stored.append(item))
    threading.Timer(0.2, set_placeholder, args=(None, "job")).start()
    started = time.monotonic()
    _syft_fixes._sleep_until_a_job_is_queued(10.0)
    assert stored == ["job"] and time.monotonic() - started < 5.0
    started = time.monotonic()
    _syft_fixes._sleep_until_a_job_is_queued(0.3)  # the wake was used up: a full pause
    assert time.monotonic() - started >= 0.25


def test_a_look_that_queued_a_job_wakes_the_dispatchers_poll():
    import time
    import types

    import zmq

    service = types.SimpleNamespace(requests=[])
    producer = types.SimpleNamespace(services={"default-pool": service})
    poller = _syft_fixes._WakeablePoller(producer)
    socket = zmq.Context.instance().socket(zmq.ROUTER)
    socket.bind("inproc://workbench-test-dispatcher")
    poller.register(socket, zmq.POLLIN)
    try:
        poller.wake_if_queued()  # nothing queued: no wake, the poll waits its time
        started = time.monotonic()
        assert poller.poll(300) == []
        assert time.monotonic() - started >= 0.25
        service.requests.append(b"job")
        poller.wake_if_queued()
        started = time.monotonic()
        assert poller.poll(10_000) == []  # woken, and the socket is never read
        assert time.monotonic() - started < 5.0
    finally:
        socket.close(linger=0)


def test_dispatching_a_job_does_not_read_stored_inputs():
    import types

    from syft.service.action.action_data_empty import ActionDataEmpty
    from syft.service.action.action_object import ActionObject
    from syft.types.uid import UID

    stored = ActionObject.from_obj([1, 2, 3])
    stored.syft_blob_storage_entry_id = UID()
    stored.syft_action_data_cache = ActionDataEmpty()
    in_memory = ActionObject.from_obj([4, 5])
    store = {stored.id: stored, in_memory.id: in_memory}
    walked = []
    check = _syft_fixes._stop_at_stored_values(
        lambda self, arg, recursion=0: walked.append(arg) or "walked"
    )
    producer = types.SimpleNamespace(
        auth_context=None,
        action_service=types.SimpleNamespace(get=lambda context, uid: store[uid]),
    )
    assert check(producer, stored.id).unwrap() is False  # its blob is never read
    assert check(producer, in_memory.id) == "walked"  # syft's own walk, unchanged
    assert walked == [in_memory]


def test_the_producer_gets_no_running_items_and_the_rest_unchanged():
    from syft.service.queue.queue_stash import Status

    calls = []
    get_by_status = _syft_fixes._no_running_items(
        lambda self, credentials, status: calls.append(status) or "read"
    )
    assert get_by_status(None, "key", Status.PROCESSING).unwrap() == []
    assert get_by_status(None, "key", Status.CREATED) == "read"
    assert calls == [Status.CREATED]


def test_the_action_store_is_scanned_only_when_a_class_is_pending():
    from syft.types.result import Ok

    scans = []
    scan = _syft_fixes._scan_only_when_pending(
        lambda self, context, get_all=False: scans.append(get_all) or Ok({"scanned": 1})
    )
    for pending, get_all, in_a_job, expected, scanned in (
        ([], False, False, {}, []),
        (["ActionObject"], False, False, {"scanned": 1}, [False]),
        (["ActionObject"], False, True, {}, []),  # the datasite's server scanned at start
        ([], True, False, {"scanned": 1}, [True]),
    ):
        scans.clear()
        service = types.SimpleNamespace(
            _find_klasses_pending_for_migration=lambda context, object_types, p=pending: Ok(p)
        )
        context = _context(in_a_job)
        assert scan(service, context, get_all=get_all).unwrap() == expected
        assert scans == scanned


def _context(in_a_job: bool) -> types.SimpleNamespace:
    """A service context of the datasite's server, or of a Server a job built."""
    return types.SimpleNamespace(server=types.SimpleNamespace(is_subprocess=in_a_job))


def test_a_jobs_server_does_not_load_every_submitted_function():
    loads = []
    load_user_code = _syft_fixes._load_code_in_server_only(
        lambda self, context: loads.append(context)
    )
    load_user_code(None, _context(in_a_job=True))
    assert loads == []
    server_context = _context(in_a_job=False)
    load_user_code(None, server_context)
    assert loads == [server_context]


def test_a_job_reads_a_stored_input_once():
    from syft.service.action.action_data_empty import ActionDataEmpty
    from syft.service.action.action_object import ActionObject
    from syft.types.uid import UID

    stored = ActionObject.from_obj({"images": [1, 2]})
    stored.syft_blob_storage_entry_id = UID()
    stored.syft_action_data_cache = ActionDataEmpty()
    in_memory = ActionObject.from_obj([ActionObject.from_obj(4)])
    store = {stored.id: stored, in_memory.id: in_memory}
    flattened = []
    flatten = _syft_fixes._flatten_only_unstored(lambda self, context, arg: flattened.append(arg))
    service = types.SimpleNamespace(get=lambda context, uid: store[uid])
    context = types.SimpleNamespace(as_root_context=lambda: "root")
    flatten(service, context, stored.id)  # its blob is not read to look inside
    flatten(service, context, in_memory.id)  # syft's own flattening, unchanged
    assert flattened == [in_memory.id]


def test_every_sqlite_connection_gets_syfts_settings(tmp_path):
    from syft.server.credentials import SyftSigningKey
    from syft.store.db.sqlite import SQLiteDBConfig, SQLiteDBManager
    from syft.types.uid import UID

    def synchronous_levels(manager_class) -> list[int]:
        config = SQLiteDBConfig(path=tmp_path, filename=f"{manager_class.__name__}.db")
        key = SyftSigningKey.generate().verify_key
        manager = manager_class(config=config, server_uid=UID(), root_verify_key=key)
        with manager.engine.connect() as first, manager.engine.connect() as second:
            return [c.exec_driver_sql("PRAGMA synchronous").scalar() for c in (first, second)]

    patched = _syft_fixes._settings_on_every_connection(SQLiteDBManager.update_settings)
    fixed = type("Fixed", (SQLiteDBManager,), {"update_settings": patched})
    assert synchronous_levels(fixed) == [1, 1]  # NORMAL: no disk sync per commit
    assert 2 in synchronous_levels(SQLiteDBManager)  # syft's own: FULL on the working ones


def test_a_taken_queue_port_is_chosen_again():
    import zmq

    config = types.SimpleNamespace(queue_port=None)
    ports = iter([4001, 4002])
    bound = []

    def add_producer(self, queue_name, port=None):  # syft's: choose a port, then bind it
        if self.config.queue_port is None:
            self.config.queue_port = next(ports)
        if self.config.queue_port == 4001:  # taken by another process meanwhile
            raise zmq.ZMQError(zmq.EADDRINUSE)
        bound.append(self.config.queue_port)
        return "producer"

    queue_client = types.SimpleNamespace(config=config)
    with pytest.raises(zmq.ZMQError):
        add_producer(queue_client, "api_call")  # syft's own: the start fails
    config.queue_port, ports = None, iter([4001, 4002])
    patched = _syft_fixes._another_port_if_taken(add_producer)
    assert patched(queue_client, "api_call") == "producer" and bound == [4002]
    config.queue_port = 4001  # a port the factory chose itself is not changed behind its back
    with pytest.raises(zmq.ZMQError):
        patched(queue_client, "api_call")
