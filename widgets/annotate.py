"""Annotation widget: a person at the factory corrects the counter's marks on one image.

A click on the picture adds a crystal mark, removes the nearest mark, or selects a
particle whose crystal number can then be set; Save writes ``<stem>.labels.json``
into the labels folder (:mod:`workbench.imaging.annotations`, the format
``workbench finetune --labels`` reads). Every edit is a function of that module; this
widget only turns clicks into those calls and shows the result.

The picture is an ``anywidget`` canvas (``annotate.js``) that reports each click
in image pixels through its ``click`` trait, so the widget runs in JupyterLab 4
without a build step, and a test drives it by setting that trait.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> import cv2, numpy as np
>>> folder = Path(tempfile.mkdtemp())
>>> _ = cv2.imwrite(str(folder / "frame.png"), np.full((120, 160), 200, np.uint8))
>>> widget = AnnotationWidget(folder / "frame.png", folder / "labels", prefill=False)
>>> widget.canvas.click = {"x": 40.0, "y": 30.0, "seq": 1}
>>> widget.save_button.click()
>>> from workbench.imaging.annotations import load_annotations
>>> [a.objects[0]["centroid_xy"] for a in load_annotations(folder / "labels")]
[[40.0, 30.0]]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anywidget
import cv2
import ipywidgets as w
import numpy as np
import traitlets

from widgets._html import notice_html, png_bytes
from workbench.camera import get_camera
from workbench.errors import WorkbenchError
from workbench.imaging.annotations import (
    PARTICLE_KINDS,
    TYPICAL_CRYSTAL_DIAMETER_UM,
    Annotation,
    add_crystal,
    annotation_from_report,
    count_of,
    crystals_in,
    draw_annotation,
    label_path,
    nearest_mark,
    read_annotation,
    remove_nearest,
    save_annotation,
    set_crystals,
    tally,
)
from workbench.imaging.io import load_image
from workbench.imaging.pipeline import analyze

MODES = (("add crystal", "add"), ("remove mark", "remove"), ("select particle", "select"))


class AnnotationCanvas(anywidget.AnyWidget):
    """The picture: shows ``picture`` and reports clicks in image pixels.

    Attributes
    ----------
    picture : bytes
        PNG to show (the image with its marks, possibly reduced for display).
    image_width, image_height : int
        Size of the annotated image, to turn a click on the picture into its pixels.
    click : dict
        The last click, ``{"x": column, "y": row, "seq": n}``; ``seq`` grows with each
        click so two clicks on the same spot are two changes.
    """

    _esm = Path(__file__).with_name("annotate.js")
    picture = traitlets.Bytes(b"").tag(sync=True)
    image_width = traitlets.Int(0).tag(sync=True)
    image_height = traitlets.Int(0).tag(sync=True)
    click = traitlets.Dict({}).tag(sync=True)


class AnnotationWidget:
    """Mark the crystals of one image and save them as labels at the factory.

    Parameters
    ----------
    image_path : str or Path
        The image to annotate.
    labels_folder : str or Path
        Where ``<stem>.labels.json`` is written (created on the first save).
    camera : str
        Camera profile of the image.
    pixel_size_um : float, optional
        Overrides the profile's pixel size.
    annotator : str
        Who makes the marks (kept in the label file).
    prefill : bool
        Start from the counter's marks (:func:`workbench.imaging.pipeline.analyze`)
        when the image has no label file yet; an existing label file is always resumed.
    display_px : int
        Longest side of the picture shown (a 12 MP frame is reduced for the browser).
    click_radius_px : float, optional
        How far from a mark (image pixels) a remove or select click may land; by
        default one typical crystal diameter.

    Attributes
    ----------
    annotation : Annotation
        The marks as they are now.
    canvas : AnnotationCanvas
        The picture; its ``click`` trait is what the browser sets.
    mode : ToggleButtons
        What a click does: ``add``, ``remove`` or ``select``.
    crystals_input : BoundedIntText
        Crystal number for the selected particle.
    set_button, undo_button, save_button : Button
    summary : HTML
        The tally of the marks and whether they are saved.
    message : HTML
        The last action's outcome or error.
    widget : VBox
        The whole widget.

    Raises
    ------
    WorkbenchError
        When the image cannot be read, the camera is unknown, or its label file is
        malformed.
    """

    def __init__(
        self,
        image_path: str | os.PathLike,
        labels_folder: str | os.PathLike,
        camera: str = "legacy",
        pixel_size_um: float | None = None,
        annotator: str = "",
        prefill: bool = True,
        display_px: int = 1600,
        click_radius_px: float | None = None,
    ):
        profile = get_camera(camera, pixel_size_um)
        image = load_image(image_path)
        self.labels_folder = Path(labels_folder)
        self.message = w.HTML()
        self.annotation = self._start(image, profile, annotator, prefill)
        self.saved_annotation = self.annotation if self.annotation.saved else None
        self.history: list[Annotation] = []
        self.selected: int | None = None
        self.click_radius_px = (
            TYPICAL_CRYSTAL_DIAMETER_UM / profile.pixel_size_um
            if click_radius_px is None
            else float(click_radius_px)
        )
        height, width = image.pixels.shape
        self.scale = min(1.0, display_px / max(height, width))
        self._base = _display_gray(image.pixels, self.scale)

        self.canvas = AnnotationCanvas(image_width=width, image_height=height)
        self.mode = w.ToggleButtons(options=MODES, value="add", description="click to")
        self.crystals_input = w.BoundedIntText(
            value=2, min=1, max=999, description="crystals", layout=w.Layout(width="160px")
        )
        self.set_button = w.Button(description="Set", tooltip="set the selected particle's number")
        self.undo_button = w.Button(description="Undo", icon="undo")
        self.save_button = w.Button(description="Save", icon="save", button_style="primary")
        self.summary = w.HTML()
        self.widget = w.VBox(
            [
                w.HBox([self.mode]),
                w.HBox([self.crystals_input, self.set_button, self.undo_button, self.save_button]),
                self.summary,
                self.message,
                self.canvas,
            ]
        )
        self.canvas.observe(self._on_click, names="click")
        self.set_button.on_click(lambda _: self.set_selected_crystals(self.crystals_input.value))
        self.undo_button.on_click(lambda _: self.undo())
        self.save_button.on_click(lambda _: self.save())
        self.redraw()

    def _start(self, image, profile, annotator: str, prefill: bool) -> Annotation:
        existing = label_path(self.labels_folder, image.path.name)
        if existing.exists():
            resumed = read_annotation(existing)
            if resumed.image == image.path.name:
                return resumed
            self.message.value = notice_html(
                f"{existing} holds the labels of {resumed.image}; Save will not overwrite it",
                "warn",
            )
        if prefill:
            report = analyze(image, profile)
            return annotation_from_report(
                report, image.path.name, profile.name, profile.pixel_size_um, annotator
            )
        return Annotation(image.path.name, profile.name, profile.pixel_size_um, (), annotator)

    def click_at(self, xy: tuple[float, float]) -> None:
        """Do what the mode says at image pixel `xy` (column, row)."""
        if self.mode.value == "add":
            self._edit(add_crystal(self.annotation, xy))
        elif self.mode.value == "remove":
            changed = remove_nearest(self.annotation, xy, self.click_radius_px)
            self._edit(changed)
            if changed is self.annotation:
                self.message.value = notice_html("no mark near that click", "warn")
        else:
            self.select(nearest_mark(self.annotation, xy, self.click_radius_px, PARTICLE_KINDS))

    def select(self, object_id: int | None) -> None:
        """Select particle `object_id` (None: nothing) and show its crystal number."""
        self.selected = object_id
        if object_id is not None:
            record = next(o for o in self.annotation.objects if o["id"] == object_id)
            self.crystals_input.value = crystals_in(record) or 1
        self.redraw()

    def set_selected_crystals(self, crystals: int) -> None:
        """Set the crystal number of the selected particle."""
        if self.selected is None:
            self.message.value = notice_html("select a particle first (mode: select)", "warn")
            return
        try:
            self._edit(set_crystals(self.annotation, self.selected, int(crystals)))
        except WorkbenchError as error:
            self.message.value = notice_html(str(error), "error")

    def undo(self) -> None:
        """Go back one edit."""
        if self.history:
            self.annotation = self.history.pop()
            self.redraw()

    def save(self) -> Path | None:
        """Write the label file; the outcome is shown in :attr:`message`."""
        try:
            path = save_annotation(self.annotation, self.labels_folder)
        except WorkbenchError as error:
            self.message.value = notice_html(str(error), "error")
            return None
        self.saved_annotation = self.annotation
        self.message.value = notice_html(
            f"saved {path} ({count_of(self.annotation)} crystals)", "ok"
        )
        self.redraw()
        return path

    def redraw(self) -> None:
        """Draw the marks on the picture and update the summary line."""
        picture = draw_annotation(self._base, self.annotation, self.scale, self.selected)
        self.canvas.picture = png_bytes(picture, max_side=max(picture.shape[:2]))
        counts = tally(self.annotation)
        state = "saved" if self.annotation == self.saved_annotation else "not saved"
        self.summary.value = (
            f"<b>{self.annotation.image}</b>: {counts['count']} crystals "
            f"({counts['single']} single, {counts['in_agglomerates']} in "
            f"{counts['agglomerates']} agglomerates), {counts['imperfections']} imperfections "
            f"not counted; {state}"
        )

    def _on_click(self, change: dict[str, Any]) -> None:
        click = change["new"]
        if "x" in click and "y" in click:
            self.click_at((click["x"], click["y"]))

    def _edit(self, changed: Annotation) -> None:
        if changed is not self.annotation:
            self.history.append(self.annotation)
            self.annotation = changed
            if self.selected not in {o["id"] for o in changed.objects}:
                self.selected = None
        self.message.value = ""
        self.redraw()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


def _display_gray(pixels: np.ndarray, scale: float) -> np.ndarray:
    gray = (np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)
    if scale == 1.0:
        return gray
    size = (round(gray.shape[1] * scale), round(gray.shape[0] * scale))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
