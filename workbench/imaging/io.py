"""Reading microscope images from disk.

The only module of :mod:`workbench.imaging` that touches files. Every image comes
back as a :class:`LoadedImage` whose ``pixels`` are float32 gray in [0, 1], whatever
the file held (PNG, TIFF, JPEG or BMP; 8 or 16 bit; gray, RGB or RGBA). Anything
that is not a readable image of at least 64 x 64 pixels raises one
:class:`~workbench.errors.WorkbenchError` naming the file and the reason.

Examples
--------
>>> from workbench.imaging.io import load_image
>>> image = load_image("sample.png")  # doctest: +SKIP
>>> image.pixels.dtype, image.bit_depth  # doctest: +SKIP
(dtype('float32'), 8)
"""

from __future__ import annotations

import io as _bytes_io
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
        Gray levels in [0, 1] (colour is converted with ITU-R 601 luma weights).
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

    pixels: np.ndarray
    original: np.ndarray
    path: Path
    format: str
    bit_depth: int
    channels: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols) of the image."""
        return self.pixels.shape[:2]

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
            return name
    raise WorkbenchError(f"{path}: content is not a PNG, TIFF, JPEG or BMP image")


def _decode(path: Path, data: bytes, file_format: str) -> np.ndarray:
    if file_format == "PNG":
        _check_png(path, data)
    elif file_format == "JPEG":
        _check_jpeg(path, data)
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is not None:
        return _bgr_to_rgb(array)
    if file_format == "TIFF":
        # tifffile reads what OpenCV cannot (float samples, odd layouts) and returns RGB order.
        array = _decode_tiff(data)
    if array is None:
        raise WorkbenchError(f"{path}: corrupt {file_format} file (cannot be decoded)")
    return array


def _check_png(path: Path, data: bytes) -> None:
    # IHDR holds width and height as big-endian 32-bit integers at bytes 16..24.
    if len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if width == 0 or height == 0:
            raise WorkbenchError(f"{path}: image is zero-sized ({width} x {height} pixels)")
    if data.rfind(b"IEND") < 0:
        raise WorkbenchError(f"{path}: truncated PNG file (no end chunk)")


def _check_jpeg(path: Path, data: bytes) -> None:
    # OpenCV silently pads a truncated JPEG with gray; the end-of-image marker must
    # come after the last start-of-scan marker.
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise WorkbenchError(f"{path}: truncated JPEG file (no end-of-image marker)")


def _decode_tiff(data: bytes) -> np.ndarray | None:
    import tifffile

    try:
        array = tifffile.imread(_bytes_io.BytesIO(data))
    except Exception:  # tifffile raises many types for broken files; all mean "corrupt"
        return None
    array = np.asarray(array)
    if array.ndim < 2:
        return None
    # Multi-page stacks: keep the first page.
    while array.ndim > 3 or (array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4)):
        array = array[0]
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
    if array.size == 0 or min(array.shape[:2]) == 0:
        rows, cols = array.shape[:2]
        raise WorkbenchError(f"{path}: image is zero-sized ({cols} x {rows} pixels)")
    rows, cols = array.shape[:2]
    if min(rows, cols) < MIN_SIDE_PX:
        raise WorkbenchError(
            f"{path}: image is too small ({cols} x {rows} pixels; "
            f"need at least {MIN_SIDE_PX} on each side)"
        )
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels not in (1, 2, 3, 4):
        raise WorkbenchError(f"{path}: unsupported number of channels ({channels})")
    return LoadedImage(
        pixels=to_gray_float(array),
        original=array,
        path=path,
        format=file_format,
        bit_depth=8 * array.dtype.itemsize if array.dtype.kind in "ui" else 32,
        channels=channels,
    )


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
        scaled = np.clip(np.nan_to_num(array.astype(np.float32)), 0.0, 1.0)
    else:
        raise WorkbenchError(f"image data of type {array.dtype} is not supported")
    if scaled.ndim == 3:
        if scaled.shape[2] >= 3:
            scaled = scaled[:, :, :3] @ np.array([0.299, 0.587, 0.114], np.float32)
        else:  # gray + alpha
            scaled = scaled[:, :, 0]
    return np.ascontiguousarray(scaled, dtype=np.float32)
