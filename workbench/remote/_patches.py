"""The one place where workbench changes PySyft: a checked registry of patches.

Every change to syft is a :class:`Patch`: the object and attribute it replaces, a
function that builds the replacement from the original, and why. :func:`install`
first checks that the installed syft is the version the patches were written for and
that every patched name exists, and refuses (loudly, before anything is replaced)
otherwise; then it installs them all. Installing twice changes nothing.

Examples
--------
>>> import types
>>> target = types.SimpleNamespace(greet=lambda: "hi")
>>> shout = Patch(target, "greet", lambda original: lambda: original().upper(), "louder")
>>> install([shout], syft_version=SYFT_VERSION)
>>> target.greet()
'HI'
>>> install([shout], syft_version=SYFT_VERSION)  # idempotent
>>> target.greet()
'HI'
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError

SYFT_VERSION = "0.9.5"
_MARK = "_workbench_patch"


@dataclass(frozen=True)
class Patch:
    """One replaced attribute of syft.

    Attributes
    ----------
    owner : object
        The module or class holding the attribute.
    name : str
        The attribute replaced.
    build : callable
        ``build(original) -> replacement``.
    why : str
        The gap or bug it closes (one line, for errors and the README).
    """

    owner: Any
    name: str
    build: Callable[[Any], Any]
    why: str

    @property
    def where(self) -> str:
        """``module.Class.name`` of the patched attribute."""
        owner = getattr(self.owner, "__qualname__", None) or getattr(self.owner, "__name__", "?")
        module = getattr(self.owner, "__module__", None)
        return f"{module}.{owner}.{self.name}" if module else f"{owner}.{self.name}"


def install(patches: Sequence[Patch], *, syft_version: str | None = None) -> None:
    """Check, then install `patches` (all or none).

    Parameters
    ----------
    patches : sequence of Patch
    syft_version : str, optional
        The installed syft version (read from syft when not given).

    Raises
    ------
    WorkbenchError
        If syft is not version :data:`SYFT_VERSION`, or a patched name is missing.
    """
    if syft_version is None:
        import syft

        syft_version = syft.__version__
    if syft_version != SYFT_VERSION:
        raise WorkbenchError(
            f"syft {syft_version} is installed; the datasite's patches are written for "
            f"syft {SYFT_VERSION} (pip install syft=={SYFT_VERSION})"
        )
    missing = [patch.where for patch in patches if not hasattr(patch.owner, patch.name)]
    if missing:
        raise WorkbenchError(f"syft {syft_version} has no {missing[0]} to patch; refusing to start")
    for patch in patches:
        original = getattr(patch.owner, patch.name)
        if getattr(original, _MARK, None) == patch.why:
            continue  # installed already
        replacement = patch.build(original)
        with contextlib.suppress(AttributeError):  # a plain value (a constant) has no mark
            setattr(replacement, _MARK, patch.why)
        setattr(patch.owner, patch.name, replacement)


def installed(owner: Any, name: str) -> bool:
    """True if ``owner.name`` is a workbench patch."""
    return getattr(getattr(owner, name, None), _MARK, None) is not None
