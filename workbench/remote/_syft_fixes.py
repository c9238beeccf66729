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
4. Queue latency. The job producer looks for new jobs once a second and dispatches
   them after a poll that waits up to a second; a job waited 2-4 s before any worker
   saw it. Both waits become 0.25 s (an idle datasite then uses about 3 % of a core
   instead of 1.4 %).
5. A fixed pause before every job. ``handle_message_multiprocessing`` sleeps 0.5 s
   before it starts ("a temp hack to prevent some multithreading issues" of forked
   job processes). Jobs run in threads here (3), and the consumer has stored the
   job's state before the thread starts, so the pause only delays every run; the
   queue module's ``time`` loses that one sleep (its job monitor still sleeps 5 s).
"""

from __future__ import annotations

import functools

import syft.service.queue.queue as job_queue
import syft.service.queue.zmq_producer as zmq_producer
import syft.service.service as service
import syft.types.syft_object as syft_object
from syft.server.server import Server
from syft.service.queue.queue import ConsumerType

from workbench.remote._patches import Patch

QUEUE_POLL_SECONDS = 0.25
JOB_START_PAUSE_SECONDS = 0.5  # syft's hard-coded sleep at the start of every job


def patches() -> list[Patch]:
    """The five fixes, for :func:`workbench.remote._patches.install`."""
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
            zmq_producer,
            "sleep",
            lambda original: lambda seconds: original(min(seconds, QUEUE_POLL_SECONDS)),
            "the job producer polls once a second",
        ),
        Patch(
            zmq_producer,
            "ZMQ_POLLER_TIMEOUT_MSEC",
            lambda original: int(QUEUE_POLL_SECONDS * 1000),
            "the job dispatcher waits up to a second per poll",
        ),
        Patch(
            job_queue,
            "time",
            _TimeWithoutJobStartPause,
            "every job sleeps 0.5 s before it starts (a hack for forked job processes)",
        ),
    ]


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
