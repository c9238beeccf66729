"""Keep freed image memory in the process: the allocator settings for counting.

glibc's allocator returns each large array's pages to the kernel when it is freed and
asks for fresh ones on the next, so a process counting frames pays a page fault per
4 KiB of every intermediate image (~80,000 for 20 legacy frames in a fresh process,
~55,000 in a warm one). Its threshold for that grows only as arrays are freed, so a
fresh process (a sandbox runs one function and ends) pays the most. Fixed limits keep
up to 256 MB of freed memory for reuse from the first frame on: about 14,000 faults on
the first pass, none after, and 10-15 % less system time.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
# All three together: setting any one fixes the others at their small defaults.
_SETTINGS = {_M_MMAP_THRESHOLD: 32 << 20, _M_TRIM_THRESHOLD: 256 << 20, _M_TOP_PAD: 64 << 20}


def keep_freed_memory() -> bool:
    """Set the allocator limits above for this process; True where they took effect.

    Only glibc has them; elsewhere nothing changes.

    Examples
    --------
    >>> keep_freed_memory() in (True, False)
    True
    """
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        mallopt = ctypes.CDLL(None).mallopt
        return all(mallopt(option, value) == 1 for option, value in _SETTINGS.items())
    return False
