"""Reading microscope images from disk.

The only module of :mod:`workbench.imaging` that touches files. Every image comes
back as a :class:`LoadedImage` whose ``pixels`` are float32 gray in [0, 1], whatever
the file held (PNG, TIFF, JPEG or BMP; 8 or 16 bit; gray, RGB or RGBA). Anything
that is not a readable image of at least 64 x 64 pixels raises one
:class:`~workbench.errors.WorkbenchError` naming the file and the reason.

Before anything is decoded, the size the file declares in its header (PNG IHDR, JPEG
start-of-frame, TIFF tags, BMP header) is checked against :data:`MAX_IMAGE_PIXELS`,
so a small file that would decode to gigabytes (a decompression bomb) is refused at
once. A file whose content is another format than its extension says (a JPEG named
``.png``) is refused too: the name is what people and tools trust. An alpha channel
is dropped when it is fully opaque; transparent pixels are refused, since the gray
under them is not what the microscope saw.

Examples
--------
>>> from workbench.imaging.io import load_image
>>> image = load_image("sample.png")  # doctest: +SKIP
>>> image.pixels.dtype, image.bit_depth  # doctest: +SKIP
(dtype('float32'), 8)
"""

from __future__ import annotations

import functools
import io as _bytes_io
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from workbench.errors import WorkbenchError

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".bmp": "BMP",
}
MIN_SIDE_PX = 64
# The hires camera gives 12 MP; 64 MP leaves room for larger sensors while a frame's
# arrays stay within the 2 GB peak memory of a count (64 MP is 256 MB as float32 gray,
# 192 MB as 8-bit RGB, before the counter's working copies). Checked from the header,
# before decoding; OpenCV's own limit (2**30 pixels) would end in an assertion.
MAX_IMAGE_PIXELS = 64_000_000

# Leading bytes of each format: the content decides the format, not the file name.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


@dataclass
class LoadedImage:
    """An image read from disk.

    Attributes
    ----------
    pixels : ndarray of float32, shape (H, W)
        Gray levels in [0, 1] (colour is converted with ITU-R 601 luma weights),
        computed on first use.
    original : ndarray
        The array as stored (RGB order for colour, alpha kept), for overlays.
    path : Path
        Where it was read from.
    format : str
        ``PNG``, ``TIFF``, ``JPEG`` or ``BMP`` (from the file's content).
    bit_depth : int
        Bits per sample of the stored array (8, 16 or 32 for float TIFF).
    channels : int
        1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA).
    """

    original: np.ndarray
    path: Path
    format: str
    bit_depth: int
    channels: int

    @functools.cached_property
    def pixels(self) -> np.ndarray:
        """Gray levels in [0, 1], float32 (H, W); made on first use.

        Computed lazily because a float copy is four times the size of an 8-bit frame
        and an upload only needs the stored array.
        """
        return to_gray_float(self.original)

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the image."""
        return self.original.shape[:2]

    @property
    def name(self) -> str:
        """File name without folder."""
        return self.path.name


def load_image(path: str | Path) -> LoadedImage:
    """Read one image file as float gray in [0, 1].

    Parameters
    ----------
    path : str or Path
        A PNG, TIFF, JPEG or BMP file.

    Returns
    -------
    LoadedImage

    Raises
    ------
    WorkbenchError
        If the file is missing, a folder, empty, of an unsupported type, corrupt,
        truncated, zero-sized or smaller than 64 pixels on a side.

    Examples
    --------
    >>> import numpy as np, cv2, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "gray.png"
    >>> _ = cv2.imwrite(str(path), np.full((80, 90), 128, np.uint8))
    >>> image = load_image(path)
    >>> image.shape, image.format, image.bit_depth, image.channels
    ((80, 90), 'PNG', 8, 1)
    """
    path = Path(path)
    data = _read_bytes(path)
    file_format = _detect_format(path, data)
    _check_declared_size(path, file_format, declared_size(data, file_format))
    array = _decode(path, data, file_format)
    return _to_loaded_image(path, array, file_format)


def list_images(folder: str | Path) -> list[Path]:
    """Return the image files (supported extensions) directly inside `folder`, sorted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("b.png", "a.TIF", "notes.txt"):
    ...     _ = (folder / name).write_bytes(b"")
    >>> [p.name for p in list_images(folder)]
    ['a.TIF', 'b.png']
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: not a folder")
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS
    )


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise WorkbenchError(f"{path}: no such file")
    if path.is_dir():
        raise WorkbenchError(f"{path}: is a folder, not an image file")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        known = ", ".join(sorted(set(SUPPORTED_EXTENSIONS.values())))
        raise WorkbenchError(
            f"{path}: unsupported file type {path.suffix or '(no extension)'!r}; use {known}"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise WorkbenchError(f"{path}: cannot be read ({error.strerror})") from None
    if not data:
        raise WorkbenchError(f"{path}: file is empty (0 bytes)")
    return data


def _detect_format(path: Path, data: bytes) -> str:
    for magic, name in _MAGIC:
        if data.startswith(magic):
            named = SUPPORTED_EXTENSIONS[path.suffix.lower()]
            if name != named:
                raise WorkbenchError(
                    f"{path}: mislabelled file (the content is a {name} image, the name "
                    f"says {named}); rename it to match its content"
                )
            return name
    raise WorkbenchError(f"{path}: content is not a PNG, TIFF, JPEG or BMP image")


def declared_size(data: bytes, file_format: str) -> tuple[int, int] | None:
    """(width, height) that an image file's header declares, read without decoding.

    Parameters
    ----------
    data : bytes
        The file's content (the first few kilobytes are enough for PNG and BMP).
    file_format : str
        ``PNG``, ``JPEG``, ``TIFF`` or ``BMP``.

    Returns
    -------
    (int, int) or None
        None when the header is cut short or malformed.

    Examples
    --------
    >>> import struct, zlib
    >>> ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 0, 0, 0, 0)
    >>> head = b"\\x89PNG\\r\\n\\x1a\\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
    >>> declared_size(head + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)), "PNG")
    (40000, 40000)
    """
    readers = {
        "PNG": _png_size,
        "JPEG": _jpeg_size,
        "TIFF": _tiff_size,
        "BMP": _bmp_size,
    }
    try:
        return readers[file_format](data)
    except (IndexError, ValueError, struct.error):
        return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    # The first chunk is IHDR: width and height as big-endian 32-bit integers.
    if data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Walk the marker segments up to a start-of-frame (SOF0-SOF15 but DHT, JPG, DAC).
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            position += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return width, height
        position += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    tags = _tiff_tags(data, (256, 257))  # ImageWidth, ImageLength
    if 256 not in tags or 257 not in tags:
        return None
    return tags[256][0], tags[257][0]


def _tiff_tags(data: bytes, wanted: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """Values of the `wanted` integer tags of a TIFF file's first image directory."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (entries,) = struct.unpack(order + "H", data[offset : offset + 2])
    tags = {}
    for index in range(entries):
        start = offset + 2 + 12 * index
        tag, kind, count = struct.unpack(order + "HHI", data[start : start + 8])
        if tag in wanted and kind in (3, 4):  # SHORT or LONG
            code = order + ("H" if kind == 3 else "I") * count
            size = struct.calcsize(code)
            # Values that do not fit in the entry's 4 bytes sit at the offset it holds.
            (where,) = struct.unpack(order + "I", data[start + 8 : start + 12])
            at = start + 8 if size <= 4 else where
            tags[tag] = struct.unpack(code, data[at : at + size])
    return tags


def _bmp_size(data: bytes) -> tuple[int, int] | None:
    # BITMAPCOREHEADER (12 bytes) holds 16-bit sizes; every later header 32-bit signed ones
    # (a negative height means top-down rows).
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _check_declared_size(path: Path, file_format: str, size: tuple[int, int] | None) -> None:
    if size is None:
        raise WorkbenchError(
            f"{path}: corrupt {file_format} file "
            "(no image size in its header: truncated or damaged)"
        )
    width, height = size
    if width == 0 or height == 0:
        raise WorkbenchError(f"{path}: image is zero-sized ({width} x {height} pixels)")
    if width * height > MAX_IMAGE_PIXELS:
        raise WorkbenchError(
            f"{path}: declares {width} x {height} pixels ({width * height / 1e6:.0f} megapixels), "
            f"more than the limit of {MAX_IMAGE_PIXELS / 1e6:.0f}; not decoded "
            "(a decompression bomb or a stitched mosaic)"
        )


def _decode(path: Path, data: bytes, file_format: str) -> np.ndarray:
    if file_format == "PNG":
        _check_png(path, data)
    elif file_format == "JPEG":
        _check_jpeg(path, data)
    elif file_format == "BMP":
        _check_bmp(path, data)
    else:
        _check_tiff(path, data)
    array = _opencv_decode(data)
    if array is not None:
        return _bgr_to_rgb(array)
    if file_format == "TIFF":
        # tifffile reads what OpenCV cannot (float samples, odd layouts) and returns RGB order.
        array = _decode_tiff(data)
    if array is None:
        raise WorkbenchError(
            f"{path}: corrupt {file_format} file (cannot be decoded: truncated or damaged)"
        )
    return array


def _opencv_decode(data: bytes) -> np.ndarray | None:
    """OpenCV's decoding, or None; its own log lines are silenced (the error says why)."""
    level = cv2.getLogLevel()
    cv2.setLogLevel(0)  # silent
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    finally:
        cv2.setLogLevel(level)


def _check_png(path: Path, data: bytes) -> None:
    if data.rfind(b"IEND") < 0:
        raise WorkbenchError(f"{path}: truncated PNG file (no end chunk)")


def _check_jpeg(path: Path, data: bytes) -> None:
    # OpenCV silently pads a truncated JPEG with gray; the end-of-image marker must
    # come after the last start-of-scan marker.
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise WorkbenchError(f"{path}: truncated JPEG file (no end-of-image marker)")


def _check_bmp(path: Path, data: bytes) -> None:
    # The file header declares the file's size in bytes 2..6.
    (declared,) = struct.unpack("<I", data[2:6])
    if len(data) < declared:
        raise WorkbenchError(f"{path}: truncated BMP file ({len(data)} of {declared} bytes)")


def _check_tiff(path: Path, data: bytes) -> None:
    # Decoders fill missing strips or tiles with zeros: every one must lie inside the file.
    try:
        tags = _tiff_tags(data, (273, 279, 324, 325))  # strip and tile offsets, byte counts
    except (IndexError, ValueError, struct.error):
        tags = {}
    for offsets, counts in ((273, 279), (324, 325)):
        if offsets in tags and counts in tags:
            end = max(o + c for o, c in zip(tags[offsets], tags[counts], strict=False))
            if end > len(data):
                raise WorkbenchError(
                    f"{path}: truncated TIFF file ({len(data)} bytes, image data up to {end})"
                )


def _decode_tiff(data: bytes) -> np.ndarray | None:
    import tifffile

    try:
        array = tifffile.imread(_bytes_io.BytesIO(data), key=0)  # the first page only
    except Exception:  # tifffile raises many types for broken files; all mean "corrupt"
        return None
    array = np.asarray(array)
    if array.ndim < 2:
        return None
    # Planar samples (channels first) become channels last; other layouts are refused later.
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[-1] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)
    return array


def _bgr_to_rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] == 3:
        return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    return array


def _to_loaded_image(path: Path, array: np.ndarray, file_format: str) -> LoadedImage:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    channels = 1 if array.ndim == 2 else array.shape[-1]
    if array.ndim not in (2, 3) or channels not in (1, 2, 3, 4):
        raise WorkbenchError(
            f"{path}: unsupported channel layout (array of shape {array.shape}; "
            "gray, gray + alpha, RGB or RGBA are supported)"
        )
    if array.dtype.kind not in "buif":
        raise WorkbenchError(f"{path}: unsupported sample type {array.dtype}")
    if channels in (2, 4) and array.size and array[..., -1].min() < _opaque(array.dtype):
        raise WorkbenchError(
            f"{path}: has transparent pixels (alpha channel); the gray under them is not "
            "what the microscope saw: export the frame without transparency"
        )
    if array.size == 0 or min(array.shape[:2]) == 0:
        rows, cols = array.shape[:2]
        raise WorkbenchError(f"{path}: image is zero-sized ({cols} x {rows} pixels)")
    rows, cols = array.shape[:2]
    if min(rows, cols) < MIN_SIDE_PX:
        raise WorkbenchError(
            f"{path}: image is too small ({cols} x {rows} pixels; "
            f"need at least {MIN_SIDE_PX} on each side)"
        )
    return LoadedImage(
        original=array,
        path=path,
        format=file_format,
        bit_depth={"b": 1, "f": 32}.get(array.dtype.kind, 8 * array.dtype.itemsize),
        channels=channels,
    )


def _opaque(dtype: np.dtype) -> float:
    """The alpha value of a fully opaque pixel for samples of `dtype`."""
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_gray_float(array: np.ndarray) -> np.ndarray:
    """Convert a gray, RGB or RGBA array of any common dtype to float32 gray in [0, 1].

    Integer arrays are scaled by their dtype's maximum; float arrays are taken as
    [0, 1] and clipped. Colour uses ITU-R 601 luma weights; alpha is ignored.

    Examples
    --------
    >>> import numpy as np
    >>> to_gray_float(np.full((2, 2, 3), 65535, np.uint16)).max()
    1.0
    """
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.dtype.kind in "ui":
        scaled = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    elif array.dtype.kind == "f":
        # In place on one copy: np.nan_to_num takes a second on a 12 MP frame.
        scaled = array.astype(np.float32)
        np.copyto(scaled, np.float32(0.0), where=np.isnan(scaled))
        np.clip(scaled, 0.0, 1.0, out=scaled)
    else:
        raise WorkbenchError(f"image data of type {array.dtype} is not supported")
    if scaled.ndim == 3:
        if scaled.shape[2] >= 3:
            scaled = scaled[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        else:  # gray + alpha
            scaled = scaled[:, :, 0]
    return np.ascontiguousarray(scaled, dtype=np.float32)
