"""The annotation widget clicked headless, as the browser front end would (no datasite)."""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from widgets import AnnotationWidget
from widgets.annotate import AnnotationCanvas
from workbench.imaging.annotations import Annotation, save_annotation
from workbench.imaging.pipeline import analyze
from workbench.synth.generate import synthesize

FRONT_END = Path(__file__).parents[1] / "widgets" / "annotate.js"


@pytest.fixture(scope="module")
def frame(tmp_path_factory) -> Path:
    sample = synthesize("legacy", seed=9, density_per_mm2=25, shape=(384, 480))
    path = tmp_path_factory.mktemp("images") / "frame_09.png"
    cv2.imwrite(str(path), sample.image)
    return path


def _click(widget: AnnotationWidget, x: float, y: float) -> None:
    """Set the click trait exactly as annotate.js does."""
    seq = widget.canvas.click.get("seq", 0) + 1
    widget.canvas.click = {"x": x, "y": y, "seq": seq}


def _saved(folder: Path) -> dict:
    return json.loads((folder / "frame_09.labels.json").read_text())


def test_prefilled_marks_are_the_counters_and_clicks_edit_them(frame, tmp_path):
    widget = AnnotationWidget(frame, tmp_path / "labels", annotator="ana")
    report = analyze(cv2.imread(str(frame), cv2.IMREAD_GRAYSCALE), "legacy")
    assert widget.annotation.to_json()["count"] == report.count
    assert "not saved" in widget.summary.value
    before = len(widget.annotation.objects)

    _click(widget, 470.0, 370.0)  # add mode: a new crystal mark
    _click(widget, 470.0, 370.0)  # same spot again is another click
    assert len(widget.annotation.objects) == before + 2
    assert widget.annotation.objects[-1]["centroid_xy"] == [470.0, 370.0]

    widget.mode.value = "remove"
    _click(widget, 469.0, 371.0)
    assert len(widget.annotation.objects) == before + 1

    widget.undo_button.click()
    assert len(widget.annotation.objects) == before + 2


def test_select_an_agglomerate_set_its_number_and_save(frame, tmp_path):
    widget = AnnotationWidget(frame, tmp_path, annotator="ana")
    group = next(o for o in widget.annotation.objects if o["kind"] == "agglomerate")
    widget.mode.value = "select"
    _click(widget, *group["centroid_xy"])
    assert widget.selected == group["id"]
    assert widget.crystals_input.value == group["crystals"]

    count = widget.annotation.to_json()["count"]
    widget.crystals_input.value = group["crystals"] + 2
    widget.set_button.click()
    assert widget.annotation.to_json()["count"] == count + 2

    widget.save_button.click()
    saved = _saved(tmp_path)
    assert saved["count"] == count + 2 and saved["annotator"] == "ana"
    assert saved["image"] == "frame_09.png" and saved["camera"] == "legacy"
    marked = next(o for o in saved["objects"] if o["id"] == group["id"])
    assert marked["crystals"] == group["crystals"] + 2
    assert "saved" in widget.message.value and "; saved" in widget.summary.value


def test_an_existing_label_file_is_resumed(frame, tmp_path):
    save_annotation(Annotation("frame_09.png", "legacy", 2.0, annotator="ana"), tmp_path)
    widget = AnnotationWidget(frame, tmp_path)
    assert widget.annotation.objects == () and "; saved" in widget.summary.value
    _click(widget, 10.0, 20.0)
    widget.save_button.click()
    assert _saved(tmp_path)["count"] == 1


def test_save_refuses_another_images_label_file_and_says_why(frame, tmp_path):
    save_annotation(Annotation("frame_09.tif", "legacy", 2.0), tmp_path)
    before = _saved(tmp_path)
    widget = AnnotationWidget(frame, tmp_path, prefill=False)
    assert "holds the labels of frame_09.tif" in widget.message.value
    _click(widget, 10.0, 20.0)
    widget.save_button.click()
    assert "not overwritten" in widget.message.value
    assert _saved(tmp_path) == before


def test_wrong_actions_get_a_message_not_an_exception(frame, tmp_path):
    widget = AnnotationWidget(frame, tmp_path, prefill=False)
    widget.set_button.click()
    assert "select a particle first" in widget.message.value
    widget.mode.value = "remove"
    _click(widget, 5.0, 5.0)
    assert "no mark near" in widget.message.value
    widget.canvas.click = {"seq": 99}  # no position: ignored
    assert widget.annotation.objects == ()


def test_the_front_end_module_declares_the_traits_the_python_side_reads():
    script = FRONT_END.read_text()
    assert "export default" in script and "render" in script
    used = set(re.findall(r"model\.(?:get|set)\(\"(\w+)\"", script))
    used |= set(re.findall(r"change:(\w+)", script))
    synced = {name for name in AnnotationCanvas().traits(sync=True) if not name.startswith("_")}
    assert {"picture", "image_width", "image_height", "click"} <= used
    assert used <= synced
    assert AnnotationCanvas().get_state()["_esm"] == script  # what the browser receives


def test_a_large_frame_is_shown_reduced_and_clicks_stay_in_image_pixels(frame, tmp_path):
    widget = AnnotationWidget(frame, tmp_path, prefill=False, display_px=240)
    shown = cv2.imdecode(np.frombuffer(widget.canvas.picture, np.uint8), cv2.IMREAD_COLOR)
    assert shown.shape[:2] == (192, 240)
    assert (widget.canvas.image_width, widget.canvas.image_height) == (480, 384)
    _click(widget, 470.0, 370.0)
    assert widget.annotation.objects[0]["centroid_xy"] == [470.0, 370.0]
