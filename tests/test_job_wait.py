"""The waiting route's rules, on a stand-in for syft's call handler (the route itself
runs on every real datasite: see ``tests/test_remote_datasite.py``)."""

from __future__ import annotations

import threading
import types

from syft.service.job.job_stash import Job, JobStash
from syft.service.response import SyftError, SyftSuccess
from syft.types.uid import UID

from workbench.remote import _job_wait


class Handler:
    """Answers like ``handle_api_call_with_unsigned_result``: the job, as it is now."""

    def __init__(self, answer):
        self.answer, self.calls = answer, 0

    def handle_api_call_with_unsigned_result(self, signed):
        self.calls += 1
        return self.answer()


def _signed(path: str, key: UID):
    message = types.SimpleNamespace(path=path, args=[key])
    return types.SimpleNamespace(is_valid=True, message=message)


def _job(resolved: bool) -> Job:
    return Job.model_construct(id=UID(), user_code_id=UID(), resolved=resolved)


def _store_result(job: Job) -> None:
    """What a job worker does at its end: the stash's set_result, here a stand-in."""
    stored = _job_wait._wake_waiters_after(lambda self, credentials, item: "stored")
    assert stored(None, None, job) == "stored"


def test_a_wait_ends_when_the_job_stores_its_result():
    job = _job(resolved=False)
    worker = Handler(lambda: SyftSuccess(message="", value=[job]))

    def finish():
        job.resolved = True
        _store_result(job)

    threading.Timer(0.3, finish).start()
    result = _job_wait._answer(worker, _signed("job.get", job.id), 30)
    assert result.value[0].resolved
    assert worker.calls == 2  # asked when the wait began and when the job ended, not polled
    assert job.id not in _job_wait._changes  # nobody waits on it any more: forgotten
    _store_result(_job(resolved=True))  # a job nobody waits for leaves nothing behind
    assert not _job_wait._changes and not _job_wait._watchers


def test_a_refused_question_is_answered_at_once():
    # Another researcher's job, or one that does not exist: syft refuses, and the
    # refusal comes back without waiting (a wait would tell when that job ends).
    worker = Handler(lambda: SyftError(message="you have no permission"))
    key = UID()
    result = _job_wait._answer_after_end(worker, _signed("job.get", key), key, 30)
    assert isinstance(result, SyftError) and worker.calls == 1


def test_only_validly_signed_questions_about_jobs_may_wait():
    key = UID()
    assert _job_wait._waitable_key(_signed("job.get_by_user_code_id", key)) == key
    assert _job_wait._waitable_key(_signed("user.get_all", key)) is None
    forged = _signed("job.get", key)
    forged.is_valid = False
    assert _job_wait._waitable_key(forged) is None
    assert _job_wait._waitable_key(b"not a call") is None


def test_waiting_calls_are_bounded():
    job = _job(resolved=False)
    worker = Handler(lambda: SyftSuccess(message="", value=[job]))
    taken = [_job_wait._waiters.acquire(blocking=False) for _ in range(_job_wait.MAX_WAITERS)]
    try:
        assert all(taken)
        answer = _job_wait._answer(worker, _signed("job.get", job.id), 30)
    finally:
        for _ in taken:
            _job_wait._waiters.release()
    assert not answer.value[0].resolved and worker.calls == 1  # answered at once


def test_the_wake_up_is_installed_on_syfts_job_stash():
    names = {(patch.owner, patch.name) for patch in _job_wait.patches()}
    assert (JobStash, "set_result") in names
