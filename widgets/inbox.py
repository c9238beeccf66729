"""Review inbox: the factory admin's view of every code request on the datasite.

Each control is an attribute, so a test (or a script) drives it without a browser:
``inbox.select(request_id)``, ``inbox.reason.value = "..."``,
``inbox.deny_button.click()``. Every button calls the function of
:mod:`workbench.remote.review` (or :mod:`workbench.remote.release`) that the CLI
calls; the widget only shows what they return.

Examples
--------
>>> from workbench.remote.admin import admin_login
>>> from workbench.remote.config import load_config
>>> config = load_config("datasites/factory-a.toml")  # doctest: +SKIP
>>> inbox = ReviewInbox(admin_login(config), rule=config.output_rule)  # doctest: +SKIP
>>> inbox  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from widgets._html import code_html, notice_html, value_html
from widgets._quiet import run_quietly
from workbench.errors import WorkbenchError
from workbench.remote import browse, release, review
from workbench.remote.config import OutputRule

STATUSES = ("all", "pending", "approved", "rejected")
_STATUS_MARK = {"pending": "●", "approved": "✔", "rejected": "✘"}


class ReviewInbox:
    """Pending, approved and denied code requests; review, try, approve, deny, release.

    Parameters
    ----------
    admin : syft DatasiteClient
        Logged in as the factory admin.
    rule : OutputRule, optional
        The factory's output rule (``config.output_rule``); default limits otherwise.
    timeout : float
        Seconds a trial or private run may take.

    Attributes
    ----------
    status_filter : ToggleButtons
        Which requests the list shows (all, pending, approved, rejected).
    requests_list : Select
        One line per request (status, function, researcher, datasets, submitted);
        its value is the selected request's id.
    summary, code_view, findings_view, trial_view, private_view, message : HTML
        The selected request, its highlighted code, the automatic findings, the mock
        trial, the private run, and the outcome of the last action.
    reason : Textarea
        Required to deny; shown to the researcher.
    override : Checkbox
        Approve despite findings / release a value that breaks the output rule
        (recorded on the request).
    refresh_button, try_button, approve_button, deny_button, compute_button,
    release_button : Button
        The actions. ``deny_button`` stays disabled while `reason` is empty.
    widget : VBox
        The whole inbox (what a notebook displays).
    """

    def __init__(self, admin: Any, rule: OutputRule | None = None, timeout: float = 300.0):
        self.admin = admin
        self.rule = rule or OutputRule()
        self.timeout = timeout
        self.requests: dict[str, Any] = {}
        self.private_outcome: review.MockTrial | None = None

        self.status_filter = w.ToggleButtons(options=STATUSES, value="all")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.counts = w.HTML()
        self.requests_list = w.Select(options=[], rows=7, layout=w.Layout(width="98%"))
        self.summary = w.HTML()
        self.code_view = w.HTML()
        self.findings_view = w.HTML()
        self.try_button = w.Button(description="Try on mock", icon="flask")
        self.trial_view = w.HTML()
        self.reason = w.Textarea(
            placeholder="Reason for the researcher (required to deny)",
            layout=w.Layout(width="95%", height="60px"),
        )
        self.override = w.Checkbox(
            description="Override findings / output rule (recorded on the request)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.approve_button = w.Button(description="Approve", button_style="success", icon="check")
        self.deny_button = w.Button(
            description="Deny", button_style="danger", icon="times", disabled=True
        )
        self.compute_button = w.Button(
            description="Compute on private data", icon="lock", layout=w.Layout(width="auto")
        )
        self.private_view = w.HTML()
        self.release_button = w.Button(
            description="Release this result", button_style="warning", icon="send",
            disabled=True, layout=w.Layout(width="auto"),
        )  # fmt: skip
        self.message = w.HTML()
        self.widget = self._layout()

        self.status_filter.observe(lambda _: self.refresh(), names="value")
        self.requests_list.observe(lambda _: self._show_selected(), names="value")
        self.reason.observe(lambda _: self._update_buttons(), names="value")
        self.override.observe(lambda _: self._update_buttons(), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.try_button.on_click(lambda _: self.try_on_mock())
        self.approve_button.on_click(lambda _: self.approve())
        self.deny_button.on_click(lambda _: self.deny())
        self.compute_button.on_click(lambda _: self.compute_on_private())
        self.release_button.on_click(lambda _: self.release())
        self.refresh()

    # -- what is selected ------------------------------------------------------------
    @property
    def selected(self) -> Any | None:
        """The selected syft Request, or None."""
        return self.requests.get(self.requests_list.value)

    def select(self, request_id: str) -> None:
        """Select the request with id `request_id` (shown whatever the status filter).

        Raises
        ------
        WorkbenchError
            If the datasite has no request with that id.
        """
        request_id = str(request_id)
        if request_id not in self.requests:
            self.status_filter.value = "all"
        if request_id not in self.requests:
            raise WorkbenchError(f"no code request {request_id} on {self.admin.name}")
        self.requests_list.value = request_id

    def status_of(self, request_id: str) -> str:
        """Status of a request as the list last showed it (pending, approved, rejected)."""
        return review.status_name(self.requests[str(request_id)].status)

    # -- actions ---------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload the requests from the datasite, keeping the selection when it is listed."""
        keep = self.requests_list.value
        wanted = None if self.status_filter.value == "all" else self.status_filter.value
        everything = self._call(lambda: review.list_requests(self.admin)) or []
        statuses = [review.status_name(request.status) for request in everything]
        self.counts.value = " · ".join(f"{statuses.count(s)} {s}" for s in STATUSES[1:])
        listed = [r for r in everything if wanted in (None, review.status_name(r.status))]
        self.requests = {str(request.id): request for request in listed}
        self.requests_list.options = [(self._label(r), str(r.id)) for r in listed]
        if keep in self.requests:
            self.requests_list.value = keep
        elif listed:
            self.requests_list.value = str(listed[0].id)
        self._show_selected()

    def try_on_mock(self) -> review.MockTrial | None:
        """Run the selected request's code on the mock data and show what it returns."""
        request = self.selected
        if request is None:
            return None
        self.trial_view.value = notice_html("running on the mock data...")
        trial = self._call(
            lambda: review.try_on_mock(request, rule=self.rule, timeout=self.timeout)
        )
        self.trial_view.value = _outcome_html("Trial on mock data", trial) if trial else ""
        return trial

    def approve(self) -> None:
        """Approve the selected request (with ``override`` when the box is ticked)."""
        request = self.selected
        if request is not None:
            self._decide(lambda: review.approve(request, override=self.override.value), "approved")

    def deny(self) -> None:
        """Deny the selected request with the text of `reason`; refuse while it is empty."""
        request = self.selected
        if request is None:
            return
        if not self.reason.value.strip():
            self.message.value = notice_html(
                "Write a reason for the researcher before denying.", "error"
            )
            return
        self._decide(lambda: review.deny(request, self.reason.value), "denied")

    def compute_on_private(self) -> review.MockTrial | None:
        """Run the selected request's code on the private data; show the result to release."""
        request = self.selected
        if request is None:
            return None
        self.private_view.value = notice_html("running on the private data...")
        outcome = self._call(
            lambda: release.run_on_private(
                self.admin, request, rule=self.rule, timeout=self.timeout
            )
        )
        self.private_outcome = outcome if outcome is not None and outcome.error is None else None
        heading = "Result on private data (not released yet)"
        self.private_view.value = _outcome_html(heading, outcome) if outcome else ""
        self._update_buttons()
        return outcome

    def release(self) -> None:
        """Approve the selected request by releasing the value computed on private data."""
        request, outcome = self.selected, self.private_outcome
        if request is None or outcome is None:
            self.message.value = notice_html("Compute the result on private data first.", "error")
            return
        self._decide(
            lambda: review.approve_with_result(
                request, outcome.result, rule=self.rule, override=self.override.value
            ),
            "result released",
        )

    # -- display ---------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)

    def _layout(self) -> w.VBox:
        # Left: who, what, findings, trial and the decision; right: the code, scrolling.
        self.code_view.layout = w.Layout(
            max_height="430px", overflow="auto", border="1px solid #ddd", width="100%"
        )
        left = w.VBox(
            [
                self.summary,
                w.HTML("<b>Automatic findings</b>"),
                self.findings_view,
                self.try_button,
                self.trial_view,
                w.HTML("<b>Decision</b>"),
                self.reason,
                w.HBox([self.approve_button, self.deny_button]),
                self.override,
                w.HBox([self.compute_button, self.release_button]),
                self.private_view,
                self.message,
            ],
            layout=w.Layout(flex="0 0 40%", min_width="0", overflow="hidden"),
        )
        right = w.VBox(
            [w.HTML("<b>Code</b>"), self.code_view],
            layout=w.Layout(flex="1 1 0", min_width="0", margin="0 0 0 12px", overflow="hidden"),
        )
        top = w.HBox([self.status_filter, self.refresh_button, self.counts])
        return w.VBox(
            [w.HTML("<h3>Code requests</h3>"), top, self.requests_list, w.HBox([left, right])]
        )

    def _label(self, request: Any) -> str:
        status = review.status_name(request.status)
        datasets = ", ".join(browse.request_datasets(self.admin, request)) or "?"
        return (
            f"{_STATUS_MARK.get(status, '?')} {status:<8}  {request.code.service_func_name}  "
            f"· {request.requesting_user_name} <{request.requesting_user_email}>  "
            f"· {datasets}  · {str(request.request_time)[:16]}"
        )

    def _show_selected(self) -> None:
        request = self.selected
        self.trial_view.value = self.private_view.value = self.message.value = ""
        self.private_outcome = None
        self.reason.value = ""
        if request is None:
            self.summary.value = notice_html("No code requests here.")
            self.code_view.value = self.findings_view.value = ""
            self._update_buttons()
            return
        found = review.findings(request)
        self.summary.value = _summary_html(request, browse.request_datasets(self.admin, request))
        self.code_view.value = code_html(request.code.raw_code, [f.line for f in found])
        self.findings_view.value = _findings_html(found)
        self._update_buttons()

    def _update_buttons(self) -> None:
        request = self.selected
        pending = request is not None and review.status_name(request.status) == "pending"
        self.try_button.disabled = request is None
        self.approve_button.disabled = not pending
        self.deny_button.disabled = not pending or not self.reason.value.strip()
        self.compute_button.disabled = not pending
        releasable = self.private_outcome is not None and (
            self.private_outcome.violation is None or self.override.value
        )
        self.release_button.disabled = not (pending and releasable)

    def _decide(self, action: Callable[[], Any], done: str) -> None:
        """Run a decision on the selected request, reload the list, then say what happened.

        The list may move on to the next request (a decided one leaves the pending view).
        """
        name = self.selected.code.service_func_name
        if self._call(action) is not None:
            self.refresh()
            self.message.value = notice_html(f"{name}: {done}", "ok")

    def _call(self, action: Callable[[], Any], done: str | None = None) -> Any:
        """Run `action`; show `done` or the error in `message`; None on failure.

        syft prints banners and warnings: they are kept out of the notebook.
        """
        succeeded, result = run_quietly(action, self.message)
        if not succeeded:
            return None
        if done is not None:
            self.message.value = notice_html(done, "ok")
        return result if result is not None else True


def _summary_html(request: Any, datasets: list[str]) -> str:
    status = review.status_name(request.status)
    rows = [
        ("request", str(request.id)),
        ("function", request.code.service_func_name),
        ("researcher", f"{request.requesting_user_name} <{request.requesting_user_email}>"),
        ("institution", request.requesting_user_institution or ""),
        ("datasets", ", ".join(datasets) or "?"),
        ("submitted", str(request.request_time)),
        ("status", status),
    ]
    if status == "rejected":
        rows.append(("reason", str(getattr(request, "deny_reason", "") or "")))
    if review.OVERRIDE_TAG in request.tags:
        rows.append(("override", ", ".join(t for t in request.tags if "override" in t)))
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:12px'>{name}</th>"
        f"<td>{html.escape(str(value))}</td></tr>"
        for name, value in rows
    )
    return f"<table>{cells}</table>"


def _findings_html(found: list) -> str:
    if not found:
        return notice_html("No findings: no forbidden imports, calls or file access.", "ok")
    items = "".join(
        f"<li>line {f.line}: <b>{html.escape(f.kind)}</b> — {html.escape(f.message)}</li>"
        for f in found
    )
    return f"<ul style='color:#cf222e'>{items}</ul>"


def _outcome_html(heading: str, outcome: review.MockTrial) -> str:
    parts = [f"<b>{html.escape(heading)}</b> ({outcome.seconds:.2f} s)"]
    if outcome.error:
        parts.append(notice_html("The run failed:", "error"))
        parts.append(f"<pre>{html.escape(outcome.error)}</pre>")
    else:
        parts.append(value_html(outcome.result))
        if outcome.violation:
            parts.append(notice_html(f"Breaks the output rule: {outcome.violation}", "error"))
        else:
            parts.append(notice_html("Passes the output rule.", "ok"))
    if outcome.stdout:
        printed = html.escape(outcome.stdout)
        parts.append(f"<details><summary>printed</summary><pre>{printed}</pre></details>")
    return "<br>".join(parts)
