"""Result view: aggregate counts per factory and the crystal size distribution (CSD).

Takes the data frame :func:`workbench.remote.client.collect` (or
``wait_for_results``) returns, one row per factory, with the fields of
:func:`workbench.remote.counting.count_crystals`: ``images``, ``mean_count``,
``total_count``, ``agglomeration_pct``, ``d10_um``/``d50_um``/``d90_um`` and
``csd_counts`` (with ``csd_edges_um`` when the function sends its bin edges).
The plot functions return matplotlib figures, so a report uses them too.

Examples
--------
>>> import pandas as pd
>>> results = pd.DataFrame([{"factory": "factory-a", "images": 2, "mean_count": 30.0,
...     "total_count": 60, "agglomeration_pct": 12.5, "d10_um": 20.0, "d50_um": 40.0,
...     "d90_um": 60.0, "csd_counts": [0, 10, 30, 20]}])
>>> results_table(results)["crystals per image"].tolist()
[30.0]
>>> figure = plot_csd(results)
"""

from __future__ import annotations

import io
from typing import Any

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from widgets._html import notice_html, table_html
from workbench.imaging.aggregate import CSD_EDGES_UM

TABLE_COLUMNS = {
    "factory": "factory",
    "images": "images",
    "total_count": "crystals",
    "mean_count": "crystals per image",
    "agglomeration_pct": "in agglomerates (%)",
    "d10_um": "d10 (µm)",
    "d50_um": "d50 (µm)",
    "d90_um": "d90 (µm)",
    "error": "error",
}


def results_table(results: pd.DataFrame) -> pd.DataFrame:
    """The short table of a result frame: one row per factory, readable column names.

    Columns the results do not have are left out.
    """
    present = [column for column in TABLE_COLUMNS if column in results.columns]
    return results[present].rename(columns=TABLE_COLUMNS).reset_index(drop=True)


def csd_long(results: pd.DataFrame) -> pd.DataFrame:
    """The CSD of every factory in long form: ``factory``, ``lower_um``, ``upper_um``,
    ``crystals`` and ``percent`` (of that factory's crystals).

    Examples
    --------
    >>> frame = pd.DataFrame([{"factory": "a", "csd_counts": [1, 3]}])
    >>> csd_long(frame)["percent"].tolist()
    [25.0, 75.0]
    """
    rows = []
    for _, row in results.iterrows():
        counts = row.get("csd_counts")
        if not isinstance(counts, list | tuple | np.ndarray) or len(counts) == 0:
            continue
        edges = _edges(row, len(counts))
        total = float(np.sum(counts)) or 1.0
        for lower, upper, n in zip(edges[:-1], edges[1:], counts, strict=True):
            rows.append(
                {
                    "factory": row["factory"],
                    "lower_um": float(lower),
                    "upper_um": float(upper),
                    "crystals": int(n),
                    "percent": 100.0 * float(n) / total,
                }
            )
    return pd.DataFrame(rows, columns=["factory", "lower_um", "upper_um", "crystals", "percent"])


def plot_counts(results: pd.DataFrame) -> Figure:
    """Bar charts per factory: crystals per image (± std when known), % in agglomerates."""
    table = results.dropna(subset=["mean_count"]) if "mean_count" in results else results[:0]
    table = table.reset_index(drop=True)
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    if not table.empty:
        sns.barplot(data=table, x="factory", y="mean_count", hue="factory", width=0.5, ax=left)
        if "std_count" in table:
            left.errorbar(
                table.index, table["mean_count"], yerr=table["std_count"].fillna(0),
                fmt="none", ecolor="black", capsize=6,
            )  # fmt: skip
        labels = [f"{int(total)} crystals" for total in table["total_count"]]
        for container, label in zip(left.containers, labels, strict=False):
            left.bar_label(container, labels=[label], label_type="center", color="white")
        if "agglomeration_pct" in table:
            sns.barplot(
                data=table, x="factory", y="agglomeration_pct", hue="factory", width=0.5, ax=right
            )
    left.set(title="Crystals per image", xlabel="", ylabel="crystals / image")
    right.set(title="Agglomeration", xlabel="", ylabel="% of crystals in agglomerates")
    plt.close(figure)  # shown by whoever displays it, not twice by the inline backend
    return figure


def plot_csd(results: pd.DataFrame) -> Figure:
    """Crystal size distribution of every factory, as % of its crystals per size bin."""
    long = csd_long(results)
    figure, axes = plt.subplots(figsize=(9, 3.6), layout="constrained")
    if not long.empty:
        long["centre_um"] = (long["lower_um"] + long["upper_um"]) / 2
        edges = np.unique(np.concatenate([long["lower_um"], long["upper_um"]]))
        sns.histplot(
            data=long, x="centre_um", weights="percent", hue="factory", bins=list(edges),
            element="step", fill=True, alpha=0.25, ax=axes,
        )  # fmt: skip
    axes.set(
        title="Crystal size distribution (primary crystals)",
        xlabel="equivalent diameter (µm)",
        ylabel="% of crystals",
    )
    plt.close(figure)
    return figure


class ResultView:
    """Counts per factory (table and bars) and the CSD plot of a result frame.

    Attributes
    ----------
    results : DataFrame
        The frame shown.
    table : HTML
        :func:`results_table` as HTML.
    counts_figure, csd_figure : Figure
        :func:`plot_counts` and :func:`plot_csd`.
    counts_image, csd_image : Image
        The two figures as PNG images.
    widget : VBox
        Table and both plots.
    """

    def __init__(self, results: pd.DataFrame):
        self.results = results
        self.table = w.HTML(
            table_html(results_table(results)) if len(results) else notice_html("No results.")
        )
        self.counts_figure = plot_counts(results)
        self.csd_figure = plot_csd(results)
        self.counts_image = w.Image(value=figure_png(self.counts_figure), format="png")
        self.csd_image = w.Image(value=figure_png(self.csd_figure), format="png")
        self.widget = w.VBox(
            [w.HTML("<h3>Results per factory</h3>"), self.table, self.counts_image, self.csd_image]
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def figure_png(figure: Figure, dpi: int = 100) -> bytes:
    """A matplotlib figure as PNG bytes.

    Examples
    --------
    >>> figure_png(plot_csd(pd.DataFrame()))[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _edges(row: pd.Series, n_bins: int) -> np.ndarray:
    edges = row.get("csd_edges_um")
    if isinstance(edges, list | tuple | np.ndarray) and len(edges) == n_bins + 1:
        return np.asarray(edges, dtype=float)
    # count_crystals does not send its edges: the shared ones (10 µm, last bin open-ended).
    return np.asarray(CSD_EDGES_UM[: n_bins + 1], dtype=float)
