"""Review before release: the admin computes a request's result on the private data first.

The release path of a code request: instead of approving and letting the researcher
run the code, the admin runs it on the private images (:func:`run_on_private`),
reads what the result holds and whether it passes the output rule, and then releases
exactly that value with :func:`workbench.remote.review.approve_with_result`.

The code runs in a separate process, like :func:`workbench.remote.review.try_on_mock`
(same child, ``workbench.remote._mock_trial``): no syft session and no credentials
in its environment, a temporary working folder, stopped after a timeout. It is not a
sandbox; read the findings before running anything on private data.

Examples
--------
>>> from workbench.remote import release, review
>>> request = review.list_requests(admin, status="pending")[0]  # doctest: +SKIP
>>> outcome = release.run_on_private(admin, request)  # doctest: +SKIP
>>> outcome.result, outcome.violation  # doctest: +SKIP
({'images': 40, 'mean_count': 31.2, ...}, None)
>>> review.approve_with_result(request, outcome.result)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError
from workbench.remote._syft_calls import quiet
from workbench.remote._trial import MockTrial, run_in_trial_process
from workbench.remote.config import OutputRule


def run_on_private(
    admin: Any, request: Any, *, rule: OutputRule | None = None, timeout: float = 600.0
) -> MockTrial:
    """Run the request's code on the private assets it names; return the outcome.

    Parameters
    ----------
    admin : syft DatasiteClient
        Logged in as the factory admin (only the admin can read private assets).
    request : syft Request
    rule : OutputRule, optional
        The factory's output rule (default limits when not given).
    timeout : float
        Seconds before the run is stopped.

    Returns
    -------
    MockTrial
        The outcome (``result``, ``preview``, ``violation``, ``error``, ``stdout``,
        ``seconds``), computed on private data.

    Raises
    ------
    WorkbenchError
        If an input of the request is not an asset of this datasite.
    """
    code = request.code
    with quiet():
        assets = {
            str(asset.action_id): asset
            for dataset in admin.datasets.get_all()
            for asset in dataset.asset_list
        }
        kwargs = {}
        for per_server in code.input_policy_init_kwargs.values():
            for param, matcher in per_server.items():
                asset = assets.get(str(getattr(matcher, "val", matcher)))
                if asset is None:
                    raise WorkbenchError(
                        f"request {code.service_func_name}: input {param} is not an asset "
                        f"of {admin.name}"
                    )
                kwargs[param] = asset.data
    return run_in_trial_process(
        code.raw_code, code.service_func_name, kwargs, rule=rule, timeout=timeout
    )
