"""Labels a person makes at the factory: crystal marks on one image, kept beside it.

A label file is ``<image stem>.labels.json`` in a labels folder, in the object format
of the synthetic ground truth (``workbench synth``), so fine-tuning reads both alike::

    {"image": "frame_07.png", "camera": "legacy", "pixel_size_um": 0.8,
     "objects": [
       {"id": 1, "kind": "crystal", "centroid_xy": [40.5, 22.0],
        "diameter_um": 38.2, "agglomerate": null},
       {"id": 2, "kind": "agglomerate", "centroid_xy": [90.0, 61.5],
        "diameter_um": 75.0, "members": [], "crystals": 3},
       {"id": 3, "kind": "bubble", "centroid_xy": [12.0, 99.0], "diameter_um": 20.0}],
     "count": 4, "annotator": "ana", "saved": "2026-12-01T03:00:00+00:00"}

``centroid_xy`` is (x = column, y = row) in image pixels. A crystal inside an
agglomerate has ``"agglomerate": <group id>`` and the agglomerate lists it in
``"members"``; an agglomerate whose crystals are not marked one by one carries
``"crystals": k`` and no members. Imperfections (:data:`IMPERFECTION_KINDS`) may be
marked and are never counted. ``count`` = single crystals + the crystal number of
each agglomerate (:func:`count_of`).

Editing functions never change their input; they return a new :class:`Annotation`.

Examples
--------
>>> a = Annotation("frame.png", "legacy", 1.0)
>>> a = add_crystal(add_crystal(a, (10, 10)), (50, 50))
>>> a = set_crystals(a, 2, 3)
>>> count_of(a), [o["kind"] for o in a.objects]
(4, ['crystal', 'agglomerate'])
>>> count_of(remove_nearest(a, (12, 9), radius_px=5))
3
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from workbench.errors import WorkbenchError
from workbench.files import write_atomically
from workbench.imaging.detections import IMPERFECTION_KINDS, PARTICLE_KINDS
from workbench.imaging.overlay import AGGLOMERATE_RGB, CRYSTAL_RGB, IMPERFECTION_RGB

LABELS_SUFFIX = ".labels.json"
# A clicked crystal's size when no other crystal on the image has one (the median
# seed-crystal diameter of the synthetic generator).
TYPICAL_CRYSTAL_DIAMETER_UM = 40.0
OBJECT_KINDS = (*PARTICLE_KINDS, *IMPERFECTION_KINDS)
SELECTED_RGB = (255, 255, 255)


@dataclass(frozen=True)
class Annotation:
    """The marks a person made on one image.

    Attributes
    ----------
    image : str
        File name of the image (no folder).
    camera : str
        Camera profile name (``legacy``, ``hires``).
    pixel_size_um : float
        Pixel size the diameters were measured with.
    objects : tuple of dict
        Object records in the ground-truth format (see the module docstring).
    annotator : str
        Who made the marks.
    saved : str or None
        ISO time of the last save; None before the first.

    Examples
    --------
    >>> Annotation("a.png", "legacy", 0.8).objects
    ()
    """

    image: str
    camera: str
    pixel_size_um: float
    objects: tuple[dict[str, Any], ...] = ()
    annotator: str = ""
    saved: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The label file's content.

        Examples
        --------
        >>> Annotation("a.png", "legacy", 0.8, annotator="ana").to_json()["count"]
        0
        """
        return {
            "image": self.image,
            "camera": self.camera,
            "pixel_size_um": self.pixel_size_um,
            "objects": [dict(o) for o in self.objects],
            "count": count_of(self),
            "annotator": self.annotator,
            "saved": self.saved,
        }


def crystals_in(record: dict[str, Any]) -> int:
    """Primary crystals one object record stands for.

    A single crystal is 1, an agglomerate its member marks or else its ``crystals``
    number, a member crystal or an imperfection 0 (the member is counted by its group).

    Examples
    --------
    >>> crystals_in({"kind": "agglomerate", "members": [], "crystals": 3})
    3
    >>> crystals_in({"kind": "crystal", "agglomerate": 7}), crystals_in({"kind": "dust"})
    (0, 0)
    """
    if record["kind"] == "crystal":
        return int(record.get("agglomerate") is None)
    if record["kind"] == "agglomerate":
        return len(record.get("members", [])) or int(record.get("crystals", 0))
    return 0


def marks_from_truth(truth: dict) -> list[dict]:
    """The marks a careful person would set on a synthetic frame: its truth records.

    Used to measure what labelling buys (``workbench finetune --check``) without a
    person, and as the labels of a labelled dataset's synthetic mock; crystals keep
    their agglomerate, imperfections their kind.

    Examples
    --------
    >>> truth = {"objects": [{"id": 1, "kind": "crystal", "centroid_xy": [1, 2],
    ...                       "agglomerate": None, "diameter_um": 30.0}]}
    >>> marks_from_truth(truth)  # doctest: +NORMALIZE_WHITESPACE
    [{'id': 1, 'kind': 'crystal', 'centroid_xy': [1, 2], 'diameter_um': 30.0,
      'agglomerate': None}]
    """
    keys = ("id", "kind", "centroid_xy", "diameter_um", "agglomerate", "members")
    return [{k: o[k] for k in keys if k in o} for o in truth["objects"]]


def count_of(annotation: Annotation) -> int:
    """Primary crystals marked: single crystals + crystals of each agglomerate.

    Examples
    --------
    >>> count_of(Annotation("a.png", "legacy", 1.0, ({"id": 1, "kind": "crystal",
    ...     "centroid_xy": [1.0, 1.0], "diameter_um": 9.0, "agglomerate": None},)))
    1
    """
    return sum(crystals_in(o) for o in annotation.objects)


def tally(annotation: Annotation) -> dict[str, int]:
    """What the marks add up to: ``count`` (primary crystals), ``single`` crystals,
    ``agglomerates``, ``in_agglomerates`` (their crystals) and ``imperfections``.

    Examples
    --------
    >>> a = set_crystals(add_crystal(add_crystal(Annotation("a.png", "legacy", 1.0),
    ...     (0, 0)), (20, 0)), 2, 3)
    >>> tally(a)
    {'count': 4, 'single': 1, 'agglomerates': 1, 'in_agglomerates': 3, 'imperfections': 0}
    """
    groups = [o for o in annotation.objects if o["kind"] == "agglomerate"]
    return {
        "count": count_of(annotation),
        "single": sum(
            o["kind"] == "crystal" and o.get("agglomerate") is None for o in annotation.objects
        ),
        "agglomerates": len(groups),
        "in_agglomerates": sum(crystals_in(o) for o in groups),
        "imperfections": sum(o["kind"] in IMPERFECTION_KINDS for o in annotation.objects),
    }


def annotation_from_report(
    report, image_name: str, camera: str, pixel_size_um: float, annotator: str = ""
) -> Annotation:
    """Marks pre-filled from what the counter found, for a person to correct.

    Parameters
    ----------
    report : CrystalReport
        :func:`workbench.imaging.pipeline.analyze` on the image; its ``objects`` hold
        crystals, agglomerates (``members`` = crystal number) and imperfections.
    image_name : str
        File name of the image.
    camera : str
        Camera profile name.
    pixel_size_um : float
        Pixel size used for the report.
    annotator : str, optional
        Who corrects the marks.

    Returns
    -------
    Annotation
        An agglomerate carries ``"crystals": k`` and no member marks.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> found = SimpleNamespace(objects=[
    ...     {"kind": "crystal", "centroid_xy": [5.0, 5.0], "diameter_um": 30.0, "members": 1},
    ...     {"kind": "agglomerate", "centroid_xy": [40.0, 9.0], "diameter_um": 60.0,
    ...      "members": 3},
    ...     {"kind": "bubble", "centroid_xy": [70.0, 70.0], "diameter_um": 20.0, "members": 0}])
    >>> a = annotation_from_report(found, "f.png", "legacy", 0.8)
    >>> count_of(a), a.objects[1]["crystals"]
    (4, 3)
    """
    objects = []
    for number, found in enumerate(report.objects, start=1):
        record = {
            "id": number,
            "kind": found["kind"],
            "centroid_xy": [float(v) for v in found["centroid_xy"]],
            "diameter_um": float(found["diameter_um"]),
        }
        if found["kind"] == "crystal":
            record["agglomerate"] = None
        elif found["kind"] == "agglomerate":
            record.update(members=[], crystals=int(found["members"]))
        objects.append(record)
    return Annotation(image_name, camera, float(pixel_size_um), tuple(objects), annotator)


def add_crystal(
    annotation: Annotation, xy: tuple[float, float], diameter_um: float | None = None
) -> Annotation:
    """Mark a single crystal at `xy` (column, row in image pixels).

    Parameters
    ----------
    annotation : Annotation
    xy : (float, float)
        Where the person clicked.
    diameter_um : float, optional
        Its size; by default the median of the other crystal marks, or
        :data:`TYPICAL_CRYSTAL_DIAMETER_UM` when there are none.

    Examples
    --------
    >>> a = add_crystal(Annotation("a.png", "legacy", 1.0), (3, 4), diameter_um=20.0)
    >>> mark = add_crystal(a, (9.5, 9)).objects[-1]
    >>> mark["id"], mark["centroid_xy"], mark["diameter_um"], mark["agglomerate"]
    (2, [9.5, 9.0], 20.0, None)
    """
    x, y = (float(v) for v in xy)
    if not (math.isfinite(x) and math.isfinite(y)):
        raise WorkbenchError(f"crystal mark at {xy!r}: the position is not a number")
    size = _median_crystal_diameter(annotation) if diameter_um is None else float(diameter_um)
    record = {
        "id": _next_id(annotation),
        "kind": "crystal",
        "centroid_xy": [round(x, 1), round(y, 1)],
        "diameter_um": size,
        "agglomerate": None,
    }
    return replace(annotation, objects=(*annotation.objects, record))


def nearest_mark(
    annotation: Annotation,
    xy: tuple[float, float],
    radius_px: float,
    kinds: tuple[str, ...] = OBJECT_KINDS,
) -> int | None:
    """Id of the mark of one of `kinds` nearest to `xy` within `radius_px` pixels, or None.

    Examples
    --------
    >>> a = add_crystal(add_crystal(Annotation("a.png", "legacy", 1.0), (0, 0)), (10, 0))
    >>> nearest_mark(a, (8, 1), 5), nearest_mark(a, (5, 30), 5)
    (2, None)
    >>> nearest_mark(a, (8, 1), 5, kinds=IMPERFECTION_KINDS) is None
    True
    """
    best_id, best_distance = None, float(radius_px)
    for record in annotation.objects:
        if record["kind"] not in kinds:
            continue
        distance = math.dist(record["centroid_xy"], (float(xy[0]), float(xy[1])))
        if distance <= best_distance:
            best_id, best_distance = record["id"], distance
    return best_id


def remove_nearest(annotation: Annotation, xy: tuple[float, float], radius_px: float) -> Annotation:
    """Remove the mark nearest to a click; unchanged when none is within `radius_px`.

    Removing an agglomerate removes its member marks too. Removing a member takes it
    out of its group; a group left with one member becomes that single crystal.

    Examples
    --------
    >>> objects = (
    ...     {"id": 1, "kind": "crystal", "centroid_xy": [0, 0], "diameter_um": 9.0,
    ...      "agglomerate": 3},
    ...     {"id": 2, "kind": "crystal", "centroid_xy": [8, 0], "diameter_um": 9.0,
    ...      "agglomerate": 3},
    ...     {"id": 3, "kind": "agglomerate", "centroid_xy": [4, 0], "diameter_um": 15.0,
    ...      "members": [1, 2]})
    >>> a = remove_nearest(Annotation("a.png", "legacy", 1.0, objects), (9, 1), 3)
    >>> a.objects
    ({'id': 1, 'kind': 'crystal', 'centroid_xy': [0, 0], 'diameter_um': 9.0, 'agglomerate': None},)
    """
    target = nearest_mark(annotation, xy, radius_px)
    if target is None:
        return annotation
    record = _record(annotation, target)
    if record["kind"] == "agglomerate":
        gone = {target, *record.get("members", [])}
        kept = tuple(o for o in annotation.objects if o["id"] not in gone)
        return replace(annotation, objects=kept)
    kept = tuple(o for o in annotation.objects if o["id"] != target)
    group = record.get("agglomerate")
    if record["kind"] != "crystal" or group is None:
        return replace(annotation, objects=kept)
    return replace(annotation, objects=_without_member(kept, group, target))


def set_crystals(annotation: Annotation, object_id: int, crystals: int) -> Annotation:
    """Set how many crystals particle `object_id` holds.

    An agglomerate's member marks give way to the number (``"crystals": k``); a
    single crystal set to 2 or more becomes an agglomerate; an agglomerate set to 1
    becomes a single crystal.

    Examples
    --------
    >>> a = add_crystal(Annotation("a.png", "legacy", 1.0), (5, 5), diameter_um=30.0)
    >>> set_crystals(a, 1, 4).objects[0]["crystals"]
    4
    >>> set_crystals(set_crystals(a, 1, 4), 1, 1).objects[0]["kind"]
    'crystal'
    """
    record = _record(annotation, object_id)
    if record["kind"] not in PARTICLE_KINDS:
        raise WorkbenchError(
            f"mark {object_id} is a {record['kind']}; only a crystal or an agglomerate "
            "has a crystal number"
        )
    if record.get("agglomerate") is not None:
        raise WorkbenchError(
            f"mark {object_id} is a crystal of agglomerate {record['agglomerate']}; "
            "set the number of the agglomerate instead"
        )
    if isinstance(crystals, bool) or not isinstance(crystals, int) or crystals < 1:
        raise WorkbenchError(
            f"mark {object_id}: crystal number {crystals!r} must be a whole number of at "
            "least 1 (remove the mark instead of setting 0)"
        )
    base = {k: record[k] for k in ("id", "centroid_xy", "diameter_um")}
    if crystals == 1:
        changed = {**base, "kind": "crystal", "agglomerate": None}
    else:
        changed = {**base, "kind": "agglomerate", "members": [], "crystals": crystals}
    members = set(record.get("members", []))
    objects = tuple(
        changed if o["id"] == object_id else o for o in annotation.objects if o["id"] not in members
    )
    return replace(annotation, objects=objects)


def label_path(folder: str | os.PathLike, image: str) -> Path:
    """Where the labels of `image` live in `folder`.

    Examples
    --------
    >>> label_path("labels", "frame_07.png").as_posix()
    'labels/frame_07.labels.json'
    """
    return Path(folder) / f"{Path(image).stem}{LABELS_SUFFIX}"


def save_annotation(annotation: Annotation, folder: str | os.PathLike) -> Path:
    """Write the label file of `annotation` into `folder` (created if missing).

    The file is written whole or not at all; a label file of another image with the
    same stem (``a.png`` and ``a.tif``) is never overwritten.

    Returns
    -------
    Path
        The label file.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> a = add_crystal(Annotation("a.png", "legacy", 1.0, annotator="ana"), (5, 5))
    >>> save_annotation(a, folder).name
    'a.labels.json'
    >>> [count_of(x) for x in load_annotations(folder)]
    [1]
    """
    path = label_path(folder, annotation.image)
    check_annotation(annotation, str(path))
    if path.exists():
        existing = read_annotation(path)
        if existing.image != annotation.image:
            raise WorkbenchError(
                f"{path}: holds the labels of {existing.image}, not {annotation.image}; "
                "not overwritten"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = replace(annotation, saved=datetime.now(UTC).isoformat(timespec="seconds"))
    text = json.dumps(saved.to_json(), indent=1) + "\n"
    write_atomically(path, text)
    return path


def read_annotation(path: str | os.PathLike) -> Annotation:
    """Read and check one label file.

    Raises
    ------
    WorkbenchError
        One line naming the file and what is wrong with it.

    Examples
    --------
    >>> read_annotation("no/such.labels.json")
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: no/such.labels.json: cannot read it (No such file or directory)
    """
    path = Path(path)
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise WorkbenchError(f"{path}: cannot read it ({error.strerror or error})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise WorkbenchError(f"{path}: not JSON ({error})") from None
    annotation = _annotation_from_json(content, str(path))
    if path.name != label_path(".", annotation.image).name:
        raise WorkbenchError(
            f"{path}: holds the labels of {annotation.image}, whose label file is named "
            f"{label_path('.', annotation.image).name}"
        )
    if content["count"] != count_of(annotation):
        raise WorkbenchError(
            f"{path}: count {content['count']} does not match its marks "
            f"({count_of(annotation)} crystals)"
        )
    return annotation


def load_annotations(folder: str | os.PathLike) -> list[Annotation]:
    """All label files in `folder`, sorted by file name.

    Raises
    ------
    WorkbenchError
        When `folder` is not a folder, or one line naming a malformed file and why.

    Examples
    --------
    >>> import tempfile
    >>> load_annotations(tempfile.mkdtemp())
    []
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: not a labels folder (no such directory)")
    return [read_annotation(p) for p in sorted(folder.glob(f"*{LABELS_SUFFIX}"))]


def check_annotation(annotation: Annotation, where: str) -> None:
    """Raise :class:`WorkbenchError` naming `where` when the marks break the format.

    Examples
    --------
    >>> bad = Annotation("a.png", "legacy", 1.0, ({"id": 1, "kind": "crystal",
    ...     "centroid_xy": [1, 1], "diameter_um": 9.0, "agglomerate": 5},))
    >>> check_annotation(bad, "a.json")
    Traceback (most recent call last):
    ...
    workbench.errors.WorkbenchError: a.json: mark 1 is in agglomerate 5, which does not list it
    """
    if not isinstance(annotation.image, str) or not annotation.image.strip():
        raise WorkbenchError(f"{where}: 'image' must be the image's file name")
    if Path(annotation.image).name != annotation.image:
        raise WorkbenchError(
            f"{where}: 'image' {annotation.image!r} must be a file name, no folder"
        )
    if not isinstance(annotation.camera, str) or not annotation.camera:
        raise WorkbenchError(f"{where}: 'camera' must name the camera profile")
    if not _is_positive_number(annotation.pixel_size_um):
        raise WorkbenchError(f"{where}: 'pixel_size_um' must be a positive number")
    by_id = {}
    for index, record in enumerate(annotation.objects):
        _check_record(record, f"{where}: object {index + 1}")
        if record["id"] in by_id:
            raise WorkbenchError(f"{where}: mark id {record['id']} is used twice")
        by_id[record["id"]] = record
    for record in annotation.objects:
        _check_membership(record, by_id, where)


def draw_annotation(
    picture: np.ndarray, annotation: Annotation, scale: float = 1.0, selected: int | None = None
) -> np.ndarray:
    """Draw the marks of `annotation` on `picture`, the image shown at `scale` times its size.

    Single crystals are circles of their diameter, agglomerates thicker circles with
    their crystal number, member crystals circles in the agglomerate colour,
    imperfections crosses; mark `selected` gets a white ring. A legend gives the tally.

    Parameters
    ----------
    picture : ndarray of uint8, shape (H, W) or (H, W, 3)
        The image (RGB when colour), resized by `scale`.
    annotation : Annotation
    scale : float
        Display pixels per image pixel.
    selected : int, optional
        Id of the mark to highlight.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        A new RGB picture.

    Examples
    --------
    >>> a = set_crystals(add_crystal(Annotation("a.png", "legacy", 1.0), (150, 150)), 1, 2)
    >>> drawn = draw_annotation(np.zeros((200, 200), np.uint8), a, selected=1)
    >>> drawn.shape, tuple(int(v) for v in drawn[150, 150 + 20])
    ((200, 200, 3), (255, 140, 0))
    """
    canvas = picture.copy() if picture.ndim == 3 else cv2.cvtColor(picture, cv2.COLOR_GRAY2RGB)
    line = max(1, round(max(canvas.shape[:2]) / 800))
    for record in annotation.objects:
        centre = tuple(round(v * scale) for v in record["centroid_xy"])
        radius = max(3 * line, round(record["diameter_um"] / annotation.pixel_size_um * scale / 2))
        _draw_mark(canvas, record, centre, radius, line)
        if record["id"] == selected:
            cv2.circle(canvas, centre, radius + 3 * line, SELECTED_RGB, 2 * line, cv2.LINE_AA)
    _draw_legend(canvas, tally(annotation), line)
    return canvas


def _draw_mark(
    canvas: np.ndarray, record: dict[str, Any], centre: tuple[int, int], radius: int, line: int
) -> None:
    kind = record["kind"]
    if kind in IMPERFECTION_KINDS:
        arm = max(2, round(radius * 0.7))
        x, y = centre
        cv2.line(
            canvas, (x - arm, y - arm), (x + arm, y + arm), IMPERFECTION_RGB, line, cv2.LINE_AA
        )
        cv2.line(
            canvas, (x - arm, y + arm), (x + arm, y - arm), IMPERFECTION_RGB, line, cv2.LINE_AA
        )
        return
    single = kind == "crystal" and record.get("agglomerate") is None
    colour = CRYSTAL_RGB if single else AGGLOMERATE_RGB
    width = 2 * line if kind == "agglomerate" else line
    cv2.circle(canvas, centre, radius, colour, width, cv2.LINE_AA)
    if kind == "crystal":
        cv2.circle(canvas, centre, line, colour, -1, cv2.LINE_AA)
        return
    text = str(crystals_in(record))
    font = max(0.7, canvas.shape[1] / 1100)
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 2 * line)
    origin = (centre[0] - w // 2, centre[1] + h // 2)
    for colour_of_text, weight in (((0, 0, 0), 5 * line), (AGGLOMERATE_RGB, 2 * line)):
        cv2.putText(
            canvas,
            text,
            origin,
            cv2.FONT_HERSHEY_SIMPLEX,
            font,
            colour_of_text,
            weight,
            cv2.LINE_AA,
        )


def _draw_legend(canvas: np.ndarray, counts: dict[str, int], line: int) -> None:
    rows = [
        (f"crystals: {counts['count']}  single: {counts['single']}", CRYSTAL_RGB),
        (
            f"agglomerates: {counts['agglomerates']} ({counts['in_agglomerates']} crystals)",
            AGGLOMERATE_RGB,
        ),
        (f"imperfections (not counted): {counts['imperfections']}", IMPERFECTION_RGB),
    ]
    font = max(0.4, canvas.shape[1] / 3000)
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font, line)[0] for t, _ in rows]
    step = int(max(h for _, h in sizes) * 1.8)
    swatch = step // 2
    cv2.rectangle(
        canvas,
        (4, 4),
        (max(w for w, _ in sizes) + swatch + 28, 12 + step * len(rows)),
        (255, 255, 255),
        -1,
    )
    for row, (text, colour) in enumerate(rows):
        y = 4 + step * (row + 1)
        cv2.rectangle(canvas, (10, y - swatch), (10 + swatch, y), colour, -1)
        cv2.putText(
            canvas,
            text,
            (18 + swatch, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            font,
            (0, 0, 0),
            line,
            cv2.LINE_AA,
        )


def _check_record(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise WorkbenchError(f"{where}: must be an object record, not {type(record).__name__}")
    object_id = record.get("id")
    if isinstance(object_id, bool) or not isinstance(object_id, int):
        raise WorkbenchError(f"{where}: 'id' must be a whole number")
    if record.get("kind") not in OBJECT_KINDS:
        raise WorkbenchError(
            f"{where}: kind {record.get('kind')!r} is none of {', '.join(OBJECT_KINDS)}"
        )
    centroid = record.get("centroid_xy")
    if not (
        isinstance(centroid, list)
        and len(centroid) == 2
        and all(_is_number(v) and math.isfinite(v) for v in centroid)
    ):
        raise WorkbenchError(f"{where}: 'centroid_xy' must be two numbers [x, y]")
    if not _is_positive_number(record.get("diameter_um")):
        raise WorkbenchError(f"{where}: 'diameter_um' must be a positive number")
    if record["kind"] == "agglomerate":
        members = record.get("members")
        if not isinstance(members, list):
            raise WorkbenchError(f"{where}: an agglomerate needs a 'members' list")
        crystals = record.get("crystals", 0)
        if isinstance(crystals, bool) or not isinstance(crystals, int) or crystals < 0:
            raise WorkbenchError(f"{where}: 'crystals' must be a whole number")
        if len(members) < 2 and crystals < 2:
            raise WorkbenchError(
                f"{where}: an agglomerate needs 2 or more member marks or 'crystals' of 2 or more"
            )


def _check_membership(record: dict[str, Any], by_id: dict[int, dict], where: str) -> None:
    if record["kind"] == "agglomerate":
        for member in record["members"]:
            crystal = by_id.get(member)
            if crystal is None or crystal["kind"] != "crystal":
                raise WorkbenchError(
                    f"{where}: agglomerate {record['id']} lists {member!r}, "
                    "which is no crystal mark"
                )
            if crystal.get("agglomerate") != record["id"]:
                raise WorkbenchError(
                    f"{where}: agglomerate {record['id']} lists crystal {member}, "
                    "which does not name it"
                )
    elif record["kind"] == "crystal" and record.get("agglomerate") is not None:
        group = by_id.get(record["agglomerate"])
        if group is None or record["id"] not in group.get("members", []):
            raise WorkbenchError(
                f"{where}: mark {record['id']} is in agglomerate {record['agglomerate']}, "
                "which does not list it"
            )


def _annotation_from_json(content: Any, where: str) -> Annotation:
    if not isinstance(content, dict):
        raise WorkbenchError(f"{where}: must hold one JSON object, not {type(content).__name__}")
    missing = [
        k for k in ("image", "camera", "pixel_size_um", "objects", "count") if k not in content
    ]
    if missing:
        raise WorkbenchError(f"{where}: lacks {', '.join(repr(k) for k in missing)}")
    if not isinstance(content["objects"], list):
        raise WorkbenchError(f"{where}: 'objects' must be a list")
    annotator, saved = content.get("annotator", ""), content.get("saved")
    if not isinstance(annotator, str) or not (saved is None or isinstance(saved, str)):
        raise WorkbenchError(f"{where}: 'annotator' and 'saved' must be text")
    annotation = Annotation(
        content["image"],
        content["camera"],
        content["pixel_size_um"],
        tuple(content["objects"]),
        annotator,
        saved,
    )
    check_annotation(annotation, where)
    return annotation


def _without_member(
    objects: tuple[dict[str, Any], ...], group: int, member: int
) -> tuple[dict[str, Any], ...]:
    """`objects` with `member` out of agglomerate `group`; a group of one dissolves."""
    record = next(o for o in objects if o["id"] == group)
    left = [m for m in record["members"] if m != member]
    if len(left) >= 2:
        changed = {**record, "members": left}
        return tuple(changed if o["id"] == group else o for o in objects)
    return tuple(
        {**o, "agglomerate": None} if o["id"] in left else o for o in objects if o["id"] != group
    )


def _record(annotation: Annotation, object_id: int) -> dict[str, Any]:
    for record in annotation.objects:
        if record["id"] == object_id:
            return record
    raise WorkbenchError(f"{annotation.image}: no mark has id {object_id!r}")


def _next_id(annotation: Annotation) -> int:
    return max((o["id"] for o in annotation.objects), default=0) + 1


def _median_crystal_diameter(annotation: Annotation) -> float:
    sizes = sorted(o["diameter_um"] for o in annotation.objects if o["kind"] == "crystal")
    if not sizes:
        return TYPICAL_CRYSTAL_DIAMETER_UM
    middle = len(sizes) // 2
    return sizes[middle] if len(sizes) % 2 else (sizes[middle - 1] + sizes[middle]) / 2


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_positive_number(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value) and value > 0
