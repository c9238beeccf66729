"""Run a library call from a button without syft's chatter or a traceback in the notebook."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from widgets._html import notice_html
from workbench.errors import WorkbenchError


def run_quietly(action: Callable[[], Any], message: w.HTML) -> tuple[bool, Any]:
    """Run `action` with stdout/stderr captured; show an error in `message`.

    Returns ``(True, result)`` on success and ``(False, None)`` on failure, so a
    widget stays usable whatever a datasite answers.
    """
    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            return True, action()
    except WorkbenchError as error:
        message.value = notice_html(str(error), "error")
    except Exception as error:  # the widget must stay usable whatever syft raises
        message.value = notice_html(f"{type(error).__name__}: {error}", "error")
    return False, None
