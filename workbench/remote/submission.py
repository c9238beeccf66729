"""Submit a function once per datasite, so a notebook can be run again from the top.

syft 0.9.5 refuses a second request for code it already holds ("Request ... already
exists for this UserCode"); :func:`submit_once` keeps that existing request instead
of failing, and submits everywhere else. Changed code is new code: it is submitted.

Examples
--------
>>> from workbench.remote import counting
>>> submit_once(factories, counting.count_crystals, "line-3")  # doctest: +SKIP
{'factory-a': 'submitted', 'factory-b': 'already submitted'}
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workbench.errors import WorkbenchError

# What syft 0.9.5 says when the same code already has a request on the datasite.
_ALREADY_REQUESTED = "already exists for this UserCode"


def submit_once(clients: dict[str, Any], function: Callable, dataset: str) -> dict[str, str]:
    """Submit `function` on `dataset` to every datasite that has no request for it yet.

    Parameters
    ----------
    clients : dict
        ``{factory: syft DatasiteClient}`` from :func:`workbench.remote.client.login`.
    function : callable
        See :func:`workbench.remote.client.submit`.
    dataset : str
        Dataset name on every datasite.

    Returns
    -------
    dict
        ``{factory: "submitted" | "already submitted"}``.

    Raises
    ------
    WorkbenchError
        If a datasite lacks the dataset or refuses the request for another reason.
    """
    from workbench.remote import client

    outcome = {}
    for factory, datasite in clients.items():
        try:
            client.submit({factory: datasite}, function, dataset)
            outcome[factory] = "submitted"
        except WorkbenchError as error:
            if _ALREADY_REQUESTED not in str(error):
                raise
            outcome[factory] = "already submitted"
    return outcome
