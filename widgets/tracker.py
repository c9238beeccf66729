"""Request tracker: where each submitted function stands on every factory datasite.

One row per (function, factory) with the request's status, the denial reason, the
run's status and progress and, once the run completed, the aggregate it returned.
**Refresh** reloads the table (so does **Auto-refresh** every few seconds, from a
background thread, without re-running cells); **Start approved runs** starts the
runs the factory admins approved (:func:`workbench.remote.client.start_runs`).

Examples
--------
>>> tracker = RequestTracker(factories, ["count_crystals"])  # doctest: +SKIP
>>> tracker.run_button.click()  # doctest: +SKIP
>>> tracker.rows[["factory", "request", "job"]]  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import ipywidgets as w
import pandas as pd

from widgets._html import notice_html, table_html
from widgets._quiet import run_quietly
from workbench.remote import browse, client


class RequestTracker:
    """Live status of code requests on every datasite of `clients`.

    Parameters
    ----------
    clients : dict
        ``{factory: syft DatasiteClient}`` from :func:`workbench.remote.client.login`.
    functions : sequence of str, optional
        Function names to follow; every function the researcher submitted when None.
    interval_s : float
        Seconds between automatic refreshes.

    Attributes
    ----------
    rows : DataFrame
        The table shown (see :func:`workbench.remote.browse.request_rows`).
    refresh_button, run_button : Button
        Reload the table; start every approved run that has not run yet.
    auto_refresh : Checkbox
        Refresh every `interval_s` seconds while ticked.
    table, message : HTML
        The rendered table; the outcome of the last action and when it happened.
    widget : VBox
        The whole tracker.
    """

    def __init__(
        self,
        clients: dict[str, Any],
        functions: Sequence[str] | None = None,
        interval_s: float = 10.0,
    ):
        self.clients = clients
        self.functions = list(functions) if functions is not None else None
        self.interval_s = interval_s
        self.rows = pd.DataFrame()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.run_button = w.Button(
            description="Start approved runs", icon="play", layout=w.Layout(width="auto")
        )
        self.auto_refresh = w.Checkbox(description=f"Auto-refresh ({interval_s:g} s)", value=False)
        self.table = w.HTML()
        self.message = w.HTML()
        self.widget = w.VBox(
            [
                w.HTML("<h3>Requests</h3>"),
                w.HBox([self.refresh_button, self.run_button, self.auto_refresh]),
                self.table,
                self.message,
            ]
        )
        self.refresh_button.on_click(lambda _: self.refresh())
        self.run_button.on_click(lambda _: self.start_runs())
        self.auto_refresh.observe(lambda change: self._auto(change["new"]), names="value")
        self.refresh()

    def refresh(self) -> pd.DataFrame:
        """Reload every row from the datasites; return the new table."""
        with self._lock:
            rows = self._quietly(lambda: browse.request_rows(self.clients, self._names()))
            if rows is not None:
                self.rows = rows
                self.table.value = tracker_html(rows)
                self.message.value = notice_html(f"updated {time.strftime('%H:%M:%S')}")
        return self.rows

    def start_runs(self) -> dict[str, dict]:
        """Start the approved, not yet run requests; return ``{function: {factory: job}}``."""
        started = {}
        for name in self._names():
            jobs = self._quietly(lambda name=name: client.start_runs(self.clients, name))
            if jobs is None:
                return started  # the error is in `message`
            if jobs:
                started[name] = jobs
        runs = "; ".join(f"{name} on {', '.join(jobs)}" for name, jobs in started.items())
        self.refresh()
        self.message.value = notice_html(
            f"started {runs}" if runs else "no approved request waiting to run", "ok"
        )
        return started

    def close(self) -> None:
        """Stop auto-refreshing."""
        self.auto_refresh.value = False

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    def _auto(self, on: bool) -> None:
        if not on:
            self._stop.set()
            return
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), daemon=True)
        self._thread.start()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            self.refresh()

    def _names(self) -> list[str]:
        if self.functions is not None:
            return self.functions
        return self._quietly(lambda: browse.submitted_functions(self.clients)) or []

    def _quietly(self, action: Any) -> Any:
        """Run `action` with syft's chatter kept out of the notebook; None on error."""
        return run_quietly(action, self.message)[1]


def tracker_html(rows: pd.DataFrame) -> str:
    """The tracker table: statuses as they are, each result as ``key=value`` pairs.

    Examples
    --------
    >>> rows = pd.DataFrame([{"function": "f", "factory": "a", "request": "approved",
    ...                       "reason": "", "job": "completed", "progress": "2/2",
    ...                       "result": {"images": 2, "mean_count": 3.5}}])
    >>> "images=2, mean_count=3.5" in tracker_html(rows)
    True
    """
    if rows.empty:
        return notice_html("Nothing submitted yet.")
    shown = rows.copy()
    shown["result"] = [_result_text(value) for value in shown["result"]]
    return table_html(shown)


def _result_text(value: Any) -> str:
    if not isinstance(value, dict):
        return ""
    return ", ".join(
        f"{key}={item}" for key, item in value.items() if not isinstance(item, list | dict)
    )
