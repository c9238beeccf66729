"""Make docs/annotation_widget.png: the annotation widget's picture before and after a
person's corrections.

A frame of the second renderer (:mod:`workbench.lab.heldout`, unfamiliar to the
counter) is opened in :class:`widgets.AnnotationWidget`, pre-filled by the counter,
and corrected by clicks set on the widget's ``click`` trait exactly as the browser
sets it, the truth standing in for the person's eye: wrong marks are removed,
missed crystals added, and particles get their true crystal number. The pictures
the widget sends to the browser, before and after, are put side by side.

Usage: python scripts/make_annotation_figure.py [OUTDIR]
"""

from __future__ import annotations

import io
import math
import sys
import tempfile
from pathlib import Path

import cv2
from PIL import Image, ImageDraw, ImageFont

from widgets import AnnotationWidget
from workbench.imaging.annotations import PARTICLE_KINDS, crystals_in, nearest_mark
from workbench.lab.heldout import render_heldout

PIXEL_SIZE_UM = 0.8
SEED = 1  # a frame where the counter calls most crystals debris
CAPTION_PX = 40


def _click(widget: AnnotationWidget, mode: str, xy: list[float]) -> None:
    widget.mode.value = mode
    seq = widget.canvas.click.get("seq", 0) + 1
    widget.canvas.click = {"x": float(xy[0]), "y": float(xy[1]), "seq": seq}


def _true_particle_near(truth: dict, xy: list[float], pixel_size_um: float) -> dict | None:
    for record in truth["objects"]:
        single = record["kind"] == "crystal" and record.get("agglomerate") is None
        if single or record["kind"] == "agglomerate":
            reach = record["diameter_um"] / pixel_size_um / 2
            if math.dist(record["centroid_xy"], xy) <= reach:
                return record
    return None


def correct_like_a_person(widget: AnnotationWidget, truth: dict) -> int:
    """Click until the marks agree with `truth`; return the number of clicks."""
    clicks = 0
    ps = widget.annotation.pixel_size_um
    for mark in list(widget.annotation.objects):  # marks on no particle, or called debris
        particle = _true_particle_near(truth, mark["centroid_xy"], ps)
        if (mark["kind"] in PARTICLE_KINDS) == (particle is None):
            _click(widget, "remove", mark["centroid_xy"])
            clicks += 1
    for record in truth["objects"]:
        single = record["kind"] == "crystal" and record.get("agglomerate") is None
        if not (single or record["kind"] == "agglomerate"):
            continue
        reach = record["diameter_um"] / ps / 2
        if nearest_mark(widget.annotation, record["centroid_xy"], reach, PARTICLE_KINDS) is None:
            _click(widget, "add", record["centroid_xy"])
            clicks += 1
        _click(widget, "select", record["centroid_xy"])
        wanted = len(record.get("members", [])) or 1
        marked = next(o for o in widget.annotation.objects if o["id"] == widget.selected)
        if crystals_in(marked) != wanted:
            widget.crystals_input.value = wanted
            widget.set_button.click()
            clicks += 2
    widget.select(None)
    return clicks


def captioned(png: bytes, text: str) -> Image.Image:
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    panel = Image.new("RGB", (picture.width, picture.height + CAPTION_PX), "white")
    panel.paste(picture, (0, CAPTION_PX))
    font = ImageFont.load_default(size=20)
    ImageDraw.Draw(panel).text((8, 8), text, fill="black", font=font)
    return panel


def main(outdir: Path) -> None:
    frame = render_heldout(
        "legacy", seed=SEED, density_per_mm2=70, pixel_size_um=PIXEL_SIZE_UM, shape=(600, 800)
    )
    work = Path(tempfile.mkdtemp())
    image = work / f"heldout_legacy_s{SEED}.png"
    cv2.imwrite(str(image), frame.image)
    widget = AnnotationWidget(image, work / "labels", pixel_size_um=PIXEL_SIZE_UM, annotator="demo")
    counted = widget.annotation.to_json()["count"]
    before = widget.canvas.picture
    clicks = correct_like_a_person(widget, frame.truth)
    path = widget.save()
    corrected = widget.annotation.to_json()["count"]
    left = captioned(before, f"pre-filled by the counter: {counted} crystals")
    right = captioned(widget.canvas.picture, f"after {clicks} clicks: {corrected} crystals")
    figure = Image.new("RGB", (left.width + right.width + 16, left.height), "white")
    figure.paste(left, (0, 0))
    figure.paste(right, (left.width + 16, 0))
    figure.save(outdir / "annotation_widget.png", optimize=True)
    print(f"true {frame.truth['count']}, counter {counted}, after {clicks} clicks {corrected}")
    print(f"labels: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs"))
