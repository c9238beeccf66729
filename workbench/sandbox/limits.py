"""Resource limits of one sandboxed run (set per factory in its datasite TOML)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxLimits:
    """What one run of researcher code may use.

    Attributes
    ----------
    timeout_s : float
        Wall-clock seconds before the run is killed.
    cpu_s : int
        CPU seconds (all threads together) before the kernel stops the run.
    memory_mb : int
        Address space of the run's process, in MiB (inputs included).
    max_processes : int
        Processes and threads the run may have at once.
    max_file_mb : int
        Largest file the run may write (in its private ``/tmp``), in MiB.
    tmp_mb : int
        Size of the private ``/tmp``, in MiB.
    max_output_kb : int
        Most bytes the run may send back (result and printed text), in KiB.
    max_kept_mb : int
        Most MiB of files the run may leave at the factory
        (:func:`workbench.sandbox.keep.keep_folder`); they never go to the researcher.

    Examples
    --------
    >>> SandboxLimits(timeout_s=20).memory_mb
    4096
    """

    timeout_s: float = 600.0
    cpu_s: int = 1200
    memory_mb: int = 4096
    max_processes: int = 64
    max_file_mb: int = 64
    tmp_mb: int = 256
    max_output_kb: int = 1024
    max_kept_mb: int = 32
