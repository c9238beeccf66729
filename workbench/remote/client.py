"""Researcher side: one function, many factories, aggregates back.

A researcher logs in to every factory datasite of a registry (datasite config files,
or URLs), browses datasets and mock images, submits one function to all factories
(one code request per datasite), follows the requests, starts the approved runs as
jobs and collects one row of aggregates per factory.

Examples
--------
>>> from workbench.remote import client, counting
>>> factories = client.login(["datasites/factory-a.toml", "datasites/factory-b.toml"],
...                          "ana@uni.example", "her password")  # doctest: +SKIP
>>> client.datasets_table(factories)  # doctest: +SKIP
>>> client.submit(factories, counting.count_crystals, "line-3")  # doctest: +SKIP
>>> client.start_runs(factories, "count_crystals")  # after the admins approved  # doctest: +SKIP
>>> client.wait_for_results(factories, "count_crystals", timeout=600)  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.remote import held
from workbench.remote._syft_calls import code_inputs, quiet, reason, request_status, status_name
from workbench.remote.config import DatasiteConfig, load_config

Clients = dict[str, Any]  # factory name -> logged-in syft DatasiteClient
_FAILED = ("errored", "interrupted")
_STATUS_COLUMNS = ["factory", "request", "reason", "job", "progress", "release"]


def datasite_url(site: DatasiteConfig | str | Path) -> str:
    """URL of a registry entry: a config, a config file path, or a URL.

    Examples
    --------
    >>> datasite_url("http://127.0.0.1:8081")
    'http://127.0.0.1:8081'
    """
    if isinstance(site, DatasiteConfig):
        return site.url
    text = str(site)
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    return load_config(text).url


def login(
    sites: Iterable[DatasiteConfig | str | Path],
    email: str,
    password: str | Mapping[str, str],
) -> Clients:
    """Log in to every datasite of `sites`; return ``{factory name: client}``.

    Parameters
    ----------
    sites : iterable
        Datasite configs, config file paths or URLs.
    email : str
        The researcher's account (created by each factory's admin).
    password : str or mapping
        One password for all, or ``{url or factory name: password}``.

    Raises
    ------
    WorkbenchError
        If a datasite does not answer or refuses the e-mail and password.
    """
    import syft as sy

    clients: Clients = {}
    for site in sites:
        url = datasite_url(site)
        name = site.name if isinstance(site, DatasiteConfig) else url
        secret = password if isinstance(password, str) else password.get(name, password.get(url))
        if secret is None:
            raise WorkbenchError(f"no password given for datasite {name}")
        try:
            with quiet():
                client = sy.login(url=url, email=email, password=secret)
        except Exception as error:  # syft and requests raise several types here
            raise WorkbenchError(f"login to {url} as {email} failed: {reason(error)}") from None
        clients[client.name] = client
    return clients


def datasets_table(clients: Clients) -> pd.DataFrame:
    """One row per dataset on every datasite: factory, dataset, assets, description."""
    rows = []
    for factory, client in clients.items():
        for dataset in client.datasets.get_all():
            rows.append(
                {
                    "factory": factory,
                    "dataset": dataset.name,
                    "assets": len(dataset.asset_list),
                    "description": _text(dataset.description),
                }
            )
    return pd.DataFrame(rows, columns=["factory", "dataset", "assets", "description"])


def mock_images(clients: Clients, dataset: str) -> dict[str, list]:
    """The mock images of `dataset` on every datasite that has it: ``{factory: [arrays]}``."""
    found = {}
    for factory, client in clients.items():
        assets = _dataset_assets(client, dataset, required=False)
        if assets:
            found[factory] = [image for asset in assets for image in asset.mock["images"]]
    if not found:
        raise WorkbenchError(f"no datasite has a dataset called {dataset!r}")
    return found


def submit(
    clients: Clients, function: Callable, dataset: str, preamble: str = ""
) -> dict[str, Any]:
    """Submit `function` on `dataset` to every datasite: one code request each.

    `function` takes one image batch dict (and optionally ``datasite`` for progress),
    like :func:`workbench.remote.counting.count_crystals`; on a dataset stored in
    several batches it gets them merged. Each request asks for one run
    (``SingleExecutionExactOutput``). `preamble` opens the submitted code (see
    :mod:`workbench.remote.pooling`).

    Returns
    -------
    dict
        ``{factory: syft Request}``.

    Raises
    ------
    WorkbenchError
        If a datasite lacks the dataset or refuses the request.
    """
    import syft as sy

    from workbench.remote._entry_function import entry_function

    requests = {}
    for factory, client in clients.items():
        assets = _dataset_assets(client, dataset, required=True)
        inputs = {_param(index): asset for index, asset in enumerate(assets)}
        entry = entry_function(function, list(inputs), preamble)
        try:
            with quiet():
                syft_function = sy.syft_function(
                    input_policy=sy.MixedInputPolicy(client=client, **inputs),
                    output_policy=sy.SingleExecutionExactOutput(),
                )(entry)
                requests[factory] = client.code.request_code_execution(syft_function)
                # syft adds the new function to the client's API only on a later miss,
                # a 1-2 s refetch; do it now rather than when the run is started.
                client.api.refresh_api_callback()
        except Exception as error:
            raise WorkbenchError(
                f"{factory} refused the code request for {function.__name__}: {reason(error)}"
            ) from None
    return requests


def status_table(clients: Clients, function_name: str) -> pd.DataFrame:
    """Request and job status of `function_name` on every datasite.

    Columns: ``factory``, ``request`` (pending / approved / rejected / not submitted,
    or ``unreachable`` while the datasite does not answer), ``reason`` (why it was
    denied, withheld or interrupted, or why the datasite cannot be reached), ``job``
    (status of the latest run: ``interrupted`` if the datasite stopped while it ran),
    ``progress`` (a percentage the datasite sets) and ``release`` (``held`` while the
    result waits for the factory admin, ``released``, ``withheld``, or empty).
    """
    rows = []
    for factory, client in clients.items():
        try:
            rows.append(_status_row(factory, client, function_name))
        except Exception:
            down = _down_message(factory, client)
            if down is None:
                raise
            row = _status_row(factory, None, function_name)
            rows.append({**row, "request": "unreachable", "reason": down})
    return pd.DataFrame(rows, columns=_STATUS_COLUMNS)


def _status_row(factory: str, client: Any | None, function_name: str) -> dict[str, str]:
    """One row of :func:`status_table` (an empty one when `client` is None)."""
    row = dict.fromkeys(_STATUS_COLUMNS, "")
    row.update(factory=factory, request="not submitted")
    code = _latest_code(client, function_name) if client is not None else None
    if code is None:
        return row
    request = _request_for(client, code)
    row["request"] = request_status(request) if request else "unknown"
    if request is not None and row["request"] == "rejected":
        row["reason"] = _text(request.deny_reason)
    job = _latest_job(client, code)
    if job is not None:
        row["job"] = status_name(job.status)
        if job.n_iters:
            row["progress"] = f"{100 * (job.current_iter or 0) // job.n_iters}%"
        row["release"] = _release_state(request, job)
        if row["release"] == "withheld":
            row["reason"] = held.withheld_reason(list(request.tags)) or ""
        elif row["job"] == "interrupted":
            row["reason"] = _text(getattr(job.result, "message", ""))
    return row


def start_runs(
    clients: Clients, function_name: str, notify: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Start `function_name` as a job on every datasite that approved it.

    Datasites where the request is pending or denied are left out (see
    :func:`status_table`), and so are those where it is running or has run, or whose
    result is held for the admin's review; a run that failed (for instance refused
    by the output rule) is started again, and so is one whose held result the admin
    has released (that run receives the released value) and one interrupted by a
    restart of its datasite (its approval stands). A datasite that does not answer is
    left out too, with a message to `notify` (default: stderr) naming it.

    Returns
    -------
    dict
        ``{factory: syft Job}`` for the runs started.
    """
    jobs = {}
    for factory, client in clients.items():
        try:
            code = _startable_code(client, function_name)
            if code is not None:
                jobs[factory] = _start_run(factory, client, code)
        except Exception:
            down = _down_message(factory, client)
            if down is None:
                raise
            message = f"{down}: {function_name} not started there; start it again once it is back"
            (notify or _to_stderr)(message)
    return jobs


def _startable_code(client: Any, function_name: str) -> Any | None:
    """The approved code of `function_name` if a run of it may start now."""
    code = _latest_code(client, function_name)
    request = _request_for(client, code) if code is not None else None
    if request is None or request_status(request) != "approved":
        return None
    previous = _latest_job(client, code)
    if previous is not None and status_name(previous.status) not in _FAILED:
        return None
    if previous is not None and _release_state(request, previous) in ("held", "withheld"):
        return None
    return code


def _start_run(factory: str, client: Any, code: Any) -> Any:
    try:
        with quiet():
            return getattr(client.code, code.service_func_name)(**code_inputs(code), blocking=False)
    except Exception as error:
        raise WorkbenchError(
            f"{factory} refused to run {code.service_func_name}: {reason(error)}"
        ) from None


def wait_for_results(
    clients: Clients,
    function_name: str,
    timeout: float = 600.0,
    poll_seconds: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    release_wait: float = 0.0,
    notify: Callable[[str], None] | None = None,
    restart_interrupted: bool = True,
) -> pd.DataFrame:
    """Wait until every started run of `function_name` has finished, then :func:`collect`.

    A run whose result is held for the factory admin's review counts as finished
    after `release_wait` seconds (its row says so); if the admin releases it within
    that time, the run that fetches the released value is started and waited for.
    Call this again after a later release.

    A datasite that stops answering is named at once through `notify` (default: a
    line on stderr) and waited for; when it answers again the wait resumes (also
    said), and a run that its restart interrupted is started again, once per
    factory, unless `restart_interrupted` is False (its approval stands: no new
    review is needed).

    Each question to a datasite about a running job waits there until the job has
    ended (up to 10 s, see :mod:`workbench.remote._job_wait`): the end is noticed at
    once, and a long run is not slowed by a stream of questions to its datasite. While
    a datasite is down, or only held results are awaited, this asks every
    `poll_seconds` at first, then every 1.5 % of the time waited so far (at most 2 s).

    Raises
    ------
    WorkbenchError
        If a run is still going after `timeout` seconds, or a datasite has not come
        back by then (the message names the factories).

    Examples
    --------
    >>> said = []
    >>> table = wait_for_results(factories, "count_crystals", notify=said.append)  # doctest: +SKIP
    >>> said  # doctest: +SKIP
    ['factory-a stopped answering at http://127.0.0.1:8081; waiting for it to come back',
     'factory-a answers again after 21 s; the wait resumes',
     'factory-a: count_crystals was interrupted by the restart; started again']
    """
    notify = notify or _to_stderr
    started = clock()
    deadline = started + timeout
    codes: dict[str, Any] = {}
    jobs: dict[str, Any] = {}  # each factory's latest job, as last seen
    down: dict[str, float] = {}  # factory -> since when it does not answer
    restarted: set[str] = set()
    running: list[str] = []
    while True:
        was_running, running, held_back, asked = running, [], [], clock()
        for factory, client in clients.items():
            try:
                if factory not in codes:
                    codes[factory] = _latest_code(client, function_name)
                wait_s = max(0.0, deadline - clock()) if factory in was_running else 0.0
                state, jobs[factory] = _run_state(client, codes[factory], wait_s)
                if factory in down:
                    waited = clock() - down.pop(factory)
                    notify(f"{factory} answers again after {waited:.0f} s; the wait resumes")
                if state == "interrupted" and restart_interrupted and factory not in restarted:
                    _start_run(factory, client, codes[factory])
                    restarted.add(factory)
                    state = "running"
                    notify(
                        f"{factory}: {function_name} was interrupted by a restart; started again"
                    )
                elif state == "released":
                    _start_run(factory, client, codes[factory])  # fetch the released value
                    state = "running"
            except Exception:
                if _down_message(factory, client) is None:
                    raise
                if factory not in down:
                    down[factory] = clock()
                    url = _url_of(client)
                    notify(f"{factory} stopped answering at {url}; waiting for it to come back")
                state = "running"
            if state == "running":
                running.append(factory)
            elif state == "held":
                held_back.append(factory)
        if not running and not (held_back and clock() < started + release_wait):
            rows = [
                _result_row(factory, client, function_name, jobs.get(factory))
                for factory, client in clients.items()
            ]
            return pd.DataFrame(rows)
        if clock() > deadline:
            gone = f"; not answering: {', '.join(down)}" if down else ""
            raise WorkbenchError(
                f"{function_name} still running after {timeout:.0f} s on {', '.join(running)}{gone}"
            )
        # A datasite that held the question back until now needs no pause; one that
        # answered at once (down, only held results, all its waiting places taken) does.
        pause = min(2.0, max(poll_seconds, _POLL_FRACTION * (clock() - started)))
        time.sleep(max(0.0, pause - (clock() - asked)))


# A question costs the datasite 15-100 ms of its one process (a signed API call).
_POLL_FRACTION = 0.015


def _run_state(client: Any, code: Any | None, wait_s: float = 0.0) -> tuple[str, Any]:
    """The latest job of `code` and its state: ``running``, ``interrupted``, ``held``,
    ``released``, ``withheld`` or empty; asked of a datasite that answers once a job
    has ended or `wait_s` seconds have passed."""
    job = _latest_job(client, code, wait_s) if code is not None else None
    if job is None:
        return "", None
    if not job.resolved:
        return "running", job
    if status_name(job.status) == "interrupted":
        return "interrupted", job
    if status_name(job.status) != "errored":
        return "", job  # only an errored run can be held: no need to read the request
    return _release_state(_request_for(client, code), job), job


def _url_of(client: Any) -> str:
    return str(getattr(getattr(client, "connection", None), "url", "") or "")


def _down_message(factory: str, client: Any) -> str | None:
    """``datasite X does not answer at URL``, or None if it answers."""
    from workbench.remote.launch import url_answers

    url = _url_of(client)
    return None if url and url_answers(url) else f"datasite {factory} does not answer at {url}"


def _to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def collect(clients: Clients, function_name: str) -> pd.DataFrame:
    """One row per factory: ``factory`` and the result's fields, or ``error``.

    A result that is a dict is spread over columns; anything else lands in ``result``.
    Factories without a finished run get their request status in ``error``.
    """
    rows = []
    for factory, client in clients.items():
        code = _latest_code(client, function_name)
        job = _latest_job(client, code) if code is not None else None
        rows.append(_result_row(factory, client, function_name, job))
    return pd.DataFrame(rows)


def _result_row(factory: str, client: Any, function_name: str, job: Any) -> dict:
    """One row of :func:`collect`, for the latest `job` of the function (None: no run)."""
    row: dict[str, Any] = {"factory": factory}
    if job is None:
        status = status_table({factory: client}, function_name).iloc[0]
        row["error"] = f"no result: request {status['request']} {status['reason']}".strip()
        return row
    value = _job_value(job)
    if isinstance(value, Exception):
        row["error"] = reason(value)
    elif isinstance(value, dict):
        row.update(value)
    else:
        row["result"] = value
    return row


# -- helpers -------------------------------------------------------------------------
def _param(index: int) -> str:
    return f"images_{index:03d}"


def _dataset_assets(client: Any, dataset: str, *, required: bool) -> list:
    for candidate in client.datasets.get_all():
        if candidate.name == dataset:
            return list(candidate.asset_list)
    if required:
        raise WorkbenchError(f"datasite {client.name} has no dataset called {dataset!r}")
    return []


def _latest_code(client: Any, function_name: str) -> Any | None:
    # Asks for this name only: listing every function sent grows with the history.
    codes = client.api.services.code.get_by_service_func_name(function_name)
    return max(codes, key=lambda code: str(code.submit_time), default=None)


def _request_for(client: Any, code: Any) -> Any | None:
    for request in client.requests:
        if request.code_id == code.id:
            return request
    return None


def _latest_job(client: Any, code: Any, wait_s: float = 0.0) -> Any | None:
    from workbench.remote._job_wait import latest_jobs  # imports syft: not at import time

    jobs = latest_jobs(client, code.id, wait_s)
    return max(jobs, key=lambda job: str(job.creation_time), default=None)


def _release_state(request: Any, job: Any) -> str:
    """``held``, ``released`` or ``withheld`` for a run whose result the datasite held."""
    if request is None or status_name(job.status) != "errored":
        return ""
    token = held.token_in(str(getattr(job.result, "message", "") or ""))
    if token is None:
        return ""
    tags = list(request.tags)
    if f"{held.RELEASED_TAG}{token}" in tags:
        return "released"
    if f"{held.WITHHELD_TAG}{token}" in tags:
        return "withheld"
    return "held"


def _job_value(job: Any) -> Any:
    """The released value of a finished job, or an Exception saying why there is none."""
    result = job.result
    if job.status.name != "COMPLETED" or result is None:
        message = getattr(result, "message", None) or f"run {status_name(job.status)}"
        return RuntimeError(message)
    try:
        with quiet():
            value = result.get() if hasattr(result, "get") else result
    except Exception as error:
        return error
    message = getattr(value, "message", None)
    return RuntimeError(message) if type(value).__name__ == "SyftError" else value


def _text(value: Any) -> str:
    return str(getattr(value, "text", value) or "")
