"""A job's end told at once: a waiting variant of syft's API call for a job's state.

A researcher's client used to learn that a run had ended by asking the datasite again
and again (``job.get_by_user_code_id``): each question is a signed API call that
costs the datasite 15-100 ms of its one Python process, and a 12 s run drew about
seventy of them, a core's worth of work beside the run it was waiting for, and the
answer still came up to 0.2 s late.

Here the datasite serves one more route, ``POST /api/v2/workbench/wait_job``, that
takes the very same signed call and answers it the way ``/api/v2/api_call`` does
(syft's own permission checks, syft's signed answer) but not before a job in the
answer has ended, or `seconds` (at most :data:`MAX_WAIT_S`) have passed. The route
decides only *when* to answer, never *what*: the call is answered by
``handle_api_call_with_unsigned_result`` (with the hardening's checks) each time, so
a caller learns nothing it could not learn by asking syft directly, only sooner.

The wait wakes when a job of the asked function (or the asked job) stores its
result in this process (:meth:`JobStash.set_result`), and looks again every second
anyway, for job workers in other processes. At most :data:`MAX_WAITERS` calls wait at
once; any beyond them is answered at once, so waiting calls cannot occupy the threads
that serve everything else.

Examples
--------
>>> jobs = latest_jobs(client, code.id, wait_s=10)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Annotated, Any

import requests
import syft.server.uvicorn as syft_uvicorn
from fastapi import Depends, Request, Response
from syft.client.api import SyftAPIData, debox_signed_syftapicall_response
from syft.serde.deserialize import _deserialize
from syft.serde.serialize import _serialize
from syft.service.job.job_stash import Job, JobStash
from syft.service.response import SyftSuccess
from syft.types.uid import UID

from workbench.remote._patches import Patch

WAIT_PATH = "/workbench/wait_job"  # under syft's /api/v2
MAX_WAIT_S = 10.0
MAX_WAITERS = 16
RECHECK_S = 1.0  # a job worker in another process does not wake this one
_WAITABLE = ("job.get", "job.get_by_user_code_id")

_changed = threading.Condition()
_changes: dict[UID, int] = {}  # waited-for job or function id -> results stored since
_watchers: dict[UID, int] = {}  # waited-for id -> calls waiting on it (kept only while > 0)
_waiters = threading.BoundedSemaphore(MAX_WAITERS)


def patches() -> list[Patch]:
    """The waiting route and the wake-up it needs, for :func:`_patches.install`."""
    return [
        Patch(
            syft_uvicorn,
            "make_routes",
            _with_wait_route,
            "a client learns that a job ended only by asking again and again",
        ),
        Patch(
            JobStash,
            "set_result",
            _wake_waiters_after,
            "a waiting call must hear at once that its job stored its result",
        ),
    ]


def _wake_waiters_after(original):
    @functools.wraps(original)
    def set_result(self, credentials, item, *args, **kwargs):
        result = original(self, credentials, item, *args, **kwargs)
        with _changed:
            for key in (item.id, getattr(item, "user_code_id", None)):
                if key in _watchers:
                    _changes[key] += 1
            _changed.notify_all()
        return result

    return set_result


def _with_wait_route(original):
    @functools.wraps(original)
    def make_routes(worker):
        router = original(worker)

        # A plain ``def``: FastAPI runs it in its thread pool, where it may block.
        @router.post(WAIT_PATH)
        def wait_job(data: Annotated[bytes, Depends(_body)], seconds: float = 0.0) -> Response:
            return Response(
                _answer_when_ended(worker, data, seconds), media_type="application/octet-stream"
            )

        return router

    return make_routes


async def _body(request: Request) -> bytes:
    return await request.body()


def _answer_when_ended(worker: Any, data: bytes, seconds: float) -> bytes:
    """syft's signed answer to the call in `data`, once no job in it is running."""
    result = _answer(worker, _deserialize(data, from_bytes=True), seconds)
    return _serialize(SyftAPIData(data=result).sign(worker.signing_key), to_bytes=True)


def _answer(worker: Any, signed: Any, seconds: float) -> Any:
    key = _waitable_key(signed) if seconds > 0 else None
    if key is None or not _waiters.acquire(blocking=False):
        return worker.handle_api_call_with_unsigned_result(signed)  # at once
    with _changed:
        _watchers[key] = _watchers.get(key, 0) + 1
        _changes.setdefault(key, 0)
    try:
        return _answer_after_end(worker, signed, key, min(seconds, MAX_WAIT_S))
    finally:
        with _changed:
            _watchers[key] -= 1
            if not _watchers[key]:  # nobody waits on it: forget it
                del _watchers[key], _changes[key]
        _waiters.release()


def _waitable_key(signed: Any) -> UID | None:
    """The job or function id a validly signed call about jobs asks for, else None."""
    if not getattr(signed, "is_valid", False):
        return None  # syft's own handling refuses it
    message = signed.message
    if message.path not in _WAITABLE or not message.args or not isinstance(message.args[0], UID):
        return None
    return message.args[0]


def _answer_after_end(worker: Any, signed: Any, key: UID, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        with _changed:
            seen = _changes.get(key, 0)  # before asking: a change while asking is not lost
        result = worker.handle_api_call_with_unsigned_result(signed)
        left = deadline - time.monotonic()
        if not _running(result) or left <= 0:
            return result
        with _changed:
            _changed.wait_for(
                functools.partial(_changed_since, key, seen), timeout=min(RECHECK_S, left)
            )


def _changed_since(key: UID, seen: int) -> bool:
    return _changes.get(key, 0) != seen


def _running(result: Any) -> bool:
    """True if `result` (a successful answer) holds a job that has not ended."""
    value = result.value if isinstance(result, SyftSuccess) else None
    jobs = value if isinstance(value, list) else [value]
    return any(isinstance(job, Job) and not job.resolved for job in jobs)


def latest_jobs(client: Any, code_id: UID, wait_s: float = 0.0) -> list:
    """``client.api.services.job.get_by_user_code_id(code_id)``, answered once a job of
    the function has ended (or after `wait_s` seconds).

    A datasite without the waiting route (404) is simply asked, without waiting.
    """
    endpoint = client.api.services.job.get_by_user_code_id
    if wait_s <= 0:
        return endpoint(code_id)
    url = str(client.connection.url.with_path(f"/api/v2{WAIT_PATH}"))

    def make_call(api_call: Any, cache_result: bool = True) -> Any:
        signed = api_call.sign(credentials=client.api.signing_key)
        response = client.connection.session.post(
            url,
            data=_serialize(signed, to_bytes=True),
            params={"seconds": wait_s},
            timeout=wait_s + 60,
        )
        if response.status_code == 404:
            return client.api.make_call(api_call, cache_result)
        if response.status_code != 200:
            raise requests.ConnectionError(f"{url} answered {response.status_code}")
        signed_result = _deserialize(response.content, from_bytes=True)
        return debox_signed_syftapicall_response(signed_result).unwrap()

    return endpoint.model_copy(update={"make_call": make_call})(code_id)
