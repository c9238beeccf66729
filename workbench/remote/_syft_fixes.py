"""Fixes for PySyft 0.9.5 bugs that are not security gaps (those are in ``_hardening``).

Installed by the launcher through :mod:`workbench.remote._patches`, always, before
the server child forks:

1. Job consumers after a restart. On first start syft creates the default worker
   pool and one in-memory consumer per worker. On a restart the pool and its workers
   are read back from the database, so ``create_default_worker_pool`` adds no worker
   and starts no consumer, and ``Server.start_in_memory_workers`` skips the default
   pool: every job then waits forever. The wrap starts a consumer for each worker of
   the default pool that has none.
2. A walk over every byte of a result. After each service call syft walks the result
   (``attach_attribute_to_syft_object``) looking for syft objects; a blob read
   returns the serialized asset as ``bytes``, a ``Sequence``, so the walk makes one
   ``isinstance`` call per byte: about 6 s for 26 MB of images, on every run. Strings
   and bytes cannot hold syft objects; the wrap skips them.
3. Jobs in threads, not forked processes. With a port, syft runs every job in a
   ``multiprocessing.Process`` forked from the server process while its other
   threads use SQLite; a fork that lands while one of them holds SQLite's lock
   deadlocks that job, and every job queued behind it, for good (seen in
   ``workbench bench-remote`` and in ``tests/security``). Jobs only orchestrate now
   (researcher code runs in the sandbox, a process started by exec), so the job
   handler runs in a thread of the server, syft's own ``ConsumerType.Thread``.
4. Queue latency and the producer's cost. The job producer looks for new jobs once a
   second and hands them to the dispatcher, which sends them to a worker after its
   poll of the workers' socket, which waits up to a second; a job waited 2-4 s before
   any worker saw it. Now a new queue item wakes the producer at once (its one-second
   look stays, for anything else), and a look that queued a job wakes the
   dispatcher's poll through a pipe registered beside the socket. Each look also read
   every *running* job's queue item back from the database (a JSON parse and a
   signing-key derivation per item) only to skip it (the branch for them is
   ``pass``): with 40 jobs queued by one researcher that was most of a core, for
   nothing. The producer is syft's only caller of ``get_by_status``; it now gets no
   running items (crash recovery reads them with ``get_all``).
5. A fixed pause before every job. ``handle_message_multiprocessing`` sleeps 0.5 s
   before it starts ("a temp hack to prevent some multithreading issues" of forked
   job processes). Jobs run in threads here (3), and the consumer has stored the
   job's state before the thread starts, so the pause only delays every run; the
   queue module's ``time`` loses that one sleep (its job monitor still sleeps 5 s).
6. A scan of the whole action store before every job. The consumer builds a syft
   ``Server`` for each job, and its ``__init__`` runs the data migration, which reads
   and deserializes every action object the datasite holds (every mock, result and
   batch entry) to pick those of classes pending migration, even when no class is
   pending. The time of each job's start grew with the factory's history. The scan
   now runs only when some class is pending (or a caller asks for everything), and
   never in a job's ``Server``: the datasite's server ran it when it started, and
   class versions change only with a new syft, that is with a restart. Each job's
   two ``Server`` objects also read every function ever submitted, and queried each
   one's status, to load custom policy classes into the process (a third of building
   one, and growing with the history); jobs run in the server's own process (3),
   where those classes were loaded at its start, and syft loads them again on
   demand when one is missing, so a job's ``Server`` no longer does.

7. Every input read in full to dispatch a job. Before it hands a job to a worker the
   producer checks that no argument is an unresolved action object, and to do so it
   loads each argument's data from the blob store and walks it for action objects
   nested inside: 0.16-0.2 s per 26 MB batch of images, on every run, for data the
   worker then loads again (ten batches at 200 images: about 2 s). A value kept in
   the blob store is a stored, concrete value (images, or the plain data a sandboxed
   run returns: the sandbox hands back JSON, never action objects), so the check
   stops at a resolved object whose data is in the blob store, without reading it.

8. Every input read twice by each job. Before it runs a function syft "flattens"
   each argument: it loads the argument's data from the blob store to look for action
   objects nested inside it, and drops it; the input policy then loads the same data
   again for the run (0.05-0.1 s per 26 MB batch, ten times that at 200 images). A
   stored value holds none (see 7), so the first load is skipped for it.

9. SQLite's settings on one connection only. syft sets WAL journaling with
   ``synchronous = NORMAL`` (no disk sync per commit; the database stays consistent,
   and a power cut may lose the last commits) and a 5 s busy timeout, but runs the
   ``PRAGMA`` statements on a single connection it opens for the purpose: every
   connection that does the work keeps SQLite's default ``FULL``, a sync of the disk
   at each of the dozens of commits of a job (1.8 ms each on the test machine,
   0.04 ms without). The settings now apply to every connection as it opens.

10. A job queue port taken between its choice and its use. syft picks a free port
    for the job queue, then binds it moments later; a port another process bound in
    between (another datasite starting, a test running beside it) ends the server's
    start with ``Address already in use``. Until the bind succeeds no consumer knows
    the port, so the producer is made again on a newly chosen one (up to 5 times).

Installed by the uploads of :mod:`workbench.remote.upload`, in the uploading process:

11. A round trip through the disk per serialized batch. Above 50 MB syft's serializer
    writes each message to a temporary file and reads it back "to save RAM", at three
    levels of a batch (the batch, its list of images, the dict): 1.7 s of 5.7 s to
    serialize four 12 MP frames, in a profile. A batch is at most ``--batch-mb``
    (100 MB by default), so it is serialized in memory; the bytes are the same.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import weakref

import sqlalchemy
import syft.serde.recursive as serde_recursive
import syft.serde.recursive_primitives as serde_primitives
import syft.serde.serialize as serde_serialize
import syft.service.queue.queue as job_queue
import syft.service.queue.zmq_producer as zmq_producer
import syft.service.service as service
import syft.types.syft_object as syft_object
import zmq
from syft.server.server import Server
from syft.service.action.action_data_empty import ActionDataEmpty
from syft.service.action.action_object import Action, ActionObject
from syft.service.action.action_service import ActionService
from syft.service.code.user_code_service import UserCodeService
from syft.service.migration.migration_service import MigrationService
from syft.service.queue.queue import ConsumerType
from syft.service.queue.queue_stash import QueueStash, Status
from syft.service.queue.zmq_client import ZMQClient
from syft.service.queue.zmq_producer import ZMQProducer
from syft.store.db.sqlite import SQLiteDBManager
from syft.types.result import Ok
from syft.types.twin_object import TwinObject
from syft.types.uid import UID

from workbench.remote._patches import Patch

JOB_START_PAUSE_SECONDS = 0.5  # syft's hard-coded sleep at the start of every job


def patches() -> list[Patch]:
    """Fixes 1 to 10, for :func:`workbench.remote._patches.install`."""
    return [
        Patch(
            Server,
            "start_in_memory_workers",
            _start_default_pool_consumers,
            "after a restart the default pool's workers get no consumer: jobs wait forever",
        ),
        Patch(
            syft_object,
            "attach_attribute_to_syft_object",
            _skip_text_and_bytes,
            "a walk over every byte of a result (6 s per 26 MB of images): its own recursion",
        ),
        Patch(
            service,
            "attach_attribute_to_syft_object",
            _skip_text_and_bytes,
            "a walk over every byte of a result: the copy service methods call",
        ),
        Patch(
            Server,
            "create_queue_config",
            _jobs_in_threads,
            "a job process forked while another thread holds SQLite's lock deadlocks the queue",
        ),
        Patch(
            QueueStash,
            "set_placeholder",
            _wake_producer_after,
            "a new job waits for the producer's next look, up to a second",
        ),
        Patch(
            zmq_producer,
            "sleep",
            lambda original: _sleep_until_a_job_is_queued,
            "the job producer looks for new jobs only once a second",
        ),
        Patch(
            MigrationService,
            "_get_migration_actionobjects",
            _scan_only_when_pending,
            "every job's start reads and deserializes the whole action store",
        ),
        Patch(
            UserCodeService,
            "load_user_code",
            _load_code_in_server_only,
            "every job's start reads every submitted function and queries its status",
        ),
        Patch(
            QueueStash,
            "get_by_status",
            _no_running_items,
            "the producer reads every running job back four times a second to skip it",
        ),
        Patch(
            ZMQProducer,
            "post_init",
            _wakeable_dispatcher,
            "a job the producer queued waits for the dispatcher's poll, up to a second",
        ),
        Patch(
            ZMQProducer,
            "contains_unresolved_action_objects",
            _stop_at_stored_values,
            "dispatching a job reads every input's data from the blob store (0.2 s per batch)",
        ),
        Patch(
            ActionService,
            "flatten_action_arg",
            _flatten_only_unstored,
            "every job reads each input from the blob store twice (0.05-0.1 s per batch)",
        ),
        Patch(
            SQLiteDBManager,
            "update_settings",
            _settings_on_every_connection,
            "SQLite's settings (no disk sync per commit) reach one connection, not the rest",
        ),
        Patch(
            ZMQClient,
            "add_producer",
            _another_port_if_taken,
            "a queue port taken between syft's choice and its bind ends the datasite's start",
        ),
        Patch(
            job_queue,
            "time",
            _TimeWithoutJobStartPause,
            "every job sleeps 0.5 s before it starts (a hack for forked job processes)",
        ),
    ]


def upload_patches() -> list[Patch]:
    """Fix 11, for the process that serializes batches to upload."""
    return [
        Patch(
            module,
            "compatible_with_large_file_writes_capnp",
            lambda original: _never,
            "every message over 50 MB is written to a temporary file and read back",
        )
        for module in (serde_serialize, serde_recursive, serde_primitives)
    ]


def _never(_message_or_size) -> bool:
    return False


_job_queued = threading.Event()


def _wake_producer_after(original):
    @functools.wraps(original)
    def set_placeholder(self, *args, **kwargs):
        try:
            return original(self, *args, **kwargs)
        finally:
            _job_queued.set()

    return set_placeholder


def _sleep_until_a_job_is_queued(seconds: float) -> None:
    """The producer's pause between looks: `seconds`, or until a job is queued.

    The pause follows each look, so it first wakes the dispatcher of any job the look
    just queued.
    """
    for poller in list(_dispatch_pollers):
        poller.wake_if_queued()
    _job_queued.wait(seconds)
    _job_queued.clear()  # before the look, so a job queued during it wakes the next pause


_dispatch_pollers: weakref.WeakSet = weakref.WeakSet()


class _WakeablePoller(zmq.Poller):
    """The dispatcher's poller of the workers' socket, plus a pipe that wakes it.

    A wake returns from :meth:`poll` with the socket's events only (often none), so
    the dispatcher's loop goes round and sends the queued jobs; it never reads the
    socket when only the pipe was ready.
    """

    def __init__(self, producer: ZMQProducer) -> None:
        super().__init__()
        self.producer = producer
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.register(self._wake_read, zmq.POLLIN)
        weakref.finalize(self, _close_all, self._wake_read, self._wake_write)

    def wake_if_queued(self) -> None:
        """Wake :meth:`poll` if a service holds jobs not yet sent to a worker."""
        if any(service.requests for service in list(self.producer.services.values())):
            with contextlib.suppress(BlockingIOError):  # a full pipe is awake already
                os.write(self._wake_write, b"\0")

    def poll(self, timeout: int | None = None) -> list:
        events = super().poll(timeout)
        if not any(fd == self._wake_read for fd, _ in events):
            return events
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_read, 4096):
                pass
        return [(fd, event) for fd, event in events if fd != self._wake_read]


def _close_all(*descriptors: int) -> None:
    for descriptor in descriptors:
        os.close(descriptor)


def _wakeable_dispatcher(original):
    @functools.wraps(original)
    def post_init(self):
        original(self)
        poller = _WakeablePoller(self)
        poller.register(self.socket, zmq.POLLIN)
        self.poll_workers = poller
        _dispatch_pollers.add(poller)

    return post_init


def _is_stored_value(stored) -> bool:
    """A resolved action object whose data sits, unread, in the blob store (fixes 7, 8)."""
    return (
        isinstance(stored, ActionObject)
        and stored.syft_resolved
        and stored.syft_blob_storage_entry_id is not None
        and isinstance(stored.syft_action_data_cache, ActionDataEmpty)
    )


def _stop_at_stored_values(original):
    @functools.wraps(original)
    def contains_unresolved_action_objects(self, arg, recursion=0):
        stored = arg
        if isinstance(stored, UID):
            stored = self.action_service.get(self.auth_context, stored)
        if _is_stored_value(stored):
            return Ok(False)  # a concrete value in the blob store: nothing to resolve
        return original(self, stored, recursion=recursion)

    return contains_unresolved_action_objects


def _flatten_only_unstored(original):
    @functools.wraps(original)
    def flatten_action_arg(self, context, arg):
        if _is_stored_value(self.get(context=context.as_root_context(), uid=arg)):
            return None  # a concrete value in the blob store: no action objects inside
        return original(self, context, arg)

    return flatten_action_arg


def _scan_only_when_pending(original):
    @functools.wraps(original)
    def _get_migration_actionobjects(self, context, get_all=False):
        if not get_all and _in_a_job(context):
            return Ok({})  # the datasite's server scanned at its start
        if not get_all:
            # the classes syft's own scan looks at (migration_service.py)
            kinds = [Action, ActionObject, TwinObject, *ActionObject.__subclasses__()]
            pending = self._find_klasses_pending_for_migration(
                context=context, object_types=kinds
            ).unwrap()
            if not pending:
                return Ok({})
        return original(self, context, get_all=get_all)

    return _get_migration_actionobjects


# syft's per-connection settings (its journal_mode = WAL belongs to the database file)
SQLITE_SETTINGS = ("busy_timeout = 5000", "temp_store = 2", "synchronous = 1")


def _settings_on_every_connection(original):
    @functools.wraps(original)
    def update_settings(self):
        original(self)
        sqlalchemy.event.listen(self.engine, "connect", _apply_sqlite_settings)

    return update_settings


def _apply_sqlite_settings(connection, _record) -> None:
    """syft's SQLite settings, on a connection as it opens (fix 9)."""
    cursor = connection.cursor()
    for setting in SQLITE_SETTINGS:
        cursor.execute(f"PRAGMA {setting}")
    cursor.close()


QUEUE_PORT_TRIES = 5


def _another_port_if_taken(original):
    @functools.wraps(original)
    def add_producer(self, queue_name, port=None, *args, **kwargs):
        chosen_here = port is None and self.config.queue_port is None
        for attempt in range(QUEUE_PORT_TRIES):
            try:
                return original(self, queue_name, port, *args, **kwargs)
            except zmq.ZMQError as error:
                taken = error.errno == zmq.EADDRINUSE
                if not (chosen_here and taken) or attempt == QUEUE_PORT_TRIES - 1:
                    raise
                self.config.queue_port = None  # choose again

    return add_producer


def _in_a_job(context) -> bool:
    """True for a call made by one of the ``Server`` objects a job builds for itself."""
    return bool(getattr(context.server, "is_subprocess", False))


def _load_code_in_server_only(original):
    @functools.wraps(original)
    def load_user_code(self, context):
        if _in_a_job(context):
            return None  # loaded in this process already; loaded on demand otherwise
        return original(self, context)

    return load_user_code


def _no_running_items(original):
    @functools.wraps(original)
    def get_by_status(self, credentials, status):
        if status == Status.PROCESSING:
            return Ok([])  # what the stash's own call returns for no items
        return original(self, credentials, status)

    return get_by_status


def _start_default_pool_consumers(original):
    @functools.wraps(original)
    def start_in_memory_workers(self, address, message_handler):
        original(self, address, message_handler)
        pool = self.get_default_worker_pool().unwrap()
        running = {
            consumer.syft_worker_id
            for consumers in self.queue_manager.consumers.values()
            for consumer in consumers
            if consumer.service_name == pool.name
        }
        for linked_worker in pool.worker_list:
            if linked_worker.object_uid not in running:
                self.add_consumer_for_service(
                    service_name=pool.name,
                    syft_worker_id=linked_worker.object_uid,
                    address=address,
                    message_handler=message_handler,
                )

    return start_in_memory_workers


def _jobs_in_threads(original):
    @functools.wraps(original)
    def create_queue_config(self, n_consumers, create_producer, consumer_type, *args, **kwargs):
        return original(self, n_consumers, create_producer, ConsumerType.Thread, *args, **kwargs)

    return create_queue_config


def _skip_text_and_bytes(original):
    @functools.wraps(original)
    def attach_attribute_to_syft_object(result, attr_dict):
        if isinstance(result, str | bytes | bytearray | memoryview):
            return None
        return original(result, attr_dict)

    return attach_attribute_to_syft_object


class _TimeWithoutJobStartPause:
    """The ``time`` module as syft's job queue sees it, less the pause before each job."""

    def __init__(self, time_module) -> None:
        self._time = time_module

    def __getattr__(self, name: str):
        return getattr(self._time, name)

    def sleep(self, seconds: float) -> None:
        if seconds != JOB_START_PAUSE_SECONDS:
            self._time.sleep(seconds)
