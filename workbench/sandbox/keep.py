"""Files a run leaves at the factory: they never go to the researcher.

A function that makes something too large or too revealing to be a result (the
weights of a counter fine-tuned on the factory's images) writes it into
:func:`keep_folder`. When the run ends well, the sandbox's runner sends the regular
files of that folder to the datasite beside the result, within the run's
``max_kept_mb``; the datasite stores them in its state folder
(:mod:`workbench.remote.kept`) and only the factory's admin can take them out. The
researcher gets the function's value, nothing else.

What comes back is untrusted (the function shares the runner's process): the
parent checks each name with :func:`is_kept_name` and the total size again.

Examples
--------
>>> is_kept_name("counter.pt"), is_kept_name("../escape"), is_kept_name(".hidden")
(True, False, False)
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path

KEEP_VARIABLE = "WORKBENCH_KEEP"  # set inside every sandbox to SANDBOX_KEEP_FOLDER
SANDBOX_KEEP_FOLDER = "/tmp/keep"
MAX_KEPT_FILES = 16
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class KeptTooLargeError(Exception):
    """The files left in the keep folder exceed the run's budget."""


def keep_folder() -> Path:
    """The folder whose files stay at the factory when this run ends.

    Inside a sandbox it is ``/tmp/keep``; outside one (a researcher trying a function
    on mock data) a fresh temporary folder, so the same function runs unchanged.

    Examples
    --------
    >>> folder = keep_folder()
    >>> folder.is_dir()
    True
    """
    inside = os.environ.get(KEEP_VARIABLE)
    if inside:
        folder = Path(inside)
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder
    return Path(tempfile.mkdtemp(prefix="workbench-keep-"))


def is_kept_name(name: str) -> bool:
    """True for a plain file name a kept file may have (no path, no leading dot).

    Examples
    --------
    >>> is_kept_name("weights-v2.pt"), is_kept_name("a/b"), is_kept_name("")
    (True, False, False)
    """
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def collect_kept(folder: str | Path, max_bytes: int) -> dict[str, bytes]:
    """The regular files directly in `folder` with a kept name, by name.

    Links, folders and other names are left behind (they never leave the sandbox).

    Raises
    ------
    KeptTooLargeError
        When the files hold more than `max_bytes`, or there are more than
        :data:`MAX_KEPT_FILES`.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "w.pt").write_bytes(b"1234")
    >>> collect_kept(folder, max_bytes=100)
    {'w.pt': b'1234'}
    """
    folder = Path(folder)
    if not folder.is_dir():
        return {}
    kept: dict[str, bytes] = {}
    total = 0
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        status = entry.stat(follow_symlinks=False)
        if not is_kept_name(entry.name) or not stat.S_ISREG(status.st_mode):
            continue
        total += status.st_size
        if total > max_bytes or len(kept) >= MAX_KEPT_FILES:
            raise KeptTooLargeError(
                f"left more than {max_bytes >> 20} MiB or {MAX_KEPT_FILES} files to keep"
            )
        kept[entry.name] = Path(entry.path).read_bytes()
    return kept
