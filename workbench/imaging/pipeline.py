"""Count crystals on one image: the entry point used by the CLI, notebooks and syft code.

:func:`analyze` turns an image into a :class:`CrystalReport`. The counting itself is
done by a *method*, a function ``(gray float image, CameraProfile) -> Detections``
named in :data:`METHODS`; everything after it (sizes, CSD, agglomeration, the JSON
contract) is shared, so every method, the baselines included, is measured the same way.

Adding a method is one entry in :data:`METHODS` (for example the learned model:
``"model": "workbench.imaging.model:detect_with_model"``). Entries are import strings
so that choosing ``classical`` never imports torch.

Examples
--------
>>> import numpy as np
>>> from workbench.imaging.pipeline import analyze
>>> report = analyze(np.full((256, 256), 0.6, np.float32), camera="legacy")
>>> report.count, report.method, report.quality
(None, 'classical', 'no contrast (strongest detail 0.000 of the level, need 0.09)')
>>> sorted(report.to_json())  # doctest: +NORMALIZE_WHITESPACE
['agglomerates', 'artifacts_removed', 'count', 'csd_um', 'image', 'method', 'particles',
 'quality', 'seconds', 'uncertainty']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from time import perf_counter

import numpy as np

from workbench.camera import CameraProfile, get_camera
from workbench.errors import WorkbenchError
from workbench.imaging.detections import Detections
from workbench.imaging.io import LoadedImage, to_gray_float
from workbench.imaging.measure import (
    agglomeration_pct,
    csd_percentiles,
    equivalent_diameter_um,
    primary_diameters_um,
)
from workbench.imaging.quality import QualityVerdict, assess_quality
from workbench.imaging.uncertainty import METHODS_DISAGREE, CountUncertainty, count_uncertainty

# method name -> "module:function" taking (gray float32 image, CameraProfile) -> Detections
METHODS: dict[str, str] = {
    "classical": "workbench.imaging.segment:detect_crystals",
    "otsu": "workbench.imaging.baselines:detect_otsu",
    "blob_log": "workbench.imaging.baselines:detect_blob_log",
    "model": "workbench.imaging.model:detect_with_model",
}
BASELINES = ("otsu", "blob_log")
# ``auto`` checks the model against the classical method on every frame it gives the
# model, and keeps the classical count where the two disagree: the model has learned
# synthetic images, and on unfamiliar ones it fails first.
AUTO_FALLBACK = "classical"
HIRES_MIN_PIXELS = 8_000_000


@dataclass
class CrystalReport:
    """What :func:`analyze` found on one image.

    Attributes
    ----------
    image : str or None
        File name, when the image came from a file.
    count : int or None
        Primary crystals (each crystal of an agglomerate counts once); None, like the
        other counts and the CSD, when the frame was unfit to count (see `quality`).
    particles : int or None
        Single crystals plus agglomerates (an agglomerate counts once).
    agglomerates : int or None
        Particles estimated to hold more than one crystal.
    artifacts_removed : int or None
        Imperfections (bubbles, debris, fibres, scratches, dust) removed before counting.
    csd_um : dict
        ``d10``, ``d50``, ``d90`` of primary crystal diameters in µm (None when unfit).
    method : str
        Method that counted (``classical``, ``model``, a baseline).
    seconds : float
        Analysis time, file reading excluded.
    agglomeration_pct : float
        Primary crystals inside agglomerates, as % of all primary crystals.
    removed : dict
        Imperfections removed, per kind.
    objects : list of dict
        One record per particle and removed imperfection: ``kind``, ``centroid_xy``
        (col, row in image pixels), ``diameter_um``, ``members``. For local use only
        (overlays, evaluation); never part of a released result.
    detections : Detections
        The method's raw output (label images for overlays).
    uncertainty : CountUncertainty, optional
        Interval on the count and why to check the frame by eye
        (:mod:`workbench.imaging.uncertainty`).
    quality : str
        ``"ok"``, or why the frame was not counted (:mod:`workbench.imaging.quality`).
    verdict : QualityVerdict, optional
        The quality gate's measurements.
    """

    image: str | None
    count: int | None
    particles: int | None
    agglomerates: int | None
    artifacts_removed: int | None
    csd_um: dict[str, float | None]
    method: str
    seconds: float
    agglomeration_pct: float = 0.0
    removed: dict[str, int] = field(default_factory=dict)
    objects: list[dict] = field(default_factory=list, repr=False)
    detections: Detections | None = field(default=None, repr=False)
    uncertainty: CountUncertainty | None = None
    quality: str = "ok"
    verdict: QualityVerdict | None = field(default=None, repr=False)

    @classmethod
    def unfit(
        cls, image: str | None, method: str, verdict: QualityVerdict, seconds: float
    ) -> CrystalReport:
        """The report of a frame the quality gate refused: no counts, the reason.

        Examples
        --------
        >>> from workbench.imaging.quality import QualityVerdict
        >>> r = CrystalReport.unfit("a.png", "classical", QualityVerdict(False, "too dark"), 0.05)
        >>> r.to_json()["count"], r.to_json()["quality"]
        (None, 'too dark')
        """
        no_csd = {key: None for key in ("d10", "d50", "d90")}
        return cls(image, None, None, None, None, no_csd, method, seconds,
                   quality=verdict.reason, verdict=verdict)

    def to_json(self) -> dict:
        """The contract dict printed by ``workbench count --json``.

        Examples
        --------
        >>> r = CrystalReport("a.png", 3, 2, 1, 0, {"d10": 1.0, "d50": 2.0, "d90": 3.0},
        ...                   "classical", 0.1234)
        >>> r.to_json()["seconds"]
        0.123
        """
        return {
            "image": self.image,
            "count": _whole(self.count),
            "particles": _whole(self.particles),
            "agglomerates": _whole(self.agglomerates),
            "artifacts_removed": _whole(self.artifacts_removed),
            "csd_um": {
                key: None if self.csd_um[key] is None else float(self.csd_um[key])
                for key in ("d10", "d50", "d90")
            },
            "method": self.method,
            "seconds": round(float(self.seconds), 3),
            "uncertainty": None if self.uncertainty is None else self.uncertainty.to_json(),
            "quality": self.quality,
        }


def _whole(value: int | None) -> int | None:
    return None if value is None else int(value)


def analyze(
    image: np.ndarray | LoadedImage,
    camera: str | CameraProfile = "legacy",
    pixel_size_um: float | None = None,
    method: str = "auto",
    weights: str | Path | None = None,
) -> CrystalReport:
    """Count crystals, agglomerates and removed imperfections; measure the CSD.

    Parameters
    ----------
    image : ndarray or LoadedImage
        uint8, uint16 or float ([0, 1]) array, gray (H, W) or RGB(A) (H, W, 3|4), or
        an image from :func:`workbench.imaging.io.load_image`.
    camera : str or CameraProfile
        ``legacy`` (1280x1024 gray, 2 µm/px) or ``hires`` (12 MP RGB, 0.64 µm/px).
        The classical method works at any pixel size: it first brings images more
        than 1.25x finer or coarser to about 2 µm/px, where it was tuned.
    pixel_size_um : float, optional
        Overrides the camera's pixel size.
    method : str
        ``auto`` or any name in :data:`METHODS`. ``auto`` is ``classical`` on legacy
        frames; on hires frames it runs the learned model and the classical method and
        keeps the model's count unless the two disagree (the report's uncertainty then
        says so, and the classical count is kept).
    weights : str or Path, optional
        Weights for the learned model wherever it runs (e.g. fine-tuned at the
        factory by ``workbench finetune``); the shipped weights by default.

    Returns
    -------
    CrystalReport
        Counted only when :func:`~workbench.imaging.quality.assess_quality` finds the
        frame fit; otherwise its counts are None and ``quality`` says why.

    Examples
    --------
    >>> import numpy as np
    >>> report = analyze(np.zeros((128, 128), np.uint8), method="otsu")
    >>> report.count, report.quality
    (None, 'too dark (median level 0.00, need at least 0.1)')
    """
    started = perf_counter()
    name = image.name if isinstance(image, LoadedImage) else None
    gray = image.pixels if isinstance(image, LoadedImage) else to_gray_float(image)
    if isinstance(camera, CameraProfile):
        profile = get_camera(camera.name, pixel_size_um or camera.pixel_size_um)
    else:
        profile = get_camera(camera, pixel_size_um)
    method_name = resolve_method(method, profile)
    verdict = assess_quality(gray, profile)
    if not verdict.ok:
        return CrystalReport.unfit(name, method_name, verdict, perf_counter() - started)
    detect = method_function(method_name)
    if method_name == "model" and weights is not None:
        detect = partial(detect, weights=weights)
    detections = detect(gray, profile)
    other_counts = {}
    if method == "auto" and method_name != AUTO_FALLBACK:
        fallback = method_function(AUTO_FALLBACK)(gray, profile)
        other_counts[AUTO_FALLBACK] = int(fallback.members.sum())
        check = count_uncertainty(detections.members, detections.areas_px, other_counts)
        if check.flag == METHODS_DISAGREE:
            other_counts = {method_name: int(detections.members.sum())}
            detections, method_name = fallback, AUTO_FALLBACK
    return report_from_detections(
        detections, profile, method_name, perf_counter() - started, name, other_counts
    )


def resolve_method(method: str, camera: CameraProfile) -> str:
    """Name of the method ``auto`` stands for on `camera`, or `method` if it is known.

    Examples
    --------
    >>> resolve_method("auto", get_camera("legacy"))
    'classical'
    """
    if method == "auto":
        return "model" if camera.name == "hires" and "model" in METHODS else "classical"
    if method not in METHODS:
        known = ", ".join(["auto", *METHODS])
        raise WorkbenchError(f"unknown method {method!r}: choose one of {known}")
    return method


def method_function(name: str) -> Callable[[np.ndarray, CameraProfile], Detections]:
    """Import and return the detection function registered as `name`.

    Examples
    --------
    >>> method_function("classical").__name__
    'detect_crystals'
    """
    module_name, attribute = METHODS[name].split(":")
    return getattr(importlib.import_module(module_name), attribute)


def guess_camera(image: np.ndarray | LoadedImage) -> str:
    """``hires`` for colour images of at least 8 megapixels, else ``legacy``.

    Examples
    --------
    >>> guess_camera(np.zeros((3000, 4000, 3), np.uint8)), guess_camera(np.zeros((1024, 1280)))
    ('hires', 'legacy')
    """
    array = image.original if isinstance(image, LoadedImage) else np.asarray(image)
    colour = array.ndim == 3 and array.shape[2] >= 3
    return "hires" if colour and array.shape[0] * array.shape[1] >= HIRES_MIN_PIXELS else "legacy"


def report_from_detections(
    detections: Detections,
    camera: CameraProfile,
    method: str,
    seconds: float,
    image: str | None = None,
    other_counts: dict[str, int] | None = None,
) -> CrystalReport:
    """Measure sizes and counts of `detections` and build the report.

    `other_counts` are other methods' counts of the same frame; they widen the
    report's uncertainty.

    Examples
    --------
    >>> d = Detections(np.array([[5.0, 5.0], [20.0, 9.0]]), np.array([314.0, 900.0]),
    ...                np.array([1, 3]))
    >>> r = report_from_detections(d, get_camera("legacy"), "classical", 0.01)
    >>> r.count, r.particles, r.agglomerates, r.agglomeration_pct
    (4, 2, 1, 75.0)
    """
    pixel_size = camera.pixel_size_um
    members = detections.members.astype(int)
    diameters = equivalent_diameter_um(detections.areas_px, pixel_size)
    objects = [
        {
            "kind": "agglomerate" if k > 1 else "crystal",
            "centroid_xy": [round(float(x), 1), round(float(y), 1)],
            "diameter_um": round(float(d), 2),
            "members": int(k),
        }
        for (x, y), d, k in zip(detections.centroids_xy, diameters, members, strict=True)
    ]
    objects += [
        {
            "kind": artifact.kind,
            "centroid_xy": [round(float(artifact.centroid_xy[0]), 1),
                            round(float(artifact.centroid_xy[1]), 1)],
            "diameter_um": round(float(equivalent_diameter_um(artifact.area_px, pixel_size)), 2),
            "members": 0,
        }
        for artifact in detections.artifacts
    ]
    removed = detections.removed_counts()
    return CrystalReport(
        image=image,
        count=int(members.sum()),
        particles=len(members),
        agglomerates=int((members > 1).sum()),
        artifacts_removed=sum(removed.values()),
        csd_um=csd_percentiles(primary_diameters_um(detections.areas_px, members, pixel_size)),
        method=method,
        seconds=seconds,
        agglomeration_pct=agglomeration_pct(members),
        removed=removed,
        objects=objects,
        detections=detections,
        uncertainty=count_uncertainty(members, detections.areas_px, other_counts),
    )
