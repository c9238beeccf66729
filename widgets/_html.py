"""Small renderers shared by the widgets: highlighted code, tables, thumbnails, notices.

Presentation only: text and pixels in, HTML or PNG bytes out.
"""

from __future__ import annotations

import html
import json
from typing import Any

import cv2
import numpy as np
import pandas as pd

TABLE_STYLE = (
    "<style>.wb-table{border-collapse:collapse;font-size:12px}"
    ".wb-table th,.wb-table td{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}"
    ".wb-table th{background:#f3f3f3}</style>"
)
COLOURS = {"ok": "#1a7f37", "error": "#cf222e", "info": "#57606a", "warn": "#9a6700"}
FINDING_SHADE = "#ffe0e0"  # background of code lines with findings


def code_html(source: str, marked_lines: list[int] | None = None) -> str:
    """Python source as syntax-highlighted HTML with line numbers; `marked_lines` shaded.

    Styles are inline, so the HTML renders the same in a widget, a notebook and a page.

    Examples
    --------
    >>> "<span" in code_html("import os\\n", marked_lines=[1])
    True
    """
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    from pygments.styles.friendly import FriendlyStyle

    class ReviewStyle(FriendlyStyle):
        highlight_color = FINDING_SHADE

    formatter = HtmlFormatter(
        noclasses=True,
        linenos="inline",
        hl_lines=marked_lines or [],
        style=ReviewStyle,
        prestyles="white-space: pre; margin: 0",  # long lines scroll, they do not wrap
    )
    return highlight(source, PythonLexer(), formatter)


def table_html(frame: pd.DataFrame) -> str:
    """A data frame as a compact HTML table (no index).

    Examples
    --------
    >>> "<td>3</td>" in table_html(pd.DataFrame({"count": [3]}))
    True
    """
    return TABLE_STYLE + frame.to_html(index=False, classes="wb-table", border=0, escape=True)


def notice_html(text: str, kind: str = "info") -> str:
    """One line of text in the colour of its kind (``ok``, ``error``, ``info``, ``warn``).

    Examples
    --------
    >>> notice_html("approved", "ok")
    '<span style="color:#1a7f37">approved</span>'
    """
    return f'<span style="color:{COLOURS[kind]}">{html.escape(text)}</span>'


def value_html(value: Any) -> str:
    """A result value as compact JSON in a preformatted block: one line per top-level key.

    Examples
    --------
    >>> value_html({"count": 3, "csd": [1, 2]})
    '<pre>count: 3\\ncsd: [1, 2]</pre>'
    """
    if isinstance(value, dict):
        text = "\n".join(f"{key}: {_compact(item)}" for key, item in value.items())
    else:
        text = _compact(value)
    return f"<pre>{html.escape(text)}</pre>"


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def png_bytes(image: np.ndarray, max_side: int = 192) -> bytes:
    """A thumbnail of `image` (gray or RGB, any dtype) as PNG bytes, longest side `max_side`.

    Examples
    --------
    >>> png_bytes(np.zeros((100, 200), np.uint8), max_side=50)[:4]
    b'\\x89PNG'
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        top = float(array.max()) if array.size else 1.0
        array = np.clip(array.astype(np.float64) / (top or 1.0) * 255.0, 0, 255).astype(np.uint8)
    scale = max_side / max(array.shape[:2])
    if scale < 1:
        size = (max(1, round(array.shape[1] * scale)), max(1, round(array.shape[0] * scale)))
        array = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    if array.ndim == 3:
        array = cv2.cvtColor(array[..., :3], cv2.COLOR_RGB2BGR)  # OpenCV writes BGR
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"cannot encode an image of shape {array.shape} as PNG")
    return encoded.tobytes()
