"""Ending a process that imported syft without the interpreter's teardown.

After ``import syft`` a process holds about half a million objects and many C
extensions, and Python's teardown at exit takes about 3 s on the 2-core machine (a
process that only imports syft: 2.9 s from its last statement to its end). A command,
or a datasite launcher whose server has landed, has nothing left to finalise but its
exit handlers and its open streams: it runs those and ends at once.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn


def exit_code(code: object) -> int:
    """The process exit status of ``SystemExit(code)``, as the interpreter would end it.

    Examples
    --------
    >>> exit_code(None), exit_code(2), exit_code("a message")
    (0, 2, 1)
    """
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def exit_now(code: int = 0) -> NoReturn:
    """Run the exit handlers, flush stdout and stderr, and end the process with `code`.

    The handlers are those ``atexit`` holds (logging's flush, temporary folders,
    multiprocessing's clean-up); what is skipped is freeing every object and module.
    """
    atexit._run_exitfuncs()  # private, but the very handlers os._exit would skip
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or its reader went away
            stream.flush()
    os._exit(code)
