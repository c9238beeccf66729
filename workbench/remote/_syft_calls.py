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


def request_status(request: Any) -> str:
    """A code request's status read from the request itself: ``pending``, ``approved``
    or ``rejected``.

    syft's ``request.status`` asks the datasite twice (a deployment check, then a fresh
    copy of the request); a request just fetched already holds its history. The rule
    is syft's: approved when every change's last state is applied.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> request_status(SimpleNamespace(history=[], changes=[1]))
    'pending'
    """
    if not request.history:
        return "pending"
    applied = request.current_change_state
    approved = all(applied.values()) and len(applied) == len(request.changes)
    return "approved" if approved else "rejected"


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
