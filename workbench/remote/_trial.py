"""Run submitted code in a separate process and report what it returned.

Shared by the "try on mock" step (:func:`workbench.remote.review.try_on_mock`) and the
release step (:func:`workbench.remote.release.run_on_private`). The child
(``workbench.remote._mock_trial``) gets no syft session and no credentials in its
environment, a temporary working folder, and is stopped after a timeout. It is not a
sandbox: read the automatic findings before running anything on private data.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import Any

from workbench.remote.config import OutputRule
from workbench.remote.output_rule import output_rule_violation

# Environment passed to the trial process: no passwords or tokens of the admin's session.
_TRIAL_ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "OMP_NUM_THREADS", "TMPDIR")


@dataclass(frozen=True)
class MockTrial:
    """Outcome of running a request's code on the mock data.

    Attributes
    ----------
    result : object or None
        The value (plain numbers, lists and dicts), None if the run failed.
    preview : str
        The start of the value's repr, also when it is not plain data.
    violation : str or None
        The output rule the value breaks, if any (the datasite would refuse it).
    error : str or None
        Why the run failed or timed out.
    stdout : str
        What the code printed.
    seconds : float
        Run time.
    """

    result: Any
    preview: str
    violation: str | None
    error: str | None
    stdout: str
    seconds: float


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
