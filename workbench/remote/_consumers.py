"""Restart fix: job consumers for the default worker pool (PySyft 0.9.5).

On first start syft creates the default worker pool and one in-memory consumer per
worker. On a restart the pool and its workers are read back from the database, so
``create_default_worker_pool`` adds no worker and starts no consumer, and
``Server.start_in_memory_workers`` skips the default pool: every job then waits
forever. The wrap below starts a consumer for each worker of the default pool that
has none. Applied by the launcher before the server child forks.
"""

from __future__ import annotations

import functools

from syft.server.server import Server


def apply() -> None:
    """Install the wrap in this process (idempotent)."""
    if getattr(Server.start_in_memory_workers, "_workbench_wrap", False):
        return
    Server.start_in_memory_workers = _start_default_pool_consumers(
        Server.start_in_memory_workers
    )
    Server.start_in_memory_workers._workbench_wrap = True


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
