"""workbench.imaging.io: every supported file loads, every bad file raises one clear error."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.imaging.io import (
    SUPPORTED_EXTENSIONS,
    declared_size,
    list_images,
    load_image,
    to_gray_float,
)

SHAPE = (80, 96)


def _pattern(dtype=np.uint8, channels=1) -> np.ndarray:
    top = np.iinfo(dtype).max
    ramp = np.linspace(0, top, SHAPE[0] * SHAPE[1]).reshape(SHAPE).astype(dtype)
    if channels == 4:  # an opaque alpha channel
        return np.dstack([ramp] * 3 + [np.full(SHAPE, top, dtype)])
    return ramp if channels == 1 else np.dstack([ramp] * channels)


def _encoded(array: np.ndarray, extension: str) -> bytes:
    ok, data = cv2.imencode(extension, array)
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("name", "array", "bit_depth", "channels"),
    [
        ("gray8.png", _pattern(), 8, 1),
        ("gray16.png", _pattern(np.uint16), 16, 1),
        ("rgb8.png", _pattern(channels=3), 8, 3),
        ("rgba8.png", _pattern(channels=4), 8, 4),
        ("rgb16.png", _pattern(np.uint16, 3), 16, 3),
        ("gray8.bmp", _pattern(), 8, 1),
        ("rgb8.bmp", _pattern(channels=3), 8, 3),
        ("gray8.jpg", _pattern(), 8, 1),
        ("rgb8.jpeg", _pattern(channels=3), 8, 3),
        ("gray16.tif", _pattern(np.uint16), 16, 1),
        ("rgb8.tiff", _pattern(channels=3), 8, 3),
    ],
)
def test_supported_files_load_as_gray_float(tmp_path, name, array, bit_depth, channels):
    path = tmp_path / name
    path.write_bytes(_encoded(array, path.suffix))
    image = load_image(path)
    assert image.pixels.dtype == np.float32
    assert image.shape == SHAPE
    assert image.bit_depth == bit_depth
    assert image.channels == channels
    assert 0.0 <= image.pixels.min() < 0.05 and 0.95 < image.pixels.max() <= 1.0
    assert image.name == name


def test_rgb_is_returned_in_rgb_order(tmp_path):
    red = np.zeros((*SHAPE, 3), np.uint8)
    red[..., 2] = 255  # OpenCV writes BGR
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), red)
    image = load_image(path)
    assert image.original[0, 0].tolist() == [255, 0, 0]
    assert image.pixels[0, 0] == pytest.approx(0.299, abs=0.01)


def test_float_tiff_loads_through_tifffile(tmp_path):
    path = tmp_path / "float.tif"
    tifffile.imwrite(path, np.full(SHAPE, 0.25, np.float32))
    image = load_image(path)
    assert image.bit_depth == 32
    assert float(image.pixels.mean()) == pytest.approx(0.25)


def _png_bytes() -> bytes:
    return _encoded(_pattern(), ".png")


def _jpeg_bytes() -> bytes:
    return _encoded(_pattern(), ".jpg")


def _tiff_bytes() -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, _pattern(np.uint16))  # uncompressed: 15 kB of strips
    return buffer.getvalue()


def _zero_width_png() -> bytes:
    data = bytearray(_png_bytes())
    data[16:20] = (0).to_bytes(4, "big")  # IHDR width
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", b"", "empty"),
        ("corrupt.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 200 + b"IEND", "corrupt"),
        ("text.png", b"not an image at all", "not a PNG, TIFF, JPEG or BMP"),
        ("truncated.png", _png_bytes()[:-40], "truncated PNG"),
        ("truncated.jpg", _jpeg_bytes()[: len(_jpeg_bytes()) // 2], "truncated JPEG"),
        ("zero.png", _zero_width_png(), "zero-sized"),
        ("tiny.png", _encoded(np.zeros((20, 200), np.uint8), ".png"), "too small"),
        ("notes.txt", b"hello", "unsupported file type"),
        ("noextension", _png_bytes(), "unsupported file type"),
        ("corrupt.tif", b"II*\x00" + b"\xff" * 64, "corrupt TIFF"),
    ],
)
def test_bad_files_raise_one_error_naming_file_and_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WorkbenchError) as error:
        load_image(path)
    assert str(path) in str(error.value)
    assert reason in str(error.value)


def test_zero_sized_tiff_is_rejected(tmp_path):
    path = tmp_path / "zero.tif"
    tifffile.imwrite(path, np.zeros((0, 10), np.uint8))
    with pytest.raises(WorkbenchError, match="zero-sized|corrupt"):
        load_image(path)


def test_missing_file_and_folder_are_rejected(tmp_path):
    with pytest.raises(WorkbenchError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(WorkbenchError, match="is a folder"):
        load_image(tmp_path)


def test_list_images_sorted_supported_only(tmp_path):
    for name in ("b.png", "a.TIF", "c.jpeg", "d.bmp", "notes.txt", "e.gif"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.TIF", "b.png", "c.jpeg", "d.bmp"]
    with pytest.raises(WorkbenchError, match="not a folder"):
        list_images(tmp_path / "b.png")


def test_to_gray_float_accepts_pil_converted_arrays():
    rgba = np.asarray(Image.new("RGBA", (70, 70), (10, 20, 30, 255)))
    gray = to_gray_float(rgba)
    assert gray.shape == (70, 70)
    expected = (0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255
    assert float(gray[0, 0]) == pytest.approx(expected, abs=1e-4)
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="PNG")
    assert buffer.getvalue().startswith(b"\x89PNG")


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _declared_png(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height over a few bytes of pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 100_000))
        + _png_chunk(b"IEND", b"")
    )


def test_decompression_bomb_is_refused_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_declared_png(40_000, 40_000))
    assert path.stat().st_size < 2_000
    with pytest.raises(WorkbenchError) as error:
        load_image(path)
    message = str(error.value)
    assert str(path) in message and "40000 x 40000" in message and "limit of 64" in message


@pytest.mark.parametrize("extension", [".png", ".jpg", ".tif", ".bmp"])
def test_declared_size_is_read_from_every_header(extension):
    data = _encoded(_pattern(), extension)
    assert declared_size(data, SUPPORTED_EXTENSIONS[extension]) == (SHAPE[1], SHAPE[0])
    assert declared_size(data[:10], SUPPORTED_EXTENSIONS[extension]) is None


def test_oversized_tiff_and_jpeg_headers_are_refused(tmp_path):
    tiff = bytearray(_encoded(_pattern(), ".tif"))
    tiff_path = tmp_path / "huge.tif"
    # Patch ImageWidth / ImageLength (tags 256, 257) in the first directory.
    offset = struct.unpack("<I", tiff[4:8])[0]
    for index in range(struct.unpack("<H", tiff[offset : offset + 2])[0]):
        start = offset + 2 + 12 * index
        tag, kind = struct.unpack("<HH", tiff[start : start + 4])
        if tag in (256, 257):
            tiff[start + 2 : start + 12] = struct.pack("<HII", 4, 1, 20_000)
    tiff_path.write_bytes(bytes(tiff))
    jpeg = bytearray(_jpeg_bytes())
    frame = jpeg.find(b"\xff\xc0")
    jpeg[frame + 5 : frame + 9] = struct.pack(">HH", 65_000, 65_000)
    jpeg_path = tmp_path / "huge.jpg"
    jpeg_path.write_bytes(bytes(jpeg))
    for path in (tiff_path, jpeg_path):
        with pytest.raises(WorkbenchError, match="megapixels.*not decoded"):
            load_image(path)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "jpeg.png",
            _jpeg_bytes(),
            "mislabelled file (the content is a JPEG image, the name says PNG)",
        ),
        ("png.tif", _png_bytes(), "mislabelled file (the content is a PNG image"),
        ("truncated.bmp", _encoded(_pattern(), ".bmp")[:3000], "truncated BMP"),
        ("truncated.tif", _tiff_bytes()[:5000], "truncated TIFF"),
        ("no_header.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + b"IEND", "no image size"),
    ],
)
def test_truncated_and_mislabelled_files_name_the_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(WorkbenchError) as error:
        load_image(path)
    assert str(error.value).startswith(f"{path}: ") and reason in str(error.value)


def test_transparent_rgba_is_refused_and_odd_layouts_named(tmp_path):
    rgba = _pattern(channels=4)
    rgba[:10, :10, 3] = 0
    transparent = tmp_path / "transparent.png"
    transparent.write_bytes(_encoded(rgba, ".png"))
    with pytest.raises(WorkbenchError, match="transparent pixels"):
        load_image(transparent)
    five = tmp_path / "five.tif"
    tifffile.imwrite(
        five, np.zeros((*SHAPE, 5), np.uint8), photometric="minisblack", planarconfig="contig"
    )
    with pytest.raises(WorkbenchError, match=r"unsupported channel layout \(array of shape"):
        load_image(five)
