"""Small adapters around syft client calls shared by the client and review modules."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """syft prints banners and warnings on stdout; send them to stderr instead.

    Keeps stdout clean for ``--json`` output.
    """
    with contextlib.redirect_stdout(sys.stderr):
        yield


def reason(error: BaseException) -> str:
    """The one-line public message of a syft (or any) exception.

    Examples
    --------
    >>> reason(ValueError("bad\\n  value"))
    'bad value'
    """
    message = getattr(error, "public_message", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())


def status_name(status: Any) -> str:
    """``RequestStatus.PENDING`` / ``JobStatus.COMPLETED`` as ``pending`` / ``completed``.

    Examples
    --------
    >>> status_name("APPROVED")
    'approved'
    """
    return str(getattr(status, "name", status)).lower()


def code_inputs(code: Any) -> dict[str, Any]:
    """A submitted function's inputs: ``{parameter: asset action id (a syft UID)}``.

    ``MixedInputPolicy`` keeps each input as a matcher with the asset's id in ``val``;
    older policies keep the id itself.
    """
    return {
        param: getattr(matcher, "val", matcher)
        for per_server in code.input_policy_init_kwargs.values()
        for param, matcher in per_server.items()
    }
