"""Keep the next run's sandbox started, so a run skips the sandbox's start.

A sandbox's start (bubblewrap, Python, the imports a counting function needs) takes
0.5-0.7 s on a 2-core machine, paid on every run of a datasite. It does not depend on
the run, so :class:`SandboxPool` starts one :class:`~workbench.sandbox.run.Sandbox`
ahead and hands it to the next run. Nothing else changes: each sandbox still runs one
function and ends (no state, file or import of one run reaches another), with the
same command line, limits and seccomp filter as a sandbox started for the run.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.sandbox.limits import SandboxLimits
from workbench.sandbox.run import Sandbox, SandboxOutcome

_STARTING_WAIT_S = 5.0  # the starter's Popen takes milliseconds; never wait on it forever


class SandboxPool:
    """Runs each function in its own sandbox, started before the run when possible.

    The sandbox is started by a thread of the pool's own that lives as long as the
    process: bubblewrap's ``--die-with-parent`` kills a sandbox when the *thread* that
    started it ends, and a datasite's job threads end after each job. A run that finds
    no waiting sandbox (the first of a process, or two runs at once) starts its own.

    Parameters
    ----------
    limits : SandboxLimits, optional
        Defaults when not given.
    hidden : tuple of Path
        Folders that must stay invisible inside (see :func:`run_in_sandbox`).
    preload : tuple of str
        Modules the waiting sandbox imports before its run is handed over.

    Examples
    --------
    >>> pool = SandboxPool(preload=("numpy",))
    >>> pool.run("def f():\\n    return 2\\n", "f", {}).result
    2
    >>> pool.run("def f():\\n    return 3\\n", "f", {}).warm  # started ahead of this run
    True
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        hidden: tuple[Path, ...] = (),
        preload: tuple[str, ...] = (),
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.hidden, self.preload = hidden, preload
        self._lock = threading.Condition()
        self._waiting: Sandbox | None = None
        self._starting = False  # the starter is in Popen (a few ms): worth waiting for
        self._wanted = threading.Event()
        self._pid: int | None = None  # the process whose starter thread runs

    def start(self) -> None:
        """Start a sandbox ahead of the next run, if none is waiting (idempotent)."""
        self._start_thread()
        self._request_start()

    def run(self, source: str, function_name: str, kwargs: dict[str, Any]) -> SandboxOutcome:
        """Run ``function_name(**kwargs)`` from `source` in a sandbox of its own.

        Returns and raises as :func:`workbench.sandbox.run.run_in_sandbox`; the
        outcome's ``warm`` says whether the sandbox was started ahead of the run.
        """
        self._start_thread()
        with self._lock:
            self._lock.wait_for(lambda: not self._starting, timeout=_STARTING_WAIT_S)
            sandbox, self._waiting = self._waiting, None
        warm = sandbox is not None and sandbox.waiting()
        if not warm:
            if sandbox is not None:
                sandbox.close()
            sandbox = self._new()  # in this thread, which lives until the run ends
        try:
            outcome = sandbox.run(source, function_name, kwargs)
        finally:
            self._request_start()  # the next one starts once this run is over
        return dataclasses.replace(outcome, warm=warm)

    def _new(self) -> Sandbox:
        return Sandbox(self.limits, hidden=self.hidden, preload=self.preload)

    def _start_thread(self) -> None:
        """The starter thread of this process (a forked child inherits none)."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._waiting, self._starting = os.getpid(), None, False
                threading.Thread(target=self._keep_one_waiting, daemon=True).start()

    def _request_start(self) -> None:
        with self._lock:
            if self._waiting is None or not self._waiting.waiting():
                self._starting = True  # a run from now on waits for it, not starts its own
                self._wanted.set()

    def _keep_one_waiting(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            sandbox = None
            try:
                sandbox = self._new()
            except WorkbenchError:
                pass  # the next run starts its own sandbox and reports why it cannot
            finally:
                with self._lock:
                    previous, self._waiting = self._waiting, sandbox
                    self._starting = False
                    self._lock.notify_all()
            if previous is not None:
                previous.close()
