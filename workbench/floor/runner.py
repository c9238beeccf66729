"""Counting off the page: a process pool that counts each uploaded image with an adopted tool.

The page never counts in its own process: each image becomes an :class:`ImageJob`
handed to a pool of ``workers`` processes (started once, with the imaging code
already imported), so pages stay responsive and two operators count at once. A job
checks the tool's pinned files first (:func:`workbench.remote.tools.verify_tool`;
a changed or missing file refuses the run and names the file), reads the image
with :func:`workbench.imaging.io.load_image`, counts it with
:func:`workbench.imaging.pipeline.analyze`, writes the overlay beside the upload
and stores its row in the history. Progress is the rows' status.

Examples
--------
>>> runner = BatchRunner(workers=1)  # doctest: +SKIP
>>> runner.submit([ImageJob(db, 1, 0, upload, overlay, manifest)])  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import multiprocessing
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from workbench.errors import WorkbenchError
from workbench.floor.history import mark_image, store_result

log = logging.getLogger("workbench.floor")


@dataclass(frozen=True)
class ImageJob:
    """One image to count.

    Attributes
    ----------
    database : Path
        The floor's SQLite history.
    batch, index : int
        Which image row the result belongs to.
    upload : Path
        The uploaded file, in the factory's state folder.
    overlay : Path
        Where the overlay JPEG goes.
    manifest : dict
        The adopted tool's manifest (:meth:`ToolManifest.to_dict`).
    camera : str
        ``auto``, ``legacy`` or ``hires``.
    """

    database: Path
    batch: int
    index: int
    upload: Path
    overlay: Path
    manifest: dict
    camera: str = "auto"


def count_image(job: ImageJob) -> dict:
    """Count one image with the job's tool and store the row; return the stored result.

    Every failure is stored as the image's message: a refused tool names the
    changed file, a bad file gets :mod:`workbench.imaging.io`'s sentence (with the
    file's name, not its path in the state folder).
    """
    mark_image(job.database, job.batch, job.index, "counting")
    try:
        result = _count(job)
    except WorkbenchError as error:
        message = str(error).replace(str(job.upload), _display_name(job.upload))
        mark_image(job.database, job.batch, job.index, "error", message)
        return {"error": message}
    store_result(job.database, job.batch, job.index, result)
    return result


def _count(job: ImageJob) -> dict:
    import cv2

    from workbench.camera import get_camera
    from workbench.imaging.io import load_image
    from workbench.imaging.measure import primary_diameters_um
    from workbench.imaging.overlay import draw_overlay
    from workbench.imaging.pipeline import analyze, guess_camera
    from workbench.remote.tools import ToolManifest, verify_tool

    manifest = ToolManifest.from_dict(job.manifest)
    verify_tool(manifest)
    image = load_image(job.upload)
    camera = guess_camera(image) if job.camera == "auto" else job.camera
    pixel_size = manifest.parameters.get("pixel_size_um")
    report = analyze(image, camera, pixel_size, manifest.method)
    if report.count is None:  # the quality gate refused the frame
        raise WorkbenchError(f"{_display_name(job.upload)}: unfit, not counted: {report.quality}")
    picture = cv2.cvtColor(draw_overlay(image, report), cv2.COLOR_RGB2BGR)
    # JPEG, 4:4:4 so thin coloured outlines keep their colour: 30 ms, where PNG takes 130.
    settings = [cv2.IMWRITE_JPEG_QUALITY, 95,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    if not cv2.imwrite(str(job.overlay), picture, settings):
        raise WorkbenchError(f"overlay of {_display_name(job.upload)} cannot be written")
    detections = report.detections
    diameters = primary_diameters_um(detections.areas_px, detections.members,
                                     get_camera(camera, pixel_size).pixel_size_um)
    return {
        **report.to_json(),
        "image": _display_name(job.upload),
        "agglomeration_pct": round(float(report.agglomeration_pct), 2),
        "quality": "ok",
        "uncertainty": manifest.benchmark.get(camera, {}).get("mae"),
        "diameters_um": [round(float(d), 2) for d in diameters],
    }


def _display_name(upload: Path) -> str:
    """The operator's file name (uploads are stored as ``<index>-<name>``)."""
    return upload.name.split("-", 1)[1] if "-" in upload.name else upload.name


def _warm_up() -> None:
    """Import the imaging code once per worker, so the first image does not pay for it."""
    import workbench.imaging.overlay
    import workbench.imaging.pipeline
    import workbench.imaging.segment
    import workbench.remote.tools  # noqa: F401


class BatchRunner:
    """A pool of counting processes shared by every operator of one floor.

    Parameters
    ----------
    workers : int
        Images counted at once.
    """

    def __init__(self, workers: int = 2) -> None:
        self._workers = workers
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_warm_up,
        )
        for _ in range(self._workers):  # start every worker now, not on the first upload
            pool.submit(int)
        return pool

    def submit(self, jobs: list[ImageJob]) -> list[Future]:
        """Queue `jobs`; each stores its own row when done.

        A pool broken by a worker that died (its images are marked as errors) is
        replaced by a fresh one, so one crash does not stop the floor.
        """
        futures = []
        for job in jobs:
            try:
                future = self._pool.submit(count_image, job)
            except BrokenProcessPool:
                log.error("a counting process died; starting a new pool")
                self._pool = self._start()
                future = self._pool.submit(count_image, job)
            future.add_done_callback(partial(_record_crash, job))
            futures.append(future)
        return futures

    def close(self) -> None:
        """Stop the workers (running images are finished first; queued ones are dropped)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _record_crash(job: ImageJob, future: Future) -> None:
    """A worker that died or raised unexpectedly still leaves a message on its image."""
    if future.cancelled():
        mark_image(job.database, job.batch, job.index, "error", "cancelled: the floor stopped")
        return
    error = future.exception()
    if error is not None:
        log.error("counting %s failed:\n%s", job.upload,
                  "".join(traceback.format_exception(error)))
        mark_image(job.database, job.batch, job.index, "error",
                   f"internal error while counting ({type(error).__name__}); see the floor log")
