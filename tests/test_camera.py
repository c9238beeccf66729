import pytest

from workbench.camera import get_camera
from workbench.errors import WorkbenchError


def test_profiles():
    legacy, hires = get_camera("legacy"), get_camera("hires")
    assert legacy.shape == (1024, 1280) and legacy.channels == 1
    assert hires.channels == 3 and 11e6 <= hires.width * hires.height <= 13e6
    # both profiles image about the same field of view
    assert abs(legacy.field_area_mm2 - hires.field_area_mm2) / legacy.field_area_mm2 < 0.1


def test_pixel_size_override():
    assert get_camera("legacy", pixel_size_um=1.5).pixel_size_um == 1.5


@pytest.mark.parametrize(
    ("name", "pixel", "message"),
    [("webcam", None, "unknown camera 'webcam'"), ("legacy", 0.0, "must be a positive")],
)
def test_bad_camera_input(name, pixel, message):
    with pytest.raises(WorkbenchError, match=message):
        get_camera(name, pixel_size_um=pixel)
