"""Factory admin side: review code requests, and release results, of one factory.

For each request the admin sees the code, its automatic findings (:func:`findings`,
advice only: the sandbox and the output rule are the guarantee), a trial run on the
mock data in the sandbox (:func:`try_on_mock`), and decides: :func:`approve`
(refused while there are findings, unless ``override=True``; the approval names the
code's hash, and the datasite runs no other code for that request), :func:`deny`
(a reason is required), or :func:`approve_with_result` (release a value the admin
computed and inspected). An override is recorded on the request as tags
(``workbench:override``, who, when).

With ``release = "review"`` (the default) every finished run on private data waits
at the factory: :func:`held` lists the values, :func:`release` hands one to the
researcher, :func:`withhold` keeps it with a reason the researcher sees. The admin
widgets call exactly these functions.

Examples
--------
>>> from workbench.remote.admin import admin_login
>>> session = admin_login(config)  # doctest: +SKIP
>>> request = list_requests(session)[0]  # doctest: +SKIP
>>> findings(request), try_on_mock(session, request).result  # doctest: +SKIP
([], {'images': 2, 'mean_count': 31.5, ...})
>>> approve(request)  # doctest: +SKIP
>>> release(session, held(session)[0])  # after the researcher's run  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.privacy import audit
from workbench.remote import held as held_store
from workbench.remote._syft_calls import code_inputs, quiet, reason, request_status, status_name
from workbench.remote.admin import AdminSession
from workbench.remote.code_findings import Finding, scan_code
from workbench.remote.output_rule import OVERRIDE_TAG, output_rule_violation
from workbench.sandbox import SandboxOutcome, run_in_sandbox


def list_requests(session: AdminSession, status: str | None = None) -> list:
    """The code requests on the admin's datasite, newest first.

    Parameters
    ----------
    session : AdminSession
    status : str, optional
        Keep only ``pending``, ``approved`` or ``rejected`` requests.
    """
    with quiet():
        requests = list(session.client.requests)
    if status is not None:
        requests = [request for request in requests if request_status(request) == status]
    return sorted(requests, key=lambda request: str(request.request_time), reverse=True)


def requests_table(requests: list) -> pd.DataFrame:
    """One row per request: id, function, researcher, status, submitted, findings, override."""
    rows = [
        {
            "id": str(request.id),
            "function": request.code.service_func_name,
            "researcher": request.requesting_user_email,
            "status": request_status(request),
            "submitted": str(request.request_time),
            "findings": len(findings(request)),
            "override": OVERRIDE_TAG in request.tags,
        }
        for request in requests
    ]
    columns = ["id", "function", "researcher", "status", "submitted", "findings", "override"]
    return pd.DataFrame(rows, columns=columns)


def findings(request: Any) -> list[Finding]:
    """Automatic findings on the request's submitted code (see :mod:`code_findings`)."""
    return scan_code(request.code.raw_code)


def try_on_mock(session: AdminSession, request: Any) -> SandboxOutcome:
    """Run the request's code on the mock data of its inputs, in the factory's sandbox.

    The same sandbox and limits as a run on the datasite (no network, no files of the
    factory, bounded time and memory), so a trial can do no more than the real run.

    Returns
    -------
    SandboxOutcome
        ``result``, ``error``, ``limit``, ``stdout``, ``seconds``; see
        :func:`result_violation` for what the output rule says of the result.
    """
    api = request.get_api()
    with quiet():
        kwargs = {
            param: _plain_mock(api.services.action.get_mock(asset_id))
            for param, asset_id in code_inputs(request.code).items()
        }
    return run_code(session, request, kwargs)


def run_code(
    session: AdminSession, request: Any, kwargs: dict[str, Any], *, on: str = "mock"
) -> SandboxOutcome:
    """Run the request's code on `kwargs` in the factory's sandbox; log it as a trial."""
    code = request.code
    outcome = run_in_sandbox(
        code.raw_code,
        code.service_func_name,
        kwargs,
        session.limits,
        hidden=(session.config.state_dir,),
    )
    audit.append(
        session.config.state_dir,
        "trial",
        actor=session.config.admin_email,
        request=str(request.id),
        data=on,
        ok=outcome.ok,
        limit=outcome.limit,
        seconds=outcome.seconds,
    )
    return outcome


def result_violation(session: AdminSession, outcome: SandboxOutcome) -> str | None:
    """What the factory's output rule says of a sandboxed run's result (None: it passes)."""
    if not outcome.ok:
        return None
    return output_rule_violation(outcome.result, session.rule)


def approve(request: Any, override: bool = False) -> None:
    """Approve the request so its code may run once on the private data.

    Parameters
    ----------
    request : syft Request
    override : bool
        Approve despite findings, and let the result through even if it breaks the
        datasite's output rule. Recorded on the request (who and when). May be given
        after a plain approval, once a run was refused by the output rule.

    Raises
    ------
    WorkbenchError
        If the code has findings and `override` is False, or syft refuses.
    """
    found = findings(request)
    if found and not override:
        listed = "; ".join(f"line {f.line}: {f.message}" for f in found[:3])
        raise WorkbenchError(
            f"request {request.code.service_func_name} from {request.requesting_user_email} "
            f"has {len(found)} finding(s) ({listed}); approve with override=True to run it anyway"
        )
    _add_tags(request, [held_store.approved_code_tag(request.code.code_hash)])
    if override:
        _record_override(request)
    if status_name(request.status) != "approved":  # an override may follow the approval
        _call(request.approve, f"approving {request.code.service_func_name}", disable_warnings=True)


def deny(request: Any, reason: str) -> None:
    """Deny the request; the researcher sees REJECTED and `reason`.

    Raises
    ------
    WorkbenchError
        If `reason` is empty.
    """
    reason = _required_reason(reason, f"denying {request.code.service_func_name}")
    _call(request.deny, f"denying {request.code.service_func_name}", reason=reason)


def approve_with_result(
    session: AdminSession, request: Any, value: Any, *, override: bool = False
) -> None:
    """Approve the request by releasing `value`, a result the admin computed and inspected.

    Parameters
    ----------
    session : AdminSession
    request : syft Request
    value : object
        What the researcher will get.
    override : bool
        Release `value` even if it breaks the rule (recorded on the request).

    Raises
    ------
    WorkbenchError
        If `value` breaks the output rule and `override` is False.
    """
    broken = output_rule_violation(value, session.rule)
    if broken and not override:
        raise WorkbenchError(
            f"result for {request.code.service_func_name} breaks the output rule: {broken}; "
            "release it with override=True if you mean to"
        )
    if override:
        _record_override(request)
    audit.append(
        session.config.state_dir,
        "release",
        actor=session.config.admin_email,
        request=str(request.id),
        computed_by="admin",
        sha256=audit.value_digest(value),
        bytes=len(str(value)),
    )
    _call(
        request.deposit_result,
        f"releasing a result for {request.code.service_func_name}",
        value,
        approve=True,
    )


def held(session: AdminSession) -> list[held_store.HeldResult]:
    """Results of runs on private data waiting for the admin's decision, oldest first.

    Each shows exactly what the researcher would get (``value``, ``size_bytes``), for
    which function and researcher, and since when. Results already released (but not
    yet fetched) or withheld are left out.
    """
    waiting = held_store.held_results(session.config.state_dir)
    if not waiting:
        return []
    tags = {str(request.code_id): set(request.tags) for request in list_requests(session)}
    return [
        result
        for result in waiting
        if not tags.get(result.code_id, set()) & set(held_store.decision_tags(result))
    ]


def release(session: AdminSession, result: held_store.HeldResult) -> None:
    """Release a held result: the researcher's next run of the request receives it.

    Raises
    ------
    WorkbenchError
        If the result no longer passes the factory's output rule (the rule was
        tightened since), or the request is gone.
    """
    broken = output_rule_violation(result.value, session.rule)
    request = _request_for_code(session, result.code_id)
    if broken and OVERRIDE_TAG not in request.tags:
        raise WorkbenchError(f"result of {result.function} breaks the output rule: {broken}")
    _add_tags(request, [held_store.release_tag(result)])


def withhold(session: AdminSession, result: held_store.HeldResult, reason: str) -> None:
    """Keep a held result at the factory; the researcher sees `reason`.

    Raises
    ------
    WorkbenchError
        If `reason` is empty.
    """
    reason = _required_reason(reason, f"withholding {result.function}")
    request = _request_for_code(session, result.code_id)
    _add_tags(request, held_store.withheld_tags(result, reason))


def _required_reason(reason: str, what: str) -> str:
    """`reason` on one line; refuse an empty one (the researcher is owed a reason)."""
    text = " ".join((reason or "").split())
    if not text:
        raise WorkbenchError(f"{what}: a reason for the researcher is required")
    return text


def _request_for_code(session: AdminSession, code_id: str) -> Any:
    for request in list_requests(session):
        if str(request.code_id) == code_id:
            return request
    raise WorkbenchError(f"no code request on {session.name} for code {code_id}")


def _record_override(request: Any) -> None:
    api = request.get_api()
    with quiet():
        admin_email = api.services.user.get_current_user().email
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    _add_tags(
        request,
        [OVERRIDE_TAG, f"{OVERRIDE_TAG}-by:{admin_email}", f"{OVERRIDE_TAG}-at:{stamp}"],
        replace_prefix=OVERRIDE_TAG,
    )


def _add_tags(request: Any, new: list[str], replace_prefix: str | None = None) -> None:
    """Add `new` to the request's tags (only the admin can set them)."""
    api = request.get_api()
    with quiet():
        current = list(api.services.request.get_by_uid(request.id).tags)
    if replace_prefix:
        current = [tag for tag in current if not tag.startswith(replace_prefix)]
    tags = current + [tag for tag in new if tag not in current]
    _call(api.services.request.set_tags, "tagging the request", request, tags)
    request.tags = tags


def _call(method: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    try:
        with quiet():
            return method(*args, **kwargs)
    except Exception as error:  # syft raises its own exception types
        raise WorkbenchError(f"{what} failed: {reason(error)}") from None


def _plain_mock(value: Any) -> Any:
    """The mock as a plain Python value (syft may hand back an ActionObject)."""
    return getattr(value, "syft_action_data", value)
