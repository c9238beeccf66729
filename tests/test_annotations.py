"""The label format a factory makes with the annotation widget (fast)."""

import json

import pytest

from workbench.errors import WorkbenchError
from workbench.imaging.annotations import (
    Annotation,
    add_crystal,
    annotation_from_report,
    check_annotation,
    count_of,
    label_path,
    load_annotations,
    remove_nearest,
    save_annotation,
    set_crystals,
)
from workbench.imaging.pipeline import analyze
from workbench.synth.generate import synthesize


def _group_of_two() -> Annotation:
    objects = (
        {"id": 1, "kind": "crystal", "centroid_xy": [0, 0], "diameter_um": 9.0, "agglomerate": 3},
        {"id": 2, "kind": "crystal", "centroid_xy": [8, 0], "diameter_um": 9.0, "agglomerate": 3},
        {"id": 3, "kind": "agglomerate", "centroid_xy": [4, 0], "diameter_um": 15.0,
         "members": [1, 2]},
        {"id": 4, "kind": "bubble", "centroid_xy": [50, 50], "diameter_um": 20.0},
    )  # fmt: skip
    return Annotation("frame.png", "legacy", 2.0, objects, "ana")


def test_synthetic_truth_is_a_valid_label_with_the_same_count():
    truth = synthesize("legacy", seed=5, density_per_mm2=30, shape=(256, 320)).truth
    labels = Annotation(truth["image"], truth["camera"], truth["pixel_size_um"],
                        tuple(truth["objects"]))  # fmt: skip
    check_annotation(labels, "truth")
    assert count_of(labels) == truth["count"]


def test_prefilled_from_the_counter_counts_what_the_counter_counted():
    sample = synthesize("legacy", seed=9, density_per_mm2=25, shape=(384, 480))
    report = analyze(sample.image, "legacy")
    labels = annotation_from_report(report, "f.png", "legacy", 2.0, "ana")
    check_annotation(labels, "prefilled")
    assert count_of(labels) == report.count
    assert sum(o["kind"] == "agglomerate" for o in labels.objects) == report.agglomerates


def test_editing_returns_new_annotations_and_leaves_the_input_alone():
    before = _group_of_two()
    snapshot = json.dumps(before.to_json())
    add_crystal(before, (30, 30))
    remove_nearest(before, (8, 0), 3)
    set_crystals(before, 3, 5)
    assert json.dumps(before.to_json()) == snapshot


def test_a_clicked_crystal_takes_the_median_size_and_a_new_id():
    labels = add_crystal(_group_of_two(), (30.04, 31.0))
    mark = labels.objects[-1]
    assert (mark["id"], mark["centroid_xy"], mark["diameter_um"]) == (5, [30.0, 31.0], 9.0)
    assert count_of(labels) == 3


def test_removing_a_member_dissolves_a_group_of_two():
    labels = remove_nearest(_group_of_two(), (7, 1), radius_px=3)
    assert [o["id"] for o in labels.objects] == [1, 4]
    assert labels.objects[0]["agglomerate"] is None
    assert count_of(labels) == 1
    check_annotation(labels, "edited")


def test_removing_an_agglomerate_removes_its_members_and_a_far_click_nothing():
    labels = remove_nearest(_group_of_two(), (4, 0.5), radius_px=1)
    assert [o["kind"] for o in labels.objects] == ["bubble"]
    unchanged = _group_of_two()
    assert remove_nearest(unchanged, (200, 200), radius_px=10) is unchanged


def test_set_crystals_replaces_member_marks_and_turns_kinds():
    labels = set_crystals(_group_of_two(), 3, 4)
    assert [o["id"] for o in labels.objects] == [3, 4]
    assert labels.objects[0]["crystals"] == 4 and count_of(labels) == 4
    single = set_crystals(labels, 3, 1)
    assert single.objects[0]["kind"] == "crystal" and count_of(single) == 1
    check_annotation(single, "edited")


@pytest.mark.parametrize(
    ("object_id", "crystals", "reason"),
    [
        (4, 2, "mark 4 is a bubble; only a crystal or an agglomerate"),
        (3, 0, "at least 1"),
        (1, 3, "crystal of agglomerate 3; set the number of the agglomerate"),
        (9, 2, "no mark has id 9"),
    ],
)
def test_set_crystals_refuses_with_one_line(object_id, crystals, reason):
    with pytest.raises(WorkbenchError, match=reason):
        set_crystals(_group_of_two(), object_id, crystals)


def test_save_and_load_round_trip(tmp_path):
    path = save_annotation(_group_of_two(), tmp_path / "labels")
    assert path == tmp_path / "labels" / "frame.labels.json"
    content = json.loads(path.read_text())
    assert content["count"] == 2 and content["annotator"] == "ana" and content["saved"]
    [loaded] = load_annotations(tmp_path / "labels")
    assert loaded.objects == _group_of_two().objects and loaded.saved == content["saved"]
    assert [p.name for p in (tmp_path / "labels").iterdir()] == ["frame.labels.json"]


def test_save_refuses_to_overwrite_another_images_labels(tmp_path):
    path = save_annotation(_group_of_two(), tmp_path)
    before = path.read_text()
    other = Annotation("frame.tif", "legacy", 2.0)
    with pytest.raises(WorkbenchError, match="holds the labels of frame.png, not frame.tif"):
        save_annotation(other, tmp_path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["frame.labels.json"]


def test_save_refuses_marks_that_break_the_format(tmp_path):
    bad = Annotation("a.png", "legacy", 2.0, ({"id": 1, "kind": "crystl",
                     "centroid_xy": [1, 1], "diameter_um": 9.0},))  # fmt: skip
    with pytest.raises(WorkbenchError, match="kind 'crystl' is none of"):
        save_annotation(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _written(tmp_path, name: str, content) -> None:
    text = content if isinstance(content, str) else json.dumps(content)
    (tmp_path / name).write_text(text)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda c: "{not json", "not JSON"),
        (lambda c: [c], "must hold one JSON object"),
        (lambda c: {**c, "count": 7}, "count 7 does not match its marks \\(2 crystals\\)"),
        (lambda c: {k: v for k, v in c.items() if k != "camera"}, "lacks 'camera'"),
        (lambda c: {**c, "pixel_size_um": -1}, "'pixel_size_um' must be a positive number"),
        (lambda c: {**c, "image": "other.png"}, "labels of other.png, whose label file is named"),
        (lambda c: {**c, "objects": c["objects"] + [c["objects"][0]]}, "id 1 is used twice"),
        (lambda c: {**c, "objects": [{**c["objects"][0], "centroid_xy": [1]}] + c["objects"][1:]},
         "object 1: 'centroid_xy' must be two numbers"),
        (lambda c: {**c, "objects": c["objects"][1:]}, "lists 1, which is no crystal mark"),
    ],
)  # fmt: skip
def test_a_malformed_label_file_gets_one_line_naming_it(tmp_path, change, reason):
    good = _group_of_two().to_json()
    _written(tmp_path, "frame.labels.json", change(good))
    with pytest.raises(WorkbenchError, match=reason) as raised:
        load_annotations(tmp_path)
    message = str(raised.value)
    assert message.startswith(str(label_path(tmp_path, "frame.png"))) and "\n" not in message


def test_a_missing_labels_folder_is_named(tmp_path):
    with pytest.raises(WorkbenchError, match="no-such: not a labels folder"):
        load_annotations(tmp_path / "no-such")
