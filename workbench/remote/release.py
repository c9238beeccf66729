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

import json
import os
import pickle
import subprocess
import sys
import tempfile
from typing import Any

from workbench.errors import WorkbenchError
from workbench.remote._syft_calls import quiet
from workbench.remote.config import OutputRule
from workbench.remote.output_rule import output_rule_violation
from workbench.remote.review import _TRIAL_ENV_KEYS, MockTrial


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


def run_in_trial_process(
    source: str,
    function_name: str,
    kwargs: dict[str, Any],
    *,
    rule: OutputRule | None = None,
    timeout: float = 600.0,
) -> MockTrial:
    """Run ``function_name(**kwargs)`` from `source` in a separate process; report it.

    Examples
    --------
    >>> run_in_trial_process("def f(x):\\n    return {'n': x + 1}\\n", "f", {"x": 1}).result
    {'n': 2}
    """
    payload = pickle.dumps({"source": source, "name": function_name, "kwargs": kwargs})
    env = {key: os.environ[key] for key in _TRIAL_ENV_KEYS if key in os.environ}
    with tempfile.TemporaryDirectory(prefix="workbench-private-run-") as folder:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "workbench.remote._mock_trial"],
                input=payload,
                capture_output=True,
                timeout=timeout,
                cwd=folder,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return MockTrial(None, "", None, f"stopped after {timeout:.0f} s", "", timeout)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        error = done.stderr.decode(errors="replace")[-2000:] or "run process gave no report"
        return MockTrial(None, "", None, error, "", 0.0)
    failed = report.get("error")
    result = report.get("result")
    return MockTrial(
        result=result,
        preview=str(report.get("repr", "")),
        violation=None if failed else output_rule_violation(result, rule or OutputRule()),
        error=failed,
        stdout=str(report.get("stdout", "")),
        seconds=float(report.get("seconds", 0.0)),
    )
