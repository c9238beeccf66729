"""Review before release: the admin computes a request's result on the private data first.

The release path of a code request: instead of approving and letting the researcher
run the code, the admin runs it on the private images (:func:`run_on_private`),
reads what the result holds and whether it passes the output rule, and then releases
exactly that value with :func:`workbench.remote.review.approve_with_result`.

The code runs in the factory's sandbox, like :func:`workbench.remote.review.try_on_mock`
and like every run on the datasite (:mod:`workbench.sandbox`): no network, no files of
the factory, the factory's time and memory limits.

Examples
--------
>>> from workbench.remote import release, review
>>> request = review.list_requests(session, status="pending")[0]  # doctest: +SKIP
>>> outcome = release.run_on_private(session, request)  # doctest: +SKIP
>>> outcome.result, review.result_violation(session, outcome)  # doctest: +SKIP
({'images': 40, 'mean_count': 31.2, ...}, None)
>>> review.approve_with_result(session, request, outcome.result)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from workbench.errors import WorkbenchError
from workbench.remote._syft_calls import code_inputs, quiet
from workbench.remote.admin import AdminSession
from workbench.remote.review import run_code
from workbench.sandbox import SandboxOutcome


def run_on_private(session: AdminSession, request: Any) -> SandboxOutcome:
    """Run the request's code on the private assets it names, in the factory's sandbox.

    Parameters
    ----------
    session : AdminSession
        The factory admin (only the admin can read private assets).
    request : syft Request

    Returns
    -------
    SandboxOutcome
        Computed on private data; :func:`workbench.remote.review.result_violation`
        says what the output rule makes of it.

    Raises
    ------
    WorkbenchError
        If an input of the request is not an asset of this datasite.
    """
    with quiet():
        assets = {
            str(asset.action_id): asset
            for dataset in session.client.datasets.get_all()
            for asset in dataset.asset_list
        }
        kwargs = {}
        for param, asset_id in code_inputs(request.code).items():
            if str(asset_id) not in assets:
                raise WorkbenchError(
                    f"request {request.code.service_func_name}: input {param} is not an asset "
                    f"of {session.name}"
                )
            kwargs[param] = assets[str(asset_id)].data
    return run_code(session, request, kwargs, on="private")
