"""Crash recovery of a factory datasite: syft patches installed through ``_patches``.

A datasite killed at any instant (``kill -9``, power loss) keeps what its database
committed, but syft 0.9.5 does not look at the job queue again when it starts: a run
that was going stays ``processing`` forever and a queued run that the dispatcher had
taken never runs. The launcher installs these patches (next to ``_syft_fixes``) before
the server child forks; on start, before the job queue runs, the server:

1. Ends every run that was going (job ``processing``) as ``interrupted`` with
   :data:`INTERRUPTED_REASON`, in the job's result (the researcher's status table)
   and its log (the admin's). The approval stands and no run is counted: syft counts
   a run of a single-use request only once it stored a result, so the researcher's
   ``client.start_runs`` (or ``wait_for_results``) starts it again, no new approval.
2. Puts queued runs that never started (job ``created``, queue item already taken by
   the dispatcher) back in the queue: they run after the restart.
3. Gives every queued run this start's server settings: a queue item carries the
   database and blob folder of the start that queued it, which after a restore into
   another folder would be the old factory's.
4. Marks a held result undelivered again if it was marked delivered but its run never
   stored the value (killed between the two): the researcher's next run receives it.
5. Reads and deletes blob files in this start's blob folder: syft stores each blob's
   absolute path, which after a restore elsewhere points into the old folder.

Examples
--------
>>> from types import SimpleNamespace as Item
>>> jobs = [Item(id=1, status=JobStatus.PROCESSING), Item(id=2, status=JobStatus.CREATED)]
>>> taken = [Item(job_id=1, status=Status.PROCESSING), Item(job_id=2, status=Status.PROCESSING)]
>>> plan = plan_recovery(jobs, taken)
>>> [job.id for job in plan.interrupt], [item.job_id for item in plan.requeue]
([1], [2])
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syft.server.server import Server
from syft.server.worker_settings import WorkerSettings
from syft.service.job.job_stash import JobStatus
from syft.service.queue.queue_stash import Status
from syft.service.response import SyftError
from syft.store.blob_storage.on_disk import OnDiskBlobStorageConnection
from syft.types.datetime import DateTime
from syft.types.uid import UID

from workbench.remote import held as held_store
from workbench.remote._patches import Patch
from workbench.remote.config import DatasiteConfig

INTERRUPTED_REASON = "datasite restarted while running"
INTERRUPTED_MESSAGE = f"run interrupted: {INTERRUPTED_REASON}; start it again, its approval stands"
_GOING = (JobStatus.PROCESSING, JobStatus.TERMINATING)


def patches(config: DatasiteConfig) -> list[Patch]:
    """The recovery patches for the factory of `config`."""
    return [
        Patch(
            Server,
            "init_queue_manager",
            lambda original: _recover_first(original, config.state_dir),
            "runs going when the datasite stopped stay 'processing' forever; taken queue "
            "items never run",
        ),
        Patch(
            OnDiskBlobStorageConnection,
            "read",
            _in_this_blob_folder,
            "blob paths are stored absolute: a factory restored elsewhere reads its old folder",
        ),
        Patch(
            OnDiskBlobStorageConnection,
            "delete",
            _in_this_blob_folder,
            "blob paths are stored absolute: a factory restored elsewhere deletes in its "
            "old folder",
        ),
    ]


@dataclass(frozen=True)
class RecoveryPlan:
    """What a start does to the job queue left by the last one.

    Attributes
    ----------
    interrupt : list
        Jobs that were going: they end ``interrupted``.
    requeue : list
        Queue items taken by the dispatcher whose job never started: back in the queue.
    close : list
        Other taken queue items (their job was going or is over): resolved.
    """

    interrupt: list = field(default_factory=list)
    requeue: list = field(default_factory=list)
    close: list = field(default_factory=list)


@dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover` changed (for the datasite log), and how long it took."""

    interrupted: list[str]
    requeued: int
    undelivered: list[str]
    seconds: float

    def lines(self) -> list[str]:
        """One log line per kind of change; nothing when nothing changed.

        Examples
        --------
        >>> RecoveryReport(["f"], 1, [], 0.01).lines()[0]
        'recovery: 1 run interrupted (datasite restarted while running): f'
        """
        found = []
        if self.interrupted:
            found.append(
                f"recovery: {len(self.interrupted)} run interrupted ({INTERRUPTED_REASON}): "
                + ", ".join(self.interrupted)
            )
        if self.requeued:
            found.append(f"recovery: {self.requeued} queued run(s) that never started requeued")
        if self.undelivered:
            found.append(
                "recovery: held result(s) not received, delivered again on the next run: "
                + ", ".join(self.undelivered)
            )
        return found


def plan_recovery(jobs: Iterable[Any], taken: Iterable[Any]) -> RecoveryPlan:
    """Decide what happens to the jobs and the taken queue items of a stopped datasite.

    Parameters
    ----------
    jobs : iterable
        Every job (``id``, ``status``: a syft ``JobStatus``).
    taken : iterable
        Queue items with status ``processing`` (``job_id``, ``status``).

    Returns
    -------
    RecoveryPlan
    """
    jobs = list(jobs)
    status = {job.id: job.status for job in jobs}
    plan = RecoveryPlan(interrupt=[job for job in jobs if job.status in _GOING])
    for item in taken:
        never_started = status.get(item.job_id) is JobStatus.CREATED
        (plan.requeue if never_started else plan.close).append(item)
    return plan


def not_received(
    held: Iterable[held_store.HeldResult], code_ids_with_output: set[str]
) -> list[held_store.HeldResult]:
    """Held results marked delivered whose run never stored the value.

    Examples
    --------
    >>> from workbench.remote.held import HeldResult
    >>> sent = HeldResult("t1", "c1", "f", "r@x", "2024", {}, 2, delivered=True)
    >>> [h.token for h in not_received([sent], set())], not_received([sent], {"c1"})
    (['t1'], [])
    """
    return [h for h in held if h.delivered and h.code_id not in code_ids_with_output]


def blob_path(base_directory: Path, stored: str) -> Path:
    """Where a blob lives in this start's blob folder, whatever folder its path names.

    Examples
    --------
    >>> str(blob_path(Path("/new/blob"), "/old/state/uid/blob/abc.bytes"))
    '/new/blob/abc.bytes'
    """
    return Path(base_directory) / Path(stored).name


def recover(server: Any, state_dir: Path) -> RecoveryReport:
    """Apply :func:`plan_recovery` and the held-result check to a starting server.

    Parameters
    ----------
    server : syft Server
        Built, with its stores, before its job queue starts.
    state_dir : Path
        The factory's state folder (held results).
    """
    started = time.perf_counter()
    root = server.verify_key
    jobs = server.job_stash.get_all(root).unwrap()
    # not get_by_status: the job producer's fix gives it no running items (_syft_fixes)
    taken = server.queue_stash.get_all(root, filters={"status": Status.PROCESSING}).unwrap()
    plan = plan_recovery(jobs, taken)
    names = [_interrupt(server, job) for job in plan.interrupt]
    for item in plan.close:
        item.status, item.resolved = Status.INTERRUPTED, True
        item.result = SyftError(message=INTERRUPTED_MESSAGE)
        server.queue_stash.update(root, item).unwrap()
    for item in plan.requeue:
        item.status = Status.CREATED
        server.queue_stash.update(root, item).unwrap()
    queued = server.queue_stash.get_by_status(root, status=Status.CREATED).unwrap()
    settings = WorkerSettings.from_server(server)
    for item in queued:
        item.worker_settings = settings
        server.queue_stash.update(root, item).unwrap()
    undelivered = _deliver_again(server, state_dir)
    return RecoveryReport(names, len(plan.requeue), undelivered, time.perf_counter() - started)


def _interrupt(server: Any, job: Any) -> str:
    """End `job` as interrupted; return its function's name (or the job id)."""
    root = server.verify_key
    job.status, job.resolved = JobStatus.INTERRUPTED, True
    job.result = SyftError(message=INTERRUPTED_MESSAGE)
    job.updated_at = DateTime.now()
    server.job_stash.update(root, job).unwrap()
    if job.log_id is not None:
        logs = server.services.log.stash
        log = logs.get_by_uid(root, job.log_id).unwrap()
        log.append_error(f"{INTERRUPTED_MESSAGE} (restart at {DateTime.now()})\n")
        logs.update(root, log).unwrap()
    try:
        code = server.services.user_code.stash.get_by_uid(root, uid=job.user_code_id).unwrap()
        return f"{code.service_func_name} (job {job.id})"
    except Exception:  # a job of no user code (syft's own): its id says enough
        return f"job {job.id}"


def _deliver_again(server: Any, state_dir: Path) -> list[str]:
    """Mark held results delivered again whose run never stored the value; name them."""
    sent = [h for h in held_store.held_results(state_dir, delivered=True) if h.delivered]
    with_output = {
        h.code_id
        for h in sent
        if server.output_stash.get_by_user_code_id(
            server.verify_key, user_code_id=UID(h.code_id)
        ).unwrap()
    }
    lost = not_received(sent, with_output)
    for held in lost:
        held_store.mark_delivered(state_dir, held, delivered=False)
    return [f"{h.function} (ref {h.token})" for h in lost]


def _recover_first(original: Callable[..., Any], state_dir: Path) -> Callable[..., Any]:
    """Wrap ``Server.init_queue_manager``: :func:`recover` first, in the server only."""

    @functools.wraps(original)
    def init_queue_manager(self, queue_config):
        if not self.is_subprocess:  # the server itself, not a job's worker
            try:
                report = recover(self, state_dir)
            except Exception as error:  # the factory still starts; the log says what is left
                lines = [f"recovery: failed ({error}); runs of the last start may look going"]
            else:
                lines = report.lines()
                lines += [f"recovery: done in {report.seconds:.3f} s"] if lines else []
            for line in lines:
                print(line, file=sys.stderr, flush=True)
        return original(self, queue_config)

    return init_queue_manager


def _in_this_blob_folder(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a blob connection method: the blob's path in this start's blob folder."""

    @functools.wraps(original)
    def call(self, fp, *args, **kwargs):
        moved = type(fp)(id=fp.id, path=str(blob_path(self._base_directory, fp.path)))
        return original(self, moved, *args, **kwargs)

    return call


def interrupted_runs(admin: Any) -> list[dict[str, str]]:
    """Runs ended by a restart that were not started again, for the factory admin.

    Parameters
    ----------
    admin : syft DatasiteClient
        Logged in as the factory admin.

    Returns
    -------
    list of dict
        ``{"function", "researcher", "job", "reason"}``, one per interrupted run whose
        request has no later run.

    Examples
    --------
    >>> interrupted_runs(session.client)  # doctest: +SKIP
    [{'function': 'count_crystals', 'researcher': 'ana@uni.example', 'job': '...',
      'reason': 'run interrupted: datasite restarted while running; ...'}]
    """
    jobs = admin.api.services.job.get_all()
    latest: dict[str, Any] = {}
    for job in sorted(jobs, key=lambda job: str(job.creation_time)):
        latest[str(job.user_code_id)] = job
    requests = {str(request.code_id): request for request in admin.requests}
    runs = []
    for code_id, job in latest.items():
        if job.status != JobStatus.INTERRUPTED:
            continue
        request = requests.get(code_id)
        runs.append(
            {
                "function": request.code.service_func_name if request else "?",
                "researcher": str(request.requesting_user_email) if request else "?",
                "job": str(job.id),
                "reason": str(getattr(job.result, "message", "") or INTERRUPTED_REASON),
            }
        )
    return runs


def describe(runs: Sequence[dict[str, str]]) -> str:
    """One line for ``workbench datasite status``.

    Examples
    --------
    >>> describe([{"function": "f", "researcher": "r@x", "job": "1", "reason": "..."}])
    '1 (f of r@x): the researcher starts it again, no new approval'
    >>> describe([])
    'none'
    """
    if not runs:
        return "none"
    listed = ", ".join(f"{run['function']} of {run['researcher']}" for run in runs)
    return f"{len(runs)} ({listed}): the researcher starts it again, no new approval"
