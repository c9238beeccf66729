"""A seccomp filter for the sandbox: kernel interfaces a counting function never needs.

Built with libseccomp (through ``pyseccomp``) and handed to ``bwrap --seccomp FD``.
Refused with EPERM: tracing other processes, kernel keyrings, eBPF, perf events,
userfaultfd, mounting, new namespaces, module loading, kexec, reboot, swap, clock and
host-name changes, raw I/O ports and personality switches. Everything a Python
program with numpy, OpenCV and torch uses stays allowed. When libseccomp is not
on the machine, :func:`filter_file` returns None and the other layers still hold.
"""

from __future__ import annotations

import errno
import functools
import tempfile
from typing import IO

REFUSED_CALLS = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
    "personality",
    "open_by_handle_at",
    "name_to_handle_at",
    "fanotify_init",
    "lookup_dcookie",
    "quotactl",
    "acct",
    "syslog",
    "vhangup",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
)


@functools.cache
def _program() -> bytes | None:
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError):
        return None
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in REFUSED_CALLS:
        try:
            rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
        except (RuntimeError, ValueError, OSError):
            continue  # a call this kernel or libseccomp does not know
    with tempfile.TemporaryFile() as out:
        rules.export_bpf(out)
        out.seek(0)
        return out.read()


def filter_file() -> IO[bytes] | None:
    """An open file holding the compiled filter, positioned at its start (or None)."""
    program = _program()
    if program is None:
        return None
    out = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, who closes it
    out.write(program)
    out.seek(0)
    return out
