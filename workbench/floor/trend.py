"""The QC trend of one factory: count, d50 and agglomeration over its last batches.

What the ``crystal_trend`` report shows. It reads the factory's floor history
(SQLite in the factory's state folder): the analyst runs it at the factory, and
reads batch aggregates only (one row per batch, each produced by an adopted tool
whose name, version and hash are on the row), never images or per-crystal data.

Examples
--------
>>> config = floor_config_for("factory-a", "datasites/floor")  # doctest: +SKIP
>>> table = trend_table(config, last=30)  # doctest: +SKIP
>>> plot_trend(table)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from workbench.errors import WorkbenchError
from workbench.floor.config import FloorConfig, load_floor_config
from workbench.floor.history import recent_batches
from workbench.floor.spc import ControlLimits, control_limits

METRICS = {"mean_count": "mean count per image", "d50_um": "d50 (µm)",
           "agglomeration_pct": "agglomeration (%)"}


def floor_config_for(factory: str, floors_dir: str | Path = "datasites/floor") -> FloorConfig:
    """The floor config of `factory` among the TOML files in `floors_dir`.

    Raises
    ------
    WorkbenchError
        If no config in that folder belongs to `factory`.
    """
    folder = Path(floors_dir)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: no such folder of floor configs")
    configs = {config.factory: config for config in map(load_floor_config, folder.glob("*.toml"))}
    if factory not in configs:
        known = ", ".join(sorted(configs)) or f"none in {folder}"
        raise WorkbenchError(f"unknown factory {factory!r}: choose one of {known}")
    return configs[factory]


def trend_table(config: FloorConfig, last: int = 30) -> pd.DataFrame:
    """One row per counted batch of the last `last`, oldest first, with alarms per metric.

    Columns: the floor's batch columns (see :data:`workbench.floor.history.BATCH_COLUMNS`)
    plus ``<metric>_out_of_control`` for each of :data:`METRICS`.

    Raises
    ------
    WorkbenchError
        If `last` is below 2 or the factory has no counted batch.
    """
    if last < 2:
        raise WorkbenchError(f"last_n={last}: a trend needs at least 2 batches")
    batches = [batch for batch in recent_batches(config.database, config.spec, last)
               if batch.done]
    if not batches:
        raise WorkbenchError(f"{config.factory}: no counted batch in the floor history yet")
    table = pd.DataFrame([batch.to_row() for batch in batches])
    for metric, limits in trend_limits(table).items():
        table[f"{metric}_out_of_control"] = [i in limits.out_of_control for i in range(len(table))]
    return table


def trend_limits(table: pd.DataFrame) -> dict[str, ControlLimits]:
    """Control limits of every metric of `table` (see :mod:`workbench.floor.spc`)."""
    return {metric: control_limits(table[metric].to_numpy(float)) for metric in METRICS}


def limits_table(table: pd.DataFrame) -> pd.DataFrame:
    """Centre, σ, limits and number of out-of-control batches, one row per metric."""
    rows = []
    for metric, limits in trend_limits(table).items():
        rows.append({"metric": METRICS[metric], "centre": round(limits.center, 2),
                     "sigma": round(limits.sigma, 2), "LCL": round(limits.lower, 2),
                     "UCL": round(limits.upper, 2), "out of control": len(limits.out_of_control)})
    return pd.DataFrame(rows)


def plot_trend(table: pd.DataFrame):
    """Three control charts (count, d50, agglomeration) over the batches of `table`."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    positions = range(len(table))
    for axis, (metric, limits) in zip(axes, trend_limits(table).items(), strict=True):
        values = table[metric].to_numpy(float)
        axis.plot(positions, values, "o-", color="#1f6fb2", markersize=4)
        alarms = limits.out_of_control
        axis.plot(alarms, values[alarms], "o", color="#d1242f", markersize=8,
                  label="out of control")
        for level, style in ((limits.upper, "--"), (limits.center, "-"), (limits.lower, "--")):
            axis.axhline(level, color="#8a8a8a", linestyle=style, linewidth=1)
        axis.set_ylabel(METRICS[metric])
        if alarms:
            axis.legend(loc="upper left")
    axes[-1].set_xticks(list(positions), table["batch"], rotation=60, ha="right")
    figure.tight_layout()
    plt.close(figure)  # shown once, by whoever displays it
    return figure
