"""Entry point inside the sandbox: ``python -I -m workbench.sandbox._runner LIMITS PRELOAD``.

Reads the user to become from the first line of standard input, runs as root of the
sandbox only long enough to become that user (so the process limit applies: the
kernel exempts root from it, and counts it per user), sets its rlimits, imports the
modules of the ``PRELOAD`` JSON list, then waits on standard input for the function
and its inputs (so a sandbox can be started before its run is known), runs the
function once (the process takes its name, for ``ps``) and writes one JSON report on
the original standard output. The function's own ``print`` output is captured and its
file descriptors 1 and 2 point at standard error, so it cannot interleave with the
report by accident (on purpose it can: the parent treats the report as untrusted data).
"""

from __future__ import annotations

import ast
import base64
import contextlib
import ctypes
import errno
import importlib
import io
import json
import os
import resource
import sys
import time
import traceback

from workbench._allocator import keep_freed_memory

_PR_SET_NAME = 15
_MIB = 1 << 20


class ProgressStub:
    """Stands in for syft's datasite handle: the function's progress numbers go nowhere.

    The datasite reports progress of a sandboxed run itself (coarse stages), so a
    number the function chooses never reaches the researcher.
    """

    def init_progress(self, n_iters: int) -> None:
        """Ignore the announced number of steps."""

    def increment_progress(self, n: int = 1) -> None:
        """Ignore one step done."""

    def set_progress(self, to: int) -> None:
        """Ignore the step reached."""


def _drop_privileges(uid: int) -> None:
    if os.getuid() == 0:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)


def _set_limits(limits: dict) -> None:
    memory = int(limits["memory_mb"]) * _MIB
    cpu = int(limits["cpu_s"])
    for name, soft, hard in (
        ("RLIMIT_AS", memory, memory),
        ("RLIMIT_CPU", cpu, cpu + 5),  # SIGXCPU at the soft limit names the cause
        ("RLIMIT_NPROC", int(limits["max_processes"]), int(limits["max_processes"])),
        ("RLIMIT_FSIZE", int(limits["max_file_mb"]) * _MIB, int(limits["max_file_mb"]) * _MIB),
        ("RLIMIT_CORE", 0, 0),
        ("RLIMIT_NOFILE", 256, 256),
    ):
        resource.setrlimit(getattr(resource, name), (soft, hard))


def _preload(modules: list[str]) -> None:
    """Import `modules` while the sandbox waits for its run."""
    for module in modules:
        with contextlib.suppress(Exception):  # a function imports what it needs itself
            importlib.import_module(module)


def _name_process(function_name: str) -> None:
    """Show the function's name as this process's name (``ps``, ``top``: 15 characters)."""
    name = "".join(c for c in function_name if c.isascii() and (c.isalnum() or c == "_"))
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, name[:15].encode(), 0, 0, 0)


def _function(source: str, name: str):
    """Compile `source` without decorators (syft ships them) and return `name`."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            node.decorator_list = []
    namespace: dict = {"__name__": "submitted"}
    exec(compile(tree, "<submitted code>", "exec"), namespace)  # inside the sandbox
    return namespace[name]


def _limit_hit(error: BaseException) -> str | None:
    """The limit an exception stems from, if any."""
    if isinstance(error, MemoryError):
        return "memory"
    if isinstance(error, OSError) and error.errno == errno.EAGAIN:
        return "processes"
    if isinstance(error, OSError) and error.errno == errno.EFBIG:
        return "file size"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return "tmp space"
    return None


def main() -> None:
    """Run the function described by argv and standard input; report on stdout."""
    try:
        uid = int(sys.stdin.buffer.readline())
    except ValueError:
        return  # the parent went away before naming the user: nothing may run
    if uid <= 0:
        return  # never run submitted code as root, whatever the parent sent
    _drop_privileges(uid)
    keep_freed_memory()  # a fresh process: without it, each frame's arrays fault in anew
    runner_pid = os.getpid()
    limits = json.loads(sys.argv[1])
    _set_limits(limits)
    report_fd = os.dup(1)
    os.dup2(2, 1)  # C-level writes (of imports too) land in the captured stderr
    _preload(json.loads(sys.argv[2]))
    from workbench.sandbox._transfer import (
        NotPlainDataError,
        plain_result,
        read_function,
        read_inputs,
    )
    from workbench.sandbox.keep import SANDBOX_KEEP_FOLDER, KeptTooLargeError, collect_kept

    try:
        source, name = read_function(sys.stdin.buffer)
    except Exception:
        return  # closed before a run was handed over: nothing ran
    _name_process(name)
    printed = io.StringIO()
    started = time.perf_counter()
    try:
        kwargs = read_inputs(sys.stdin.buffer)
        function = _function(source, name)
        parameters = function.__code__.co_varnames[: function.__code__.co_argcount]
        if "datasite" in parameters:
            kwargs["datasite"] = ProgressStub()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            value = function(**kwargs)
        report = {"ok": True, "result": plain_result(value)}
        kept = collect_kept(SANDBOX_KEEP_FOLDER, int(limits["max_kept_mb"]) * _MIB)
        report["kept"] = {name: base64.b64encode(data).decode() for name, data in kept.items()}
    except NotPlainDataError as error:
        report = {"ok": False, "kind": "type", "error": str(error)}
    except KeptTooLargeError as error:
        report = {"ok": False, "kind": "kept size", "error": str(error)}
    except BaseException as error:  # the report must name every way the function ended
        report = {
            "ok": False,
            "kind": _limit_hit(error) or "exception",
            "error": traceback.format_exc(limit=-4)[-4000:],
        }
    if os.getpid() != runner_pid:
        os._exit(1)  # a process the function forked: only the runner reports
    report["seconds"] = round(time.perf_counter() - started, 3)
    report["stdout"] = printed.getvalue()[-8000:]
    with os.fdopen(report_fd, "wb") as out:
        out.write(json.dumps(report).encode())
    sys.stderr.flush()
    os._exit(0)  # the run is over: tearing down the interpreter only delays its end


if __name__ == "__main__":
    main()
