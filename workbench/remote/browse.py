"""Read-only lookups for the Jupyter widgets: dataset cards, a request's datasets, submissions.

Everything here reads what :mod:`workbench.remote.upload` and
:mod:`workbench.remote.client` stored; nothing changes a datasite.

Examples
--------
>>> from workbench.remote import browse, client
>>> sites = ["datasites/factory-a.toml"]
>>> factories = client.login(sites, "ana@uni.example", "...")  # doctest: +SKIP
>>> cards = browse.dataset_cards(factories)  # doctest: +SKIP
>>> [(card.factory, card.dataset, card.images) for card in cards]  # doctest: +SKIP
[('factory-a', 'line-3', 40)]
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.remote._syft_calls import code_inputs, quiet

# upload.py writes each asset's description as "batch 1 of 2: 20 images".
_IMAGES_IN_DESCRIPTION = re.compile(r"(\d+) images?\b")


@dataclass
class DatasetCard:
    """What a researcher may see of one dataset on one datasite.

    Attributes
    ----------
    factory, dataset : str
        Datasite and dataset names.
    camera : str
        Camera profile of the images (from the mock, which shares it).
    pixel_size_um : float
        Pixel size of the images in µm.
    images : int or None
        Private images in the dataset (None when the asset descriptions do not say).
    assets : int
        Batches (syft assets) the images are stored in.
    description : str
        The dataset's description.
    mock_images : list of ndarray
        Mock (synthetic) images, never private pixels.
    """

    factory: str
    dataset: str
    camera: str
    pixel_size_um: float
    images: int | None
    assets: int
    description: str
    mock_images: list[np.ndarray] = field(default_factory=list, repr=False)


def dataset_cards(clients: dict[str, Any], mock_images: int = 2) -> list[DatasetCard]:
    """One card per dataset on every datasite of `clients`, with up to `mock_images` mocks.

    Parameters
    ----------
    clients : dict
        ``{factory: syft DatasiteClient}`` from :func:`workbench.remote.client.login`.
    mock_images : int
        Mock images to fetch per dataset (from its first asset).

    Examples
    --------
    >>> cards = dataset_cards(factories, mock_images=1)  # doctest: +SKIP
    >>> cards[0].camera, cards[0].mock_images[0].shape  # doctest: +SKIP
    ('legacy', (512, 640))
    """
    cards = []
    for factory, client in clients.items():
        with quiet():
            datasets = client.datasets.get_all()
        for dataset in datasets:
            assets = list(dataset.asset_list)
            with quiet():
                mock = assets[0].mock if assets else {}
            counts = [_images_in(asset.description) for asset in assets]
            cards.append(
                DatasetCard(
                    factory=factory,
                    dataset=dataset.name,
                    camera=str(mock.get("camera", "")),
                    pixel_size_um=float(mock.get("pixel_size_um", float("nan"))),
                    images=None if None in counts or not counts else sum(counts),
                    assets=len(assets),
                    description=_text(dataset.description),
                    mock_images=[np.asarray(image) for image in mock.get("images", [])][
                        :mock_images
                    ],
                )
            )
    return cards


def request_datasets(admin: Any, request: Any) -> list[str]:  # admin: syft client
    """Names of the datasets whose assets a code request reads, on the admin's datasite.

    Examples
    --------
    >>> request_datasets(admin, request)  # doctest: +SKIP
    ['line-1']
    """
    wanted = {str(asset_id) for asset_id in code_inputs(request.code).values()}
    with quiet():
        datasets = admin.datasets.get_all()
    return sorted(
        {
            dataset.name
            for dataset in datasets
            for asset in dataset.asset_list
            if str(asset.action_id) in wanted
        }
    )


def submitted_functions(clients: dict[str, Any]) -> list[str]:
    """Names of the functions the logged-in researcher submitted anywhere, newest first.

    Examples
    --------
    >>> submitted_functions(factories)  # doctest: +SKIP
    ['count_crystals', 'mean_intensity']
    """
    latest: dict[str, str] = {}
    for client in clients.values():
        with quiet():
            codes = client.code.get_all()
        for code in codes:
            name, when = code.service_func_name, str(code.submit_time)
            latest[name] = max(latest.get(name, ""), when)
    return sorted(latest, key=lambda name: latest[name], reverse=True)


def request_rows(clients: dict[str, Any], function_names: list[str]) -> pd.DataFrame:
    """One row per (function, datasite): request and job status, and the result once done.

    Columns: ``function``, ``factory``, ``request`` (pending / approved / rejected /
    not submitted), ``reason``, ``job``, ``progress``, ``release`` (see
    :func:`workbench.remote.client.status_table`) and ``result`` (the released value
    of a completed run, else None).

    Examples
    --------
    >>> request_rows(factories, ["count_crystals"])[["factory", "request"]]  # doctest: +SKIP
         factory   request
    0  factory-a  approved
    1  factory-b   pending
    """
    from workbench.remote import client as researcher

    frames = []
    for name in function_names:
        with quiet():
            status = researcher.status_table(clients, name)
        results = []
        for row in status.itertuples():
            result = None
            if row.job == "completed":
                with quiet():
                    collected = researcher.collect({row.factory: clients[row.factory]}, name)
                values = collected.iloc[0].drop("factory").dropna().to_dict()
                result = values if "error" not in values else None
            results.append(result)
        status.insert(0, "function", name)
        status["result"] = results
        frames.append(status)
    columns = ["function", "factory", "request", "reason", "job", "progress", "release", "result"]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)[columns]


def wait_for_decisions(
    clients: dict[str, Any],
    function_name: str,
    timeout: float = 600.0,
    poll_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> pd.DataFrame:
    """Wait until no datasite has the request for `function_name` pending, or `timeout`.

    The factory admins decide in their own time: after `timeout` seconds this returns
    the status as it is, pending rows included (it never raises for that).

    Returns
    -------
    DataFrame
        :func:`workbench.remote.client.status_table` at the end of the wait.

    Examples
    --------
    >>> wait_for_decisions(factories, "count_crystals", timeout=60)  # doctest: +SKIP
         factory   request reason job progress
    0  factory-a  approved
    1  factory-b  rejected  Use the shared pipeline, please.
    """
    from workbench.remote import client as researcher

    deadline = clock() + timeout
    while True:
        with quiet():
            status = researcher.status_table(clients, function_name)
        if "pending" not in set(status["request"]) or clock() >= deadline:
            return status
        time.sleep(poll_seconds)


def _images_in(description: Any) -> int | None:
    found = _IMAGES_IN_DESCRIPTION.search(_text(description))
    return int(found.group(1)) if found else None


def _text(value: Any) -> str:
    return str(getattr(value, "text", value) or "")
