"""Factory admin side: review code requests before anything runs on private images.

For each request the admin sees the code, its automatic findings
(:func:`findings`), a trial run on the mock data (:func:`try_on_mock`), and decides:
:func:`approve` (refused while there are findings, unless ``override=True``),
:func:`deny` (a reason is required), or :func:`approve_with_result` (release a value
the admin computed and inspected). An override is recorded on the request as tags
(``workbench:override``, who, when); the datasite's output rule lets a result that
breaks it through only for requests carrying that tag. The admin widgets call
exactly these functions.

Examples
--------
>>> import syft as sy  # doctest: +SKIP
>>> admin = sy.login(url="http://127.0.0.1:8081", email=..., password=...)  # doctest: +SKIP
>>> request = list_requests(admin)[0]  # doctest: +SKIP
>>> findings(request), try_on_mock(request).result  # doctest: +SKIP
([], {'images': 2, 'mean_count': 31.5, ...})
>>> approve(request)  # doctest: +SKIP
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.remote._syft_calls import quiet, reason, status_name
from workbench.remote._trial import MockTrial, run_in_trial_process
from workbench.remote.code_findings import Finding, scan_code
from workbench.remote.config import OutputRule
from workbench.remote.output_rule import OVERRIDE_TAG, output_rule_violation


def list_requests(admin: Any, status: str | None = None) -> list:
    """The code requests on the admin's datasite, newest first.

    Parameters
    ----------
    admin : syft DatasiteClient
        Logged in as the factory admin.
    status : str, optional
        Keep only ``pending``, ``approved`` or ``rejected`` requests.
    """
    with quiet():
        requests = list(admin.requests)
    if status is not None:
        requests = [request for request in requests if status_name(request.status) == status]
    return sorted(requests, key=lambda request: str(request.request_time), reverse=True)


def requests_table(requests: list) -> pd.DataFrame:
    """One row per request: id, function, researcher, status, submitted, findings, override."""
    rows = [
        {
            "id": str(request.id),
            "function": request.code.service_func_name,
            "researcher": request.requesting_user_email,
            "status": status_name(request.status),
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


def try_on_mock(
    request: Any, *, rule: OutputRule | None = None, timeout: float = 300.0
) -> MockTrial:
    """Run the request's code on the mock data of its inputs, in a separate process.

    The code runs outside the admin's kernel (no syft session, no credentials in its
    environment, a temporary working folder) and is stopped after `timeout` seconds.
    This is not a sandbox: it runs as the admin's user; read the findings first.

    Parameters
    ----------
    request : syft Request
    rule : OutputRule, optional
        The factory's output rule (default limits when not given).
    timeout : float
        Seconds before the run is stopped.
    """
    rule = rule or OutputRule()
    code = request.code
    api = request.get_api()
    kwargs = {}
    with quiet():
        for per_server in code.input_policy_init_kwargs.values():
            for param, matcher in per_server.items():
                kwargs[param] = _plain_mock(api.services.action.get_mock(matcher.val))
    return run_in_trial_process(
        code.raw_code, code.service_func_name, kwargs, rule=rule, timeout=timeout
    )


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
    if not reason or not reason.strip():
        raise WorkbenchError(
            f"denying {request.code.service_func_name}: a reason for the researcher is required"
        )
    _call(request.deny, f"denying {request.code.service_func_name}", reason=reason.strip())


def approve_with_result(
    request: Any, value: Any, *, rule: OutputRule | None = None, override: bool = False
) -> None:
    """Approve the request by releasing `value`, a result the admin computed and inspected.

    Parameters
    ----------
    request : syft Request
    value : object
        What the researcher will get.
    rule : OutputRule, optional
        The factory's output rule (default limits when not given).
    override : bool
        Release `value` even if it breaks the rule (recorded on the request).

    Raises
    ------
    WorkbenchError
        If `value` breaks the output rule and `override` is False.
    """
    broken = output_rule_violation(value, rule or OutputRule())
    if broken and not override:
        raise WorkbenchError(
            f"result for {request.code.service_func_name} breaks the output rule: {broken}; "
            "release it with override=True if you mean to"
        )
    if override:
        _record_override(request)
    _call(
        request.deposit_result,
        f"releasing a result for {request.code.service_func_name}",
        value,
        approve=True,
    )


def _record_override(request: Any) -> None:
    api = request.get_api()
    with quiet():
        admin_email = api.services.user.get_current_user().email
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    tags = [tag for tag in request.tags if not tag.startswith(OVERRIDE_TAG)]
    tags += [OVERRIDE_TAG, f"{OVERRIDE_TAG}-by:{admin_email}", f"{OVERRIDE_TAG}-at:{stamp}"]
    _call(api.services.request.set_tags, "recording the override", request, tags)


def _call(method: Any, what: str, *args: Any, **kwargs: Any) -> Any:
    try:
        with quiet():
            return method(*args, **kwargs)
    except Exception as error:  # syft raises its own exception types
        raise WorkbenchError(f"{what} failed: {reason(error)}") from None


def _plain_mock(value: Any) -> Any:
    """The mock as a plain Python value (syft may hand back an ActionObject)."""
    return getattr(value, "syft_action_data", value)
