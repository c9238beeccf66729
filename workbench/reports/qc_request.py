"""The numbers of a crystal QC report: an approved aggregate request on the factory's datasite.

A QC report never sees an image. :func:`qc_result` logs in to the factory's datasite
with the analyst's (researcher) account and looks for the QC request of this
(dataset, batch, bins, method):

- not submitted yet: it submits one (a small function calling
  :func:`workbench.reports.qc_summary.qc_summary`, named after the batch) and stops
  with a message: the factory admin reviews it in the inbox first;
- pending or denied: it stops with a message saying so (and the admin's reason);
- approved: it starts the run if needed and waits; with the factory's release review the
  first report stops until the admin releases the result, the next one returns it.

So the first report of a new batch asks for approval, and every later run of the
same report reads the released aggregate again. Every stop is one
:class:`~workbench.errors.WorkbenchError` sentence.

Examples
--------
>>> qc_function_name("line-1", "B-0042", 20, "auto")
'crystal_qc_b_0042_4104f3'
>>> summary = qc_result("factory-a", "line-1", "B-0042", email="qa@factory-a.example",
...                     password_env="WORKBENCH_RESEARCHER_PASSWORD")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import linecache
import os
import re
from collections.abc import Callable
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.remote.held import HELD_MESSAGE

MAX_CSD_BINS = 100  # a finer histogram is no longer a short aggregate


def qc_function_name(dataset: str, batch: str, csd_bins: int, method: str) -> str:
    """Name of the QC function for these settings: readable batch, then a short hash.

    The hash covers every setting, so each (dataset, batch, bins, method) is its own
    request on the datasite and the report finds it again by name.

    Examples
    --------
    >>> qc_function_name("line-1", "", 20, "auto")
    'crystal_qc_all_788315'
    """
    key = f"{dataset}\n{batch}\n{int(csd_bins)}\n{method}".encode()
    slug = re.sub(r"[^a-z0-9]+", "_", batch.lower()).strip("_")[:40] or "all"
    return f"crystal_qc_{slug}_{hashlib.sha256(key).hexdigest()[:6]}"


def qc_function(dataset: str, batch: str, csd_bins: int, method: str) -> Callable:
    """The function submitted for a QC report: it calls ``qc_summary`` with the settings.

    Its source is short and literal, so the factory admin reads exactly what runs.

    Examples
    --------
    >>> import inspect
    >>> print(inspect.getsource(qc_function("line-1", "B-7", 20, "auto")))  # doctest: +ELLIPSIS
    def crystal_qc_b_7_...(images, datasite=None):
        \"\"\"Crystal QC of batch 'B-7' of dataset 'line-1': aggregates only.\"\"\"
        from workbench.reports.qc_summary import qc_summary
    <BLANKLINE>
        return qc_summary(images, batch='B-7', csd_bins=20, method='auto', datasite=datasite)
    <BLANKLINE>
    """
    name = qc_function_name(dataset, batch, csd_bins, method)
    source = (
        f"def {name}(images, datasite=None):\n"
        f'    """Crystal QC of batch {batch!r} of dataset {dataset!r}: aggregates only."""\n'
        "    from workbench.reports.qc_summary import qc_summary\n\n"
        f"    return qc_summary(images, batch={batch!r}, csd_bins={int(csd_bins)}, "
        f"method={method!r}, datasite=datasite)\n"
    )
    # syft reads the source with inspect.getsource: give it a file name linecache knows.
    filename = f"<workbench-{name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)  # our own generated source
    return namespace[name]


def factory_config(factory: str, datasites_dir: str | Path = "datasites"):
    """The :class:`~workbench.remote.config.DatasiteConfig` of `factory` in `datasites_dir`.

    Raises
    ------
    WorkbenchError
        If no ``<datasites_dir>/*.toml`` names that factory (the message lists them).
    """
    from workbench.remote.config import load_config

    configs = {config.name: config for config in map(load_config, _tomls(datasites_dir))}
    if factory not in configs:
        known = ", ".join(sorted(configs)) or f"none in {datasites_dir}"
        raise WorkbenchError(f"unknown factory {factory!r}: choose one of {known}")
    return configs[factory]


def password_from_env(variable: str, email: str) -> str:
    """The password in environment variable `variable`, or one clear error.

    Examples
    --------
    >>> os.environ["WB_DOC_PASSWORD"] = "s3cret"
    >>> password_from_env("WB_DOC_PASSWORD", "qa@factory-a.example")
    's3cret'
    """
    password = os.environ.get(variable, "")
    if not password:
        raise WorkbenchError(
            f"environment variable {variable} is not set: put the password of {email} in it"
        )
    return password


def qc_result(
    factory: str,
    dataset: str = "",
    batch: str = "",
    csd_bins: int = 20,
    method: str = "auto",
    *,
    email: str,
    password: str | None = None,
    password_env: str = "WORKBENCH_RESEARCHER_PASSWORD",
    datasites_dir: str | Path = "datasites",
    timeout: float = 600.0,
) -> dict:
    """The released QC aggregate of a batch on a factory, or one error saying what is missing.

    Parameters
    ----------
    factory : str
        Datasite name, as in ``<datasites_dir>/<factory>.toml``.
    dataset : str
        Dataset on that datasite; its only dataset when empty.
    batch, csd_bins, method
        See :func:`workbench.reports.qc_summary.qc_summary`.
    email : str
        The analyst's account on the datasite.
    password : str, optional
        Its password; read from the environment variable `password_env` when None
        (so that a report's parameters never hold it).
    password_env : str
        See `password`.
    datasites_dir : str or Path
        Folder of the datasite TOML files.
    timeout : float
        Longest wait for the run, in seconds.

    Returns
    -------
    dict
        The fields of ``qc_summary`` plus ``factory``, ``dataset``, ``batch`` and
        ``request`` (the function name on the datasite).

    Raises
    ------
    WorkbenchError
        Unknown factory, dataset or method; bad bins; login refused; request just
        submitted, pending or denied; run failed; no image in the batch.
    """
    from workbench.camera import get_camera
    from workbench.imaging.pipeline import resolve_method
    from workbench.remote import client

    config = factory_config(factory, datasites_dir)
    if (
        isinstance(csd_bins, bool)
        or not isinstance(csd_bins, int)
        or not 1 <= csd_bins <= MAX_CSD_BINS
    ):
        raise WorkbenchError(
            f"csd_bins={csd_bins!r}: must be a whole number from 1 to {MAX_CSD_BINS}"
        )
    resolve_method(method, get_camera(config.camera))
    if password is None:
        password = password_from_env(password_env, email)
    with _quiet():
        clients = client.login([config], email, password)
        datasets = list(client.datasets_table(clients)["dataset"])
    dataset = _chosen_dataset(factory, dataset, datasets)
    name = qc_function_name(dataset, batch, csd_bins, method)
    with _quiet():
        status = client.status_table(clients, name).iloc[0]
    what = f"QC request {name} (dataset {dataset!r}, batch {batch or 'all'!r}) on {factory}"
    if status["request"] == "not submitted":
        with _quiet():
            client.submit(clients, qc_function(dataset, batch, csd_bins, method), dataset)
        raise WorkbenchError(
            f"{what} submitted: the factory admin must approve it before this report can run; "
            "run the report again then"
        )
    if status["request"] == "rejected":
        raise WorkbenchError(f"{what} was denied by the factory admin: {status['reason']}")
    if status["request"] != "approved":
        raise WorkbenchError(f"{what} is {status['request']}: waiting for the factory admin")
    with _quiet():
        if not status["job"]:
            client.start_runs(clients, name)
        row = client.wait_for_results(clients, name, timeout=timeout).iloc[0].dropna().to_dict()
    if HELD_MESSAGE in str(row.get("error", "")):
        raise WorkbenchError(
            f"{what} ran; its result waits for the factory admin's release (review inbox): "
            "run the report again once it is released"
        )
    if "error" in row:
        raise WorkbenchError(f"{what} has no result: {row['error']}")
    if row.get("images", 0) == 0:
        raise WorkbenchError(f"batch {batch!r} has no images in dataset {dataset!r} on {factory}")
    return {**row, "factory": factory, "dataset": dataset, "batch": batch, "request": name}


def _chosen_dataset(factory: str, dataset: str, datasets: list[str]) -> str:
    if not datasets:
        raise WorkbenchError(f"datasite {factory} has no dataset yet")
    if not dataset:
        if len(datasets) > 1:
            raise WorkbenchError(
                f"datasite {factory} has {len(datasets)} datasets: choose one of "
                f"{', '.join(datasets)}"
            )
        return datasets[0]
    if dataset not in datasets:
        raise WorkbenchError(
            f"datasite {factory} has no dataset {dataset!r}: choose one of {', '.join(datasets)}"
        )
    return dataset


def _tomls(folder: str | Path) -> list[Path]:
    path = Path(folder)
    if not path.is_dir():
        raise WorkbenchError(f"{folder}: no such folder of datasite configs")
    return sorted(path.glob("*.toml"))


@contextlib.contextmanager
def _quiet():
    # syft's banners and warnings are not part of a report.
    chatter = io.StringIO()
    with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
        yield
