"""Batch history of one factory's floor, in SQLite in the factory's state folder.

A batch is what an operator uploads at once under one name. Each image gets one row
(queued, counting, done or error, with its numbers); a batch's summary pools the
primary crystal diameters of its images into one CSD (d10/d50/d90), pools the
agglomeration %, and checks the factory's specification. Every batch records the
tool (name, version, hash) that counted it.

Examples
--------
>>> import pathlib, tempfile
>>> from workbench.floor.config import BatchSpec
>>> db = pathlib.Path(tempfile.mkdtemp()) / "floor.sqlite"
>>> batch = create_batch(db, "B-1", "olga", ("classical-pipeline", "0.1.0", "ab" * 32), ["a.png"])
>>> store_result(db, batch, 0, {"count": 3, "particles": 2, "agglomerates": 1,
...     "artifacts_removed": 0, "agglomeration_pct": 66.7, "quality": "ok",
...     "uncertainty": 1.6, "method": "classical", "seconds": 0.3,
...     "csd_um": {"d10": 40.2, "d50": 41.0, "d90": 41.8}, "diameters_um": [40.0, 41.0, 42.0]})
>>> summary = summarize(db, batch, BatchSpec())
>>> summary.status, summary.total_count, summary.csd_um["d50"], summary.passed
('done', 3, 41.0, False)
>>> summary.reasons
['agglomeration 66.7 % above 50.0 %']
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.floor.config import BatchSpec
from workbench.imaging.measure import csd_percentiles

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, created REAL NOT NULL,
    operator TEXT NOT NULL, tool TEXT NOT NULL, tool_version TEXT NOT NULL,
    tool_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    batch INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '', count INTEGER, particles INTEGER, agglomerates INTEGER,
    artifacts_removed INTEGER, agglomeration_pct REAL, d10 REAL, d50 REAL, d90 REAL,
    quality TEXT, uncertainty REAL, method TEXT, seconds REAL, diameters TEXT,
    PRIMARY KEY (batch, idx)
);
"""
IMAGE_COLUMNS = ("image", "status", "message", "count", "particles", "agglomerates",
                 "artifacts_removed", "agglomeration_pct", "d10_um", "d50_um", "d90_um",
                 "quality", "uncertainty", "method", "seconds")
BATCH_COLUMNS = ("batch_id", "batch", "created", "operator", "tool", "tool_version", "tool_hash",
                 "images", "failed", "total_count", "mean_count", "d10_um", "d50_um", "d90_um",
                 "agglomeration_pct", "passed", "reasons")


@contextlib.contextmanager
def connect(database: Path, schema: str = SCHEMA) -> Iterator[sqlite3.Connection]:
    """One committed-or-rolled-back transaction on `database`, created with `schema`.

    The folder is created owner-only (0700); the file uses write-ahead logging so
    counting processes and the page write and read at the same time.
    """
    database = Path(database)
    database.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    connection = sqlite3.connect(database, timeout=30)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(schema)
        with connection:
            yield connection
    finally:
        connection.close()


def create_batch(
    database: Path,
    name: str,
    operator: str,
    tool: tuple[str, str, str],
    images: list[str],
    errors: dict[int, str] | None = None,
) -> int:
    """Record a new batch of `images` (file names), all queued; return its id.

    Parameters
    ----------
    tool : tuple
        ``(name, version, sha256)`` of the tool that will count it.
    errors : dict, optional
        ``{index: message}`` for images refused on upload (recorded as errors).
    """
    errors = errors or {}
    with connect(database) as db:
        batch = db.execute(
            "INSERT INTO batches (name, created, operator, tool, tool_version, tool_hash) "
            "VALUES (?, ?, ?, ?, ?, ?)", (name, time.time(), operator, *tool)
        ).lastrowid
        db.executemany(
            "INSERT INTO images (batch, idx, name, status, message) VALUES (?, ?, ?, ?, ?)",
            [(batch, index, image, "error" if index in errors else "queued",
              errors.get(index, "")) for index, image in enumerate(images)],
        )
    return int(batch)


def mark_image(database: Path, batch: int, index: int, status: str, message: str = "") -> None:
    """Set one image's status (``counting``, ``error``) and message."""
    with connect(database) as db:
        db.execute("UPDATE images SET status = ?, message = ? WHERE batch = ? AND idx = ?",
                   (status, message, batch, index))


def store_result(database: Path, batch: int, index: int, result: dict) -> None:
    """Store what counting one image found (see :func:`workbench.floor.runner.count_image`)."""
    csd = result["csd_um"]
    with connect(database) as db:
        db.execute(
            "UPDATE images SET status = 'done', message = '', count = ?, particles = ?, "
            "agglomerates = ?, artifacts_removed = ?, agglomeration_pct = ?, d10 = ?, d50 = ?, "
            "d90 = ?, quality = ?, uncertainty = ?, method = ?, seconds = ?, diameters = ? "
            "WHERE batch = ? AND idx = ?",
            (result["count"], result["particles"], result["agglomerates"],
             result["artifacts_removed"], result["agglomeration_pct"], csd["d10"], csd["d50"],
             csd["d90"], result["quality"], result["uncertainty"], result["method"],
             result["seconds"], json.dumps(result["diameters_um"]), batch, index),
        )


def image_rows(database: Path, batch: int) -> list[dict]:
    """One dict per image of `batch`, in upload order (keys: :data:`IMAGE_COLUMNS` + idx)."""
    with connect(database) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM images WHERE batch = ? ORDER BY idx", (batch,)).fetchall()
    return [
        {"idx": row["idx"], "image": row["name"], "status": row["status"],
         "message": row["message"], "count": row["count"], "particles": row["particles"],
         "agglomerates": row["agglomerates"], "artifacts_removed": row["artifacts_removed"],
         "agglomeration_pct": row["agglomeration_pct"], "d10_um": row["d10"],
         "d50_um": row["d50"], "d90_um": row["d90"], "quality": row["quality"],
         "uncertainty": row["uncertainty"], "method": row["method"], "seconds": row["seconds"],
         "diameters_um": json.loads(row["diameters"]) if row["diameters"] else []}
        for row in rows
    ]


@dataclass
class BatchSummary:
    """One batch: who, when, which tool, and its pooled numbers once counted.

    Attributes
    ----------
    status : str
        ``counting`` while an image is queued or being counted, else ``done``.
    total_count, mean_count : int, float
        Primary crystals over the batch and per counted image.
    csd_um : dict
        Pooled d10/d50/d90 of every primary crystal of the batch.
    agglomeration_pct : float
        Pooled: crystals inside agglomerates as % of all crystals.
    passed : bool or None
        Against the factory's specification; None until an image was counted.
    reasons : list of str
        Why it failed.
    """

    id: int
    name: str
    created: float
    operator: str
    tool: str
    tool_version: str
    tool_hash: str
    images: int = 0
    done: int = 0
    failed: int = 0
    status: str = "counting"
    total_count: int = 0
    mean_count: float = 0.0
    csd_um: dict[str, float] = field(default_factory=lambda: csd_percentiles(np.zeros(0)))
    agglomeration_pct: float = 0.0
    passed: bool | None = None
    reasons: list[str] = field(default_factory=list)
    diameters_um: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def created_text(self) -> str:
        """Local date and time, to the minute."""
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.created))

    def to_row(self) -> dict:
        """A flat row with :data:`BATCH_COLUMNS` (CSV export, the trend report)."""
        return {
            "batch_id": self.id, "batch": self.name, "created": self.created_text,
            "operator": self.operator, "tool": self.tool, "tool_version": self.tool_version,
            "tool_hash": self.tool_hash, "images": self.done, "failed": self.failed,
            "total_count": self.total_count, "mean_count": round(self.mean_count, 2),
            "d10_um": self.csd_um["d10"], "d50_um": self.csd_um["d50"],
            "d90_um": self.csd_um["d90"], "agglomeration_pct": round(self.agglomeration_pct, 2),
            "passed": "" if self.passed is None else ("pass" if self.passed else "fail"),
            "reasons": "; ".join(self.reasons),
        }


def summarize(database: Path, batch: int, spec: BatchSpec) -> BatchSummary:
    """Pool the counted images of `batch` and check them against `spec`.

    Raises
    ------
    KeyError
        If there is no such batch.
    """
    with connect(database) as db:
        row = db.execute("SELECT id, name, created, operator, tool, tool_version, tool_hash "
                         "FROM batches WHERE id = ?", (batch,)).fetchone()
    if row is None:
        raise KeyError(batch)
    return _summary(BatchSummary(*row), image_rows(database, batch), spec)


def recent_batches(database: Path, spec: BatchSpec, last: int = 50) -> list[BatchSummary]:
    """The `last` batches, oldest first (the order of a control chart)."""
    with connect(database) as db:
        ids = [r[0] for r in db.execute("SELECT id FROM batches ORDER BY id DESC LIMIT ?",
                                        (last,))]
    return [summarize(database, batch, spec) for batch in reversed(ids)]


def _summary(summary: BatchSummary, rows: list[dict], spec: BatchSpec) -> BatchSummary:
    done = [row for row in rows if row["status"] == "done"]
    summary.images = len(rows)
    summary.done = len(done)
    summary.failed = sum(row["status"] == "error" for row in rows)
    summary.status = "counting" if summary.done + summary.failed < len(rows) else "done"
    if not done:
        return summary
    counts = np.array([row["count"] for row in done], dtype=float)
    summary.total_count = int(counts.sum())
    summary.mean_count = float(counts.mean())
    summary.diameters_um = np.concatenate([np.asarray(row["diameters_um"], float)
                                           for row in done])
    summary.csd_um = csd_percentiles(summary.diameters_um)
    agglomerated = sum(row["count"] * row["agglomeration_pct"] / 100.0 for row in done)
    summary.agglomeration_pct = 100.0 * agglomerated / max(summary.total_count, 1)
    summary.reasons = spec_failures(summary.csd_um["d50"], summary.agglomeration_pct, spec)
    summary.passed = not summary.reasons
    return summary


def spec_failures(d50_um: float, agglomeration: float, spec: BatchSpec) -> list[str]:
    """Why a batch with this d50 and agglomeration % fails `spec` (empty when it passes).

    Examples
    --------
    >>> spec_failures(52.0, 10.0, BatchSpec(35.0, 48.0, 50.0))
    ['d50 52.0 µm above 48.0 µm']
    """
    reasons = []
    if d50_um < spec.d50_min_um:
        reasons.append(f"d50 {d50_um:.1f} µm below {spec.d50_min_um:.1f} µm")
    if d50_um > spec.d50_max_um:
        reasons.append(f"d50 {d50_um:.1f} µm above {spec.d50_max_um:.1f} µm")
    if agglomeration > spec.max_agglomeration_pct:
        reasons.append(f"agglomeration {agglomeration:.1f} % above "
                       f"{spec.max_agglomeration_pct:.1f} %")
    return reasons


def to_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    """`rows` as CSV text with a header of `columns` (other keys are left out).

    Examples
    --------
    >>> to_csv([{"a": 1, "b": 2}], ("a",))
    'a\\r\\n1\\r\\n'
    """
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
