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
>>> inbox = ReviewInbox(admin_login(config))  # doctest: +SKIP
>>> inbox  # doctest: +SKIP
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import pandas as pd

from widgets._html import code_html, notice_html, table_html, value_html
from widgets._quiet import run_quietly
from workbench.errors import WorkbenchError
from workbench.privacy import audit, budget
from workbench.remote import browse, release, review
from workbench.remote.admin import AdminSession
from workbench.remote.held import HeldResult
from workbench.remote.kept import kept_outputs
from workbench.sandbox import SandboxOutcome

STATUSES = ("all", "pending", "approved", "rejected")
_STATUS_MARK = {"pending": "●", "approved": "✔", "rejected": "✘"}


class ReviewInbox:
    """Pending, approved and denied code requests; review, try, approve, deny, release.

    Parameters
    ----------
    session : AdminSession
        The factory admin's session: its output rule and sandbox limits are the ones
        the datasite enforces.

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
    held_list : Select
        Results of runs on private data waiting for release (``release = "review"``);
        its value is the held result's token.
    held_view : HTML
        Exactly what the selected held result holds, and what the output rule says.
    withhold_reason : Textarea
        Required to withhold; shown to the researcher.
    release_held_button, withhold_button : Button
        Release the selected held result, or withhold it with the reason.
    kept_view : HTML
        Files researchers' runs left at the factory (fine-tuned weights), and how to use
        or release them.
    audit_view : HTML
        The factory's audit log, newest entries first, and whether its chain is whole.
    budget_view : HTML
        Privacy loss each researcher has spent here, and what is left.
    tabs : Tab
        "Held results", "Kept files", "Audit log" and "Privacy budget".
    widget : VBox
        The whole inbox (what a notebook displays).
    """

    def __init__(self, session: AdminSession):
        self.session = session
        self.admin = session.client
        self.requests: dict[str, Any] = {}
        self.held: dict[str, HeldResult] = {}
        self.private_outcome: SandboxOutcome | None = None

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
        self.held_list = w.Select(options=[], rows=4, layout=w.Layout(width="98%"))
        self.held_view = w.HTML()
        self.withhold_reason = w.Textarea(
            placeholder="Reason for the researcher (required to withhold)",
            layout=w.Layout(width="95%", height="50px"),
        )
        self.release_held_button = w.Button(
            description="Release", button_style="success", icon="send", disabled=True
        )
        self.withhold_button = w.Button(
            description="Withhold", button_style="danger", icon="ban", disabled=True
        )
        self.kept_view = w.HTML()
        self.audit_view = w.HTML()
        self.budget_view = w.HTML()
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
        self.held_list.observe(lambda _: self._show_held(), names="value")
        self.withhold_reason.observe(lambda _: self._show_held(), names="value")
        self.release_held_button.on_click(lambda _: self.release_held())
        self.withhold_button.on_click(lambda _: self.withhold_held())
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
        everything = self._call(lambda: review.list_requests(self.session)) or []
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
        self.held = {h.token: h for h in review.held(self.session)}
        self.held_list.options = [
            (f"{h.function} · {h.researcher} · {h.held_at[:16]} · {h.size_bytes} bytes", h.token)
            for h in self.held.values()
        ]
        self._show_held()
        self.kept_view.value = kept_html(self.session.config.state_dir)
        self.audit_view.value = _audit_html(self.session.config.state_dir)
        self.budget_view.value = _budget_html(self.session)

    def release_held(self) -> None:
        """Release the selected held result to its researcher."""
        result = self.held.get(self.held_list.value)
        if result is not None:
            self._decide(lambda: review.release(self.session, result), "result released")

    def withhold_held(self) -> None:
        """Withhold the selected held result with the text of `withhold_reason`."""
        result = self.held.get(self.held_list.value)
        if result is not None:
            reason = self.withhold_reason.value
            self._decide(lambda: review.withhold(self.session, result, reason), "withheld")

    def try_on_mock(self) -> SandboxOutcome | None:
        """Run the selected request's code on the mock data and show what it returns."""
        request = self.selected
        if request is None:
            return None
        self.trial_view.value = notice_html("running on the mock data...")
        trial = self._call(lambda: review.try_on_mock(self.session, request))
        self.trial_view.value = self._outcome_html("Trial on mock data", trial) if trial else ""
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

    def compute_on_private(self) -> SandboxOutcome | None:
        """Run the selected request's code on the private data; show the result to release."""
        request = self.selected
        if request is None:
            return None
        self.private_view.value = notice_html("running on the private data...")
        outcome = self._call(lambda: release.run_on_private(self.session, request))
        self.private_outcome = outcome if outcome is not None and outcome.ok else None
        heading = "Result on private data (not released yet)"
        self.private_view.value = self._outcome_html(heading, outcome) if outcome else ""
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
                self.session, request, outcome.result, override=self.override.value
            ),
            "result released",
        )

    # -- display ---------------------------------------------------------------------
    def _outcome_html(self, heading: str, outcome: SandboxOutcome) -> str:
        return _outcome_html(heading, outcome, review.result_violation(self.session, outcome))

    def _show_held(self) -> None:
        result = self.held.get(self.held_list.value)
        self.release_held_button.disabled = result is None
        self.withhold_button.disabled = result is None or not self.withhold_reason.value.strip()
        if result is None:
            self.held_view.value = notice_html("No results waiting for release.")
            return
        violation = review.output_rule_violation(result.value, self.session.rule)
        self.held_view.value = "<br>".join(
            [
                f"<b>{html.escape(result.function)}</b> for {html.escape(result.researcher)}, "
                f"held {html.escape(result.held_at)}: exactly what would be released "
                f"({result.size_bytes} bytes)",
                value_html(result.value),
                _verdict_html(violation),
            ]
        )

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
        held = w.VBox(
            [
                w.HTML("<h3>Results held for release</h3>"),
                self.held_list,
                self.held_view,
                self.withhold_reason,
                w.HBox([self.release_held_button, self.withhold_button]),
            ]
        )
        self.tabs = w.Tab(children=[held, self.kept_view, self.audit_view, self.budget_view])
        titles = ("Held results", "Kept files", "Audit log", "Privacy budget")
        for index, title in enumerate(titles):
            self.tabs.set_title(index, title)
        return w.VBox(
            [
                w.HTML("<h3>Code requests</h3>"),
                top,
                self.requests_list,
                w.HBox([left, right]),
                self.tabs,
            ]
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
            review.result_violation(self.session, self.private_outcome) is None
            or self.override.value
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


def kept_html(state_dir: Any) -> str:
    """The files researchers' runs left at the factory (fine-tuned weights), newest first.

    Examples
    --------
    >>> import tempfile
    >>> "keeps no files" in kept_html(tempfile.mkdtemp())
    True
    """
    records = kept_outputs(state_dir)
    if not records:
        return notice_html("This factory keeps no files of researchers' runs.")
    rows = [
        {
            "token": record.token,
            "kept": record.kept_at[:16],
            "function": record.function,
            "researcher": record.researcher,
            "files": record.describe_files(),
        }
        for record in reversed(records)
    ]
    return notice_html(
        "Kept at the factory, never sent. Count with them here (workbench count --weights "
        "STATE/kept/TOKEN/counter.pt); release one by copying it out: workbench datasite "
        "kept CONFIG --release TOKEN --out DIR (audited)."
    ) + table_html(pd.DataFrame(rows))


def _audit_html(state_dir: Any, last: int = 25) -> str:
    broken = audit.verify(state_dir)
    head = (
        notice_html(f"The chain is broken: {broken}", "error")
        if broken
        else notice_html("The hash chain is whole.", "ok")
    )
    rows = [
        {
            "#": e["seq"],
            "time": e["time"][:19],
            "kind": e["kind"],
            "who": e["actor"],
            "request": e["request"][:12],
            "details": ", ".join(f"{k}={v}" for k, v in e["details"].items())[:120],
        }
        for e in reversed(audit.entries(state_dir)[-last:])
    ]
    return head + (table_html(pd.DataFrame(rows)) if rows else "")


def _budget_html(session: AdminSession) -> str:
    state, total = session.config.state_dir, session.config.privacy.epsilon_budget
    researchers = sorted({e["actor"] for e in audit.entries(state, kind="budget")})
    rows = [
        {
            "researcher": r,
            "spent ε": round(budget.spent(state, r), 3),
            "left ε": round(total - budget.spent(state, r), 3),
        }
        for r in researchers
    ]
    note = notice_html(f"Each researcher may spend ε = {total:g} here.")
    return note + (table_html(pd.DataFrame(rows)) if rows else "")


def _verdict_html(violation: str | None) -> str:
    if violation:
        return notice_html(f"Breaks the output rule: {violation}", "error")
    return notice_html("Passes the output rule.", "ok")


def _outcome_html(heading: str, outcome: SandboxOutcome, violation: str | None) -> str:
    parts = [f"<b>{html.escape(heading)}</b> ({outcome.seconds:.2f} s, in the sandbox)"]
    if outcome.error:
        limit = f" (the {outcome.limit} limit)" if outcome.limit else ""
        parts.append(notice_html(f"The run failed{limit}:", "error"))
        parts.append(f"<pre>{html.escape(outcome.error)}</pre>")
    else:
        parts.append(value_html(outcome.result))
        parts.append(_verdict_html(violation))
    if outcome.stdout:
        printed = html.escape(outcome.stdout)
        parts.append(f"<details><summary>printed</summary><pre>{printed}</pre></details>")
    return "<br>".join(parts)
