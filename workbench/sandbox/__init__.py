"""Run researcher code in an isolated process: data in, JSON out (no syft).

:func:`run_in_sandbox` starts a fresh ``bwrap`` (bubblewrap) process for every run:
its own network namespace with no interface but a downed loopback, its own pid, IPC
and UTS namespaces, a read-only view of the system, the Python installation and the
workbench package and nothing else of the machine, a private size-limited ``/tmp``, an
empty environment, an unprivileged user, ``no_new_privs``, rlimits on CPU seconds,
address space, file size and processes, and a wall-clock timeout. Inputs go in on
standard input as ``.npy`` arrays plus plain metadata; the result comes back as JSON.
If the sandbox cannot start, the run fails: there is no in-process fallback.
A datasite runs researcher code through a :class:`SandboxPool`, which starts each
run's sandbox before the run is known (each still runs one function only).

Examples
--------
>>> source = "def f(images):\\n    return {'n': len(images['images'])}\\n"
>>> run_in_sandbox(source, "f", {"images": {"images": [[1, 2]]}}).result  # doctest: +SKIP
{'n': 1}
"""

from workbench.sandbox.limits import SandboxLimits
from workbench.sandbox.pool import SandboxPool
from workbench.sandbox.run import Sandbox, SandboxOutcome, run_in_sandbox, sandbox_command

__all__ = [
    "Sandbox",
    "SandboxLimits",
    "SandboxOutcome",
    "SandboxPool",
    "run_in_sandbox",
    "sandbox_command",
]
