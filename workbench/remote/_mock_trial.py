"""Child process of ``review.try_on_mock``: run submitted code on mock data, report JSON.

Reads a pickle ``{"source", "name", "kwargs"}`` on stdin, runs the function with a
progress stub for ``datasite``, and writes one JSON object on stdout: ``result``
(numbers, lists and dicts; arrays as nested lists), ``repr`` (first 2,000
characters), ``error``, ``stdout`` (what the code printed) and ``seconds``.
The parent treats this output as untrusted data (JSON only, re-checked).
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import sys
import time
import traceback

import numpy as np


class ProgressStub:
    """Stands in for syft's datasite handle: progress calls do nothing."""

    def init_progress(self, n_iters: int) -> None:
        """Ignore the announced number of steps."""

    def increment_progress(self, n: int = 1) -> None:
        """Ignore one step done."""

    def set_progress(self, to: int) -> None:
        """Ignore the step reached."""


def _plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not a plain value")


def main() -> None:
    """Run the trial described on stdin; print the report on stdout."""
    payload = pickle.load(sys.stdin.buffer)  # written by our own parent process
    report = {"result": None, "repr": "", "error": None, "stdout": "", "seconds": 0.0}
    printed = io.StringIO()
    started = time.perf_counter()
    try:
        namespace: dict = {}
        with contextlib.redirect_stdout(printed):
            exec(compile(payload["source"], "<submitted code>", "exec"), namespace)
            kwargs = dict(payload["kwargs"])
            function = namespace[payload["name"]]
            if "datasite" in function.__code__.co_varnames[: function.__code__.co_argcount]:
                kwargs["datasite"] = ProgressStub()
            value = function(**kwargs)
        report["repr"] = repr(value)[:2000]
        try:
            report["result"] = json.loads(json.dumps(value, default=_plain))
        except (TypeError, ValueError) as error:
            report["error"] = f"result is not plain data: {error}"
    except Exception:
        report["error"] = traceback.format_exc(limit=3)[-2000:]
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["stdout"] = printed.getvalue()[-5000:]
    sys.stdout.write(json.dumps(report))


if __name__ == "__main__":
    main()
